"""Token-level cross-entropy that ignores padding, with optional label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.data.vocab import PAD_ID

__all__ = ["sequence_loss"]


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed cross-entropy over real target tokens.

    ``logits``: (B, T, V); ``targets``: (B, T) with ``<pad>`` = 0 where there is no token.
    Returns a scalar sum; divide by the number of real tokens for the mean.
    """
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD_ID,
                           reduction="sum", label_smoothing=label_smoothing)
