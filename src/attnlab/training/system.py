"""The LightningModule: wraps a seq2seq ``nn.Module`` with loss, optimiser, schedule and validation.

Every validation logs ``val/loss`` (per target token), ``val/ppl``, and sacreBLEU ``val/bleu`` and
``val/chrf`` of greedy translations of a fixed validation subset (the first
``train.val_bleu_sentences`` distinct source sentences), scored against every reference of each
source, with the single-reference scores beside them (``val/bleu_1ref``, ``val/chrf_1ref``); see
:mod:`attnlab.evaluation.references`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Timer
from torch import nn

from attnlab.config import VAL_METRICS, monitor_mode
from attnlab.data.batching import Batch
from attnlab.decoding.greedy import greedy_decode
from attnlab.evaluation.references import GroupedReferences
from attnlab.models.transformer import Transformer
from attnlab.training.generator_loss import chunked_generator_loss
from attnlab.training.losses import sequence_loss
from attnlab.training.optim import LINEAR_SCHEDULES, build_optimizer, lr_factor

if TYPE_CHECKING:
    from attnlab.config import DecodeConfig, TrainConfig

__all__ = ["TranslationSystem"]


class TranslationSystem(L.LightningModule):
    """``model`` follows the protocol in ``attnlab.models.outputs``.

    ``detokenize`` turns target ids into text; ``val_references`` groups the validation pairs by
    source: the first pair of each scored group is translated, and scored against the group's references.
    """

    def __init__(self, model: nn.Module, train_cfg: TrainConfig, decode_cfg: DecodeConfig, model_size: int,
                 detokenize: Callable[[list[int]], str], val_references: GroupedReferences):
        super().__init__()
        self.model = model
        self.train_cfg, self.decode_cfg = train_cfg, decode_cfg
        self.model_size = model_size
        self.detokenize = detokenize
        self.val_references = val_references
        self._decode_rows = np.zeros(len(val_references.group_of), dtype=bool)  # (val pairs,) translate these
        self._decode_rows[val_references.first_pairs] = True
        self.val_translations: dict[int, str] = {}  # pair index -> translation, for the translated pairs
        self.last_scores: dict = {}
        self._sums = {"val_loss": 0.0, "val_tokens": 0, "train_loss": 0.0, "train_tokens": 0}
        self._budget_used = 0.0  # share of train.max_minutes spent, for the linear_budget schedule

    def _step(self, batch: Batch, teacher_forcing: float) -> tuple[torch.Tensor, int]:
        """Summed loss over the batch's real target tokens, and their count.

        The Transformer's loss runs its generator chunk by chunk and never holds the (B, T, V) logits
        (:mod:`attnlab.training.generator_loss`: faster, and hundreds of MB less). RNN models keep the
        loss over their full logits, so their seeded runs give the very same numbers as before.
        """
        smoothing = self.train_cfg.label_smoothing if self.training else 0.0
        if isinstance(self.model, Transformer):
            hidden = self.model.hidden_states(batch)  # (B, T, D)
            return chunked_generator_loss(hidden, self.model.generator, batch.tgt_out, smoothing), batch.num_tgt_tokens
        out = self.model(batch, teacher_forcing=teacher_forcing,
                         teacher_forcing_mode=self.train_cfg.teacher_forcing_mode)
        return sequence_loss(out.logits, batch.tgt_out, smoothing), batch.num_tgt_tokens

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # Re-seed from (seed, step): dropout and teacher-forcing coins of a step do not depend on what
        # ran before, so a resumed run matches an uninterrupted one. (Lightning skips
        # on_train_epoch_start for the first epoch after an end-of-epoch restore, so not there.)
        torch.manual_seed(self.train_cfg.seed * 1_000_003 + self.global_step)
        if self.train_cfg.schedule == "linear_budget":
            self._budget_used = self._time_budget_used()

    def _time_budget_used(self) -> float:
        """The share of ``train.max_minutes`` spent, as Lightning's Timer counts it (restored on resume);
        rank 0's value on every rank, so that all ranks step with the same learning rate."""
        timer = next(c for c in self.trainer.callbacks if isinstance(c, Timer))
        used = timer.time_elapsed() / (self.train_cfg.max_minutes * 60)
        return float(self.trainer.strategy.broadcast(used))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss_sum, tokens = self._step(batch, self.train_cfg.teacher_forcing)
        loss = loss_sum / tokens
        self._sums["train_loss"] += float(loss_sum.detach())
        self._sums["train_tokens"] += tokens
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(batch))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False,
                 batch_size=len(batch))
        return loss

    def on_train_epoch_end(self) -> None:
        tokens = max(self._sums["train_tokens"], 1)
        self.log("train/epoch_loss", self._sums["train_loss"] / tokens, sync_dist=True)
        self._sums["train_loss"], self._sums["train_tokens"] = 0.0, 0

    def on_validation_epoch_start(self) -> None:
        self._sums["val_loss"], self._sums["val_tokens"] = 0.0, 0
        self.val_translations = {}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss_sum, tokens = self._step(batch, teacher_forcing=1.0)
        self._sums["val_loss"] += float(loss_sum)
        self._sums["val_tokens"] += tokens
        rows = torch.from_numpy(self._decode_rows[batch.indices.cpu().numpy()]).to(batch.src.device)
        if bool(rows.any()):
            hypotheses = greedy_decode(self.model, batch.src[rows], batch.src_lengths[rows],
                                       self.decode_cfg.max_len_ratio, self.decode_cfg.max_len)
            for index, hypothesis in zip(batch.indices[rows].tolist(), hypotheses, strict=True):
                self.val_translations[index] = self.detokenize(hypothesis.tokens)

    def on_validation_epoch_end(self) -> None:
        loss = self._sums["val_loss"] / max(self._sums["val_tokens"], 1)
        hypotheses = [self.val_translations[i] for i in self.val_references.first_pairs]
        scores = self.val_references.score(hypotheses)
        self.last_scores = {"loss": loss, "ppl": math.exp(min(loss, 50.0)), **scores}
        for key in VAL_METRICS:
            name = key.removeprefix("val/")
            self.log(key, float(self.last_scores[name]), sync_dist=True, prog_bar=name in ("loss", "bleu"))

    def configure_optimizers(self) -> dict:
        cfg = self.train_cfg
        # Lightning's mixed-precision plugin refuses to clip the gradients of an optimiser that can unscale them
        # itself, as fused ones can: there the for-loop step runs
        fused = not (self.trainer.precision.endswith("-mixed") and (cfg.clip or 0) > 0)
        optimizer = build_optimizer(list(self.model.parameters()), cfg, fused=fused)
        if cfg.schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=monitor_mode(cfg.monitor), factor=0.5, patience=1)
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": scheduler, "monitor": cfg.monitor, "interval": "epoch"}}
        total_steps = int(self.trainer.estimated_stepping_batches) if cfg.schedule in LINEAR_SCHEDULES else None
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(
            cfg.schedule, step, cfg.warmup, self.model_size, total_steps, budget_used=self._budget_used))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
