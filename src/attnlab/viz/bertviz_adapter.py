"""Hand one sentence's attention to bertviz's ``head_view`` / ``model_view`` (optional dependency).

bertviz takes, for encoder-decoder models, ``encoder_attention``, ``decoder_attention`` and
``cross_attention`` as lists of per-layer torch tensors shaped ``(1, heads, q, k)`` (batch of one)
plus ``encoder_tokens`` and ``decoder_tokens``. Our models already return per-layer
``(batch, heads, q, k)`` tuples, so this module only picks the sentence, drops padding, and checks
what bertviz silently assumes: every kind passed has the same number of layers and heads.

Note that bertviz's own views load require.js from a CDN when displayed; for an offline page use
:func:`attnlab.attention_view.html.attention_html`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from attnlab.attention_view.records import check_token_counts, query_key_tokens, sentence_layers

__all__ = ["to_bertviz", "bertviz_arguments"]

_ARGUMENT_NAMES = {"encoder": "encoder_attention", "decoder": "decoder_attention", "cross": "cross_attention"}


def bertviz_arguments(
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    encoder_attentions: Any = None,
    decoder_attentions: Any = None,
    cross_attentions: Any = None,
    index: int | None = None,
    drop_padding: bool = True,
) -> dict[str, Any]:
    """The keyword arguments for ``bertviz.head_view`` / ``model_view`` (encoder-decoder form).

    Each attention argument is a tuple of per-layer arrays ``(batch, heads, q, k)`` (with ``index``
    choosing the sentence) or ``(heads, q, k)``; ``None`` leaves that kind out. Returns
    ``{"encoder_attention": [tensor (1, heads, S, S), ...], ..., "encoder_tokens": [...],
    "decoder_tokens": [...]}`` with ``<pad>`` positions removed when ``drop_padding``.
    """
    import torch  # bertviz needs torch tensors; imported here so the viz layer loads without torch

    given = {"encoder": encoder_attentions, "decoder": decoder_attentions, "cross": cross_attentions}
    given = {kind: layers for kind, layers in given.items() if layers is not None}
    if not given:
        raise ValueError("pass at least one of encoder_attentions, decoder_attentions, cross_attentions")
    src_keep = _kept(src_tokens, drop_padding)
    tgt_keep = _kept(tgt_tokens, drop_padding)
    keep = {"encoder": (src_keep, src_keep), "decoder": (tgt_keep, tgt_keep), "cross": (tgt_keep, src_keep)}
    arguments: dict[str, Any] = {}
    for kind, layers in given.items():
        query_tokens, key_tokens = query_key_tokens(kind, src_tokens, tgt_tokens)
        rows, cols = keep[kind]
        tensors = []
        for layer in sentence_layers(layers, index):  # (heads, q, k)
            check_token_counts(layer, query_tokens, key_tokens)
            kept = layer[:, rows][:, :, cols]  # (heads, q', k')
            tensors.append(torch.tensor(kept, dtype=torch.float32).unsqueeze(0))  # (1, heads, q', k')
        arguments[_ARGUMENT_NAMES[kind]] = tensors
    _check_same_layers_and_heads(arguments)
    arguments["encoder_tokens"] = [src_tokens[i] for i in src_keep]
    arguments["decoder_tokens"] = [tgt_tokens[i] for i in tgt_keep]
    return arguments


def to_bertviz(
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    encoder_attentions: Any = None,
    decoder_attentions: Any = None,
    cross_attentions: Any = None,
    index: int | None = None,
    view: str = "head",
    drop_padding: bool = True,
    html_action: str = "view",
    view_options: Mapping[str, Any] | None = None,
) -> Any:
    """Show one sentence in bertviz's ``head_view`` (``view="head"``) or ``model_view`` (``"model"``).

    Arguments as in :func:`bertviz_arguments`. ``html_action="return"`` makes bertviz return its
    HTML object instead of displaying it in the notebook; ``view_options`` go to the bertviz view
    unchanged (e.g. ``{"display_mode": "light"}`` for model_view). Returns what bertviz returns.
    """
    if view not in ("head", "model"):
        raise ValueError(f"view={view!r} is unknown; use 'head' (head_view) or 'model' (model_view)")
    try:
        bertviz = importlib.import_module("bertviz")
    except ImportError as error:
        raise ImportError(
            "to_bertviz needs the optional package bertviz: pip install bertviz (or pip install 'attnlab[bertviz]')"
        ) from error
    arguments = bertviz_arguments(
        src_tokens, tgt_tokens, encoder_attentions, decoder_attentions, cross_attentions, index, drop_padding
    )
    show = bertviz.head_view if view == "head" else bertviz.model_view
    return show(**arguments, html_action=html_action, **dict(view_options or {}))


def _kept(tokens: Sequence[str], drop_padding: bool) -> np.ndarray:
    return np.array([i for i, t in enumerate(tokens) if not (drop_padding and t == "<pad>")], dtype=int)


def _check_same_layers_and_heads(arguments: Mapping[str, list[Any]]) -> None:
    """bertviz takes the layer and head counts from the first kind given and reuses them for the rest."""
    shapes = {name: (len(layers), layers[0].shape[1]) for name, layers in arguments.items()}
    if len(set(shapes.values())) > 1:
        described = ", ".join(f"{name}: {n} layers x {h} heads" for name, (n, h) in shapes.items())
        raise ValueError(
            f"bertviz needs the same number of layers and heads for every kind it shows, got {described}; "
            "call to_bertviz once per kind instead"
        )
    for name, layers in arguments.items():
        if len({layer.shape[1] for layer in layers}) > 1:
            raise ValueError(f"bertviz needs the same number of heads in every layer of {name}")
