"""Loggers: ``metrics.csv`` in the run directory always, plus TensorBoard or Weights & Biases.

Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts; a resumed run must keep
the rows of the epochs it does not redo, so :class:`RunCSVLogger` appends instead, after
:func:`truncate_metrics` has dropped the rows of the interrupted epoch.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

if TYPE_CHECKING:
    from attnlab.config import TrainConfig

__all__ = ["RunCSVLogger", "build_loggers", "truncate_metrics", "read_metrics"]


class _AppendingWriter(_ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                self.metrics_keys = list(csv.DictReader(handle).fieldnames or [])


class RunCSVLogger(CSVLogger):
    """Writes ``<run_dir>/metrics.csv``, appending to what a previous (interrupted) session wrote."""

    def __init__(self, run_dir: Path):
        super().__init__(save_dir=str(run_dir), name="", version="")

    @property
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None:
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def read_metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop rows of epochs after ``last_epoch``, the epoch whose end the resumed checkpoint holds."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [row for row in rows if int(float(row["epoch"])) <= last_epoch]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)


def build_loggers(cfg: TrainConfig, run_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [RunCSVLogger(run_dir)]
    if cfg.logger == "tensorboard":
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    elif cfg.logger == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        # Offline unless the user sets WANDB_MODE=online: works without a network.
        loggers.append(WandbLogger(save_dir=str(run_dir), name=run_dir.name,
                                   offline=os.environ.get("WANDB_MODE", "offline") == "offline"))
    return loggers
