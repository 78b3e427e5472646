"""The RNN encoder-decoder with attention: Sutskever, Bahdanau and Luong as config switches.

Data flow, with the top-level children a summary groups by::

    src (B, S) -src_embed-> (B, S, E) -encoder-> outputs (B, S, dirs*H), final states
               -bridge-> decoder initial state ((dec_layers, B, Hd), ...) and memory (B, S, Hd)
               -attention.prepare-> memory keys/values, kept in RNNDecoderState
    tgt_in (B, T) -tgt_embed-> (B, T, E) -decoder (+ attention)-> (B, T, Hd) -generator-> (B, T, V)

Training runs the whole target in one RNN call when the decoder allows it (teacher forcing 1.0,
Luong placement without input feeding, or no attention); otherwise it loops over ``decoder.step``,
the very function :meth:`RNNSeq2Seq.decode_step` (and so greedy and beam search) calls, so decoding
computes exactly what training did; the tests check both paths against ``decode_step``.

Attention weights are over the source in its original order, also with ``reverse_src``: the encoder
puts its outputs back in source order before anything attends to them (see ``rnn_encoder``).

Embedding tying (``tie_embeddings``), by sharing one ``nn.Parameter``:
``decoder`` -- the generator reuses the target embedding matrix (Press & Wolf 2017; Inan et al.
2017), through a bias-free projection Hd -> E when the decoder size differs from ``emb_dim``, and
without an output bias; ``three_way`` -- source embedding, target embedding and generator share one
matrix, which needs one vocabulary for both sides.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from attnlab.models.attention import build_attention
from attnlab.models.bridges import Bridge
from attnlab.models.options import TEACHER_FORCING_MODES, check_model, check_tying, decoder_hidden_size
from attnlab.models.outputs import Seq2SeqOutput, StepOutput
from attnlab.models.rnn_decoder import RNNDecoder, RNNDecoderState
from attnlab.models.rnn_encoder import RNNEncoder

if TYPE_CHECKING:
    from attnlab.config import ModelConfig

__all__ = ["Generator", "RNNSeq2Seq", "build_rnn_seq2seq"]


def _check_teacher_forcing(ratio: float, mode: str) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"teacher_forcing is {ratio}; it must be in [0, 1]")
    if mode not in TEACHER_FORCING_MODES:
        raise ValueError(f"teacher_forcing_mode is {mode!r}; expected 'step' or 'sequence'")


class Generator(nn.Module):
    """Decoder outputs (..., Hd) -> logits (..., V), as ``F.linear(x, weight, bias)``.

    ``weight`` is (V, weight_dim); when ``weight_dim`` differs from the input size (a tied embedding
    matrix of width E), a bias-free projection Hd -> E comes first.
    """

    def __init__(self, input_dim: int, vocab_size: int, weight_dim: int | None = None, bias: bool = True):
        super().__init__()
        weight_dim = weight_dim or input_dim
        self.proj = nn.Linear(input_dim, weight_dim, bias=False) if weight_dim != input_dim else None
        bound = 1.0 / math.sqrt(weight_dim)  # nn.Linear's default range
        self.weight = nn.Parameter(torch.empty(vocab_size, weight_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(vocab_size)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            x = self.proj(x)  # (..., E)
        return nn.functional.linear(x, self.weight, self.bias)  # (..., V)


class RNNSeq2Seq(nn.Module):
    """RNN encoder-decoder; see the module docstring. Build it from a config with :func:`build_rnn_seq2seq`,
    which checks the combination first; the arguments are the ``model.*`` keys of the same names."""

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        *,
        cell: str = "gru",
        emb_dim: int = 256,
        hid_dim: int = 256,
        enc_layers: int = 1,
        dec_layers: int = 1,
        dropout: float = 0.1,
        bidirectional: bool = False,
        bridge: str = "concat",
        reverse_src: bool = False,
        packed: bool = True,
        layer_mismatch: str = "last",
        attention: str = "general",
        attention_heads: int = 1,
        attention_placement: str = "luong",
        input_feeding: bool = False,
        tie_embeddings: str = "none",
    ) -> None:
        super().__init__()
        dec_hid = decoder_hidden_size(hid_dim, bidirectional, bridge)
        self.src_embed = nn.Embedding(src_vocab_size, emb_dim, padding_idx=0)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, emb_dim, padding_idx=0)
        self.encoder = RNNEncoder(cell=cell, emb_dim=emb_dim, hid_dim=hid_dim, layers=enc_layers, dropout=dropout,
                                  bidirectional=bidirectional, reverse_src=reverse_src, packed=packed)
        self.bridge = Bridge(kind=bridge, hid_dim=hid_dim, bidirectional=bidirectional,
                             num_states=2 if cell == "lstm" else 1, enc_layers=enc_layers, dec_layers=dec_layers,
                             layer_mismatch=layer_mismatch, with_memory=attention != "none")
        self.attention = build_attention(attention, dec_hid, dec_hid, attention_heads)
        self.decoder = RNNDecoder(
            cell=cell, emb_dim=emb_dim, hid_dim=dec_hid, layers=dec_layers, dropout=dropout,
            context_dim=self.attention.output_dim if self.attention is not None else 0,
            placement=attention_placement, input_feeding=input_feeding, with_attention=self.attention is not None,
        )  # fmt: skip
        check_tying(tie_embeddings, src_vocab_size, tgt_vocab_size)
        tied = tie_embeddings != "none"
        self.generator = Generator(dec_hid, tgt_vocab_size, emb_dim if tied else None, bias=not tied)
        if tied:
            self.generator.weight = self.tgt_embed.weight  # one Parameter, one storage
        if tie_embeddings == "three_way":
            self.src_embed.weight = self.tgt_embed.weight

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> RNNDecoderState:
        """src (B, S), src_lengths (B,) -> the decoder's initial state (memory prepared for attention)."""
        outputs, final_states = self.encoder(self.src_embed(src), src_lengths)  # (B, S, dirs * H)
        hidden = self.bridge(final_states)  # ((dec_layers, B, Hd), ...)
        positions = torch.arange(src.size(1), device=src.device)
        src_mask = positions.unsqueeze(0) < src_lengths.to(src.device).unsqueeze(1)  # (B, S)
        keys = values = None
        if self.attention is not None:
            memory = self.bridge.project_memory(outputs)  # (B, S, Hd)
            keys, values = self.attention.prepare(memory, memory)
        return self.decoder.init_state(hidden, keys, values, src_mask)

    def decode_step(
        self, prev_tokens: torch.Tensor, state: RNNDecoderState, return_attention: bool = False
    ) -> StepOutput:
        """prev_tokens (B,) -> logits (B, V), the next state, and weights ((B, heads, 1, S),) if asked."""
        embedded = self.tgt_embed(prev_tokens).unsqueeze(1)  # (B, 1, E)
        output, state, weights = self.decoder.step(embedded, state, self.attention)  # (B, 1, Hd)
        logits = self.generator(output.squeeze(1))  # (B, V)
        cross = (weights,) if return_attention and weights is not None else None
        return StepOutput(logits=logits, state=state, cross_attentions=cross)

    def teacher_forced(
        self, state: RNNDecoderState, tgt_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fast path: tgt_in (B, T) -> logits (B, T, V), weights (B, heads, T, S) in one RNN call."""
        output, weights = self.decoder(self.tgt_embed(tgt_in), state, self.attention)  # (B, T, Hd)
        return self.generator(output), weights

    def unroll(
        self,
        state: RNNDecoderState,
        tgt_in: torch.Tensor,
        teacher_forcing: float = 1.0,
        mode: str = "step",
        return_attention: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The step loop: tgt_in (B, T) -> logits (B, T, V), weights (B, heads, T, S) if asked.

        Step ``t`` reads the gold token ``tgt_in[:, t]`` where a coin (probability ``teacher_forcing``)
        says so, else the argmax of step ``t - 1``. ``mode="step"`` flips one coin per step for the
        whole batch, ``"sequence"`` one coin per row for the whole sentence. Step 0 always reads
        ``tgt_in[:, 0]`` (<bos>).

        Each position runs ``decoder.step`` as :meth:`decode_step` does; the generator, which needs no
        recurrence, runs once over all positions at the end (one large matrix product trains clearly
        faster than T small ones). A prediction to feed back is taken without gradient, as argmax
        has none.
        """
        B, T = tgt_in.shape
        gold = self._teacher_coins(B, T, teacher_forcing, mode, tgt_in.device)  # (T, B) bool
        tokens = tgt_in[:, 0]
        outputs, weights = [], []
        for t in range(T):
            embedded = self.tgt_embed(tokens).unsqueeze(1)  # (B, 1, E)
            output, state, step_weights = self.decoder.step(embedded, state, self.attention)  # (B, 1, Hd)
            outputs.append(output)
            if return_attention and step_weights is not None:
                weights.append(step_weights)  # (B, heads, 1, S)
            if t + 1 < T:
                tokens = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    with torch.no_grad():
                        predicted = self.generator(output.squeeze(1)).argmax(dim=-1)  # (B,)
                    tokens = torch.where(gold[t + 1], tokens, predicted)
        logits = self.generator(torch.cat(outputs, dim=1))  # (B, T, V)
        return logits, torch.cat(weights, dim=2) if weights else None

    @staticmethod
    def _teacher_coins(B: int, T: int, ratio: float, mode: str, device: torch.device) -> torch.Tensor:
        """(T, B) bool: True where step t of row b reads the gold token."""
        _check_teacher_forcing(ratio, mode)
        if ratio in (0.0, 1.0):  # no coins to flip: leave the random stream (dropout) untouched
            return torch.full((T, B), ratio == 1.0, device=device)
        shape = (T, 1) if mode == "step" else (1, B)
        return (torch.rand(shape, device=device) < ratio).expand(T, B)

    def forward(
        self,
        batch: Any,
        return_attention: bool = False,
        teacher_forcing: float = 1.0,
        teacher_forcing_mode: str = "step",
    ) -> Seq2SeqOutput:
        """batch.src (B, S), batch.src_lengths (B,), batch.tgt_in (B, T) -> logits (B, T, V).

        ``cross_attentions``, when asked and the model has attention: one (B, heads, T, S) tensor.
        """
        _check_teacher_forcing(teacher_forcing, teacher_forcing_mode)
        state = self.encode(batch.src, batch.src_lengths)
        if teacher_forcing >= 1.0 and self.decoder.parallel:
            logits, weights = self.teacher_forced(state, batch.tgt_in)
        else:
            logits, weights = self.unroll(
                state, batch.tgt_in, teacher_forcing, teacher_forcing_mode, return_attention
            )
        cross = (weights,) if return_attention and weights is not None else None
        return Seq2SeqOutput(logits=logits, cross_attentions=cross)


def build_rnn_seq2seq(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> RNNSeq2Seq:
    """An :class:`RNNSeq2Seq` from the ``model`` config section, after :func:`check_model`."""
    check_model(cfg, src_vocab_size, tgt_vocab_size)
    keys = ("cell", "emb_dim", "hid_dim", "enc_layers", "dec_layers", "dropout", "bidirectional", "bridge",
            "reverse_src", "packed", "layer_mismatch", "attention", "attention_heads", "attention_placement",
            "input_feeding", "tie_embeddings")
    return RNNSeq2Seq(src_vocab_size, tgt_vocab_size, **{key: getattr(cfg, key) for key in keys})
