"""The attention of one sentence, as plain arrays and tokens: what the view, the statistics and viz read.

Models hand attention over the Hugging Face way: per attention kind, a tuple with one array per
layer shaped ``(batch, heads, query_len, key_len)``. The view and the plots work on ONE sentence, so this
module turns such input into a list of ``(heads, query_len, key_len)`` numpy arrays, decides which
tokens label the query and key axes of each kind, and which positions are hidden as special.

:class:`AttentionRecord` bundles one sentence's tokens and attention (optionally also under the
untrained model) as numpy arrays; ``to_dict`` turns them into JSON-serialisable nested lists only
when a page or a file is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "SPECIAL_TOKENS",
    "AttentionRecord",
    "to_numpy",
    "sentence_layers",
    "query_key_tokens",
    "visible_positions",
    "check_token_counts",
]

KINDS = ("encoder", "decoder", "cross")
# <unk> is deliberately not special: it stands for a real source word and can carry real attention.
SPECIAL_TOKENS = frozenset({"<bos>", "<eos>", "<pad>"})

NestedWeights = list[list[list[list[float]]]]  # layers -> heads -> query -> key, as JSON stores it
LayerWeights = list[np.ndarray]  # one (heads, query_len, key_len) array per layer


def to_numpy(array: Any) -> np.ndarray:
    """Any array-like (numpy array, torch tensor on any device, nested lists) as a float numpy array."""
    if hasattr(array, "detach"):  # a torch tensor; torch itself is never imported here
        array = array.detach().cpu().double()  # .double(): numpy has no bfloat16
    return np.asarray(array, dtype=np.float64)


def sentence_layers(layers: Any, index: int | None = None) -> list[np.ndarray]:
    """One sentence's attention, per layer, as ``(heads, query_len, key_len)`` arrays.

    ``layers`` is a tuple or list with one entry per layer, each ``(heads, q, k)`` for one sentence
    or ``(batch, heads, q, k)`` together with ``index`` (the sentence's row in the batch); a batch of
    one needs no ``index``. A bare ``(q, k)`` array counts as one layer with one head.
    """
    if not isinstance(layers, (tuple, list)):
        single = to_numpy(layers)
        if single.ndim != 2:
            raise ValueError(
                f"attention of shape {single.shape} is ambiguous: pass a tuple with one array per layer, "
                "each (heads, q, k) or (batch, heads, q, k) with index=, or a single (q, k) map"
            )
        layers = (single,)
    if len(layers) == 0:
        raise ValueError("no attention layers given (an empty tuple); was the model asked to return them?")
    return [_one_sentence(to_numpy(layer), index, position) for position, layer in enumerate(layers)]


def _one_sentence(layer: np.ndarray, index: int | None, position: int) -> np.ndarray:
    """``layer``: (q, k), (heads, q, k) or (batch, heads, q, k) -> (heads, q, k)."""
    if layer.ndim == 2:
        return layer[None]
    if layer.ndim == 3:
        if index not in (None, 0):
            raise ValueError(
                f"layer {position} has shape {layer.shape} (heads, q, k) for one sentence, "
                f"but index={index} asks for a row of a batch; pass (batch, heads, q, k) arrays"
            )
        return layer
    if layer.ndim == 4:
        if index is None:
            if layer.shape[0] != 1:
                raise ValueError(
                    f"layer {position} holds a batch of {layer.shape[0]} sentences {layer.shape}; "
                    "pass index= to choose one"
                )
            index = 0
        if not -layer.shape[0] <= index < layer.shape[0]:
            raise IndexError(f"index={index} is out of range for a batch of {layer.shape[0]} (layer {position})")
        return layer[index]
    raise ValueError(
        f"layer {position} has shape {layer.shape}; expected (q, k), (heads, q, k) or (batch, heads, q, k)"
    )


def query_key_tokens(kind: str, src_tokens: Sequence[str], tgt_tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    """The tokens along the query (rows) and key (columns) axes of one attention kind.

    encoder: source x source; decoder: target x target; cross: target (queries) x source (keys).
    """
    if kind == "encoder":
        return list(src_tokens), list(src_tokens)
    if kind == "decoder":
        return list(tgt_tokens), list(tgt_tokens)
    if kind == "cross":
        return list(tgt_tokens), list(src_tokens)
    raise ValueError(f"attention kind {kind!r} is unknown; expected one of {KINDS}")


def check_token_counts(weights: np.ndarray, query_tokens: Sequence[str], key_tokens: Sequence[str]) -> None:
    """Raise if ``weights`` (..., q, k) does not match the number of query and key tokens."""
    q, k = weights.shape[-2:]
    if (q, k) != (len(query_tokens), len(key_tokens)):
        raise ValueError(
            f"attention of shape {weights.shape} needs {q} query and {k} key tokens, got "
            f"{len(query_tokens)} and {len(key_tokens)}; pass the tokens the model saw, padding included"
        )


def visible_positions(tokens: Sequence[str], show_special: bool = False) -> np.ndarray:
    """Indices of the tokens to draw: all of them with ``show_special``, else all but SPECIAL_TOKENS."""
    return np.array([i for i, t in enumerate(tokens) if show_special or t not in SPECIAL_TOKENS], dtype=int)


@dataclass
class AttentionRecord:
    """One sentence's tokens and attention.

    ``attentions`` maps a kind ("encoder", "decoder", "cross") to one ``(heads, q, k)`` float
    array per layer. ``init_attentions`` is the same sentence under the model at initialisation
    (or ``None``). Tokens include padding and specials; viewers hide them. :meth:`to_dict` gives the
    JSON form (nested lists layers -> heads -> query -> key), :meth:`from_dict` reads it back.
    In a notebook, ``attnlab.attention_view.html.render_attention_view(record)`` shows it as the interactive view; the
    results built on it (a ``Translation`` with attention, an ``AttentionReport``) show themselves.
    """

    src_tokens: list[str]
    tgt_tokens: list[str]
    attentions: dict[str, LayerWeights]
    init_attentions: dict[str, LayerWeights] | None = None
    title: str = ""

    @classmethod
    def from_arrays(
        cls,
        src_tokens: Sequence[str],
        tgt_tokens: Sequence[str],
        attentions: Mapping[str, Any],
        init_attentions: Mapping[str, Any] | None = None,
        index: int | None = None,
        title: str = "",
        decimals: int | None = 4,
    ) -> AttentionRecord:
        """Build a record from per-kind tuples of per-layer arrays (see :func:`sentence_layers`).

        Kinds mapped to ``None`` are skipped. ``decimals`` rounds the weights to keep pages and files small.
        """
        return cls(
            src_tokens=list(src_tokens),
            tgt_tokens=list(tgt_tokens),
            attentions=_checked_layers(attentions, src_tokens, tgt_tokens, index, decimals),
            init_attentions=(
                None
                if init_attentions is None
                else _checked_layers(init_attentions, src_tokens, tgt_tokens, index, decimals)
            ),
            title=title,
        )

    def layers(self, kind: str, init: bool = False) -> list[np.ndarray]:
        """The stored attention of ``kind`` as a list of (heads, q, k) arrays."""
        source = self.init_attentions if init else self.attentions
        if source is None or kind not in source:
            raise KeyError(f"this record holds no {'initial ' if init else ''}{kind!r} attention")
        return list(source[kind])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: tokens, title, and the weights as nested lists (layers -> heads -> query -> key)."""
        data = {field.name: getattr(self, field.name) for field in fields(self)}
        data["attentions"] = _as_lists(self.attentions)
        data["init_attentions"] = None if self.init_attentions is None else _as_lists(self.init_attentions)
        data["src_tokens"], data["tgt_tokens"] = list(self.src_tokens), list(self.tgt_tokens)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttentionRecord:
        """Read the form of :meth:`to_dict` back (weights as arrays again)."""
        init = data.get("init_attentions")
        return cls(
            src_tokens=list(data["src_tokens"]),
            tgt_tokens=list(data["tgt_tokens"]),
            attentions=_as_arrays(data["attentions"]),
            init_attentions=None if init is None else _as_arrays(init),
            title=data.get("title", ""),
        )


def _as_lists(attentions: Mapping[str, LayerWeights]) -> dict[str, NestedWeights]:
    return {kind: [np.asarray(layer).tolist() for layer in layers] for kind, layers in attentions.items()}


def _as_arrays(attentions: Mapping[str, Any]) -> dict[str, LayerWeights]:
    return {kind: [np.asarray(layer, dtype=np.float64) for layer in layers] for kind, layers in attentions.items()}


def _checked_layers(
    attentions: Mapping[str, Any],
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    index: int | None,
    decimals: int | None,
) -> dict[str, LayerWeights]:
    """Per kind, one sentence's ``(heads, q, k)`` arrays, checked against the tokens and rounded."""
    checked: dict[str, LayerWeights] = {}
    for kind, layers in attentions.items():
        if layers is None:
            continue
        query_tokens, key_tokens = query_key_tokens(kind, src_tokens, tgt_tokens)
        per_layer = sentence_layers(layers, index)
        for number, layer in enumerate(per_layer):
            check_token_counts(layer, query_tokens, key_tokens)
            if not np.isfinite(layer).all():
                raise ValueError(
                    f"{kind} attention of layer {number} holds NaN or inf (a row with every key masked?); "
                    "JSON cannot store it"
                )
        # a copy either way: the record never shares memory with the caller's arrays
        checked[kind] = [np.round(x, decimals) if decimals is not None else x.copy() for x in per_layer]
    return checked
