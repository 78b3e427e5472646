"""The encoder-decoder Transformer of Vaswani et al. (2017), written to be read top to bottom.

Reading order: masks -> the ``attention`` function -> multi-head attention -> feed-forward -> the
residual connection (post- or pre-norm) -> encoder -> decoder -> the model with its decoding protocol.

Attention is computed two ways. By default :func:`torch.nn.functional.scaled_dot_product_attention`
runs it fused and no weights are kept. With ``need_weights=True`` the explicit :func:`attention`
function runs instead and every layer's weights are returned, shaped ``(batch, heads, query_len,
key_len)``; the outputs of the two ways agree to about 1e-6. Nothing is ever stored on a module.

Masks are *additive*: 0 where a query may look and ``-inf`` where it may not, so masked positions get
exactly zero weight. They are built once per batch and shared by every layer. Every query must be able
to see at least one key (true here: a sentence has a token, and ``<bos>`` is always visible).

The layout follows :class:`torch.nn.Transformer` (``batch_first=True``) closely enough that its
weights copy over and the outputs agree, including its final LayerNorm after each stack, which it
adds for post-norm as well as pre-norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.models.embeddings import TransformerEmbedding
from attnlab.models.outputs import Seq2SeqOutput, StepOutput

if TYPE_CHECKING:
    from attnlab.config import ModelConfig

__all__ = [
    "source_mask",
    "target_mask",
    "attention",
    "MultiHeadAttention",
    "FeedForward",
    "Residual",
    "EncoderLayer",
    "Encoder",
    "DecoderLayer",
    "Decoder",
    "TransformerState",
    "Transformer",
    "build_transformer",
]

KeyValue = tuple[Tensor, Tensor]  # keys and values, each (B, nh, T, hs)


# ----------------------------------------------------------------------------------------- masks
def source_mask(src_lengths: Tensor, src_len: int, dtype: torch.dtype) -> Tensor:
    """Hide source padding from every query: additive (B, 1, 1, S), broadcast over heads and queries."""
    positions = torch.arange(src_len, device=src_lengths.device)
    keep = positions.unsqueeze(0) < src_lengths.unsqueeze(1)  # (B, S)
    mask = torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, float("-inf"))
    return mask[:, None, None, :]  # (B, 1, 1, S)


def target_mask(tgt_in: Tensor, padding_idx: int, dtype: torch.dtype) -> Tensor:
    """Hide future positions and target padding: additive (B, 1, T, T) for decoder self-attention."""
    T = tgt_in.size(1)
    causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()  # (T, T), query x key
    keep = causal & tgt_in.ne(padding_idx)[:, None, None, :]  # (B, 1, T, T)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, float("-inf"))


# ------------------------------------------------------------------------------------- attention
def attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention, ``softmax(q k^T / sqrt(hs) + mask) v``, written out.

    Args:
        q: (B, nh, Tq, hs); k, v: (B, nh, Tk, hs).
        mask: additive, broadcastable to (B, nh, Tq, Tk); ``-inf`` gives a key exactly zero weight.
        dropout_p: dropout on the weights before they mix the values (pass 0.0 in evaluation).

    Returns:
        ``(out, p_attn)``: out (B, nh, Tq, hs) and the weights (B, nh, Tq, Tk) before dropout.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, Tq, Tk)
    if mask is not None:
        scores = scores + mask
    p_attn = scores.softmax(dim=-1)
    out = F.dropout(p_attn, dropout_p) @ v if dropout_p > 0 else p_attn @ v  # (B, nh, Tq, hs)
    return out, p_attn


class MultiHeadAttention(nn.Module):
    """``heads`` attentions in parallel over ``d_model / heads``-sized slices, then one output projection.

    The query, key, value and output projections are separate ``nn.Linear`` layers (torch's
    ``nn.MultiheadAttention`` stacks the first three in ``in_proj_weight``). Keys and values are
    projected by :meth:`keys_values` so the decoder can cache them between steps.
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads={heads} does not divide d_model={d_model}")
        self.heads = heads
        self.head_dim = d_model // heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)

    def keys_values(self, context: Tensor) -> KeyValue:
        """Project ``context`` (B, Tk, D) to keys and values, each (B, nh, Tk, hs)."""
        return self.split_heads(self.k_proj(context)), self.split_heads(self.v_proj(context))

    def attend(
        self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Queries from ``x`` (B, Tq, D) attend to projected ``k, v``; returns (B, Tq, D) and the weights.

        The weights (B, nh, Tq, Tk) are None unless ``need_weights``, in which case the explicit
        :func:`attention` runs instead of the fused kernel.
        """
        B, Tq, D = x.shape
        q = self.split_heads(self.q_proj(x))  # (B, nh, Tq, hs)
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            out, weights = attention(q, k, v, mask, dropout_p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        out = out.transpose(1, 2).reshape(B, Tq, D)  # (B, Tq, nh * hs): heads side by side again
        return self.out_proj(out), weights

    def forward(
        self, x: Tensor, context: Tensor, mask: Tensor | None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Queries from ``x`` (B, Tq, D), keys and values from ``context`` (B, Tk, D)."""
        return self.attend(x, *self.keys_values(context), mask, need_weights)


class FeedForward(nn.Module):
    """The position-wise feed-forward network: ``linear2(dropout(activation(linear1(x))))``."""

    def __init__(self, d_model: int, ffn_dim: int, dropout: float, activation: str = "relu") -> None:
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation {activation!r} is unknown; use 'relu' or 'gelu'")
        self.activation = F.relu if activation == "relu" else F.gelu
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D), each position on its own."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class Residual(nn.Module):
    """The residual connection around a sublayer, with its LayerNorm and dropout.

    ``post`` (the 2017 paper): ``x = norm(x + dropout(sublayer(x)))``.
    ``pre`` (Xiong et al., 2020; trains without warm-up): ``x = x + dropout(sublayer(norm(x)))``.

    It is used in two halves so the sublayer may also return attention weights or caches::

        out = sublayer(residual.before(x))
        x = residual.after(x, out)
    """

    def __init__(self, d_model: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def before(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre_norm else x

    def after(self, x: Tensor, sublayer_out: Tensor) -> Tensor:
        x = x + self.dropout(sublayer_out)
        return x if self.pre_norm else self.norm(x)


# --------------------------------------------------------------------------------------- encoder
class EncoderLayer(nn.Module):
    """Self-attention over the source, then the feed-forward network, each with a residual."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, activation: str, pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.self_attn_res = Residual(d_model, dropout, pre_norm)
        self.ffn = FeedForward(d_model, ffn_dim, dropout, activation)
        self.ffn_res = Residual(d_model, dropout, pre_norm)

    def forward(self, x: Tensor, mask: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """``x`` (B, S, D), ``mask`` (B, 1, 1, S) -> (B, S, D) and weights (B, nh, S, S) or None."""
        h = self.self_attn_res.before(x)
        h, weights = self.self_attn(h, h, mask, need_weights)
        x = self.self_attn_res.after(x, h)
        x = self.ffn_res.after(x, self.ffn(self.ffn_res.before(x)))
        return x, weights


class Encoder(nn.Module):
    """A stack of :class:`EncoderLayer` followed by a final LayerNorm (as ``torch.nn.Transformer``)."""

    def __init__(self, layers: list[EncoderLayer], d_model: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, mask: Tensor, need_weights: bool = False) -> tuple[Tensor, tuple[Tensor, ...] | None]:
        """``x`` (B, S, D) embedded source -> memory (B, S, D), and per-layer (B, nh, S, S) weights."""
        attentions = []
        for layer in self.layers:
            x, weights = layer(x, mask, need_weights)
            attentions.append(weights)
        return self.norm(x), tuple(attentions) if need_weights else None


# --------------------------------------------------------------------------------------- decoder
class DecoderLayerOutput(NamedTuple):
    hidden: Tensor  # (B, T, D)
    self_kv: KeyValue  # keys and values of every position so far, each (B, nh, past + T, hs)
    self_attention: Tensor | None  # (B, nh, T, past + T)
    cross_attention: Tensor | None  # (B, nh, T, S)


class DecoderLayer(nn.Module):
    """Masked self-attention, attention over the encoder memory, then feed-forward; each with a residual."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, activation: str, pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.self_attn_res = Residual(d_model, dropout, pre_norm)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attn_res = Residual(d_model, dropout, pre_norm)
        self.ffn = FeedForward(d_model, ffn_dim, dropout, activation)
        self.ffn_res = Residual(d_model, dropout, pre_norm)

    def forward(
        self,
        x: Tensor,
        memory_kv: KeyValue,
        self_mask: Tensor | None,
        cross_mask: Tensor,
        past_kv: KeyValue | None = None,
        need_weights: bool = False,
    ) -> DecoderLayerOutput:
        """Run ``x`` (B, T, D), the positions after ``past_kv``'s, through the layer.

        ``memory_kv``: this layer's cross-attention keys and values of the memory, (B, nh, S, hs) each.
        ``self_mask``: (B, 1, T, past + T) or None (one new position may see everything before it).
        ``cross_mask``: (B, 1, 1, S) source padding.
        """
        h = self.self_attn_res.before(x)
        k, v = self.self_attn.keys_values(h)  # (B, nh, T, hs) each
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)  # (B, nh, past + T, hs)
            v = torch.cat([past_kv[1], v], dim=2)
        h, self_weights = self.self_attn.attend(h, k, v, self_mask, need_weights)
        x = self.self_attn_res.after(x, h)
        h, cross_weights = self.cross_attn.attend(self.cross_attn_res.before(x), *memory_kv, cross_mask, need_weights)
        x = self.cross_attn_res.after(x, h)
        x = self.ffn_res.after(x, self.ffn(self.ffn_res.before(x)))
        return DecoderLayerOutput(x, (k, v), self_weights, cross_weights)


class DecoderOutput(NamedTuple):
    hidden: Tensor  # (B, T, D), after the final LayerNorm
    self_kv: tuple[KeyValue, ...]  # per layer, the self-attention cache to pass as ``past_kv`` next
    self_attentions: tuple[Tensor, ...] | None  # per layer (B, nh, T, past + T)
    cross_attentions: tuple[Tensor, ...] | None  # per layer (B, nh, T, S)


class Decoder(nn.Module):
    """A stack of :class:`DecoderLayer` followed by a final LayerNorm (as ``torch.nn.Transformer``)."""

    def __init__(self, layers: list[DecoderLayer], d_model: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)

    def memory_keys_values(self, memory: Tensor) -> tuple[KeyValue, ...]:
        """Every layer's cross-attention keys and values of ``memory`` (B, S, D): computed once per source."""
        return tuple(layer.cross_attn.keys_values(memory) for layer in self.layers)

    def forward(
        self,
        x: Tensor,
        memory_kv: tuple[KeyValue, ...],
        self_mask: Tensor | None,
        cross_mask: Tensor,
        past_kv: tuple[KeyValue, ...] | None = None,
        need_weights: bool = False,
    ) -> DecoderOutput:
        """Decode embedded targets ``x`` (B, T, D); see :meth:`DecoderLayer.forward` for the rest."""
        caches, self_attentions, cross_attentions = [], [], []
        for i, layer in enumerate(self.layers):
            past = past_kv[i] if past_kv is not None else None
            out = layer(x, memory_kv[i], self_mask, cross_mask, past, need_weights)
            x = out.hidden
            caches.append(out.self_kv)
            self_attentions.append(out.self_attention)
            cross_attentions.append(out.cross_attention)
        if not need_weights:
            return DecoderOutput(self.norm(x), tuple(caches), None, None)
        return DecoderOutput(self.norm(x), tuple(caches), tuple(self_attentions), tuple(cross_attentions))


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class TransformerState:
    """What :meth:`Transformer.decode_step` needs; row ``i`` belongs to hypothesis ``i``.

    ``memory`` (B, S, D) and ``src_mask`` (B, 1, 1, S) come from the encoder. ``cross_kv`` holds each
    layer's keys and values of the memory, (B, nh, S, hs) each, computed once. ``self_kv`` holds each
    layer's self-attention keys and values of the ``steps`` target positions consumed so far,
    (B, nh, steps, hs) each.
    """

    memory: Tensor
    src_mask: Tensor
    cross_kv: tuple[KeyValue, ...]
    self_kv: tuple[KeyValue, ...]
    steps: int = 0

    def reorder(self, index: Tensor) -> TransformerState:
        """Keep rows ``index`` (B',) of every tensor, e.g. beam search's backpointers."""

        def pick(kvs: tuple[KeyValue, ...]) -> tuple[KeyValue, ...]:
            return tuple((k.index_select(0, index), v.index_select(0, index)) for k, v in kvs)

        return TransformerState(
            memory=self.memory.index_select(0, index),
            src_mask=self.src_mask.index_select(0, index),
            cross_kv=pick(self.cross_kv),
            self_kv=pick(self.self_kv),
            steps=self.steps,
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
        _check_choices(norm, tie_embeddings, src_vocab_size, tgt_vocab_size)
        self.padding_idx = padding_idx
        pre_norm = norm == "pre"
        sizes = (d_model, heads, ffn_dim, dropout, activation, pre_norm)
        embed = dict(positional=positional, max_positions=max_positions, dropout=dropout)
        self.src_embed = TransformerEmbedding(src_vocab_size, d_model, padding_idx=padding_idx, **embed)
        self.tgt_embed = TransformerEmbedding(tgt_vocab_size, d_model, padding_idx=padding_idx, **embed)
        self.encoder = Encoder([EncoderLayer(*sizes) for _ in range(enc_layers)], d_model)
        self.decoder = Decoder([DecoderLayer(*sizes) for _ in range(dec_layers)], d_model)
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
        return_attentions: bool = False,
        teacher_forcing: float = 1.0,
        teacher_forcing_mode: str = "step",
    ) -> Seq2SeqOutput:
        """Teacher-forced pass: ``batch.src`` (B, S), ``batch.src_lengths`` (B,), ``batch.tgt_in`` (B, T).

        Returns logits (B, T, V) and, with ``return_attentions``, per-layer attention tuples:
        encoder (B, nh, S, S), decoder self (B, nh, T, T), cross (B, nh, T, S).
        ``teacher_forcing`` and ``teacher_forcing_mode`` are accepted for the shared training loop and
        ignored: a Transformer decoder always sees the gold prefix in parallel.
        """
        del teacher_forcing, teacher_forcing_mode
        memory, src_mask, encoder_attentions = self._encode(batch.src, batch.src_lengths, return_attentions)
        y = self.tgt_embed(batch.tgt_in)  # (B, T, D)
        tgt_mask = target_mask(batch.tgt_in, self.padding_idx, y.dtype)
        memory_kv = self.decoder.memory_keys_values(memory)
        out = self.decoder(y, memory_kv, tgt_mask, src_mask, need_weights=return_attentions)
        return Seq2SeqOutput(
            logits=self.generator(out.hidden),  # (B, T, V)
            encoder_attentions=encoder_attentions,
            decoder_attentions=out.self_attentions,
            cross_attentions=out.cross_attentions,
        )

    def encode(self, src: Tensor, src_lengths: Tensor) -> TransformerState:
        """Run the encoder once for ``src`` (B, S); the state starts with empty self-attention caches."""
        memory, src_mask, _ = self._encode(src, src_lengths, need_weights=False)
        cross_kv = self.decoder.memory_keys_values(memory)
        empty = cross_kv[0][0][:, :, :0]  # (B, nh, 0, hs): no target position decoded yet
        self_kv = tuple((empty, empty) for _ in cross_kv)
        return TransformerState(memory, src_mask, cross_kv, self_kv, steps=0)

    def decode_step(self, prev_tokens: Tensor, state: TransformerState, return_attentions: bool = False) -> StepOutput:
        """Consume ``prev_tokens`` (B,) at position ``state.steps``; logits (B, V) for the next token.

        Costs one position: earlier positions' keys and values come from ``state.self_kv``.
        With ``return_attentions``, ``cross_attentions`` holds one (B, nh, 1, S) tensor per layer.
        """
        y = self.tgt_embed(prev_tokens.unsqueeze(1), start=state.steps)  # (B, 1, D)
        out = self.decoder(y, state.cross_kv, None, state.src_mask, state.self_kv, return_attentions)
        logits = self.generator(out.hidden[:, 0])  # (B, V)
        new_state = replace(state, self_kv=out.self_kv, steps=state.steps + 1)
        return StepOutput(logits, new_state, out.cross_attentions)


def _check_choices(norm: str, tie_embeddings: str, src_vocab_size: int, tgt_vocab_size: int) -> None:
    if norm not in ("post", "pre"):
        raise ValueError(f"norm {norm!r} is unknown; use 'post' (2017 paper) or 'pre'")
    if tie_embeddings not in ("none", "decoder", "three_way"):
        raise ValueError(f"tie_embeddings {tie_embeddings!r} is unknown; use 'none', 'decoder' or 'three_way'")
    if tie_embeddings == "three_way" and src_vocab_size != tgt_vocab_size:
        raise ValueError(
            f"tie_embeddings='three_way' shares one matrix between the source embedding, the target "
            f"embedding and the generator, so the vocabularies must have one size, but the source has "
            f"{src_vocab_size} and the target {tgt_vocab_size}; build a joint vocabulary "
            f"(data.shared_vocab=true) or use tie_embeddings='decoder'"
        )


def build_transformer(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Transformer:
    """A :class:`Transformer` from the ``model`` config section (``emb_dim`` is not used: see d_model)."""
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
