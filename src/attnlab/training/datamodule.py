"""The LightningDataModule: token-budget batches, reshuffled per epoch, sharded per process under DDP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from attnlab.data.batching import Batch, Batches, collate, make_batches
from attnlab.data.store import PreparedData

__all__ = ["TranslationDataModule", "EpochBatchSampler"]

Pair = tuple[list[int], list[int]]


class _Indices(Dataset):
    """A dataset of positions: the batch sampler picks them, ``collate`` turns them into a Batch."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


def _epoch_in_progress(trainer: L.Trainer | None) -> int:
    """The epoch the fit loop is running or about to run.

    This is the number Lightning gives ``set_epoch``. It is read here because Lightning never calls
    ``set_epoch`` on a batch sampler, and because right after a restore it builds the iterator of the
    next epoch before either ``set_epoch`` or ``trainer.current_epoch`` has moved on.
    """
    return trainer.fit_loop.epoch_progress.current.processed if trainer is not None else 0


def _collate(pairs: Sequence[Pair], indices: list[int]):
    return collate(pairs, indices)


class EpochBatchSampler(Sampler[list[int]]):
    """Length-bucketed batches from ``(seed, epoch())``.

    ``epoch`` is asked when an epoch's iterator is made. Under DDP each of ``world_size`` processes
    takes every ``world_size``-th batch; the last few batches are repeated so every process runs
    the same number of steps.
    """

    def __init__(self, pairs: Sequence[Pair], batch_tokens: int | None, batch_size: int | None,
                 shuffle: bool, seed: int, epoch: Callable[[], int] = lambda: 0, rank: int = 0,
                 world_size: int = 1):
        self.pairs, self.batch_tokens, self.batch_size = pairs, batch_tokens, batch_size
        self.shuffle, self.seed, self.epoch, self.rank, self.world_size = shuffle, seed, epoch, rank, world_size
        self._cached: tuple[int, Batches] | None = None  # (epoch, batches): len() and iter() ask for both

    def _batches(self) -> Batches:
        epoch = self.epoch()
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        batches = make_batches(self.pairs, self.batch_tokens, self.batch_size, self.shuffle, self.seed, epoch)
        if self.world_size > 1:
            rows = np.arange(len(batches))
            rows = np.concatenate([rows, rows[: -len(rows) % self.world_size]])  # every rank gets as many
            batches = batches.take(rows[self.rank :: self.world_size])
        self._cached = (epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class TranslationDataModule(L.LightningDataModule):
    """Serves the prepared splits; validation and test batches are length-sorted, not shuffled."""

    def __init__(self, data: PreparedData, batch_tokens: int | None = 4096, batch_size: int | None = None,
                 seed: int = 0):
        super().__init__()
        self.data = data
        self.batch_tokens, self.batch_size, self.seed = batch_tokens, batch_size, seed

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        return batch.to(device)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        pairs = self.data.encoded[split]
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if (trainer and shuffle) else (0, 1)
        sampler = EpochBatchSampler(pairs, self.batch_tokens, self.batch_size, shuffle, self.seed,
                                    partial(_epoch_in_progress, trainer), rank, world)
        return DataLoader(_Indices(len(pairs)), batch_sampler=sampler, collate_fn=partial(_collate, pairs))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
