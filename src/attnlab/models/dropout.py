"""Dropout with a cheaper random mask, for the Transformer.

``nn.Dropout`` on the CPU draws one random number per element (``bernoulli_``); in a training step of
the Multi30k Transformer that was 8% of the time, more than every LayerNorm and softmax together.
:class:`MaskDropout` draws one 64-bit integer per four elements instead and reads each element's
decision from 15 of its bits: an element is dropped when its 15 bits fall below ``round(p * 2**15)``,
so the rate is ``p`` to within ``2**-16`` (0.100006 for 0.1). The mask is a bool tensor, as small as
the one ``F.dropout`` keeps for backward. Same contract otherwise: kept elements are scaled by
``1 / (1 - p)``, evaluation mode is the identity, and the mask comes from torch's global generator,
so ``torch.manual_seed`` makes it reproducible.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["MaskDropout", "keep_mask", "relu_dropout"]

_LANE_BITS = 15  # bits read per element: the low 15 of each 16-bit lane (the top lane's 16th bit is always 0)


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | None = None) -> Tensor:
    """A bool mask of ``shape``, True (keep) with probability ``1 - p`` to within ``2**-16``."""
    n = math.prod(shape)
    draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()  # 63 random bits each
    lanes = draws.view(torch.int16)[:n]  # (n,) four 16-bit lanes per draw
    threshold = round(p * (1 << _LANE_BITS))
    return lanes.bitwise_and_((1 << _LANE_BITS) - 1).ge(threshold).view(shape)


class _ScaleKept(torch.autograd.Function):
    """``x * keep * scale``, saving only the bool mask for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, x, 0.0).mul_(scale)  # the mask stays bool: no float copy of it

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0.0).mul_(ctx.scale), None, None


class _ReluDropout(torch.autograd.Function):
    """``dropout(relu(x))`` in one function that keeps only its output for backward.

    The gradient passes where the output is positive (the input was positive and kept), so neither
    the ReLU's output nor the mask is saved; the output itself is what the next linear layer keeps.
    """

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        out = torch.where(keep, x, 0.0).relu_().mul_(scale)
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (out,) = ctx.saved_tensors
        # ReLU's own backward kernel, fed the output: one pass, where ``torch.where(out > 0, ...)`` takes two
        return torch.ops.aten.threshold_backward(grad, out, 0).mul_(ctx.scale), None, None


def relu_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``MaskDropout(p)(relu(x))`` with one pass less and no mask kept (the feed-forward network's middle)."""
    if not training or p == 0.0:
        return torch.relu(x)
    if p == 1.0:
        return torch.zeros_like(x)
    return _ReluDropout.apply(x, keep_mask(x.shape, p, x.device), 1.0 / (1.0 - p))


class MaskDropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, same state dict: none) drawing its mask with :func:`keep_mask`."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        return _ScaleKept.apply(x, keep_mask(x.shape, self.p, x.device), 1.0 / (1.0 - self.p))
