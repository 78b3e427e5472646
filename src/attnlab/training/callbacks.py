"""Callbacks that make a run directory complete: the initial state, speed and memory, samples."""

from __future__ import annotations

import csv
import resource
import time
from pathlib import Path

import lightning as L
import torch

from attnlab.checkpoints import atomic_torch_save
from attnlab.data.batching import Batch
from attnlab.evaluation.references import spread_rows
from attnlab.training.loggers import MetricsCSV

__all__ = ["SaveInitialState", "PerfMonitor", "SamplesWriter", "peak_memory_mb"]


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: max allocated on CUDA, else the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class SaveInitialState(L.Callback):
    """Writes the model's weights at initialisation, before the first step (``checkpoints/init.pt``)."""

    def __init__(self, path: Path):
        self.path = path

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_torch_save(pl_module.model.state_dict(), self.path)


class PerfMonitor(L.Callback):
    """Target tokens per second, epoch wall time and peak memory, per epoch.

    These depend on the machine, so they go to ``perf.csv`` and the non-CSV loggers (TensorBoard,
    W&B), never to ``metrics.csv``, which stays identical across identical seeded runs.
    """

    FIELDS = ("epoch", "step", "perf/tokens_per_sec", "perf/epoch_time_s", "perf/train_time_s",
              "perf/peak_memory_mb")

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        self._tokens = 0
        self._busy = 0.0
        self._batch_start = 0.0
        self._epoch_start: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch: Batch, batch_idx: int) -> None:
        # Counters start at an epoch's first batch: on_train_epoch_start is skipped after a restore.
        self._batch_start = time.perf_counter()
        if self._epoch_start is None:
            self._epoch_start = self._batch_start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch: Batch, batch_idx: int) -> None:
        self._busy += time.perf_counter() - self._batch_start
        self._tokens += batch.num_tgt_tokens

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "perf/tokens_per_sec": self._tokens / max(self._busy, 1e-9),
            "perf/epoch_time_s": time.perf_counter() - (self._epoch_start or time.perf_counter()),
            "perf/train_time_s": self._busy,
            "perf/peak_memory_mb": peak_memory_mb(pl_module.device),
        }
        self.rows.append(row)
        self._tokens, self._busy, self._epoch_start = 0, 0.0, None
        if not trainer.is_global_zero:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        for logger in trainer.loggers:
            if not isinstance(logger, MetricsCSV):
                logger.log_metrics({k: v for k, v in row.items() if k.startswith("perf/")}, trainer.global_step)


class SamplesWriter(L.Callback):
    """Appends a few validation translations, next to their sources and references, to ``samples.txt``.

    The sentences are spread evenly over the scored validation rows and have distinct sources
    (Tatoeba lists the alternative translations of one sentence next to each other).
    """

    def __init__(self, path: Path, sources: list[str], references: list[str], count: int, scored_rows: int):
        self.path = path
        self.rows = spread_rows(sources[:scored_rows], count)
        self.sources, self.references = sources, references

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        lines = [f"== epoch {trainer.current_epoch}  step {trainer.global_step}  "
                 f"val/bleu {pl_module.last_scores.get('bleu', 0.0):.2f}"]
        for i in self.rows:
            lines += [f"src: {self.sources[i]}", f"ref: {self.references[i]}",
                      f"hyp: {pl_module.val_translations.get(i, '')}", ""]
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
