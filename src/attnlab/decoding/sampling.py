"""Batched ancestral sampling with a temperature and an optional top-k cut, reproducible with a seed."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from attnlab.decoding.greedy import Hypothesis, mask_unproducible, stepwise_decode

__all__ = ["sample_decode", "sampling_chooser"]


def sampling_chooser(temperature: float = 1.0, top_k: int = 0,
                     generator: torch.Generator | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A token chooser for :func:`stepwise_decode`: (B, V) log-probabilities -> (B,) sampled ids.

    ``temperature`` divides the log-probabilities (< 1 sharpens, > 1 flattens); ``top_k`` > 0 keeps
    only the k most likely tokens before sampling (``top_k=1`` is greedy search).
    """
    if temperature <= 0:
        raise ValueError(f"temperature is {temperature}; it must be > 0 (use greedy search for 0)")
    if top_k < 0:
        raise ValueError(f"top_k is {top_k}; it must be >= 0 (0 keeps every token)")

    def choose(log_probs: torch.Tensor) -> torch.Tensor:
        logits = mask_unproducible(log_probs) / temperature  # (B, V)
        if 0 < top_k < logits.size(-1):
            kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)

    return choose


@torch.no_grad()
def sample_decode(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor, temperature: float = 1.0,
                  top_k: int = 0, seed: int | None = None, max_len_ratio: float = 1.5, max_len: int = 100,
                  return_attention: bool = False) -> list[Hypothesis]:
    """One sampled translation per sentence of ``src`` (B, S), ``src_lengths`` (B,).

    The same ``seed`` gives the same samples for the same batch. ``Hypothesis.score`` is the model's
    own log-probability of the sample (temperature 1, no top-k), so samples compare with beam output.
    """
    generator = None
    if seed is not None:
        generator = torch.Generator(device=src.device)
        generator.manual_seed(seed)
    choose = sampling_chooser(temperature, top_k, generator)
    return stepwise_decode(model, src, src_lengths, choose, max_len_ratio, max_len, return_attention)
