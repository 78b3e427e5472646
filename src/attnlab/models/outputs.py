"""What models return, and the small protocol every seq2seq model offers to the decoders.

The field names and shapes follow Hugging Face seq2seq outputs, so tools such as bertviz accept
them unchanged: each attention field is a tuple with one tensor per layer, shaped
``(batch, heads, query_len, key_len)``. Heads are never averaged away.

Every model (RNN family and Transformer) implements:

``forward(batch, return_attention=False, teacher_forcing=1.0, teacher_forcing_mode="step")``
    ``batch`` is any object with ``src`` (B, S), ``src_lengths`` (B,), ``tgt_in`` (B, T) LongTensors,
    padded with index 0 (``tgt_in`` starts with ``<bos>``). Returns :class:`Seq2SeqOutput`.
``encode(src, src_lengths) -> DecoderState``
    Runs the encoder once; the state holds whatever the decoder needs (memory, masks, RNN state,
    key/value caches). ``DecoderState`` is model-specific but supports :meth:`reorder`.
``decode_step(prev_tokens, state, return_attention=False) -> StepOutput``
    ``prev_tokens`` (B,) is the last emitted token per row. Returns the next-token logits and the
    updated state (the state is not mutated in place, so beam search can branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = ["Seq2SeqOutput", "StepOutput", "DecoderState"]


@dataclass
class Seq2SeqOutput:
    """``logits``: (batch, tgt_len, tgt_vocab). Attention tuples are per layer."""

    logits: torch.Tensor
    encoder_attentions: tuple[torch.Tensor, ...] | None = None
    decoder_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


class DecoderState(Protocol):
    """Model-specific decoding state. Row ``i`` belongs to hypothesis ``i``."""

    def reorder(self, index: torch.Tensor) -> DecoderState:
        """Select rows ``index`` (B',) of every tensor: beam search's backpointers."""
        ...


@dataclass
class StepOutput:
    """One decoding step.

    ``logits``: (batch, tgt_vocab) for the next token.
    ``state``: the state after consuming ``prev_tokens``.
    ``cross_attentions``: when asked, one (batch, heads, 1, src_len) tensor per layer
    (the RNN family has one "layer").
    """

    logits: torch.Tensor
    state: DecoderState
    cross_attentions: tuple[torch.Tensor, ...] | None = None
