"""Attention by teacher forcing: the model reads a finished output once and returns every map.

Search keeps only what it needs: the torch backend carries cross-attention through greedy and beam
search, encoder and decoder self-attention are not kept, and CTranslate2 gives at most one
head-averaged cross map. Running the model's teacher-forced pass over ``<bos> y1 .. yn`` instead
recomputes the attention of the search (the decoder sees the same prefix at every position; the
two agree to about 1e-6) with every kind, layer and head, whichever backend chose the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from attnlab.data.vocab import BOS_ID, PAD_ID

if TYPE_CHECKING:
    from attnlab.decoding.translator import Translation

__all__ = ["ForcedBatch", "forced_attentions", "add_forced_attentions"]

Attentions = tuple[Tensor, ...]  # one tensor per layer


@dataclass
class ForcedBatch:
    """What a model's teacher-forced ``forward`` reads."""

    src: Tensor  # (B, S) padded with 0
    src_lengths: Tensor  # (B,)
    tgt_in: Tensor  # (B, T) <bos> y1 .. padded with 0


def _padded(rows: Sequence[Sequence[int]]) -> Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)  # (B, longest)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _cut(attentions: Attentions | None, row: int, queries: int, keys: int) -> Attentions | None:
    """Row ``row`` of each layer's (B, heads, Tq, Tk) weights without padding: (heads, queries, keys)."""
    if attentions is None:
        return None
    return tuple(a[row, :, :queries, :keys].cpu() for a in attentions)


@torch.no_grad()
def forced_attentions(model: nn.Module, src_ids: Sequence[Sequence[int]],
                      tgt_in: Sequence[Sequence[int]]) -> list[dict[str, Attentions | None]]:
    """Every attention map of ``model`` reading pair ``i``: source ``src_ids[i]``, target ``tgt_in[i]``.

    ``tgt_in[i]`` starts with ``<bos>``; row ``j`` of the target maps is the position that predicts
    token ``j + 1``. Returns per pair ``{"encoder": per layer (heads, S, S), "decoder": (heads, T, T),
    "cross": (heads, T, S)}`` with the pair's own lengths; kinds the model lacks (RNNs) are None.
    """
    device = next(model.parameters()).device
    lengths = torch.tensor([len(s) for s in src_ids])
    batch = ForcedBatch(_padded(src_ids).to(device), lengths.to(device), _padded(tgt_in).to(device))
    out = model(batch, return_attention=True)
    maps = []
    for row, (src, tgt) in enumerate(zip(src_ids, tgt_in, strict=True)):
        S, T = len(src), len(tgt)
        maps.append({"encoder": _cut(out.encoder_attentions, row, S, S),
                     "decoder": _cut(out.decoder_attentions, row, T, T),
                     "cross": _cut(out.cross_attentions, row, T, S)})
    return maps


def add_forced_attentions(model: nn.Module, translations: Sequence[Translation], tgt_vocab: Any,
                          cross: bool) -> None:
    """Give every candidate of ``translations`` its encoder and decoder attention, and with ``cross`` its
    cross-attention too (replacing the search's), from one teacher-forced pass over the batch.

    A complete candidate has a row for each token and one for ``<eos>``; a cut one a row per token,
    as the search's own maps (:class:`attnlab.decoding.greedy.Hypothesis`).
    """
    pairs = [(t, c) for t in translations if t.src_ids for c in t.n_best]
    if not pairs:
        return
    tgt_in = []
    for _, candidate in pairs:
        ids = tgt_vocab.encode(candidate.tokens)  # the vocabulary's own tokens: exact inverse of decode
        tgt_in.append([BOS_ID] + (ids if candidate.complete else ids[:-1]))
    maps = forced_attentions(model, [t.src_ids for t, _ in pairs], tgt_in)
    for (_, candidate), kinds in zip(pairs, maps, strict=True):
        candidate.encoder_attentions = kinds["encoder"]
        candidate.decoder_attentions = kinds["decoder"]
        if cross:
            candidate.cross_attentions = kinds["cross"]
