"""``compare_runs``: one report comparing finished runs, as a table, curves, translations and attention.

Runs with the same name are seeds of one variant: their numbers are shown as mean ± sample standard
deviation. By default a run's name is its directory's, without a ``-seedN`` ending (``lstm`` and
``lstm-seed43`` are two seeds of ``lstm``). Written to ``out_dir``::

    report.md  report.html      the report; the HTML embeds every image and needs no network
    report.json                 the tables' numbers, one entry per variant (a list of values per seed)
    curves-epoch.png curves-time.png
    attention/NAME-cross.png    one cross-attention map per run, all for the same test sentence

The tables give per variant (:mod:`.tables`): its config difference from the baseline (dotted keys),
parameters (encoder side / decoder side / total), seconds per epoch, target tokens per second, peak
memory, epochs trained and the best epoch; validation and test BLEU and chrF against every reference
(and single-reference), from the runs' own ``evaluate`` results (best checkpoint, their
``decode.beam``); and paired bootstrap p-values of its test translations against the baseline's
(:mod:`attnlab.evaluation.significance`). For runs with attention, per-head statistics of their
cross-attention over test sentences (:mod:`.attention_summary`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attnlab.config import Config, config_to_dict
from attnlab.data.errors import DataError
from attnlab.evaluation.attention import attention_report
from attnlab.evaluation.evaluate import split_texts
from attnlab.evaluation.references import GroupedReferences, spread_rows
from attnlab.evaluation.significance import DEFAULT_SAMPLES, PairedResult, paired_bootstrap
from attnlab.experiments.attention_summary import cross_attention_summary
from attnlab.experiments.run_results import (
    RunResults,
    ends_the_same,
    flat_config,
    read_run_files,
    timed_metrics,
    with_scores,
)
from attnlab.experiments.tables import (
    SIGNIFICANCE,
    attention_table,
    equal_time_table,
    scores_table,
    size_table,
    variant_row,
)
from attnlab.rundir import RunError
from attnlab.viz import metric_points, plot_curves, save_figure
from attnlab.viz.report import Block, Image, Preformatted, Section, Table, write_report

__all__ = ["compare_runs", "group_name", "shared_embedding_note"]

Groups = dict[str, list[RunResults]]
Texts = dict[Path, tuple[list[str], list[str]]]
CURVE_METRICS = ("train/epoch_loss", "val/loss", "val/ppl", "val/bleu")
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
    attention_sentences: int = 100,
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
    rows = [variant_row(name, runs, groups[baseline], tests.get(name)) for name, runs in groups.items()]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    attention = _attention_statistics_section(groups, texts, attention_sentences)
    sections = [_results_section(rows, groups, baseline, tests, n_samples), *([attention] if attention else []),
                _curves_section(groups, out), *_sentence_sections(groups, baseline, texts, sentences, out)]
    title = title or f"Comparison of {len(groups)} variant{'s' * (len(groups) > 1)}"
    markdown, page = write_report(title, sections, out)
    table = out / "report.json"
    table.write_text(json.dumps({"title": title, "baseline": baseline, "variants": rows}, indent=2), encoding="utf-8")
    return {"markdown": markdown, "html": page, "json": table, "dir": out}


def _load_groups(run_dirs: Sequence[str | Path], names: Sequence[str], log: Callable[[str], None]) -> Groups:
    groups: Groups = {}
    files = [read_run_files(run_dir) for run_dir in run_dirs]  # a damaged one stops the report before any evaluation
    for run_dir, name, run_files in zip(run_dirs, names, files, strict=True):
        log(f"reading {run_dir}")
        groups.setdefault(str(name), []).append(with_scores(run_files, log))
    for name, runs in groups.items():
        first = flat_config(runs[0].config)
        for other in runs[1:]:
            differ = sorted(k for k, v in flat_config(other.config).items()
                            if first[k] != v and k not in ("train.seed", "train.epochs"))
            if differ:
                raise RunError(f"runs {runs[0].root} and {other.root} are both named '{name}' but differ in "
                               f"{differ[:4]}, not just the seed; give them distinct names")
        _check_epoch_caps(name, runs)
        for run in runs:  # labels in curves, translations and file names
            run.name = name if len(runs) == 1 else f"{name}-seed{run.config.train.seed}"
    return groups


def _check_epoch_caps(name: str, runs: list[RunResults]) -> None:
    """Seeds of one variant may have different epoch caps only where that changed nothing: every run ends as it
    would have with the largest cap among them (it stopped early, before the smaller cap)."""
    cap = max(run.config.train.epochs for run in runs)
    for run in runs:
        if not ends_the_same(run.summary, run.config.train.epochs, cap):
            raise RunError(f"run {run.root} of '{name}' ended at its cap of {run.config.train.epochs} epochs, and "
                           f"another seed has train.epochs {cap}; train it on with 'attnlab train --resume "
                           f"{run.root} --set train.epochs={cap}'")


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


def _partners(runs: list[RunResults], baseline: list[RunResults]) -> list[RunResults | None]:
    """Each run's baseline run for a paired test: the one with the same ``train.seed`` (None if the baseline
    has no such seed); where the two share no seed at all, the k-th run of each (two single runs)."""
    by_seed = {base.config.train.seed: base for base in baseline}
    if any(run.config.train.seed in by_seed for run in runs):
        return [by_seed.get(run.config.train.seed) for run in runs]
    return [base for _, base in zip(runs, baseline, strict=False)]


def _significance(runs: list[RunResults], baseline: list[RunResults], texts: Texts,
                  n_samples: int) -> list[dict[str, PairedResult] | None]:
    """Each run of a variant against the baseline's run with the same seed (:func:`_partners`), resampling
    source sentences with all their references (the headline, multi-reference scores); None where there is
    no such run or their test sets differ."""
    results: list[dict[str, PairedResult] | None] = []
    for run, base in zip(runs, _partners(runs, baseline), strict=False):  # shorter only where no seed is shared
        if base is None or texts[run.root] != texts[base.root]:
            results.append(None)
            continue
        grouped = _grouped(run, texts)
        first = grouped.first_pairs
        results.append(paired_bootstrap([run.test_hypotheses[i] for i in first],
                                        [base.test_hypotheses[i] for i in first], grouped.references,
                                        n_samples=n_samples))
    return results


def _results_section(rows: list[dict[str, Any]], groups: Groups, baseline: str,
                     tests: dict[str, list[dict[str, PairedResult] | None]], n_samples: int) -> Section:
    seeds = max(len(runs) for runs in groups.values())
    first = groups[baseline][0].config
    notes = (f"Baseline: {baseline}. Validation and test scores are sacreBLEU on each run's own translations "
             f"(best checkpoint, beam {first.decode.beam} for the baseline), against every reference of each source "
             "sentence; '1-ref' columns score every (source, reference) pair on its own. p: paired bootstrap "
             f"resampling of the test sources against the baseline's translations ({n_samples} resamples), one "
             "p-value per seed pair (each seed against the baseline's run with the same seed, in order where they "
             "share none; n/a: the baseline has no run with that seed); * marks a difference where every seed pair "
             f"gives p < {SIGNIFICANCE}. Parameters: encoder side / decoder side / total; s / epoch (whole "
             "epochs: one a time budget cut short is left out), tokens/s and train time are training wall time; "
             "epochs: trained (best).")
    if seeds > 1:
        notes += f" {seeds} seeds per variant: mean ± sample standard deviation."
    notes += shared_embedding_note([run.config for runs in groups.values() for run in runs])
    signatures = sorted({f"{metric}: {s}" for row in rows for metric, sigs in row["signatures"].items() for s in sigs})
    bootstrap = {r[m].signature for results in tests.values() for r in results if r for m in ("bleu", "chrf")}
    lines = signatures + [f"paired bootstrap: {s}" for s in sorted(bootstrap)]
    return Section("Results", [notes, size_table(rows), scores_table(rows), "sacreBLEU signatures:",
                               Preformatted("\n".join(lines))])


def shared_embedding_note(configs: Sequence[Config]) -> str:
    """The footnote a size table needs when a run ties its source embedding to the decoder's: the shared
    matrix is counted once, on the encoder side (``models/summary.py``); empty when no run does."""
    if not any(cfg.model.tie_embeddings == "three_way" for cfg in configs):
        return ""
    return (" With three-way tying (model.tie_embeddings=three_way) the embedding shared by source, target and "
            "generator is counted once, on the encoder side.")


def _attention_statistics_section(groups: Groups, texts: Texts, sentences: int) -> Section | None:
    summaries = {}
    for name, runs in groups.items():
        per_run = [cross_attention_summary(run.root, *texts[run.root], sentences=sentences) for run in runs]
        if any(per_run):
            summaries[name] = per_run
    table = attention_table(summaries)
    if table is None:
        return None
    count = max((r["sentences"] for runs in summaries.values() for rows in runs for r in rows), default=0)
    notes = (f"Cross-attention of each head, averaged over {count} test sentences forced on their reference (mean ± "
             "sd over seeds). Entropy in nats (0: one-hot rows); diagonal share: weight within one position of the "
             "monotone alignment; argmax on diagonal: rows whose largest weight is there; first-token share: "
             "weight on the first source token; one-position share: rows whose largest weight is on the "
             "sentence's most attended position (near 1 when a head has collapsed onto one position).")
    return Section("Attention statistics", [notes, table])


def _curves_section(groups: Groups, out: Path) -> Section:
    rows = {run.name: timed_metrics(run) for runs in groups.values() for run in runs}
    variants = {name: [run.name for run in runs] for name, runs in groups.items()}
    blocks: list[Block] = []
    for x, what in (("epoch", "epoch"), ("time", "training wall-clock time")):
        try:
            figure = plot_curves(rows, CURVE_METRICS, x=x, groups=variants)
        except ValueError as err:  # e.g. no perf.csv, so no time axis
            blocks.append(f"No curves against {what}: {err}.")
            continue
        [path] = save_figure(figure, out / f"curves-{x}", ["png"], dpi=100)
        seeds = " (mean over seeds, the band from the lowest to the highest seed)" if any(
            len(names) > 1 for names in variants.values()) else ""
        blocks.append(Image(path, f"Training loss, validation loss, perplexity and BLEU against {what}{seeds}."))
    table = equal_time_table({name: [list(zip(*metric_points(rows[run.name], "val/bleu", x="time"), strict=True))
                                     for run in runs] for name, runs in groups.items()})
    if table is not None:
        blocks += ["At equal training time: the best validation BLEU (as logged during training, greedy) that "
                   "each variant reached within the same training wall time (validation included, as on the "
                   "curves' time axis), at a quarter, half, three quarters and all of the shortest run's time.",
                   table]
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
