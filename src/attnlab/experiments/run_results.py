"""Everything a comparison reads from one finished run: config, summary, curves, and its val/test scores.

Validation and test scores are the run's own ``evaluate`` results with its best checkpoint and its
``decode`` settings, found by their key (:mod:`attnlab.evaluation.evaluate`); :func:`ensure_evaluated`
writes them when they are missing, so a comparison never mixes in translations of another checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.config import Config, config_to_dict, load_config
from attnlab.evaluation.evaluate import evaluate_run, evaluation_key, key_digest
from attnlab.rundir import RunDir, RunError, cell_number, open_run, read_json, read_rows
from attnlab.training.run import what_ended

__all__ = ["RunFiles", "RunResults", "read_run_files", "with_scores", "ends_the_same",
           "ensure_evaluated", "flat_config", "timed_metrics"]


RunFiles = tuple[RunDir, dict[str, Any], Config, list[dict[str, str]], list[dict[str, str]]]


@dataclass
class RunResults:
    """One run as a comparison sees it; ``name`` is its label in tables, curves and file names."""

    name: str
    run: RunDir
    config: Config
    summary: dict[str, Any]
    metrics: list[dict[str, str]]
    perf: list[dict[str, str]]
    val: dict[str, Any]
    test: dict[str, Any]
    test_hypotheses: list[str]

    @property
    def root(self) -> Path:
        return self.run.root

    def best(self, metric: str) -> float | None:
        """The lowest logged value of a loss-like ``metric`` (``val/loss``, ``val/ppl``)."""
        values = [cell_number(row.get(metric)) for row in self.metrics]
        return min((v for v in values if v is not None), default=None)

    @property
    def seconds_per_epoch(self) -> float | None:
        """The mean time of the run's whole epochs: the last is left out where the time budget cut it short (None
        if no epoch was whole). An interruption writes no row for its epoch, so it needs nothing left out."""
        times = [cell_number(row.get("perf/epoch_time_s")) for row in self.perf]
        times = [t for t in times if t is not None]
        if what_ended(self.summary, self.config) == "time budget":
            times = times[:-1]
        return sum(times) / len(times) if times else None


def with_scores(files: RunFiles, log: Callable[[str], None] | None = None) -> RunResults:
    """A run's files (:func:`read_run_files`) and its val and test scores, evaluated first where still to do
    (each evaluation is announced through ``log``)."""
    run, summary, config, metrics, perf = files
    scores = {split: ensure_evaluated(run.root, split, log) for split in ("val", "test")}
    hyps_path = Path(scores["test"]["output_dir"]) / "hyps.txt"
    hypotheses = hyps_path.read_text(encoding="utf-8").split("\n")[:-1]
    return RunResults(run.root.name, run, config, summary, metrics, perf, scores["val"], scores["test"],
                      hypotheses)


def read_run_files(run_dir: str | Path) -> RunFiles:
    """A finished run's summary, config, metrics and perf rows: a damaged one is an error before any work."""
    run = open_run(run_dir)
    if not run.summary.is_file():
        raise RunError(f"{run.root} has no summary.json: its training has not finished "
                       f"(continue it with 'attnlab train --resume {run.root}')")
    return (run, read_json(run.summary, "run summary"), load_config(run.config), read_rows(run.metrics),
            read_rows(run.perf, "perf file"))


def _stored(run: RunDir, split: str) -> tuple[Path, dict[str, Any]]:
    """Where the evaluation of ``split`` with the best checkpoint and the run's decode settings is stored, and
    its key (see :mod:`attnlab.evaluation.evaluate`)."""
    cfg = load_config(run.config)
    checkpoint = run.checkpoint("best")
    key = evaluation_key("best" if checkpoint == run.best else "last", checkpoint,
                         {"split": split, "corpus": cfg.data.corpus}, cfg.decode.beam, cfg.decode.length_penalty,
                         cfg.decode.length_penalty_form, "torch")
    return run.evaluations / f"{split}-beam{cfg.decode.beam}-{key_digest(key)}" / "scores.json", key


def _read_scores(run: RunDir, split: str) -> dict[str, Any]:
    path, key = _stored(run, split)
    if not path.is_file():
        raise RunError(f"{run.root} has no evaluation of {split} with its best checkpoint; run "
                       f"'attnlab evaluate {run.root} --split {split}'")
    scores = read_json(path, "stored evaluation")
    if not isinstance(scores, dict) or scores.get("key") != key:
        raise RunError(f"{path} does not hold the evaluation it is named for; delete it and evaluate again")
    return {**scores, "output_dir": str(path.parent)}


def ensure_evaluated(run_dir: str | Path, split: str, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The run's scores on ``split`` (best checkpoint, its decode settings), evaluating when not stored yet.

    Stored evaluations are found by their key, which includes a hash of the checkpoint file, so a
    result of another checkpoint (``--checkpoint init``, an older best) or another input is never reused.
    An evaluation this starts (seconds to minutes for a Multi30k run with beam 5) is announced through ``log``,
    with its checkpoint and beam, and so is its wall time when it ends.
    """
    run = open_run(run_dir)
    path, key = _stored(run, split)
    if path.is_file():
        stored = read_json(path, "stored evaluation")
        if isinstance(stored, dict) and stored.get("key") == key:
            return {**stored, "output_dir": str(path.parent)}
    log = log or (lambda _: None)
    log(f"evaluating {run.root} on {split} with its {key['checkpoint']} checkpoint, beam {key['beam']} "
        f"(not stored yet)")
    start = time.perf_counter()
    evaluate_run(run.root, split=split, checkpoint=key["checkpoint"])
    log(f"evaluated {run.root} on {split} in {time.perf_counter() - start:.0f} s")
    return _read_scores(run, split)


def ends_the_same(summary: dict[str, Any], cap: int, epochs: int) -> bool:
    """Whether a finished run, trained with ``train.epochs: cap``, would have ended the same with ``epochs``:
    at its own cap, or when early stopping ended it after at most ``epochs`` epochs (a run that ended at its
    cap may have improved further)."""
    return epochs == cap or (bool(summary.get("stopped_early")) and int(summary.get("epochs", cap)) <= epochs)


def flat_config(cfg: Config) -> dict[str, Any]:
    """``{"model.attention": "dot", ...}``: every key of the resolved config, dotted."""
    return {f"{section}.{key}": value for section, values in config_to_dict(cfg).items()
            for key, value in values.items()}


def timed_metrics(results: RunResults) -> list[dict[str, Any]]:
    """``metrics.csv`` rows with a ``time`` column: seconds of training wall time at that row's step.

    ``perf.csv`` gives the cumulative epoch wall time at each epoch's last step; rows in between are
    placed by linear interpolation on the step, from (step 0, 0 s).
    """
    ends = sorted((cell_number(r.get("step")) or 0.0, cell_number(r.get("perf/epoch_time_s")) or 0.0)
                  for r in results.perf)
    steps = [0.0] + [step for step, _ in ends]
    seconds = np.concatenate([[0.0], np.cumsum([t for _, t in ends])]).tolist()
    rows = []
    for row in results.metrics:
        step = cell_number(row.get("step"))
        time = float(np.interp(step, steps, seconds)) if step is not None and ends else None
        rows.append({**row, "time": time})
    return rows

