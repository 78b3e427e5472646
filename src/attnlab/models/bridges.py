"""How the encoder's results reach the decoder: its initial state and the memory it attends to.

Three jobs, applied in this order by :class:`Bridge`:

1. **Directions** (``bridge``). A bidirectional encoder ends with two final states per layer:

   ========= =================================================== =====================
   bridge    decoder initial state (per layer)                   decoder hidden size
   ========= =================================================== =====================
   concat    [forward; backward]                                 2 * hid_dim
   sum       forward + backward                                  hid_dim
   average   (forward + backward) / 2                            hid_dim
   linear    tanh(W [forward; backward] + b), h and c alike      hid_dim
   tanh      h: tanh(W [forward; backward] + b); c: as affine    hid_dim
   affine    W [forward; backward] + b                           hid_dim
   none      zeros (the decoder learns from attention alone)     hid_dim
   stack     forward and backward as two separate layers         hid_dim
   ========= =================================================== =====================

   ``stack`` keeps torch's own order of final states, layer-major (layer 0 forward, layer 0
   backward, layer 1 forward, ...), so the encoder hands over ``2 * enc_layers`` layers: a decoder
   with twice the encoder's layers (``dec_layers = 2 * enc_layers``) takes them one to one, the
   classic alternative to combining the directions; other counts go through ``layer_mismatch``.

   A unidirectional encoder has one state, passed unchanged by every bridge except ``none``
   (still zeros). LSTMs bridge h and c alike (the learned bridges have one projection for each),
   except that ``tanh`` squashes h only. For a GRU, ``linear`` and ``tanh`` are the same function,
   Bahdanau et al.'s initial state. An LSTM's h is bounded by tanh, its c is not (the encoder's own
   final c reaches 10 on Tatoeba): with ``linear``, 86% of a trained model's initial c units sat at
   |c| > 0.95, where tanh passes almost no gradient (the encoder suite, docs/experiments.md).

2. **Layers** (``layer_mismatch``), when the decoder has ``dec_layers`` and the encoder
   ``enc_layers`` (identity for ``last``, ``first``, ``repeat`` and ``zeros`` when they are equal):

   - ``last``: decoder layers get the top ``dec_layers`` encoder layers. If the decoder has more
     layers than the encoder, it gets every encoder layer and its extra top layers repeat the
     encoder's top layer (the best summary of the sentence).
   - ``first``: the bottom ``dec_layers`` encoder layers; more decoder layers: as ``last``.
   - ``repeat``: the encoder's layers tiled bottom to top, [e0, e1, e0, e1, ...], then cut to
     ``dec_layers``; so "a decoder with twice the encoder's layers" is ``dec_layers = 2 * enc_layers``
     with ``repeat``.
   - ``zeros``: encoder layers bottom-up, missing decoder layers start from zeros; with fewer
     decoder layers, as ``last``.
   - ``average``: every decoder layer gets the mean over encoder layers (also when counts match).
   - ``linear``: a learned (dec_layers, enc_layers) mixing matrix, initialised to the average
     (also applied when counts match).

3. **Memory**. Attention keys and values are the encoder outputs (B, S, dirs * hid_dim). When that
   differs from the decoder's hidden size (bidirectional encoder without ``concat``), the outputs are
   projected by a learned linear map here, ``Bridge.memory_proj``, so attention always sees keys of
   the decoder's size and its parameters count on the encoder side. A model without attention has
   no memory to project, and no ``memory_proj``.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.models.options import BRIDGES, LAYER_MISMATCH, decoder_hidden_size

__all__ = ["Bridge", "map_layers"]

PROJECTED = ("linear", "tanh", "affine")  # the direction bridges with a learned projection per state tensor


def map_layers(
    state: torch.Tensor, dec_layers: int, mode: str, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Encoder layers to decoder layers: (enc_layers, B, H) -> (dec_layers, B, H); see the module doc."""
    enc_layers = state.size(0)
    if mode == "average":
        return state.mean(0, keepdim=True).expand(dec_layers, -1, -1).contiguous()
    if mode == "linear":
        return torch.einsum("dl,lbh->dbh", weight, state)  # (dec_layers, B, H)
    if mode == "repeat":
        tiles = -(-dec_layers // enc_layers)  # ceil
        return state.repeat(tiles, 1, 1)[:dec_layers]  # [e0, e1, e0, e1, ...]
    if dec_layers <= enc_layers:
        return state[:dec_layers] if mode == "first" else state[enc_layers - dec_layers :]
    missing = dec_layers - enc_layers
    if mode == "zeros":
        pad = state.new_zeros(missing, *state.shape[1:])
    else:  # last, first: repeat the top layer
        pad = state[-1:].expand(missing, -1, -1)
    return torch.cat([state, pad], dim=0)  # (dec_layers, B, H)


class Bridge(nn.Module):
    """Encoder final states and outputs -> decoder initial state and attention memory."""

    def __init__(
        self,
        kind: str = "concat",
        hid_dim: int = 256,
        bidirectional: bool = False,
        num_states: int = 1,
        enc_layers: int = 1,
        dec_layers: int = 1,
        layer_mismatch: str = "last",
        with_memory: bool = True,
    ) -> None:
        super().__init__()
        if kind not in BRIDGES:
            raise ValueError(f"bridge {kind!r} is unknown; expected one of {', '.join(BRIDGES)}")
        if layer_mismatch not in LAYER_MISMATCH:
            raise ValueError(
                f"layer_mismatch {layer_mismatch!r} is unknown; expected one of {', '.join(LAYER_MISMATCH)}"
            )
        self.kind = kind
        self.bidirectional = bidirectional
        self.dec_layers = dec_layers
        self.layer_mismatch = layer_mismatch
        self.dec_hid = decoder_hidden_size(hid_dim, bidirectional, kind)
        memory_dim = (2 if bidirectional else 1) * hid_dim
        self.direction_proj = None
        if kind in PROJECTED and bidirectional:  # one projection for h, one for c
            self.direction_proj = nn.ModuleList(nn.Linear(2 * hid_dim, hid_dim) for _ in range(num_states))
        source_layers = 2 * enc_layers if kind == "stack" and bidirectional else enc_layers
        self.layer_weight = None
        if layer_mismatch == "linear":
            self.layer_weight = nn.Parameter(torch.full((dec_layers, source_layers), 1.0 / source_layers))
        self.memory_proj = nn.Linear(memory_dim, self.dec_hid) if with_memory and memory_dim != self.dec_hid else None

    def combine_directions(self, state: torch.Tensor, index: int) -> torch.Tensor:
        """(layers, dirs, B, H) -> (layers, B, dec_hid), or (2 * layers, B, H) for ``stack``; ``index`` picks h
        (0) or c (1)."""
        if not self.bidirectional:
            return state[:, 0]  # (layers, B, H)
        if self.kind == "stack":
            return state.flatten(0, 1)  # (layers * 2, B, H), layer-major as torch returns it
        forward, backward = state[:, 0], state[:, 1]  # (layers, B, H) each
        if self.kind == "sum":
            return forward + backward
        if self.kind == "average":
            return (forward + backward) / 2
        both = torch.cat([forward, backward], dim=-1)  # (layers, B, 2H)
        if self.kind in PROJECTED:
            projected = self.direction_proj[index](both)  # (layers, B, H)
            squash = self.kind == "linear" or (self.kind == "tanh" and index == 0)  # tanh: h only
            return torch.tanh(projected) if squash else projected
        return both  # concat

    def forward(self, states: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Encoder final states ((enc_layers, dirs, B, H), ...) -> ((dec_layers, B, dec_hid), ...)."""
        if self.kind == "none":
            B = states[0].size(2)
            return tuple(s.new_zeros(self.dec_layers, B, self.dec_hid) for s in states)
        return tuple(
            map_layers(self.combine_directions(s, i), self.dec_layers, self.layer_mismatch, self.layer_weight)
            for i, s in enumerate(states)
        )

    def project_memory(self, outputs: torch.Tensor) -> torch.Tensor:
        """Encoder outputs (B, S, dirs * H) -> attention memory (B, S, dec_hid) (only with ``with_memory``)."""
        return outputs if self.memory_proj is None else self.memory_proj(outputs)
