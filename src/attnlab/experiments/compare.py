"""``compare_runs``: one report comparing finished runs, as a table, curves, translations and attention.

Runs with the same name are seeds of one variant: their numbers are shown as mean ± sample standard
deviation. By default a run's name is its directory's, without a ``-seedN`` ending (``lstm`` and
``lstm-seed43`` are two seeds of ``lstm``). Written to ``out_dir``::

    report.md  report.html      the report; the HTML embeds every image and needs no network
    report.json                 the table's numbers, one entry per variant (a list of values per seed)
    curves-epoch.png curves-time.png
    attention/NAME-cross.png    one cross-attention map per run, all for the same test sentence

The table gives per variant: its config difference from the baseline (dotted keys), parameters
(encoder side / decoder side / total), seconds per epoch, target tokens per second, peak memory,
the best validation loss and perplexity, validation and test BLEU and chrF (the runs' own
``evaluate`` results, best checkpoint, their ``decode.beam``), and the p-value of a paired
bootstrap test of its test translations against the baseline's (:mod:`.significance`).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attnlab.config import config_to_dict
from attnlab.data.errors import DataError
from attnlab.evaluation.attention import attention_report
from attnlab.evaluation.evaluate import split_texts
from attnlab.evaluation.references import GroupedReferences, spread_rows
from attnlab.evaluation.significance import DEFAULT_SAMPLES, PairedResult, paired_bootstrap
from attnlab.experiments.run_results import RunResults, flat_config, load_run_results, timed_metrics
from attnlab.models.summary import format_count
from attnlab.rundir import RunError
from attnlab.viz import plot_curves, save_figure
from attnlab.viz.report import Block, Image, Preformatted, Section, Table, write_report

__all__ = ["compare_runs", "group_name", "config_differences"]

Groups = dict[str, list[RunResults]]
Texts = dict[Path, tuple[list[str], list[str]]]
CURVE_METRICS = ("train/epoch_loss", "val/loss", "val/ppl", "val/bleu")
_HEADER = ["variant", "runs", "differs from baseline", "params enc / dec / total", "s / epoch", "tokens/s",
           "peak MB", "best val loss", "best val ppl", "val BLEU", "val chrF", "test BLEU", "test chrF", "p BLEU",
           "p chrF"]


def group_name(run_dir: str | Path) -> str:
    """The variant a run directory belongs to: its name without a ``-seedN`` ending."""
    return re.sub(r"-seed\d+$", "", Path(run_dir).name)


def compare_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    baseline: str | None = None,
    names: Sequence[str] | None = None,
    title: str | None = None,
    sentences: int = 5,
    n_samples: int = DEFAULT_SAMPLES,
    log: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Compare finished runs (evaluating val and test where not yet done) and write the report.

    ``names``: one variant name per run (default: :func:`group_name`); ``baseline``: the variant the
    others are compared with (default: the first). Returns the paths written, by kind.
    """
    if not run_dirs:
        raise RunError("compare needs at least one run directory")
    if names is not None and len(names) != len(run_dirs):
        raise RunError(f"{len(names)} names for {len(run_dirs)} run directories")
    groups = _load_groups(run_dirs, names or [group_name(d) for d in run_dirs], log or (lambda _: None))
    baseline = baseline or next(iter(groups))
    if baseline not in groups:
        raise RunError(f"baseline '{baseline}' is not one of the compared variants {list(groups)}")
    texts = _test_texts([run for runs in groups.values() for run in runs])
    tests = {name: _significance(runs, groups[baseline], texts, n_samples)
             for name, runs in groups.items() if name != baseline}
    rows = [_row(name, runs, groups[baseline], tests.get(name)) for name, runs in groups.items()]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = [_results_section(rows, groups, baseline, tests, n_samples),
                _curves_section(groups, out), *_sentence_sections(groups, baseline, texts, sentences, out)]
    title = title or f"Comparison of {len(groups)} variant{'s' * (len(groups) > 1)}"
    markdown, page = write_report(title, sections, out)
    table = out / "report.json"
    table.write_text(json.dumps({"title": title, "baseline": baseline, "variants": rows}, indent=2), encoding="utf-8")
    return {"markdown": markdown, "html": page, "json": table, "dir": out}


def _load_groups(run_dirs: Sequence[str | Path], names: Sequence[str], log: Callable[[str], None]) -> Groups:
    groups: Groups = {}
    for run_dir, name in zip(run_dirs, names, strict=True):
        log(f"reading {run_dir} (evaluating val and test if needed)")
        groups.setdefault(str(name), []).append(load_run_results(run_dir))
    for name, runs in groups.items():
        first = flat_config(runs[0].config)
        for other in runs[1:]:
            differ = sorted(k for k, v in flat_config(other.config).items() if first[k] != v and k != "train.seed")
            if differ:
                raise RunError(f"runs {runs[0].root} and {other.root} are both named '{name}' but differ in "
                               f"{differ[:4]}, not just the seed; give them distinct names")
        for run in runs:  # labels in curves, translations and file names
            run.name = name if len(runs) == 1 else f"{name}-seed{run.config.train.seed}"
    return groups


def _test_texts(runs: list[RunResults]) -> Texts:
    """Each run's test sources and references (read once per distinct data config)."""
    by_data: dict[str, tuple[list[str], list[str]]] = {}
    texts: Texts = {}
    for run in runs:
        key = json.dumps(config_to_dict(run.config)["data"], sort_keys=True)
        if key not in by_data:
            by_data[key] = split_texts(run.config, "test", run.run)
        texts[run.root] = by_data[key]
        if len(run.test_hypotheses) != len(by_data[key][1]):
            raise RunError(f"{run.root}: {len(run.test_hypotheses)} test translations in {run.test['output_dir']} "
                           f"but the test split has {len(by_data[key][1])} sentences; evaluate the run again")
    return texts


def _grouped(run: RunResults, texts: Texts) -> GroupedReferences:
    sources, references = texts[run.root]
    return GroupedReferences.from_pairs(list(zip(sources, references, strict=True)),
                                        by_source=run.config.data.corpus != "multi30k")


def _significance(runs: list[RunResults], baseline: list[RunResults], texts: Texts,
                  n_samples: int) -> list[dict[str, PairedResult] | None]:
    """Seed k of a variant against seed k of the baseline, resampling source sentences with all their
    references (the headline, multi-reference scores); None where their test sets differ."""
    results: list[dict[str, PairedResult] | None] = []
    for run, base in zip(runs, baseline, strict=False):
        if texts[run.root] != texts[base.root]:
            results.append(None)
            continue
        grouped = _grouped(run, texts)
        first = grouped.first_pairs
        results.append(paired_bootstrap([run.test_hypotheses[i] for i in first],
                                        [base.test_hypotheses[i] for i in first], grouped.references,
                                        n_samples=n_samples))
    return results


def config_differences(run: RunResults, baseline: RunResults) -> list[str]:
    """``key=value`` for every config key where ``run`` differs from ``baseline``."""
    base = flat_config(baseline.config)
    return [f"{key}={value if isinstance(value, str) else json.dumps(value)}"
            for key, value in flat_config(run.config).items() if base[key] != value]


def _row(name: str, runs: list[RunResults], baseline: list[RunResults],
         tests: list[dict[str, PairedResult] | None] | None) -> dict[str, Any]:
    """The numbers of one variant; every measured value is a list with one entry per run."""
    parameters = runs[0].summary.get("parameters", {})

    def values(get: Callable[[RunResults], float | None]) -> list[float | None]:
        return [get(run) for run in runs]

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
        "best_val_loss": values(lambda r: r.best("val/loss")),
        "best_val_ppl": values(lambda r: r.best("val/ppl")),
        "val_bleu": values(lambda r: r.val["bleu"]), "val_chrf": values(lambda r: r.val["chrf"]),
        "test_bleu": values(lambda r: r.test["bleu"]), "test_chrf": values(lambda r: r.test["chrf"]),
        "p_bleu": [t["bleu"].p_value if t else None for t in tests] if tests is not None else [],
        "p_chrf": [t["chrf"].p_value if t else None for t in tests] if tests is not None else [],
        "signatures": {"bleu": sorted({r.test["bleu_signature"] for r in runs}),
                       "chrf": sorted({r.test["chrf_signature"] for r in runs})},
    }


def _number_cell(values: list[float | None], digits: int) -> str:
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
    return " / ".join("n/a" if p is None else f"{p:.4f}{'*' if p < 0.05 else ''}" for p in row[key]) or "–"


def _table_row(row: dict[str, Any]) -> list[str]:
    p = row["parameters"]
    params = " / ".join(format_count(p[k]) if p[k] is not None else "?" for k in ("encoder", "decoder", "total"))
    differences = "(baseline)" if row["baseline"] else ", ".join(row["differences"]) or "(same config)"
    cells = [row["variant"], str(len(row["runs"])), differences, params,
             _number_cell(row["seconds_per_epoch"], 1), _number_cell(row["tokens_per_sec"], 0),
             _number_cell(row["peak_memory_mb"], 0), _number_cell(row["best_val_loss"], 3),
             _number_cell(row["best_val_ppl"], 2)]
    cells += [_number_cell(row[k], 2) for k in ("val_bleu", "val_chrf", "test_bleu", "test_chrf")]
    return cells + [_p_cell(row, "p_bleu"), _p_cell(row, "p_chrf")]


def _results_section(rows: list[dict[str, Any]], groups: Groups, baseline: str,
                     tests: dict[str, list[dict[str, PairedResult] | None]], n_samples: int) -> Section:
    seeds = max(len(runs) for runs in groups.values())
    first = groups[baseline][0].config
    notes = (f"Baseline: {baseline}. Validation and test scores are sacreBLEU on each run's own translations "
             f"(best checkpoint, beam {first.decode.beam} for the baseline). p: paired bootstrap resampling of the "
             f"test set against the baseline's translations ({n_samples} resamples); * marks p < 0.05. "
             "Parameters: encoder side / decoder side / total; s / epoch and tokens/s are training wall time.")
    if seeds > 1:
        notes += " Several seeds: mean ± sample standard deviation, and one p-value per seed pair."
    signatures = sorted({f"{metric}: {s}" for row in rows for metric, sigs in row["signatures"].items() for s in sigs})
    bootstrap = {r[m].signature for results in tests.values() for r in results if r for m in ("bleu", "chrf")}
    lines = signatures + [f"paired bootstrap: {s}" for s in sorted(bootstrap)]
    table = Table(_HEADER, [_table_row(row) for row in rows])
    return Section("Results", [notes, table, "sacreBLEU signatures:", Preformatted("\n".join(lines))])


def _curves_section(groups: Groups, out: Path) -> Section:
    rows = {run.name: timed_metrics(run) for runs in groups.values() for run in runs}
    blocks: list[Block] = []
    for x, what in (("epoch", "epoch"), ("time", "training wall-clock time")):
        try:
            figure = plot_curves(rows, CURVE_METRICS, x=x)
        except ValueError as err:  # e.g. no perf.csv, so no time axis
            blocks.append(f"No curves against {what}: {err}.")
            continue
        [path] = save_figure(figure, out / f"curves-{x}", ["png"], dpi=100)
        blocks.append(Image(path, f"Training loss, validation loss, perplexity and BLEU against {what}."))
    return Section("Training curves", blocks)


def _sentence_sections(groups: Groups, baseline: str, texts: Texts, count: int, out: Path) -> list[Section]:
    """The same test sentences translated by every run, and one cross-attention map per run."""
    runs = [run for members in groups.values() for run in members]
    sources, references = texts[groups[baseline][0].root]
    rows = spread_rows(sources, count)
    if not rows:
        return []
    translations: list[Block] = []
    for i in rows:
        lines = [["source", sources[i]], ["reference", references[i]]]
        lines += [[run.name, run.test_hypotheses[i] if texts[run.root][0] == sources else "(another test set)"]
                  for run in runs]
        translations.append(Table(["", f"test sentence {i + 1}"], lines))
    return [Section("Translations", translations), _attention_section(runs, rows, sources, references, out)]


def _attention_section(runs: list[RunResults], rows: list[int], sources: list[str], references: list[str],
                       out: Path) -> Section:
    """Cross-attention of one test sentence, forced on its reference, so every map has the same rows."""
    row = next((i for i in rows if len(references[i].split()) <= len(sources[i].split())), rows[0])
    blocks: list[Block] = [f"Source: {sources[row]}  —  reference (forced through each decoder): {references[row]}"]
    for run in runs:
        try:
            report = attention_report(run.root, sources[row], reference=references[row], kind="cross",
                                      formats=("png",), out_dir=out / "attention", name=run.name, dpi=100)
        except (RunError, DataError) as err:
            blocks.append(f"{run.name}: no cross-attention map ({err}).")
            continue
        cross = next(p for p in report.files if p.name.endswith("-cross.png"))
        blocks.append(Image(cross, f"{run.name}: cross-attention"))
    return Section("Cross-attention", blocks)
