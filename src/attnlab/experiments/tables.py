"""The comparison report's tables: one row of numbers per variant, its cells, and the table blocks.

Numbers are kept per run (one entry per seed) in the row dictionaries, which ``report.json`` holds;
cells show one value, or mean ± sample standard deviation over seeds.

Significance with seeds: each seed of a variant is compared with the baseline's run of the same seed
(in order where they share none) by a paired bootstrap over test sources (all references of each
source), one p-value per seed pair. A difference is marked significant (*) only when every seed pair
gives p < 0.05, so one lucky seed does not make a result; the spread of the scores over seeds is in
the ± column beside it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from attnlab.evaluation.significance import PairedResult
from attnlab.experiments.attention_summary import SUMMARY_STATS
from attnlab.experiments.run_results import RunResults, ends_the_same, flat_config
from attnlab.models.summary import format_count
from attnlab.viz.report import Table

__all__ = ["config_differences", "variant_row", "number_cell", "size_table", "scores_table", "attention_table",
           "equal_time_table", "SIGNIFICANCE"]

SIGNIFICANCE = 0.05
Tests = list[dict[str, PairedResult] | None]


def config_differences(run: RunResults, baseline: RunResults) -> list[str]:
    """``key=value`` for every config key where ``run`` differs from ``baseline``; not the epoch caps when each
    run would have ended the same under the other's (early stopping ended both before either cap)."""
    base = flat_config(baseline.config)
    caps = run.config.train.epochs, baseline.config.train.epochs
    same_end = ends_the_same(run.summary, caps[0], caps[1]) and ends_the_same(baseline.summary, caps[1], caps[0])
    return [f"{key}={value if isinstance(value, str) else json.dumps(value)}"
            for key, value in flat_config(run.config).items()
            if base[key] != value and not (key == "train.epochs" and same_end)]


def variant_row(name: str, runs: list[RunResults], baseline: list[RunResults], tests: Tests | None) -> dict[str, Any]:
    """The numbers of one variant; every measured value is a list with one entry per run."""
    parameters = runs[0].summary.get("parameters", {})

    def values(get: Callable[[RunResults], Any]) -> list[Any]:
        return [get(run) for run in runs]

    scores = {f"{split}_{metric}{suffix}": values(lambda r, s=split, k=f"{metric}{suffix}": getattr(r, s).get(k))
              for split in ("val", "test") for metric in ("bleu", "chrf") for suffix in ("", "_1ref")}
    return {
        "variant": name,
        "runs": [str(run.root) for run in runs],
        "baseline": runs is baseline,
        "differences": [] if runs is baseline else config_differences(runs[0], baseline[0]),
        "parameters": {side: parameters.get(key) for side, key in
                       (("encoder", "encoder_side"), ("decoder", "decoder_side"), ("total", "total"))},
        "seconds_per_epoch": values(lambda r: r.seconds_per_epoch),
        "tokens_per_sec": values(lambda r: r.summary.get("tokens_per_sec")),
        "peak_memory_mb": values(lambda r: r.summary.get("peak_memory_mb")),
        "train_time_s": values(lambda r: r.summary.get("train_time_s")),
        "epochs": values(lambda r: r.summary.get("epochs")),
        "best_epoch": values(lambda r: r.summary.get("best", {}).get("epoch")),
        "best_val_loss": values(lambda r: r.best("val/loss")),
        **scores,
        "p_bleu": [t["bleu"].p_value if t else None for t in tests] if tests is not None else [],
        "p_chrf": [t["chrf"].p_value if t else None for t in tests] if tests is not None else [],
        "signatures": {"bleu": sorted({r.test["bleu_signature"] for r in runs}),
                       "chrf": sorted({r.test["chrf_signature"] for r in runs}),
                       "bleu_1ref": sorted({r.test.get("bleu_signature_1ref", "") for r in runs} - {""})},
    }


def number_cell(values: Sequence[float | None], digits: int) -> str:
    """One value, or mean ± sample standard deviation over seeds; '–' when nothing was measured."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return "–"
    if len(present) == 1:
        return f"{present[0]:,.{digits}f}"
    return f"{statistics.mean(present):,.{digits}f} ± {statistics.stdev(present):,.{digits}f}"


def _p_cell(row: dict[str, Any], key: str) -> str:
    if row["baseline"]:
        return "—"
    values = row[key]
    if not values:
        return "–"
    shown = " / ".join("n/a" if p is None else f"{p:.3f}" for p in values)
    significant = all(p is not None and p < SIGNIFICANCE for p in values)
    return shown + ("*" if significant else "")


def size_table(rows: list[dict[str, Any]]) -> Table:
    header = ["variant", "runs", "differs from baseline", "params enc / dec / total", "s / epoch", "tokens/s",
              "peak MB", "epochs (best)", "train time s"]
    body = []
    for row in rows:
        p = row["parameters"]
        params = " / ".join(format_count(p[k]) if p[k] is not None else "?" for k in ("encoder", "decoder", "total"))
        differences = "(baseline)" if row["baseline"] else ", ".join(row["differences"]) or "(same config)"
        epochs = f"{number_cell(row['epochs'], 1)} ({number_cell(row['best_epoch'], 1)})"
        body.append([row["variant"], str(len(row["runs"])), differences, params,
                     number_cell(row["seconds_per_epoch"], 1), number_cell(row["tokens_per_sec"], 0),
                     number_cell(row["peak_memory_mb"], 0), epochs, number_cell(row["train_time_s"], 0)])
    return Table(header, body)


def scores_table(rows: list[dict[str, Any]]) -> Table:
    header = ["variant", "val BLEU", "val chrF", "test BLEU", "test chrF", "test BLEU 1-ref", "test chrF 1-ref",
              "val BLEU 1-ref", "val chrF 1-ref", "p BLEU", "p chrF"]
    keys = ("val_bleu", "val_chrf", "test_bleu", "test_chrf", "test_bleu_1ref", "test_chrf_1ref", "val_bleu_1ref",
            "val_chrf_1ref")
    body = [[row["variant"], *(number_cell(row[k], 2) for k in keys), _p_cell(row, "p_bleu"), _p_cell(row, "p_chrf")]
            for row in rows]
    return Table(header, body)


def attention_table(summaries: dict[str, list[list[dict[str, Any]]]]) -> Table | None:
    """``summaries[variant]``: per run, the rows of :func:`cross_attention_summary`; one table row per
    (variant, layer, head), mean ± sd over seeds."""
    header = ["variant", "layer.head", "entropy", "max weight", "diagonal share", "argmax on diagonal",
              "first-token share", "one-position share"]
    body = []
    for variant, runs in summaries.items():
        heads = sorted({(r["layer"], r["head"]) for rows in runs for r in rows})
        for layer, head in heads:
            per_run = [next((r for r in rows if (r["layer"], r["head"]) == (layer, head)), None) for rows in runs]
            cells = [number_cell([r[name] if r else None for r in per_run], 3) for name in SUMMARY_STATS]
            body.append([variant, f"{layer}.{head}", *cells])
    return Table(header, body) if body else None


def equal_time_table(curves: dict[str, list[list[tuple[float, float]]]]) -> Table | None:
    """The best validation score each variant reached within the same training wall time: at a quarter,
    half, three quarters and all of the shortest run's time, where every run is still training.

    ``curves[variant]``: per run, ``(seconds, score)`` at each validation. A cell is mean ± sd over the
    seeds, or '–' where a seed had not validated yet (a mean over fewer seeds would mislead).
    """
    ends = [points[-1][0] for runs in curves.values() for points in runs if points]
    if not ends:
        return None
    times = [min(ends) * share for share in (0.25, 0.5, 0.75, 1.0)]
    body = []
    for variant, runs in curves.items():
        cells = []
        for limit in times:
            best = [max((score for seconds, score in points if seconds <= limit), default=None) for points in runs]
            cells.append(number_cell(best, 2) if None not in best else "–")
        body.append([variant, *cells])
    return Table(["variant", *(f"{limit:,.0f} s" for limit in times)], body)
