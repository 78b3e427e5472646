"""Training curves from CSVLogger-style rows."""

from __future__ import annotations

import csv

import pytest

from attnlab.rundir import read_rows
from attnlab.viz import metric_points, plot_curves
from attnlab.viz.curves import seed_band

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


def test_seed_band_averages_every_seed_from_its_first_point_on():
    """Against time, seeds reach their first validation at different moments. The band starts where all
    have one (no jump back when a slow seed joins), and a seed that stopped early leaves the rest to the
    others."""
    fast = ([50.0, 100.0, 150.0, 200.0], [4.0, 3.0, 2.0, 1.0])
    slow = ([80.0, 160.0], [3.5, 2.5])
    grid, mean, low, high = seed_band([fast, slow])
    assert grid[0] == 80.0 and list(grid) == [80.0, 100.0, 150.0, 160.0, 200.0]
    assert mean[0] == pytest.approx((3.4 + 3.5) / 2) and low[0] == pytest.approx(3.4) and high[0] == 3.5
    assert all(a >= b for a, b in zip(mean, mean[1:], strict=False))  # both seeds fall: so does their mean
    assert mean[-1] == 1.0 and low[-1] == high[-1] == 1.0  # only the fast seed reached 200 s
    grid, mean, _, _ = seed_band([([0.0, 1.0, 2.0], [1.0, 2.0, 3.0]), ([0.0, 1.0, 2.0], [3.0, 4.0, 5.0])])
    assert list(grid) == [0.0, 1.0, 2.0] and list(mean) == [2.0, 3.0, 4.0]  # epochs: shared points
