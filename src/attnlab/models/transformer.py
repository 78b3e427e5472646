"""The encoder-decoder Transformer of Vaswani et al. (2017) and its decoding protocol.

The building blocks (masks, attention, multi-head attention, feed-forward, residuals, encoder and
decoder stacks) are in :mod:`attnlab.models.transformer_layers`; read that first. Here they become
the model: embeddings, the two stacks and the generator, a teacher-forced ``forward`` that returns
every attention map when asked, and ``encode`` / ``decode_step`` with a key/value cache so each new
token costs one position.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from attnlab.models.embeddings import TransformerEmbedding
from attnlab.models.options import NORMS, check_model, check_tying
from attnlab.models.outputs import Seq2SeqOutput, StepOutput
from attnlab.models.transformer_layers import (
    Decoder,
    DecoderLayer,
    DecoderOutput,
    Encoder,
    EncoderLayer,
    KeyValue,
    source_mask,
    target_mask,
)

if TYPE_CHECKING:
    from attnlab.config import ModelConfig

__all__ = ["TransformerState", "Transformer", "build_transformer"]


def _pick(kvs: tuple[KeyValue, ...], index: Tensor) -> tuple[KeyValue, ...]:
    return tuple((k.index_select(0, index), v.index_select(0, index)) for k, v in kvs)


@dataclass(frozen=True)
class TransformerState:
    """What :meth:`Transformer.decode_step` needs; row ``i`` belongs to hypothesis ``i``.

    ``memory`` (A, S, D) and ``src_mask`` (A, 1, 1, S) come from the encoder, one row per source.
    ``cross_kv`` holds each layer's keys and values of the memory, (A, nh, S, hs) each, computed once.
    ``self_kv`` holds each layer's self-attention keys and values of the ``steps`` target positions
    consumed so far, (A * group, nh, steps, hs) each: hypotheses ``i * group .. (i + 1) * group - 1``
    all continue source ``i`` and share its memory, which is never copied per hypothesis (beam search;
    ``group`` is 1 otherwise).
    """

    memory: Tensor
    src_mask: Tensor
    cross_kv: tuple[KeyValue, ...]
    self_kv: tuple[KeyValue, ...]
    steps: int = 0
    group: int = 1

    def expand(self, group: int) -> TransformerState:
        """``group`` hypothesis rows for every row, sharing its memory (the start of a beam search)."""
        if self.group != 1:
            raise ValueError(f"this state already has {self.group} hypotheses per source; expand it once")
        rows = torch.arange(self.memory.size(0), device=self.memory.device).repeat_interleave(group)
        return replace(self, self_kv=_pick(self.self_kv, rows), group=group)

    def reorder(self, index: Tensor) -> TransformerState:
        """Keep hypothesis rows ``index`` (B',), e.g. beam search's backpointers.

        With ``group`` > 1, each run of ``group`` entries of ``index`` must come from one source (a
        beam's new hypotheses extend that sentence's old ones); the memory keeps one row per source.
        """
        sources = index
        if self.group > 1:
            by_group = index.view(-1, self.group) // self.group  # (A', group) source of each new row
            sources = by_group[:, 0]
            if not bool((by_group == sources.unsqueeze(1)).all()):
                raise ValueError(f"reorder index {index.tolist()} mixes sources within a group of {self.group}")
        return TransformerState(
            memory=self.memory.index_select(0, sources),
            src_mask=self.src_mask.index_select(0, sources),
            cross_kv=_pick(self.cross_kv, sources),
            self_kv=_pick(self.self_kv, index),
            steps=self.steps,
            group=self.group,
        )


class Transformer(nn.Module):
    """Encoder-decoder Transformer with complete attention capture and cached incremental decoding.

    The embedding size is ``d_model`` (the config's ``emb_dim`` is for the RNN family only).
    ``tie_embeddings``: ``"none"``; ``"decoder"`` (the generator's weight is the target embedding,
    Press & Wolf 2017); ``"three_way"`` (source embedding, target embedding and generator share one
    matrix, which needs one joint vocabulary).
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 256,
        heads: int = 4,
        enc_layers: int = 3,
        dec_layers: int = 3,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        norm: str = "post",
        positional: str = "sinusoidal",
        activation: str = "relu",
        max_positions: int = 512,
        tie_embeddings: str = "none",
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm {norm!r} is unknown; use 'post' (2017 paper) or 'pre'")
        check_tying(tie_embeddings, src_vocab_size, tgt_vocab_size)
        self.padding_idx = padding_idx
        sizes = dict(d_model=d_model, heads=heads, ffn_dim=ffn_dim, dropout=dropout, activation=activation,
                     pre_norm=norm == "pre")
        embed = dict(positional=positional, max_positions=max_positions, dropout=dropout)
        self.src_embed = TransformerEmbedding(src_vocab_size, d_model, padding_idx=padding_idx, **embed)
        self.tgt_embed = TransformerEmbedding(tgt_vocab_size, d_model, padding_idx=padding_idx, **embed)
        self.encoder = Encoder([EncoderLayer(**sizes) for _ in range(enc_layers)], d_model)
        self.decoder = Decoder([DecoderLayer(**sizes) for _ in range(dec_layers)], d_model)
        self.generator = nn.Linear(d_model, tgt_vocab_size)
        for p in [*self.encoder.parameters(), *self.decoder.parameters()]:
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)  # as torch.nn.Transformer does
        if tie_embeddings in ("decoder", "three_way"):
            self.generator.weight = self.tgt_embed.tokens.weight
        if tie_embeddings == "three_way":
            self.src_embed.tokens.weight = self.tgt_embed.tokens.weight

    def _encode(
        self, src: Tensor, src_lengths: Tensor, need_weights: bool
    ) -> tuple[Tensor, Tensor, tuple[Tensor, ...] | None]:
        """``src`` (B, S) -> memory (B, S, D), source mask (B, 1, 1, S), encoder attentions."""
        x = self.src_embed(src)  # (B, S, D)
        src_mask = source_mask(src_lengths.to(src.device), src.size(1), x.dtype)
        memory, attentions = self.encoder(x, src_mask, need_weights)
        return memory, src_mask, attentions

    def forward(
        self,
        batch: Any,
        return_attention: bool = False,
        teacher_forcing: float = 1.0,
        teacher_forcing_mode: str = "step",
    ) -> Seq2SeqOutput:
        """Teacher-forced pass: ``batch.src`` (B, S), ``batch.src_lengths`` (B,), ``batch.tgt_in`` (B, T).

        Returns logits (B, T, V) and, with ``return_attention``, per-layer attention tuples:
        encoder (B, nh, S, S), decoder self (B, nh, T, T), cross (B, nh, T, S).
        ``teacher_forcing`` and ``teacher_forcing_mode`` are accepted for the shared training loop and
        ignored: a Transformer decoder always sees the gold prefix in parallel.
        """
        del teacher_forcing, teacher_forcing_mode
        out, encoder_attentions = self._teacher_forced(batch, return_attention)
        return Seq2SeqOutput(
            logits=self.generator(out.hidden),  # (B, T, V)
            encoder_attentions=encoder_attentions,
            decoder_attentions=out.self_attentions,
            cross_attentions=out.cross_attentions,
        )

    def hidden_states(self, batch: Any) -> Tensor:
        """The teacher-forced decoder output before the generator, (B, T, D).

        For a loss that applies ``self.generator`` itself, chunk by chunk, rather than holding the
        (B, T, V) logits (:mod:`attnlab.training.generator_loss`).
        """
        return self._teacher_forced(batch, need_weights=False)[0].hidden

    def _teacher_forced(self, batch: Any, need_weights: bool) -> tuple[DecoderOutput, tuple[Tensor, ...] | None]:
        memory, src_mask, encoder_attentions = self._encode(batch.src, batch.src_lengths, need_weights)
        y = self.tgt_embed(batch.tgt_in)  # (B, T, D)
        tgt_mask = target_mask(batch.tgt_in, self.padding_idx, y.dtype)
        memory_kv = self.decoder.memory_keys_values(memory)
        return self.decoder(y, memory_kv, tgt_mask, src_mask, need_weights=need_weights), encoder_attentions

    def encode(self, src: Tensor, src_lengths: Tensor) -> TransformerState:
        """Run the encoder once for ``src`` (B, S); the state starts with empty self-attention caches."""
        memory, src_mask, _ = self._encode(src, src_lengths, need_weights=False)
        cross_kv = self.decoder.memory_keys_values(memory)
        empty = cross_kv[0][0][:, :, :0]  # (B, nh, 0, hs): no target position decoded yet
        self_kv = tuple((empty, empty) for _ in cross_kv)
        return TransformerState(memory, src_mask, cross_kv, self_kv, steps=0)

    def decode_step(self, prev_tokens: Tensor, state: TransformerState, return_attention: bool = False) -> StepOutput:
        """Consume ``prev_tokens`` (B,) at position ``state.steps``; logits (B, V) for the next token.

        Costs one position: earlier positions' keys and values come from ``state.self_kv``.
        With ``return_attention``, ``cross_attentions`` holds one (B, nh, 1, S) tensor per layer.
        """
        y = self.tgt_embed(prev_tokens.unsqueeze(1), start=state.steps)  # (B, 1, D)
        out = self.decoder(y, state.cross_kv, None, state.src_mask, state.self_kv, return_attention, state.group)
        logits = self.generator(out.hidden[:, 0])  # (B, V)
        new_state = replace(state, self_kv=out.self_kv, steps=state.steps + 1)
        return StepOutput(logits, new_state, out.cross_attentions)


def build_transformer(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Transformer:
    """A :class:`Transformer` from the ``model`` config section (``emb_dim`` is not used: see d_model)."""
    check_model(cfg, src_vocab_size, tgt_vocab_size)
    return Transformer(
        src_vocab_size,
        tgt_vocab_size,
        d_model=cfg.d_model,
        heads=cfg.heads,
        enc_layers=cfg.enc_layers,
        dec_layers=cfg.dec_layers,
        ffn_dim=cfg.ffn_dim,
        dropout=cfg.dropout,
        norm=cfg.norm,
        positional=cfg.positional,
        activation=cfg.activation,
        max_positions=cfg.max_positions,
        tie_embeddings=cfg.tie_embeddings,
    )
