"""The recurrent encoder: GRU, LSTM or plain (Elman) RNN, one or two directions, packed or padded.

Options:

- ``bidirectional``: outputs concatenate the two directions, [forward; backward].
- ``reverse_src`` (Sutskever et al. 2014): the real tokens of each row are read in reverse order,
  padding stays at the end ([a b c PAD] is read as [c b a PAD]). The outputs are put back in the
  original order before they are returned, so ``outputs[:, i]`` is always the annotation of source
  token ``i``. Attention does not depend on the order of its keys, so this is the one place where the
  reversal is undone: attention weights (from ``forward``, ``decode_step`` and beam search alike)
  line up with the source tokens as the user wrote them.
- ``packed``: rows are packed with ``pack_padded_sequence`` so padding never enters the recurrence
  and each row's final state is the one at its last real token (for the backward direction: at its
  first). ``packed=False`` keeps the plain padded behaviour, where the final state has also read the
  padding (useful to show why packing matters).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from attnlab.models.options import CELLS

__all__ = ["RNNEncoder", "make_rnn", "run_rnn", "reverse_padded"]

_RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}  # the torch class of each of CELLS

# An RNN state is a tuple of tensors: (h,) for GRU and RNN, (h, c) for LSTM; each (layers * dirs, B, H).
RNNState = tuple[torch.Tensor, ...]


def make_rnn(
    cell: str, input_size: int, hidden_size: int, layers: int, dropout: float, bidirectional: bool = False
) -> nn.RNNBase:
    """A batch-first ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN``; dropout acts between stacked layers only."""
    if cell not in CELLS:
        raise ValueError(f"RNN cell {cell!r} is unknown; expected one of {', '.join(CELLS)}")
    return _RNN_CLASSES[cell](
        input_size,
        hidden_size,
        num_layers=layers,
        dropout=dropout if layers > 1 else 0.0,  # torch warns about dropout on a single layer
        bidirectional=bidirectional,
        batch_first=True,
    )


def run_rnn(
    rnn: nn.RNNBase, inputs: torch.Tensor | PackedSequence, state: RNNState | None
) -> tuple[torch.Tensor | PackedSequence, RNNState]:
    """Call ``rnn`` with the state as a tuple whatever the cell: returns (outputs, state tuple)."""
    if isinstance(rnn, nn.LSTM):
        outputs, (h, c) = rnn(inputs, state)
        return outputs, (h, c)
    outputs, h = rnn(inputs, None if state is None else state[0])
    return outputs, (h,)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` positions of each row, leaving padding in place.

    ``x`` (B, S, ...), ``lengths`` (B,). Reversing twice gives ``x`` back.
    """
    B, S = x.shape[:2]
    positions = torch.arange(S, device=x.device).unsqueeze(0)  # (1, S)
    mirrored = lengths.to(x.device).unsqueeze(1) - 1 - positions  # (B, S)
    index = torch.where(mirrored >= 0, mirrored, positions)  # padding maps to itself
    rows = torch.arange(B, device=x.device).unsqueeze(1)  # (B, 1)
    return x[rows, index]  # (B, S, ...)


class RNNEncoder(nn.Module):
    """Embedded source (B, S, E) -> outputs (B, S, dirs * H) and final states per layer and direction.

    Final states come as a tuple, (h,) or (h, c) for an LSTM, each shaped (layers, dirs, B, H).
    """

    def __init__(
        self,
        cell: str = "gru",
        emb_dim: int = 256,
        hid_dim: int = 256,
        layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        reverse_src: bool = False,
        packed: bool = True,
    ) -> None:
        super().__init__()
        self.layers = layers
        self.directions = 2 if bidirectional else 1
        self.hid_dim = hid_dim
        self.output_dim = self.directions * hid_dim
        self.reverse_src = reverse_src
        self.packed = packed
        self.emb_dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(cell, emb_dim, hid_dim, layers, dropout, bidirectional)

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, RNNState]:
        """embedded (B, S, E), lengths (B,) -> outputs (B, S, dirs * H), ((layers, dirs, B, H), ...)."""
        B, S, _ = embedded.shape
        x = self.emb_dropout(embedded)
        if self.reverse_src:
            x = reverse_padded(x, lengths)
        if self.packed and bool((lengths < S).any()):  # with no padding, packing changes nothing
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_outputs, states = run_rnn(self.rnn, packed, None)
            outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=S)
        else:
            outputs, states = run_rnn(self.rnn, x, None)  # outputs (B, S, dirs * H)
        if self.reverse_src:
            outputs = reverse_padded(outputs, lengths)  # back to the original token order
        # torch orders the state's first axis as layer-major: (layers * dirs, B, H)
        states = tuple(s.view(self.layers, self.directions, B, self.hid_dim) for s in states)
        return outputs, states
