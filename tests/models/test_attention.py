"""Invariants of the attention family: probabilities, padding, batching, key order, reference formulas."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.models.attention import build_attention, masked_softmax
from attnlab.models.options import ATTENTION_KINDS

KINDS = [k for k in ATTENTION_KINDS if k != "none"]
B, T, S, D = 3, 4, 6, 8
LENGTHS = torch.tensor([6, 3, 1])


def make(kind: str, heads: int | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    heads = heads if heads is not None else (2 if kind == "multihead" else 1)
    return build_attention(kind, D, D, heads)


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(B, T, D, generator=g)
    memory = torch.randn(B, S, D, generator=g)
    mask = torch.arange(S).unsqueeze(0) < LENGTHS.unsqueeze(1)  # (B, S)
    return query, memory, mask


@pytest.mark.parametrize("kind", KINDS)
def test_weights_are_distributions_over_real_tokens(kind: str) -> None:
    attention = make(kind)
    query, memory, mask = inputs()
    context, weights = attention(query, memory, memory, mask)
    assert context.shape == (B, T, attention.output_dim)
    assert weights.shape == (B, attention.heads, T, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, attention.heads, T))
    padding = ~mask[:, None, None, :].expand_as(weights)
    assert (weights[padding] == 0).all()  # exactly zero, not merely small
    assert (weights[~padding] > 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_a_row(kind: str) -> None:
    attention = make(kind)
    query, memory, mask = inputs()
    context, weights = attention(query, memory, memory, mask)
    memory = memory.masked_fill(~mask.unsqueeze(-1), 1e4)  # garbage in the padding must not matter
    for b, length in enumerate(LENGTHS.tolist()):
        row = memory[b : b + 1, :length]
        alone_context, alone_weights = attention(query[b : b + 1], row, row, mask[b : b + 1, :length])
        torch.testing.assert_close(alone_context[0], context[b], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(alone_weights[0], weights[b, :, :, :length], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_key_order_only_permutes_weights(kind: str) -> None:
    """The property ``reverse_src`` relies on: reorder the memory and the weights follow it."""
    attention = make(kind)
    query, memory, mask = inputs()
    mask = torch.ones_like(mask)
    perm = torch.randperm(S, generator=torch.Generator().manual_seed(3))
    context, weights = attention(query, memory, memory, mask)
    context_p, weights_p = attention(query, memory[:, perm], memory[:, perm], mask)
    torch.testing.assert_close(context_p, context, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights_p, weights[..., perm])


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_query_memory_and_parameters(kind: str) -> None:
    attention = make(kind)
    query, memory, mask = inputs()
    query.requires_grad_(True)
    memory.requires_grad_(True)
    context, _ = attention(query, memory, memory, mask)
    context.square().sum().backward()
    assert query.grad.abs().sum() > 0
    assert memory.grad[~mask].abs().sum() == 0  # padding gets no gradient either
    assert memory.grad[mask].abs().sum() > 0
    for name, p in attention.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_prepare_then_attend_equals_forward() -> None:
    for kind in KINDS:
        attention = make(kind)
        query, memory, mask = inputs()
        expected = attention(query, memory, memory, mask)
        keys, values = attention.prepare(memory, memory)
        for t in range(T):  # one decoder step at a time over the prepared memory
            context, weights = attention.attend(query[:, t : t + 1], keys, values, mask)
            torch.testing.assert_close(context[:, 0], expected[0][:, t], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(weights[:, :, 0], expected[1][:, :, t], atol=1e-6, rtol=1e-5)


def test_scores_match_the_paper_formulas() -> None:
    query, memory, mask = inputs()
    mask = torch.ones_like(mask)

    def check(kind: str, score: torch.Tensor) -> None:  # score (B, T, S)
        _, weights = make(kind)(query, memory, memory, mask)
        torch.testing.assert_close(weights[:, 0], score.softmax(-1), atol=1e-6, rtol=1e-5)

    check("dot", torch.einsum("btd,bsd->bts", query, memory))
    check("scaled_dot", torch.einsum("btd,bsd->bts", query, memory) / math.sqrt(D))
    general = make("general")
    check("general", torch.einsum("btd,de,bse->bts", query, general.key_proj.weight, memory))
    concat = make("concat")
    pairs = torch.cat(  # every [q_t; k_s], literally: (B, T, S, 2D)
        [query.unsqueeze(2).expand(B, T, S, D), memory.unsqueeze(1).expand(B, T, S, D)], dim=-1
    )
    check("concat", concat.v(torch.tanh(concat.proj(pairs))).squeeze(-1))
    add = make("additive")
    hidden = torch.tanh(add.query_proj(query).unsqueeze(2) + add.key_proj(memory).unsqueeze(1))
    check("additive", add.v(hidden).squeeze(-1))


def test_multihead_equals_heads_computed_one_by_one() -> None:
    heads = 4
    attention = make("multihead", heads)
    query, memory, mask = inputs()
    context, weights = attention(query, memory, memory, mask)
    hd = D // heads
    q, k, v = attention.query_proj(query), attention.key_proj(memory), attention.value_proj(memory)
    outs = []
    for h in range(heads):
        part = slice(h * hd, (h + 1) * hd)
        scores = q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(hd)  # (B, T, S)
        p = scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(-1)
        torch.testing.assert_close(weights[:, h], p, atol=1e-6, rtol=1e-5)
        outs.append(p @ v[..., part])
    torch.testing.assert_close(context, attention.out_proj(torch.cat(outs, -1)), atol=1e-6, rtol=1e-5)


def test_different_heads_attend_differently() -> None:
    query, memory, mask = inputs()
    _, weights = make("multihead", 4)(query, memory, memory, mask)
    assert not torch.allclose(weights[:, 0], weights[:, 1])


def test_masked_softmax_single_real_token_gets_everything() -> None:
    scores = torch.randn(2, 1, 3, 5)
    mask = torch.tensor([[True, False, False, False, False], [False, False, True, False, False]])
    weights = masked_softmax(scores, mask)
    assert torch.equal(weights[0, 0, :, 0], torch.ones(3)) and torch.equal(weights[1, 0, :, 2], torch.ones(3))


def test_build_attention_choices_and_errors() -> None:
    assert build_attention("none", D, D) is None
    memory = torch.randn(1, 3, 10)  # keys of another size than the query: fine for 'general'
    context, _ = build_attention("general", 6, 10)(
        torch.randn(1, 2, 6), memory, memory, torch.ones(1, 3).bool()
    )
    assert context.shape == (1, 2, 10)
    with pytest.raises(ValueError, match="unknown"):
        build_attention("luong", D, D)
    with pytest.raises(ValueError, match="one size"):
        build_attention("dot", 6, 10)
    with pytest.raises(ValueError, match="divide"):
        build_attention("multihead", D, D, heads=3)
    with pytest.raises(ValueError, match="multihead"):
        build_attention("general", D, D, heads=2)
