"""Batched greedy decoding through the models' ``encode`` / ``decode_step`` protocol.

Greedy search and sampling both emit one token per step and per sentence; they share
:func:`stepwise_decode` and differ only in how a token is chosen from the step's log-probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.data.vocab import BOS_ID, EOS_ID, PAD_ID

__all__ = ["Hypothesis", "greedy_decode", "stepwise_decode", "length_limits", "check_sources", "mask_unproducible",
           "UNPRODUCIBLE"]

# Tokens a decoder must never emit: training never asks for them, but an untrained (or odd) model
# may still rank them first, and a <pad> in the output would be mistaken for "nothing here".
UNPRODUCIBLE = (PAD_ID, BOS_ID)


@dataclass
class Hypothesis:
    """One output sentence.

    ``tokens``: ids without ``<bos>``/``<eos>``; ``score``: summed log-probability, ``<eos>`` included.
    ``complete``: True when the output ended with ``<eos>``, False when it was cut at the length limit.
    ``cross_attentions``: when asked, one (heads, steps, src_len) tensor per layer (``src_len`` is this
    sentence's own length, without the batch's padding), one row per decoding step: ``steps =
    len(tokens) + 1`` when complete (the last row produced ``<eos>``), else ``len(tokens)``. Row ``i``
    is the attention of the step that produced token ``i``.
    ``normalized_score``: what beam search ranked by (``score`` divided by the length penalty); None
    from greedy search and sampling.
    """

    tokens: list[int]
    score: float
    cross_attentions: tuple[torch.Tensor, ...] | None = None
    complete: bool = True
    normalized_score: float | None = None


def length_limits(src_lengths: torch.Tensor, max_len_ratio: float, max_len: int) -> torch.Tensor:
    """Per-sentence output limit in decoding steps: ``ceil(ratio * source length) + 5``, at most ``max_len``.

    The ``+ 5`` keeps very short sources ("Go." -> "Va !") from being cut.
    """
    limits = (src_lengths.float() * max_len_ratio).ceil().long() + 5
    return limits.clamp(min=1, max=max_len)


def check_sources(src: torch.Tensor, src_lengths: torch.Tensor) -> None:
    """Refuse empty sources (no encoder can read them; the Translator answers them without a model)."""
    if src.dim() != 2 or src_lengths.shape != (src.size(0),):
        raise ValueError(f"src must be (B, S) and src_lengths (B,); got {tuple(src.shape)} and "
                         f"{tuple(src_lengths.shape)}")
    if bool((src_lengths < 1).any()):
        rows = (src_lengths < 1).nonzero().flatten().tolist()
        raise ValueError(f"source rows {rows[:5]} are empty; every source needs at least one token")


def mask_unproducible(log_probs: torch.Tensor) -> torch.Tensor:
    """``log_probs`` (..., V) with ``<pad>`` and ``<bos>`` set to -inf, so no search picks them."""
    log_probs = log_probs.clone()
    log_probs[..., list(UNPRODUCIBLE)] = float("-inf")
    return log_probs


def argmax_token(log_probs: torch.Tensor) -> torch.Tensor:
    """Greedy choice: (B, V) -> (B,)."""
    return mask_unproducible(log_probs).argmax(dim=-1)


@torch.no_grad()
def stepwise_decode(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor,
                    choose: Callable[[torch.Tensor], torch.Tensor], max_len_ratio: float = 1.5,
                    max_len: int = 100, return_attention: bool = False) -> list[Hypothesis]:
    """Emit one token per step for every sentence, picked by ``choose`` from (B, V) log-probabilities.

    ``src``: (B, S) padded with 0; ``src_lengths``: (B,). Scores are the model's own log-probabilities
    of the chosen tokens, whatever ``choose`` did (e.g. a sampling temperature).
    """
    check_sources(src, src_lengths)
    batch = src.size(0)
    limits = length_limits(src_lengths, max_len_ratio, max_len).to(src.device)
    state = model.encode(src, src_lengths)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    scores = torch.zeros(batch, device=src.device)
    steps: list[torch.Tensor] = []
    attention_steps: list[tuple[torch.Tensor, ...]] = []
    for t in range(int(limits.max())):
        out = model.decode_step(prev, state, return_attention=return_attention)
        log_probs = torch.log_softmax(out.logits.float(), dim=-1)  # (B, V)
        token = choose(log_probs)  # (B,)
        # Rows already finished emit <pad>; a row at its limit ends here, cut (no <eos>).
        token = torch.where(finished, torch.full_like(token, PAD_ID), token)
        scores += torch.where(finished, 0.0, log_probs.gather(1, token[:, None]).squeeze(1))
        steps.append(token)
        if return_attention:
            attention_steps.append(out.cross_attentions)
        finished |= (token == EOS_ID) | (t + 1 >= limits)
        state, prev = out.state, token
        if bool(finished.all()):
            break
    tokens = torch.stack(steps, dim=1).tolist()  # (B, T)
    lengths = src_lengths.tolist()
    return [_hypothesis(i, tokens[i], float(scores[i]), attention_steps, lengths[i]) for i in range(batch)]


@torch.no_grad()
def greedy_decode(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor, max_len_ratio: float = 1.5,
                  max_len: int = 100, return_attention: bool = False) -> list[Hypothesis]:
    """Greedy search for a batch. ``src``: (B, S) padded with 0; ``src_lengths``: (B,)."""
    return stepwise_decode(model, src, src_lengths, argmax_token, max_len_ratio, max_len, return_attention)


def _hypothesis(row: int, ids: list[int], score: float, attention_steps: list[tuple[torch.Tensor, ...]],
                src_len: int) -> Hypothesis:
    """Cut ``ids`` (one row of emitted tokens, <pad> after the end) and gather this row's attention."""
    complete = EOS_ID in ids
    kept = ids.index(EOS_ID) if complete else (ids.index(PAD_ID) if PAD_ID in ids else len(ids))
    steps = kept + 1 if complete else kept
    attentions = None
    if attention_steps:
        layers = len(attention_steps[0])
        # each step: (B, heads, 1, S) per layer -> (heads, steps, S)
        attentions = tuple(torch.cat([attention_steps[t][layer][row, :, :, :src_len] for t in range(steps)], dim=1)
                           for layer in range(layers))
    return Hypothesis(ids[:kept], score, attentions, complete=complete)
