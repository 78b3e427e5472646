"""An exponential moving average of the weights (``train.ema_decay``), validated and saved as the model.

After every optimiser step the average moves towards the trained weights:
``average = decay * average + (1 - decay) * weights`` (the first step copies them). A decay of 0.995
weighs about the last 200 steps, much as averaging the last few checkpoints does (Vaswani et al.
2017 average their last 5 or 20): the average sits nearer the middle of the valley the optimiser
bounces around in while the learning rate is still high, as it is when a time budget stops a run.
It lags the trained weights early in a run. On the Multi30k Transformer in bf16 it gave +0.3
validation and test BLEU after 45 minutes; both Multi30k Transformer configs ship it (decay 0.998; the
small one with three-way tying; docs/results.md).

Built on Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` (itself on
:class:`torch.optim.swa_utils.AveragedModel`), with torch's EMA update for whole lists of tensors
(``get_ema_multi_avg_fn``: one ``_foreach_lerp_`` per step). Validation runs the averaged weights, so ``val/bleu``
and ``best.ckpt`` are the average's; checkpoints hold the average as their ``state_dict`` (what
``translate``, ``evaluate``, ``export`` and ``serve`` read) and the trained weights beside it as
``current_model_state``, from which ``train --resume`` continues. Two changes to Lightning's callback:
the trained weights come back at ``on_validation_end`` rather than ``on_validation_epoch_end``, so
the attention snapshots drawn after a validation show the weights that were validated; and nothing
is copied into the in-memory model when training ends (everything after training reads checkpoints).
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn

__all__ = ["AveragedWeights"]


class AveragedWeights(WeightAveraging):
    """EMA of every parameter and buffer, updated after every optimiser step (see the module doc)."""

    def __init__(self, decay: float):
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # the trained weights come back at on_validation_end, after the snapshots are drawn

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._average_model is not None:
            self._swap_models(pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # the checkpoints hold the average; a final last.ckpt must keep the trained weights to resume from
