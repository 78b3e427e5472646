"""Where a training step's time goes: torch's profiler, every operator put in one category.

Used by ``train_throughput.py --profile``. Each operator's *self* time (its own kernel, not its
children's) goes to the first category that claims it, in this order:

- by where it runs: ``optimizer`` (under ``Optimizer.step``), ``gradient clipping`` (under the step's
  ``clip`` range), ``loss: softmax, cross-entropy`` (the non-matmul work of the chunked generator loss,
  or of ``cross_entropy`` on full logits);
- matrix products by their shapes: ``generator`` (one side is the vocabulary), ``feed-forward`` (one
  side is ``ffn_dim``), ``attention scores, weights`` (batched, ``bmm``), ``q/k/v/out projections`` (the
  rest);
- by name: attention softmax and fused attention kernels, layer norm, dropout mask draws, embedding,
  casts and copies, and ``elementwise, other`` for what is left (residual adds, ReLU, masks, ...).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from torch.profiler import ProfilerActivity, profile

__all__ = ["profile_step", "print_breakdown"]

MATMULS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm"}
BY_NAME = [
    ("loss: softmax, cross-entropy", ("log_softmax", "nll_loss", "cross_entropy")),
    ("attention softmax, fused kernels", ("aten::_softmax", "scaled_dot_product", "_safe_softmax")),
    ("layer norm", ("layer_norm",)),
    ("dropout mask draws", ("bernoulli", "random_", "bitwise_and", "aten::ge", "native_dropout")),
    ("embedding", ("embedding", "index_select", "index_add", "aten::index")),
    ("casts, copies", ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous")),
]


def _under(event, names: tuple[str, ...]) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if any(parent.name.startswith(n) for n in names):
            return True
        parent = parent.cpu_parent
    return False


def _matmul_kind(shapes: Sequence[Sequence[int]], vocab: int, ffn_dim: int) -> str:
    dims = {d for shape in shapes for d in shape}
    if vocab in dims:
        return "matmul: generator"
    if ffn_dim in dims:
        return "matmul: feed-forward"
    if any(len(shape) == 3 for shape in shapes):
        return "matmul: attention scores, weights"
    return "matmul: q/k/v/out projections"


def categorise(event, vocab: int, ffn_dim: int) -> str:
    """The category of one profiler event (see the module docstring)."""
    if _under(event, ("Optimizer.step",)):
        return "optimizer"
    if _under(event, ("clip",)):
        return "gradient clipping"
    if event.name in MATMULS:
        return _matmul_kind(event.input_shapes or [], vocab, ffn_dim)
    if _under(event, ("_ChunkedGeneratorLoss",)):
        return "loss: softmax, cross-entropy"
    for category, needles in BY_NAME:
        if any(needle in event.name for needle in needles):
            return category
    return "elementwise, other"


def profile_step(step: Callable[[int], None], indices: Sequence[int], vocab: int, ffn_dim: int) -> dict[str, float]:
    """Self CPU seconds per category over ``step(i)`` for every ``i`` in ``indices``."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for i in indices:
            step(i)
    totals: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if event.self_cpu_time_total > 0:
            totals[categorise(event, vocab, ffn_dim)] += event.self_cpu_time_total / 1e6
    return dict(totals)


def print_breakdown(title: str, totals: dict[str, float], steps: int, extra: dict[str, float] | None = None) -> None:
    """One table: milliseconds per step and share of the step, largest first; ``extra`` rows are timed apart."""
    total = sum(totals.values())
    print(f"\n{title}: {total / steps * 1e3:,.0f} ms per step under the profiler")
    for category, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {category:<36} {seconds / steps * 1e3:>8.1f} ms  {seconds / total:>6.1%}")
    for category, seconds in (extra or {}).items():
        print(f"  {category:<36} {seconds * 1e3:>8.1f} ms  {seconds / (total / steps):>6.1%}  (timed apart)")
