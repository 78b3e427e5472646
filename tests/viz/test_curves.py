"""Training curves from CSVLogger-style rows."""

from __future__ import annotations

import csv

import pytest

from attnlab.rundir import read_rows
from attnlab.viz import metric_points, plot_curves

ROWS = [  # as CSVLogger writes them: blanks where a metric was not logged on that row
    {"epoch": "0", "step": "9", "train/loss": "4.0", "val/loss": "", "val/bleu": ""},
    {"epoch": "0", "step": "19", "train/loss": "3.0", "val/loss": "", "val/bleu": ""},
    {"epoch": "0", "step": "19", "train/loss": "", "val/loss": "3.5", "val/bleu": "1.0"},
    {"epoch": "1", "step": "29", "train/loss": "2.0", "val/loss": "", "val/bleu": ""},
    {"epoch": "1", "step": "39", "train/loss": "", "val/loss": "2.5", "val/bleu": "5.0"},
]


def test_points_skip_blanks_and_average_within_an_epoch():
    assert metric_points(ROWS, "train/loss") == ([0.0, 1.0], [3.5, 2.0])
    assert metric_points(ROWS, "train/loss", x="step") == ([9.0, 19.0, 29.0], [4.0, 3.0, 2.0])
    assert metric_points(ROWS, "val/bleu") == ([0.0, 1.0], [1.0, 5.0])


def test_one_panel_per_logged_metric_one_line_per_run(tmp_path):
    path = tmp_path / "metrics.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    fig = plot_curves({"rnn": read_rows(path), "transformer": ROWS})
    drawn = [ax for ax in fig.axes if ax.lines]
    assert [ax.get_title() for ax in drawn] == ["train/loss", "val/loss", "val/bleu"]  # val/ppl never logged
    assert all(len(ax.lines) == 2 for ax in drawn)
    with pytest.raises(ValueError, match="'time'"):
        plot_curves({"rnn": ROWS}, x="time")
