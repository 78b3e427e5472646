"""Parameter counts per part of a model, for logs and reports.

Works for any model whose top-level children name its parts; the RNN family has ``src_embed``,
``tgt_embed``, ``encoder``, ``bridge``, ``attention``, ``decoder``, ``generator``, the Transformer
``src_embed``, ``tgt_embed``, ``encoder``, ``decoder``, ``generator``. A tensor shared by several
parts (tied embeddings) is counted once, at the first child that owns it in registration order, so
with ``three_way`` tying the shared matrix counts as ``src_embed``. The encoder side is
``src_embed``, ``encoder`` and ``bridge``; everything else is the decoder side.
"""

from __future__ import annotations

from torch import nn

__all__ = ["ENCODER_SIDE", "model_summary", "format_summary", "format_count"]

ENCODER_SIDE = ("src_embed", "encoder", "bridge")
_TOTALS = ("encoder_side", "decoder_side", "total")


def model_summary(model: nn.Module) -> dict[str, int]:
    """Parameter counts: one entry per top-level child, then ``encoder_side``, ``decoder_side``, ``total``.

    Parameters registered on the model itself rather than on a child go under ``other`` (if any).
    """
    seen: set[int] = set()

    def count(params: list[nn.Parameter]) -> int:
        fresh = [p for p in params if id(p) not in seen]
        seen.update(id(p) for p in fresh)
        return sum(p.numel() for p in fresh)

    summary = {name: count(list(child.parameters())) for name, child in model.named_children()}
    own = count(list(model.parameters(recurse=False)))
    if own:
        summary["other"] = own
    total = sum(summary.values())
    encoder_side = sum(n for name, n in summary.items() if name in ENCODER_SIDE)
    summary.update(encoder_side=encoder_side, decoder_side=total - encoder_side, total=total)
    return summary


def format_count(n: int) -> str:
    """18_600_000 -> '18.6M', 5_800 -> '5.8K', 42 -> '42'."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


def format_summary(summary: dict[str, int]) -> str:
    """'encoder 5.8M, decoder 12.8M, total 18.6M' followed by one indented line per part."""
    head = (
        f"encoder {format_count(summary['encoder_side'])}, decoder {format_count(summary['decoder_side'])}, "
        f"total {format_count(summary['total'])}"
    )
    parts = [(name, n) for name, n in summary.items() if name not in _TOTALS]
    width = max((len(name) for name, _ in parts), default=0)
    lines = [f"  {name:<{width}}  {format_count(n):>7}  ({n:,})" for name, n in parts]
    return "\n".join([head, *lines])
