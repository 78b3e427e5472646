"""Per-head statistics of a run's cross-attention over many test sentences, for the comparison report.

For each of ``sentences`` test sentences (distinct sources spread over the test set), the reference
is forced through the run's best model and every cross-attention head's map is summarised with
:func:`attnlab.attention_view.stats.head_stats` (entropy, max weight, diagonal share, argmax on the diagonal),
plus two numbers that show a head that has collapsed onto one source position:

first_token_share
    mean weight on the first source token;
one_position_share
    share of target rows whose largest weight falls on the sentence's most attended source
    position (1.0 when every row looks at the same place; about 1 / length for a monotone alignment).

The numbers are averaged over the sentences: one row per (layer, head).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.attention_view.stats import head_stats
from attnlab.data.errors import DataError
from attnlab.decoding.translator import Translator
from attnlab.evaluation.attention import translator_attention
from attnlab.evaluation.references import spread_rows

__all__ = ["SUMMARY_STATS", "cross_attention_summary"]

SUMMARY_STATS = ("entropy", "max_weight", "diagonal_share", "argmax_diagonal_agreement", "first_token_share",
                 "one_position_share")


def _collapse(weights: np.ndarray) -> dict[str, float]:
    """weights (q, k) of one head and sentence, rows summing to 1."""
    best = weights.argmax(axis=1)  # (q,)
    return {"first_token_share": float(weights[:, 0].mean()),
            "one_position_share": float(np.bincount(best).max() / len(best))}


def cross_attention_summary(run_dir: str | Path, sources: Sequence[str], references: Sequence[str],
                            sentences: int = 100) -> list[dict[str, Any]]:
    """Mean statistics per (layer, head) of the run's cross-attention, forced on ``sentences`` test references.

    An RNN without attention has none: the result is empty.
    """
    translator = Translator.from_run(run_dir, device="cpu")
    model = translator.cfg.model
    if model.arch == "rnn" and model.attention == "none":
        return []
    sums: dict[tuple[int, int], dict[str, float]] = {}
    count = 0
    for row in spread_rows(sources, sentences):
        try:
            record, _ = translator_attention(translator, sources[row], reference=references[row], kind="cross")
        except DataError:  # a reference longer than the model's limit: leave it out
            continue
        count += 1
        for layer, maps in enumerate(record.layers("cross")):
            for head, weights in enumerate(maps):
                stats = head_stats(weights, record.tgt_tokens, record.src_tokens, alignment=True) | _collapse(weights)
                totals = sums.setdefault((layer, head), dict.fromkeys(SUMMARY_STATS, 0.0))
                for name in SUMMARY_STATS:
                    totals[name] += stats[name]
    return [{"layer": layer, "head": head, "sentences": count, **{k: v / count for k, v in totals.items()}}
            for (layer, head), totals in sorted(sums.items())]
