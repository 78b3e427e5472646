"""Optimisers and learning-rate schedules named by ``train.optimizer`` and ``train.schedule``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from attnlab.config import TrainConfig

__all__ = ["LINEAR_SCHEDULES", "build_optimizer", "lr_factor"]

LINEAR_SCHEDULES = ("linear", "linear_budget")  # the schedules that need the run's total step count


def build_optimizer(params: list[nn.Parameter], cfg: TrainConfig, fused: bool = True) -> torch.optim.Optimizer:
    """``train.optimizer`` over ``params``; with ``fused``, torch's fused kernel steps every tensor at once.

    The fused step computes what the for-loop step does (to float rounding) in one pass over the weights: on
    the 9.6M Multi30k Transformer it takes 6.0 ms instead of 28.6 ms on two Zen 2 threads, 5% of a
    1,024-token step (``benchmarks/optimizer_step.py``, docs/speed.md). It needs floating parameters on a
    CPU or CUDA device; elsewhere, or with ``fused=False``, the for-loop step runs. A run resumed from a
    checkpoint keeps the step it was saved with (the optimiser's saved settings are restored).
    """
    kwargs = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if fused and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        kwargs["fused"] = True
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, **kwargs)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    return torch.optim.SGD(params, momentum=0.9, **kwargs)


def lr_factor(schedule: str, step: int, warmup: int, model_size: int, total_steps: int | None = None,
              budget_used: float = 0.0) -> float:
    """Multiplier of ``train.lr`` at optimiser step ``step`` (0-based).

    ``constant``: 1 after a linear warm-up. ``inverse_sqrt``: linear warm-up to ``lr`` at ``warmup``,
    then ``lr * sqrt(warmup / step)``. ``noam`` (Vaswani et al. 2017): ``lr`` is the paper's factor,
    ``d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)``. ``linear``: linear warm-up, then straight
    down to zero at ``total_steps`` (the run's last step, from ``train.epochs`` or ``train.max_steps``):
    a run ends with its learning rate annealed, not wherever a decay curve happens to be.
    ``linear_budget``: ``linear``, but never above ``1 - budget_used`` (the share of the time budget,
    ``train.max_minutes``, already spent): the rate reaches zero at the last step or when the budget
    runs out, whichever comes first, so a slower machine anneals too. It depends on wall-clock time, so
    two runs of it are equal only where the budget did not bind.
    """
    step = step + 1
    warm = max(warmup, 1)
    if schedule == "noam":
        return model_size**-0.5 * min(step**-0.5, step * warm**-1.5)
    ramp = min(1.0, step / warm) if warmup > 0 else 1.0
    if schedule == "inverse_sqrt":
        return ramp if step <= warm else (warm / step) ** 0.5
    if schedule in LINEAR_SCHEDULES:
        if total_steps is None:
            raise ValueError(f"the {schedule} schedule needs the run's total_steps")
        factor = ramp if step <= warm else max(0.0, (total_steps - step + 1) / max(total_steps - warm + 1, 1))
        return min(factor, max(0.0, 1.0 - budget_used)) if schedule == "linear_budget" else factor
    return ramp
