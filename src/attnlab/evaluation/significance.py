"""Paired bootstrap resampling: is system A's BLEU (or chrF) really different from the baseline's?

The test of Koehn (2004) as sacreBLEU runs it (``sacrebleu REF -i BASELINE SYSTEM --paired-bs``),
so our p-values are the ones sacreBLEU prints for the same files and seed: both systems are scored
on the same ``n_samples`` resamples of the test sentences (drawn with numpy's ``default_rng(seed)``,
sacreBLEU's default seed 12345); the p-value is the share of resamples whose score difference,
centred on its bootstrap mean, exceeds the observed difference, with the usual +1 correction.
One deliberate difference: identical outputs get p = 1, where sacreBLEU's formula gives
``1 / (n_samples + 1)``, which would mark a variant that changed nothing as significant.

Per-sentence sufficient statistics (n-gram matches, lengths) come from sacreBLEU's metric objects,
configured exactly as :func:`attnlab.evaluation.scores.score_corpus` configures them; the
resampling is ours and vectorised: each resample's statistics are one matrix product of resample
counts and sentence statistics. The statistics calls are sacreBLEU internals
(``_extract_corpus_statistics``, ``_compute_score_from_stats``); the tests compare the p-values
with sacreBLEU's own ``PairedTest`` and command line, so a change there shows up at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics.base import Metric

from attnlab.evaluation.scores import reference_streams, sacrebleu_metric

__all__ = ["PairedResult", "paired_bootstrap", "DEFAULT_SEED", "DEFAULT_SAMPLES"]

DEFAULT_SEED = 12345  # sacreBLEU's default (SACREBLEU_SEED)
DEFAULT_SAMPLES = 1000  # sacreBLEU's default for --paired-bs


@dataclass(frozen=True)
class PairedResult:
    """One metric's comparison: scores on the full set, the p-value, and the system's bootstrap mean
    and 95% confidence half-width; ``signature`` is sacreBLEU's, with the seed and resample count."""

    metric: str
    score: float
    baseline_score: float
    p_value: float
    mean: float
    ci: float
    signature: str


def paired_bootstrap(
    hypotheses: Sequence[str],
    baseline: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    metrics: Sequence[str] = ("bleu", "chrf"),
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, PairedResult]:
    """Compare ``hypotheses`` with the ``baseline``'s on the same ``references``: one string per sentence, or a
    list of references per sentence (multi-reference; the sentences, not the references, are resampled)."""
    if not len(hypotheses) == len(baseline) == len(references):
        raise ValueError(f"paired bootstrap needs one line each: {len(hypotheses)} hypotheses, {len(baseline)} "
                         f"baseline lines, {len(references)} references")
    if not references:
        raise ValueError("paired bootstrap needs at least one sentence")
    counts = _resample_counts(len(references), n_samples, seed)  # (n_samples, n)
    results = {}
    for name in metrics:
        metric = sacrebleu_metric(name)
        scores = {}
        for side, lines in (("system", hypotheses), ("baseline", baseline)):
            stats = np.asarray(metric._extract_corpus_statistics(list(lines), reference_streams(references)),
                               dtype=np.float64)
            full = metric._compute_score_from_stats(list(stats.sum(0))).score
            scores[side] = (full, _resampled_scores(metric, counts, stats))
        (score, system), (baseline_score, base) = scores["system"], scores["baseline"]
        differences = np.abs(system - base)
        centred = differences - differences.mean()
        p_value = (int(np.sum(centred > abs(score - baseline_score))) + 1) / (n_samples + 1)
        if list(hypotheses) == list(baseline):
            p_value = 1.0  # sacreBLEU says 1 / (n_samples + 1) here, "significant" for two identical outputs
        mean, ci = _mean_and_ci(system)
        signature = metric.get_signature()
        signature.update("seed", str(seed))
        signature.update("bs", n_samples)
        results[name] = PairedResult(name, float(score), float(baseline_score), p_value, mean, ci, str(signature))
    return results


def _resample_counts(n: int, n_samples: int, seed: int) -> np.ndarray:
    """How often each sentence is drawn in each resample, (n_samples, n): the draws sacreBLEU makes."""
    draws = np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)  # (n_samples, n)
    flat = draws + n * np.arange(n_samples)[:, None]  # a distinct bin per (resample, sentence)
    return np.bincount(flat.ravel(), minlength=n_samples * n).reshape(n_samples, n)


def _resampled_scores(metric: Metric, counts: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """The metric on every resample. Statistics are integer counts, so their sums are exact; they are
    scored in float32 as sacreBLEU scores them, which keeps the two p-values identical."""
    totals = (counts.astype(np.float64) @ stats).astype(np.float32)  # (n_samples, n_stats)
    return np.array([metric._compute_score_from_stats(row).score for row in totals])


def _mean_and_ci(scores: np.ndarray) -> tuple[float, float]:
    """Mean and half the width of the central 95% of the resampled scores (sacreBLEU's convention)."""
    ordered = np.sort(scores)
    low = len(ordered) // 40
    return float(ordered.mean()), float(0.5 * (ordered[len(ordered) - low - 1] - ordered[low]))
