"""Checkpoints during training: written atomically, ``last.ckpt`` after every validation, ``best.ckpt``
when the monitored metric improves, and read back without executing anything.

:class:`RunCheckpoints` replaces Lightning's ``ModelCheckpoint``, whose ``last.ckpt`` is only written
along with a new best model (so a resumed run went back to the last improvement and repeated
epochs) and which finds its best model by path (so a run moved to another folder forgot it). Here the
best score and epoch travel inside the checkpoint, and ``last.ckpt`` always holds the most recent
completed validation, which is where ``attnlab train --resume`` continues.

:class:`SafeCheckpointIO` is the Trainer's file layer: saving through
:func:`attnlab.checkpoints.atomic_write` (temporary file beside the target, fsync, rename) and
loading with ``weights_only=True``.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from attnlab.checkpoints import CHECKPOINT_FORMAT, FORMAT_KEY, atomic_torch_save, atomic_write, load_checkpoint
from attnlab.rundir import RunDir

__all__ = ["SafeCheckpointIO", "RunCheckpoints"]


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic saves; loads that never run code from the file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save({**checkpoint, FORMAT_KEY: CHECKPOINT_FORMAT}, path)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint(path)


class RunCheckpoints(Checkpoint):
    """After every validation: ``last.ckpt``; and a copy of it as ``best.ckpt`` when ``monitor`` improved.

    With one validation at the end of each epoch, the checkpoint is written at the very end of the
    epoch (``on_train_epoch_end``), once everything of the epoch is logged: a resumed run starts the
    next epoch cleanly. With several validations per epoch it is written right after each. Lightning
    runs checkpoint callbacks after the others, so the saved state includes this validation's
    early-stopping count.
    """

    def __init__(self, run: RunDir, monitor: str, mode: str):
        self.run, self.monitor, self.mode = run, monitor, mode
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.best_step: int | None = None
        self._pending = False  # a validation ran and is not saved yet
        self._saved_step = 0  # the step of the last checkpoint written (0: none yet, nothing to save)

    def _improves(self, score: float) -> bool:
        if math.isnan(score):
            return False
        if self.best_score is None:
            return True
        return score < self.best_score if self.mode == "min" else score > self.best_score

    @staticmethod
    def _at_epoch_end(trainer: L.Trainer) -> bool:
        return trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._pending = True
        if not self._at_epoch_end(trainer):
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending and self._at_epoch_end(trainer):
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A run that ends between validations (``max_steps``, ``max_time``) keeps its final weights."""
        if trainer.global_step != self._saved_step:
            trainer.save_checkpoint(self.run.last, weights_only=False)  # the full state: a resume continues from it
            self._saved_step = trainer.global_step

    def _save(self, trainer: L.Trainer) -> None:
        self._pending = False
        self._saved_step = trainer.global_step
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise RuntimeError(f"train.monitor {self.monitor!r} was not logged by the validation")
        improved = self._improves(float(value))
        if improved:
            self.best_score, self.best_epoch, self.best_step = float(value), trainer.current_epoch, trainer.global_step
        trainer.save_checkpoint(self.run.last, weights_only=False)  # the full state: a resume continues from it
        if improved and trainer.is_global_zero:
            with open(self.run.last, "rb") as source:
                atomic_write(self.run.best, lambda target: shutil.copyfileobj(source, target))
        trainer.strategy.barrier("RunCheckpoints")

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_score": self.best_score, "best_epoch": self.best_epoch,
                "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("monitor") == self.monitor:
            self.best_score = state_dict.get("best_score")
            self.best_epoch = state_dict.get("best_epoch")
            self.best_step = state_dict.get("best_step")
