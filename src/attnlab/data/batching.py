"""Length-bucketed batches with a token budget, padding, and shifted decoder input/output.

Batching only groups: every pair of a split appears in exactly one batch per epoch, whatever the
budget, and the grouping is a pure function of ``(seed, epoch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from attnlab.data.vocab import BOS_ID, EOS_ID, PAD_ID

__all__ = ["Batch", "collate", "make_batches", "batch_cost", "padding_share"]

Pair = tuple[Sequence[int], Sequence[int]]


@dataclass
class Batch:
    """A padded batch. Padding is ``<pad>`` = 0 everywhere.

    ``src``: (B, S) source ids, no ``<bos>``/``<eos>``; ``src_lengths``: (B,).
    ``tgt_in``: (B, T) ``<bos> y1 .. yn``; ``tgt_out``: (B, T) ``y1 .. yn <eos>``; ``tgt_lengths``: (B,).
    ``indices``: (B,) positions of the pairs in their split, so outputs can be put back in order.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_lengths: torch.Tensor
    indices: torch.Tensor

    @property
    def src_mask(self) -> torch.Tensor:
        """(B, S) bool, True on real source tokens."""
        return self.src != PAD_ID

    @property
    def tgt_mask(self) -> torch.Tensor:
        """(B, T) bool, True on real target positions."""
        return self.tgt_out != PAD_ID

    @property
    def num_tgt_tokens(self) -> int:
        return int(self.tgt_lengths.sum())

    def __len__(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in (
            self.src, self.src_lengths, self.tgt_in, self.tgt_out, self.tgt_lengths, self.indices)))


def collate(pairs: Sequence[Pair], indices: Sequence[int]) -> Batch:
    """Pad the pairs at ``indices`` into a :class:`Batch`; each target gets ``<bos>``/``<eos>``."""
    chosen = [pairs[i] for i in indices]
    src_len = torch.tensor([len(s) for s, _ in chosen])
    tgt_len = torch.tensor([len(t) + 1 for _, t in chosen])
    n = len(chosen)
    src = torch.full((n, max(1, int(src_len.max()))), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((n, int(tgt_len.max())), PAD_ID, dtype=torch.long)
    tgt_out = torch.full_like(tgt_in, PAD_ID)
    for row, (s, t) in enumerate(chosen):
        src[row, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        tgt_in[row, 0] = BOS_ID
        tgt_in[row, 1 : len(t) + 1] = torch.as_tensor(t, dtype=torch.long)
        tgt_out[row, : len(t)] = torch.as_tensor(t, dtype=torch.long)
        tgt_out[row, len(t)] = EOS_ID
    return Batch(src, src_len, tgt_in, tgt_out, tgt_len, torch.as_tensor(list(indices), dtype=torch.long))


def batch_cost(pairs: Sequence[Pair], indices: Sequence[int]) -> int:
    """Padded positions of the larger side: rows x longest source or target (+1 for ``<eos>``)."""
    longest = max(max(len(pairs[i][0]), len(pairs[i][1]) + 1) for i in indices)
    return len(indices) * longest


def make_batches(
    pairs: Sequence[Pair],
    batch_tokens: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
) -> list[list[int]]:
    """Group pair indices into batches of similar length.

    With ``batch_tokens`` a batch holds as many pairs as fit in the budget of padded positions
    (:func:`batch_cost`); a single pair longer than the budget gets a batch of its own. With
    ``batch_size`` it holds that many pairs. Pairs are sorted by (target, source) length with random
    tie-breaking, cut into batches, and the batch order is shuffled: all from ``(seed, epoch)``.
    """
    if (batch_tokens is None) == (batch_size is None):
        raise ValueError("give exactly one of batch_tokens and batch_size")
    if not pairs:
        return []
    rng = np.random.default_rng([seed, epoch])
    tie_break = rng.permutation(len(pairs)) if shuffle else np.arange(len(pairs))
    tgt_lens = np.fromiter((len(t) for _, t in pairs), dtype=np.int64, count=len(pairs))
    src_lens = np.fromiter((len(s) for s, _ in pairs), dtype=np.int64, count=len(pairs))
    order = np.lexsort((tie_break, src_lens, tgt_lens))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order.tolist():
        size = max(int(src_lens[index]), int(tgt_lens[index]) + 1)
        grown = max(longest, size)
        full = (len(current) >= batch_size) if batch_size else (grown * (len(current) + 1) > batch_tokens)
        if current and full:
            batches.append(current)
            current, grown = [], size
        current.append(index)
        longest = grown
    batches.append(current)
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def padding_share(pairs: Sequence[Pair], batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions over both sides, across ``batches``."""
    padded = real = 0
    for indices in batches:
        src = [len(pairs[i][0]) for i in indices]
        tgt = [len(pairs[i][1]) + 1 for i in indices]
        padded += len(indices) * (max(src) + max(tgt))
        real += sum(src) + sum(tgt)
    return 1.0 - real / padded if padded else 0.0
