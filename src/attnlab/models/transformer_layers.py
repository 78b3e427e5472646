"""The Transformer's building blocks (Vaswani et al. 2017), in the order a reader learns them.

Reading order: masks -> the ``attention`` function -> multi-head attention -> feed-forward -> the
residual connection (post- or pre-norm) -> encoder -> decoder. The model that puts them together,
with its decoding protocol, is :mod:`attnlab.models.transformer`.

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
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.models.dropout import MaskDropout, relu_dropout
from attnlab.models.options import ACTIVATIONS

__all__ = [
    "KeyValue",
    "source_mask",
    "target_mask",
    "attention",
    "TransformerMultiHeadAttention",
    "FeedForward",
    "Residual",
    "EncoderLayer",
    "Encoder",
    "DecoderLayer",
    "Decoder",
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


class TransformerMultiHeadAttention(nn.Module):
    """``heads`` attentions in parallel over ``d_model / heads``-sized slices, then one output projection.

    Masks are additive (see the module docstring); the RNN decoder's attention family, with boolean
    masks, has its own multi-head module (:class:`attnlab.models.attention.MultiHeadQKVAttention`).

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
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is unknown; expected one of {', '.join(ACTIVATIONS)}")
        self.relu = activation == "relu"
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.dropout = MaskDropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D), each position on its own."""
        h = self.linear1(x)  # (B, T, ffn_dim)
        if self.relu:  # fused: the widest activation of the model is read and written once less
            return self.linear2(relu_dropout(h, self.dropout.p, self.training))
        return self.linear2(self.dropout(F.gelu(h)))


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
        self.dropout = MaskDropout(dropout)

    def before(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre_norm else x

    def after(self, x: Tensor, sublayer_out: Tensor) -> Tensor:
        x = x + self.dropout(sublayer_out)
        return x if self.pre_norm else self.norm(x)


# --------------------------------------------------------------------------------------- encoder
class EncoderLayer(nn.Module):
    """Self-attention over the source, then the feed-forward network, each with a residual.

    The arguments are keyword-only: two sizes swapped by position would build a model that runs.
    """

    def __init__(self, *, d_model: int, heads: int, ffn_dim: int, dropout: float, activation: str,
                 pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = TransformerMultiHeadAttention(d_model, heads, dropout)
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
    """Masked self-attention, attention over the encoder memory, then feed-forward; each with a residual.

    The arguments are keyword-only, as :class:`EncoderLayer`'s.
    """

    def __init__(self, *, d_model: int, heads: int, ffn_dim: int, dropout: float, activation: str,
                 pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = TransformerMultiHeadAttention(d_model, heads, dropout)
        self.self_attn_res = Residual(d_model, dropout, pre_norm)
        self.cross_attn = TransformerMultiHeadAttention(d_model, heads, dropout)
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
        group: int = 1,
    ) -> DecoderLayerOutput:
        """Run ``x`` (B, T, D), the positions after ``past_kv``'s, through the layer.

        ``memory_kv``: this layer's cross-attention keys and values of the memory, (A, nh, S, hs) each,
        where ``B = A * group``: rows ``i * group .. (i + 1) * group - 1`` of ``x`` share source ``i``.
        ``self_mask``: (B, 1, T, past + T) or None (one new position may see everything before it).
        ``cross_mask``: (A, 1, 1, S) source padding.
        """
        h = self.self_attn_res.before(x)
        k, v = self.self_attn.keys_values(h)  # (B, nh, T, hs) each
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)  # (B, nh, past + T, hs)
            v = torch.cat([past_kv[1], v], dim=2)
        h, self_weights = self.self_attn.attend(h, k, v, self_mask, need_weights)
        x = self.self_attn_res.after(x, h)
        h, cross_weights = self._cross_attend(self.cross_attn_res.before(x), memory_kv, cross_mask, need_weights, group)
        x = self.cross_attn_res.after(x, h)
        x = self.ffn_res.after(x, self.ffn(self.ffn_res.before(x)))
        return DecoderLayerOutput(x, (k, v), self_weights, cross_weights)

    def _cross_attend(
        self, h: Tensor, memory_kv: KeyValue, cross_mask: Tensor, need_weights: bool, group: int
    ) -> tuple[Tensor, Tensor | None]:
        """Cross-attention of ``h`` (A * group, T, D) over the A sources' keys and values.

        A source's ``group`` rows become ``group * T`` queries of one row: cross-attention treats every
        query on its own, so this equals attending row by row with the memory copied ``group`` times,
        without the copy.
        """
        if group == 1:
            return self.cross_attn.attend(h, *memory_kv, cross_mask, need_weights)
        B, T, D = h.shape
        out, weights = self.cross_attn.attend(h.reshape(B // group, group * T, D), *memory_kv, cross_mask, need_weights)
        if weights is not None:  # (A, nh, group * T, S) -> (A * group, nh, T, S)
            A, nh, _, S = weights.shape
            weights = weights.view(A, nh, group, T, S).transpose(1, 2).reshape(B, nh, T, S)
        return out.reshape(B, T, D), weights


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
        group: int = 1,
    ) -> DecoderOutput:
        """Decode embedded targets ``x`` (B, T, D); see :meth:`DecoderLayer.forward` for the rest."""
        caches, self_attentions, cross_attentions = [], [], []
        for i, layer in enumerate(self.layers):
            past = past_kv[i] if past_kv is not None else None
            out = layer(x, memory_kv[i], self_mask, cross_mask, past, need_weights, group)
            x = out.hidden
            caches.append(out.self_kv)
            self_attentions.append(out.self_attention)
            cross_attentions.append(out.cross_attention)
        if not need_weights:
            return DecoderOutput(self.norm(x), tuple(caches), None, None)
        return DecoderOutput(self.norm(x), tuple(caches), tuple(self_attentions), tuple(cross_attentions))
