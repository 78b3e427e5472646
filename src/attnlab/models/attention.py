"""The attention family used by the RNN decoder, all behind one signature.

Every module maps ``forward(query, keys, values, mask) -> (context, weights)``:

- ``query``  (B, T, Dq): T decoder positions asking (T = 1 in a decoding step).
- ``keys``   (B, S, Dk) and ``values`` (B, S, Dk): the encoder memory.
- ``mask``   (B, S) bool, True on real source tokens.
- ``context`` (B, T, output_dim) and ``weights`` (B, heads, T, S), which sum to 1 over the real
  tokens of each row and are exactly 0 on padding (scores are filled with -inf before the softmax).

The work is split in two so a decoder can project the memory once per sentence instead of once per
step: ``prepare(keys, values)`` does everything that depends on the memory alone, and
``attend(query, keys, values, mask)`` takes the prepared tensors. ``forward`` is both in a row.
Prepared values are always (B, heads, S, dv), so one ``attend`` serves every type.

Types (``build_attention(kind, ...)``):

========== ==================================================== ==========================
kind       score(q, k)                                          paper
========== ==================================================== ==========================
dot        q . k                                                Luong et al. 2015
scaled_dot q . k / sqrt(d)                                      Vaswani et al. 2017
general    q^T W k                                              Luong et al. 2015
concat     v^T tanh(W [q; k] + b)                               Luong et al. 2015
additive   v^T tanh(W q + U k)                                  Bahdanau et al. 2015
qkv        (W_q q) . (W_k k) / sqrt(d), context from W_v v      learned projections
multihead  qkv split into heads, then an output projection      Vaswani et al. 2017
none       no attention: ``build_attention`` returns None
========== ==================================================== ==========================

``concat`` and ``additive`` compute the same family of functions (a linear map of a concatenation
is a sum of linear maps of its parts); they differ in parametrisation: ``concat`` is one matrix over
``[q; k]`` with a bias, as Luong writes it, ``additive`` two bias-free matrices, as Bahdanau does.
``concat`` is computed through the split form, which avoids building the (B, T, S, Dq + Dk) tensor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.models.options import ATTENTION_KINDS

__all__ = [
    "Attention",
    "DotAttention",
    "GeneralAttention",
    "ConcatAttention",
    "AdditiveAttention",
    "QKVAttention",
    "MultiHeadQKVAttention",
    "masked_softmax",
    "build_attention",
]


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis that gives padding exactly zero weight.

    ``scores`` (B, H, T, S), ``mask`` (B, S) bool with True on real tokens. Every row needs at least
    one real token (a source sentence of length 0 has nothing to attend to).
    """
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))  # exp(-inf) == 0 exactly
    return scores.softmax(dim=-1)


class Attention(nn.Module):
    """Base class: ``prepare`` the memory, ``score`` queries against it, ``attend``.

    Subclasses set ``heads`` and ``output_dim`` and implement :meth:`score`; those that project
    keys or values override :meth:`prepare`, those with an output projection override :meth:`output`.
    """

    heads: int = 1
    output_dim: int

    def prepare(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory-only work. keys, values (B, S, Dk) -> prepared keys, values (B, heads, S, dv)."""
        return keys, values.unsqueeze(1)  # (B, 1, S, Dk)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (B, T, Dq), prepared keys -> scores (B, heads, T, S)."""
        raise NotImplementedError

    def output(self, context: torch.Tensor) -> torch.Tensor:
        """Heads merged (B, T, heads * dv) -> context (B, T, output_dim)."""
        return context

    def attend(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention over prepared memory: returns context (B, T, output_dim), weights (B, heads, T, S)."""
        weights = masked_softmax(self.score(query, keys), mask)  # (B, h, T, S)
        context = weights @ values  # (B, h, T, S) @ (B, h, S, dv) -> (B, h, T, dv)
        B, h, T, dv = context.shape
        context = context.transpose(1, 2).reshape(B, T, h * dv)  # (B, T, h * dv)
        return self.output(context), weights

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, Dq), keys/values (B, S, Dk), mask (B, S) -> context (B, T, Do), weights."""
        return self.attend(query, *self.prepare(keys, values), mask)


class DotAttention(Attention):
    """Luong's ``dot`` score q . k; with ``scaled`` divided by sqrt(d) as in the Transformer."""

    def __init__(self, query_dim: int, key_dim: int, scaled: bool = False) -> None:
        super().__init__()
        if query_dim != key_dim:
            kind = "scaled_dot" if scaled else "dot"
            raise ValueError(
                f"{kind} attention needs query and key of one size, got query {query_dim} and key "
                f"{key_dim}; use 'general' or project the memory"
            )
        self.scale = 1.0 / math.sqrt(key_dim) if scaled else 1.0
        self.output_dim = key_dim

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        scores = query @ keys.transpose(1, 2)  # (B, T, D) @ (B, D, S) -> (B, T, S)
        return (scores * self.scale).unsqueeze(1)  # (B, 1, T, S)


class GeneralAttention(Attention):
    """Luong's ``general`` (bilinear) score q^T W k; W k is computed once per sentence."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False)  # k -> W k
        self.output_dim = key_dim

    def prepare(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.key_proj(keys), values.unsqueeze(1)  # (B, S, Dq), (B, 1, S, Dk)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return (query @ keys.transpose(1, 2)).unsqueeze(1)  # (B, 1, T, S)


def _tanh_score(query_proj: torch.Tensor, keys_proj: torch.Tensor, v: nn.Linear) -> torch.Tensor:
    """v^T tanh(q' + k') for every (query, key) pair: (B, T, A), (B, S, A) -> (B, 1, T, S)."""
    hidden = torch.tanh(query_proj.unsqueeze(2) + keys_proj.unsqueeze(1))  # (B, T, S, A)
    return v(hidden).squeeze(-1).unsqueeze(1)  # (B, T, S, 1) -> (B, 1, T, S)


class ConcatAttention(Attention):
    """Luong's ``concat`` score v^T tanh(W [q; k] + b).

    ``self.proj`` is the literal (A, Dq + Dk) matrix; it is applied as W[:, :Dq] q + W[:, Dq:] k + b,
    which equals W [q; k] + b without materialising every concatenated pair.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.query_dim = query_dim
        self.proj = nn.Linear(query_dim + key_dim, attn_dim)  # W, b over [q; k]
        self.v = nn.Linear(attn_dim, 1, bias=False)
        self.output_dim = key_dim

    def prepare(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys_proj = F.linear(keys, self.proj.weight[:, self.query_dim :], self.proj.bias)  # (B, S, A)
        return keys_proj, values.unsqueeze(1)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query_proj = F.linear(query, self.proj.weight[:, : self.query_dim])  # (B, T, A)
        return _tanh_score(query_proj, keys, self.v)


class AdditiveAttention(Attention):
    """Bahdanau's score v^T tanh(W q + U k); U k is computed once per sentence."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)  # W
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=False)  # U
        self.v = nn.Linear(attn_dim, 1, bias=False)
        self.output_dim = key_dim

    def prepare(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.key_proj(keys), values.unsqueeze(1)  # (B, S, A), (B, 1, S, Dk)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return _tanh_score(self.query_proj(query), keys, self.v)


class QKVAttention(Attention):
    """Learned projections of query, keys and values, then scaled dot-product; optionally in heads.

    With ``heads`` > 1 the model dimension D = ``query_dim`` is split into heads of D / heads; the
    heads are concatenated again, so ``output_dim`` is D.
    """

    def __init__(self, query_dim: int, key_dim: int, heads: int = 1) -> None:
        super().__init__()
        if heads < 1 or query_dim % heads:
            raise ValueError(f"attention heads ({heads}) must be >= 1 and divide the query size {query_dim}")
        self.heads = heads
        self.head_dim = query_dim // heads
        self.query_proj = nn.Linear(query_dim, query_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False)
        self.value_proj = nn.Linear(key_dim, query_dim, bias=False)
        self.output_dim = query_dim

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.heads, self.head_dim).transpose(1, 2)  # (B, h, L, hd)

    def prepare(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys = self._split_heads(self.key_proj(keys))  # (B, h, S, hd)
        values = self._split_heads(self.value_proj(values))  # (B, h, S, hd)
        return keys, values

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query = self._split_heads(self.query_proj(query))  # (B, h, T, hd)
        return query @ keys.transpose(2, 3) / math.sqrt(self.head_dim)  # (B, h, T, S)


class MultiHeadQKVAttention(QKVAttention):
    """Multi-head attention (Vaswani et al. 2017) for the RNN decoder: :class:`QKVAttention` in heads + output
    projection, with this family's boolean source mask. The Transformer's own is
    :class:`attnlab.models.transformer_layers.TransformerMultiHeadAttention` (additive masks, key/value cache)."""

    def __init__(self, query_dim: int, key_dim: int, heads: int) -> None:
        super().__init__(query_dim, key_dim, heads)
        self.out_proj = nn.Linear(query_dim, query_dim, bias=False)

    def output(self, context: torch.Tensor) -> torch.Tensor:
        return self.out_proj(context)  # (B, T, D)


def build_attention(kind: str, query_dim: int, key_dim: int, heads: int = 1) -> Attention | None:
    """The attention module for ``kind`` (one of :data:`ATTENTION_KINDS`); None for ``"none"``.

    ``heads`` applies to ``multihead`` only; other kinds have one head and refuse ``heads`` > 1.
    """
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention kind {kind!r} is unknown; expected one of {', '.join(ATTENTION_KINDS)}")
    if heads != 1 and kind != "multihead":
        raise ValueError(f"attention heads={heads} needs attention 'multihead', not {kind!r}")
    if kind == "none":
        return None
    if kind == "dot":
        return DotAttention(query_dim, key_dim)
    if kind == "scaled_dot":
        return DotAttention(query_dim, key_dim, scaled=True)
    if kind == "general":
        return GeneralAttention(query_dim, key_dim)
    if kind == "concat":
        return ConcatAttention(query_dim, key_dim)
    if kind == "additive":
        return AdditiveAttention(query_dim, key_dim)
    if kind == "qkv":
        return QKVAttention(query_dim, key_dim)
    return MultiHeadQKVAttention(query_dim, key_dim, heads)
