"""Batching: every pair exactly once per epoch, padding and masks right, token budget respected."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from attnlab.data.batching import _batch_starts, batch_cost, collate, length_order, make_batches, padding_share
from attnlab.data.vocab import BOS_ID, EOS_ID, PAD_ID


@pytest.fixture(scope="module")
def pairs():
    """Random pairs whose target length follows the source length, as in real parallel text."""
    rng = random.Random(0)
    lengths = [rng.randint(1, 30) for _ in range(2000)]
    return [([rng.randrange(4, 50) for _ in range(n)],
             [rng.randrange(4, 50) for _ in range(max(1, n + rng.randint(-3, 3)))]) for n in lengths]


@pytest.mark.parametrize("kwargs", [{"batch_tokens": 500}, {"batch_tokens": 31}, {"batch_size": 64}])
def test_every_pair_exactly_once_per_epoch(pairs, kwargs) -> None:
    for epoch in range(3):
        batches = make_batches(pairs, seed=1, epoch=epoch, **kwargs)
        seen = sorted(i for b in batches for i in b)
        assert seen == list(range(len(pairs)))


def test_token_budget_respected(pairs) -> None:
    batches = make_batches(pairs, batch_tokens=500, seed=1)
    assert all(batch_cost(pairs, b) <= 500 for b in batches)
    assert all(len(collate(pairs, b).tgt_in) * collate(pairs, b).tgt_in.size(1) <= 500 for b in batches[:20])


def test_pair_longer_than_budget_gets_its_own_batch() -> None:
    pairs = [([5] * 40, [6] * 40), ([5], [6]), ([5, 5], [6])]
    batches = make_batches(pairs, batch_tokens=10, seed=0)
    assert [0] in batches and sorted(i for b in batches for i in b) == [0, 1, 2]


def test_deterministic_per_seed_and_epoch(pairs) -> None:
    a = make_batches(pairs, batch_tokens=500, seed=3, epoch=1)
    assert a == make_batches(pairs, batch_tokens=500, seed=3, epoch=1)
    assert a != make_batches(pairs, batch_tokens=500, seed=3, epoch=2)


def test_length_bucketing_keeps_padding_low(pairs) -> None:
    bucketed = make_batches(pairs, batch_tokens=2000, seed=0)
    rng = random.Random(0)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    size = len(pairs) // len(bucketed)
    unsorted = [order[i : i + size] for i in range(0, len(order), size)]
    assert padding_share(pairs, bucketed) < 0.25 < padding_share(pairs, unsorted)


def test_collate_pads_and_shifts() -> None:
    pairs = [([4, 5, 6], [7, 8]), ([9], [10, 11, 12])]
    batch = collate(pairs, [0, 1])
    assert batch.src.tolist() == [[4, 5, 6], [9, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.tgt_in.tolist() == [[BOS_ID, 7, 8, PAD_ID], [BOS_ID, 10, 11, 12]]
    assert batch.tgt_out.tolist() == [[7, 8, EOS_ID, PAD_ID], [10, 11, 12, EOS_ID]]
    assert batch.tgt_lengths.tolist() == [3, 4]
    assert batch.src_mask.tolist() == [[True, True, True], [True, False, False]]
    assert batch.tgt_mask.sum().item() == batch.num_tgt_tokens == 7
    assert torch.equal(batch.indices, torch.tensor([0, 1]))


@pytest.mark.parametrize("longest", [12, 3_000_000_000])  # a 64-bit key per pair; lexsort when it would overflow
@pytest.mark.parametrize("size_first", [False, True])
def test_length_order_is_the_lexicographic_sort(longest: int, size_first: bool) -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(1, 13, 5_000)
    tgt = rng.integers(1, 13, 5_000)
    tgt[0] = longest
    keys = (src, tgt) if not size_first else (tgt, src, np.maximum(src, tgt + 1))  # least significant first
    tie_break = np.random.default_rng(7).permutation(5_000)
    expected = np.lexsort((tie_break, *keys)).tolist()
    assert length_order(src, tgt, np.random.default_rng(7), size_first).tolist() == expected
    assert length_order(src, tgt, None, size_first).tolist() == np.lexsort((np.arange(5_000), *keys)).tolist()


def test_a_token_budget_sorts_by_what_it_counts(pairs) -> None:
    """Batches cut by the longer side's length are sorted by it: less padding, fuller batches."""
    src, tgt = (np.array([len(p[i]) for p in pairs]) for i in (0, 1))
    by_target = length_order(src, tgt, np.random.default_rng(0))
    starts = _batch_starts(by_target, src, tgt, 2000, None)
    by_target_batches = [by_target[a:b].tolist() for a, b in zip(starts, [*starts[1:], len(pairs)], strict=True)]
    by_size = make_batches(pairs, batch_tokens=2000, seed=0)
    assert all(batch_cost(pairs, b) <= 2000 for b in by_size)
    assert padding_share(pairs, by_size) < padding_share(pairs, by_target_batches)
    assert len(by_size) <= len(by_target_batches)
