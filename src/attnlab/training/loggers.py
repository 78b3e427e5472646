"""Loggers: ``metrics.csv`` in the run directory always, plus TensorBoard or Weights & Biases.

:class:`MetricsCSV` writes ``metrics.csv`` itself (Lightning's CSVLogger deletes an existing file when
it starts, and its writer is private): one row per logging call, columns sorted, blank where a
metric was not logged. A resumed run appends to the rows of the epochs it does not redo, after
:func:`truncate_metrics` has dropped those of the interrupted epoch.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from attnlab.checkpoints import atomic_write_text
from attnlab.rundir import RunDir, read_rows

if TYPE_CHECKING:
    from attnlab.config import TrainConfig

__all__ = ["MetricsCSV", "build_loggers", "truncate_metrics"]


class MetricsCSV(Logger):
    """``<run_dir>/metrics.csv``: rows kept in memory and appended every ``flush_every`` steps and at the end."""

    def __init__(self, run_dir: Path, flush_every: int = 100):
        super().__init__()
        self.path = RunDir(Path(run_dir)).metrics
        self.flush_every = flush_every
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = []
        earlier = read_rows(self.path)  # a resumed run's rows: their columns come first
        self._columns = list(earlier[0]) if earlier else []

    @property
    def name(self) -> str:
        return "metrics"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the resolved config is the run's config.yaml

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        row = {key: value.item() if hasattr(value, "item") else value for key, value in metrics.items()}
        row["step"] = len(self._rows) if step is None else step
        self._rows.append(row)
        if (row["step"] + 1) % self.flush_every == 0:
            self.save()

    @rank_zero_only
    def save(self) -> None:
        if not self._rows:
            return
        new = set().union(*self._rows) - set(self._columns)
        self._columns = sorted([*self._columns, *new])
        if new and self.path.is_file():  # a new column: write the earlier rows again under the new header
            earlier = read_rows(self.path)
            with open(self.path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(earlier)
        with open(self.path, "a" if self.path.is_file() else "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._columns)
            if handle.tell() == 0:
                writer.writeheader()
            writer.writerows(self._rows)
        self._rows = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()


def truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop rows of epochs after ``last_epoch``, the epoch whose end the resumed checkpoint holds."""
    rows = read_rows(path)
    if not rows:
        return
    fields = list(rows[0])
    kept = [row for row in rows if int(float(row["epoch"])) <= last_epoch]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)  # "\r\n" rows, as the logger writes them
    writer.writeheader()
    writer.writerows(kept)
    atomic_write_text(path, text.getvalue())  # a kill keeps the old file


def build_loggers(cfg: TrainConfig, run_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [MetricsCSV(run_dir)]
    if cfg.logger == "tensorboard":
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    elif cfg.logger == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        # Offline unless the user sets WANDB_MODE=online: works without a network.
        loggers.append(WandbLogger(save_dir=str(run_dir), name=run_dir.name,
                                   offline=os.environ.get("WANDB_MODE", "offline") == "offline"))
    return loggers
