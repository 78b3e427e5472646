"""What the explorer shows about a run without loading its model: config, summary, scores, curves.

Everything is read from the run's files (``config.yaml``, ``summary.json``, ``metrics.csv``,
``perf.csv``, stored evaluations); a file that is missing or unreadable leaves its fields empty rather
than hiding the run, since a run still training has no summary yet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from attnlab.rundir import read_rows
from attnlab.serve.discovery import RunEntry
from attnlab.viz.curves import metric_points

__all__ = ["run_summary", "run_details", "describe_model", "run_curves"]

_RNN_CELLS = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_config(entry: RunEntry) -> dict[str, Any]:
    """The run's resolved config as plain sections (read as YAML: a listing must not fail on one bad key)."""
    try:
        data = yaml.safe_load(entry.run.config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_model(config: dict[str, Any]) -> str:
    """A one-line architecture: ``Transformer 2+2, d 128, 4 heads`` or ``BiGRU 256 + general attention``."""
    model = config.get("model") or {}
    if model.get("arch") == "transformer":
        return (f"Transformer {model.get('enc_layers', '?')}+{model.get('dec_layers', '?')}, "
                f"d {model.get('d_model', '?')}, {model.get('heads', '?')} heads")
    cell = _RNN_CELLS.get(str(model.get("cell", "")), str(model.get("cell", "RNN")).upper())
    layers = model.get("enc_layers", 1)
    text = f"{'Bi' if model.get('bidirectional') else ''}{cell} {model.get('hid_dim', '?')}"
    text += f" x{layers}" if layers and layers != 1 else ""
    attention = model.get("attention", "none")
    if attention and attention != "none":
        return f"{text} + {attention} attention ({model.get('attention_placement', 'luong')})"
    return f"{text}, no attention"


def _scores(entry: RunEntry) -> dict[str, float]:
    """BLEU of every stored evaluation, by its folder name (``test-beam5``: {"test-beam5": 36.1})."""
    scores: dict[str, float] = {}
    folder = entry.run.evaluations
    if folder.is_dir():
        for path in sorted(folder.glob("*/scores.json")):
            bleu = _read_json(path).get("bleu")
            if isinstance(bleu, (int, float)):
                scores[path.parent.name] = float(bleu)
    return scores


def _status(entry: RunEntry, summary: dict[str, Any]) -> str:
    run = entry.run
    if not (run.best.is_file() or run.last.is_file()):
        return "no checkpoint yet"
    if not summary:
        return "training or stopped"
    return "interrupted" if summary.get("interrupted") else "finished"


def run_summary(entry: RunEntry) -> dict[str, Any]:
    """One row of the runs list."""
    config, summary = _read_config(entry), _read_json(entry.run.summary)
    parameters = summary.get("parameters") or {}
    return {
        "id": entry.id,
        "name": entry.name,
        "group": entry.group,
        "report_id": entry.report_id,
        "architecture": describe_model(config),
        "arch": (config.get("model") or {}).get("arch"),
        "parameters": parameters.get("total"),
        "best": {k: v for k, v in (summary.get("best") or {}).items() if isinstance(v, (int, float))},
        "scores": _scores(entry),
        "epochs": summary.get("epochs"),
        "train_time_s": summary.get("train_time_s"),
        "status": _status(entry, summary),
        "has_checkpoint": entry.run.best.is_file() or entry.run.last.is_file(),
        "has_init": entry.run.init.is_file(),
    }


def run_details(entry: RunEntry) -> dict[str, Any]:
    """The runs-list row, plus the config, the summary and the curves."""
    return {**run_summary(entry), "path": str(entry.root), "config": _read_config(entry),
            "summary": _read_json(entry.run.summary), "curves": run_curves(entry)}


def _epoch_seconds(perf_rows: list[dict[str, str]]) -> dict[float, float]:
    """Training wall time at the end of each epoch: the running sum of ``perf/epoch_time_s``."""
    xs, ys = metric_points(perf_rows, "perf/epoch_time_s", "epoch")
    ends, total = {}, 0.0
    for epoch, seconds in zip(xs, ys, strict=True):
        total += seconds
        ends[epoch] = total
    return ends


def run_curves(entry: RunEntry) -> dict[str, list[dict[str, float | None]]]:
    """Per metric (``train/loss``, ``val/bleu``, ...), one point per epoch: epoch, time (s) and value.

    Values logged several times in an epoch are averaged; ``time`` is the training wall time at the
    end of that epoch (None when ``perf.csv`` lacks it).
    """
    rows = read_rows(entry.run.metrics)
    perf = read_rows(entry.run.perf, "perf file")
    ends = _epoch_seconds(perf)
    columns = sorted({c for row in rows for c in row if c.startswith(("train/", "val/")) and c != "train/lr"})
    curves: dict[str, list[dict[str, float | None]]] = {}
    for metric in columns:
        epochs, values = metric_points(rows, metric, "epoch")
        points = [{"epoch": e, "time": ends.get(e), "value": v} for e, v in zip(epochs, values, strict=True)
                  if math.isfinite(v)]
        if points:
            curves[metric] = points
    return curves
