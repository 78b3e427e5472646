"""The recurrent decoder: one step, and the whole target at once when the step allows it.

Two ways to place attention (both take the memory prepared once per sentence, see
``Attention.prepare``):

- ``luong`` (Luong et al. 2015): run the RNN on the previous token, attend with its output h_t,
  and combine them into the attentional vector h~_t = tanh(W_c [c_t; h_t]), which goes (after
  dropout) to the generator. With ``input_feeding`` the previous step's vector is concatenated to the
  RNN input, so the RNN knows what it attended to.
- ``bahdanau`` (Bahdanau et al. 2015): attend with the previous top-layer state s_{t-1} (for an
  LSTM its h), feed [embedding; context] to the RNN, then predict from
  tanh(W [rnn output; context; embedding]) -- the paper's "deep output" with tanh in place of maxout.

With ``attention: none`` the decoder is a plain RNN conditioned only through its initial state;
placement does not matter then and the generator reads the RNN output.

The decoder produces output vectors (B, T, hid); the generator (owned by the seq2seq model) turns
them into logits. ``step`` is one position; ``forward`` runs a teacher-forced target in one RNN call
and one batched attention, which is possible when nothing in step t depends on step t-1's attention
(Luong without input feeding, or no attention) -- see :attr:`RNNDecoder.parallel`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from attnlab.models.attention import Attention
from attnlab.models.options import PLACEMENTS
from attnlab.models.rnn_encoder import make_rnn, run_rnn

__all__ = ["RNNDecoderState", "RNNDecoder"]


@dataclass
class RNNDecoderState:
    """Everything a decoding step needs; row ``i`` of every tensor belongs to hypothesis ``i``.

    ``hidden``: (h,) or (h, c) for an LSTM, each (layers, B, H).
    ``memory_keys`` / ``memory_values``: the memory prepared by the attention module, batch first
    (e.g. (B, S, H) and (B, heads, S, dv)); None without attention.
    ``src_mask``: (B, S) bool, True on real source tokens.
    ``input_feed``: (B, 1, H), the previous attentional vector (Luong input feeding) or None.
    """

    hidden: tuple[torch.Tensor, ...]
    memory_keys: torch.Tensor | None
    memory_values: torch.Tensor | None
    src_mask: torch.Tensor
    input_feed: torch.Tensor | None = None

    def reorder(self, index: torch.Tensor) -> RNNDecoderState:
        """Select rows ``index`` (B',) of every tensor (beam search's backpointers)."""

        def rows(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.index_select(0, index)

        return RNNDecoderState(
            hidden=tuple(h.index_select(1, index) for h in self.hidden),  # batch is axis 1
            memory_keys=rows(self.memory_keys),
            memory_values=rows(self.memory_values),
            src_mask=rows(self.src_mask),
            input_feed=rows(self.input_feed),
        )


class RNNDecoder(nn.Module):
    """The decoder RNN plus the layer combining its output with the attention context.

    The attention module is passed to :meth:`step` and :meth:`forward` rather than owned: it is a
    sibling child of the seq2seq model, so summaries count it as its own part and every parameter has
    one name in the state dict.
    """

    def __init__(
        self,
        cell: str = "gru",
        emb_dim: int = 256,
        hid_dim: int = 256,
        layers: int = 1,
        dropout: float = 0.0,
        context_dim: int = 256,
        placement: str = "luong",
        input_feeding: bool = False,
        with_attention: bool = True,
    ) -> None:
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"attention placement {placement!r} is unknown; expected luong or bahdanau")
        self.placement = placement if with_attention else "luong"  # without attention both are the same
        self.input_feeding = input_feeding
        self.has_attention = with_attention
        self.hid_dim = hid_dim
        self.output_dim = hid_dim
        rnn_input = emb_dim + (hid_dim if input_feeding else 0)
        combine_input = context_dim + hid_dim
        if with_attention and placement == "bahdanau":
            rnn_input += context_dim
            combine_input += emb_dim
        self.emb_dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(cell, rnn_input, hid_dim, layers, dropout)
        self.combine = nn.Linear(combine_input, hid_dim) if with_attention else None
        self.dropout = nn.Dropout(dropout)

    @property
    def parallel(self) -> bool:
        """True when a teacher-forced target can run through :meth:`forward` in one call."""
        return not self.has_attention or (self.placement == "luong" and not self.input_feeding)

    def init_state(
        self,
        hidden: tuple[torch.Tensor, ...],
        memory_keys: torch.Tensor | None,
        memory_values: torch.Tensor | None,
        src_mask: torch.Tensor,
    ) -> RNNDecoderState:
        """The state before the first step; ``hidden`` ((layers, B, H), ...) comes from the bridge."""
        input_feed = None
        if self.input_feeding:
            input_feed = hidden[0].new_zeros(hidden[0].size(1), 1, self.hid_dim)  # (B, 1, H)
        return RNNDecoderState(hidden, memory_keys, memory_values, src_mask, input_feed)

    def _luong(
        self, embedded: torch.Tensor, state: RNNDecoderState, attention: Attention | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor | None]:
        """RNN first, then attention: embedded (B, T, E) -> outputs (B, T, H), hidden, weights."""
        x = self.emb_dropout(embedded)
        if self.input_feeding:
            x = torch.cat([x, state.input_feed], dim=-1)  # (B, 1, E + H)
        rnn_out, hidden = run_rnn(self.rnn, x, state.hidden)  # (B, T, H)
        if attention is None:
            return self.dropout(rnn_out), hidden, None
        context, weights = attention.attend(rnn_out, state.memory_keys, state.memory_values, state.src_mask)
        attentional = torch.tanh(self.combine(torch.cat([context, rnn_out], dim=-1)))  # (B, T, H)
        return self.dropout(attentional), hidden, weights

    def _bahdanau(
        self, embedded: torch.Tensor, state: RNNDecoderState, attention: Attention
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """Attention first, with the previous top-layer state: embedded (B, 1, E) -> outputs (B, 1, H)."""
        x = self.emb_dropout(embedded)
        query = state.hidden[0][-1].unsqueeze(1)  # top layer h_{t-1}: (B, 1, H)
        context, weights = attention.attend(query, state.memory_keys, state.memory_values, state.src_mask)
        rnn_out, hidden = run_rnn(self.rnn, torch.cat([x, context], dim=-1), state.hidden)  # (B, 1, H)
        deep_output = torch.tanh(self.combine(torch.cat([rnn_out, context, x], dim=-1)))  # (B, 1, H)
        return self.dropout(deep_output), hidden, weights

    def step(
        self, embedded: torch.Tensor, state: RNNDecoderState, attention: Attention | None
    ) -> tuple[torch.Tensor, RNNDecoderState, torch.Tensor | None]:
        """One position. embedded (B, 1, E) -> output (B, 1, H), new state, weights (B, heads, 1, S).

        The given state is not modified (beam search may branch from it).
        """
        if self.placement == "bahdanau":
            output, hidden, weights = self._bahdanau(embedded, state, attention)
        else:
            output, hidden, weights = self._luong(embedded, state, attention)
        input_feed = output if self.input_feeding else None  # Luong feeds h~_t (after dropout)
        return output, replace(state, hidden=hidden, input_feed=input_feed), weights

    def forward(
        self, embedded: torch.Tensor, state: RNNDecoderState, attention: Attention | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole teacher-forced target at once: embedded (B, T, E) -> outputs (B, T, H), weights.

        Only when :attr:`parallel`; it equals running :meth:`step` T times. Weights (B, heads, T, S).
        """
        if not self.parallel:
            raise RuntimeError("this decoder feeds attention back into its RNN; use step() in a loop")
        output, _, weights = self._luong(embedded, state, attention)
        return output, weights
