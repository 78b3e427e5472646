"""Training curves of several runs overlaid, one panel per metric.

Input rows are as read from a Lightning ``CSVLogger`` ``metrics.csv``: one dict per logged row with
columns ``epoch``, ``step`` and the metric names, blank where a metric was not logged on that row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from attnlab.rundir import cell_number

__all__ = ["plot_curves", "metric_points", "seed_band"]


def metric_points(rows: Sequence[Mapping[str, Any]], metric: str, x: str = "epoch") -> tuple[list[float], list[float]]:
    """``(xs, ys)`` of ``metric`` against column ``x``, skipping rows where either is blank.

    With ``x="epoch"`` several values logged in one epoch (e.g. per step) are averaged, so each
    epoch is one point.
    """
    pairs = [(cell_number(row.get(x)), cell_number(row.get(metric))) for row in rows]
    kept = sorted((a, b) for a, b in pairs if a is not None and b is not None)
    if x != "epoch":
        return [a for a, _ in kept], [b for _, b in kept]
    by_epoch: dict[float, list[float]] = {}
    for epoch, value in kept:
        by_epoch.setdefault(epoch, []).append(value)
    return list(by_epoch), [sum(values) / len(values) for values in by_epoch.values()]


def seed_band(curves: Sequence[tuple[list[float], list[float]]],
              points: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Several seeds' ``(xs, ys)`` as one curve: ``(x, mean, low, high)`` over the seeds that reached each x.

    Epochs are shared x values; other axes (time, steps) differ between seeds, so each curve is
    interpolated onto a common grid, never beyond its own last point (a run that stopped early
    leaves the mean to the others). The grid starts where every seed has its first point: a seed
    whose first epoch took longer would otherwise join the mean late, and the curve jump back.
    """
    curves = [(np.asarray(xs, float), np.asarray(ys, float)) for xs, ys in curves if len(xs)]
    if not curves:
        raise ValueError("no points to draw")
    start = max(xs[0] for xs, _ in curves)
    grid = np.unique(np.concatenate([xs[xs >= start] for xs, _ in curves]))
    if len(grid) > points:
        grid = np.linspace(grid[0], grid[-1], points)
    values = np.full((len(curves), len(grid)), np.nan)
    for row, (xs, ys) in enumerate(curves):
        inside = (grid >= xs[0]) & (grid <= xs[-1])
        values[row, inside] = np.interp(grid[inside], xs, ys)
    present = ~np.isnan(values).all(axis=0)
    values, grid = values[:, present], grid[present]
    return grid, np.nanmean(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)


def plot_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    metrics: Sequence[str] = ("train/loss", "val/loss", "val/ppl", "val/bleu"),
    x: str = "epoch",
    groups: Mapping[str, Sequence[str]] | None = None,
) -> Figure:
    """One panel per metric, one line per run (``runs`` maps a run name to its metrics rows).

    ``x`` is the column on the x axis: ``"epoch"``, ``"step"``, or ``"time"`` (a column of wall-clock
    seconds, which must be in the rows). Metrics no run logged are left out. ``groups`` maps a
    variant to the names of its runs (seeds): each variant is then drawn as the mean over its
    seeds, with the band between the lowest and the highest seed shaded.
    """
    if not any(cell_number(row.get(x)) is not None for rows in runs.values() for row in rows):
        raise ValueError(f"no run has a column {x!r} to plot against; use x='epoch' or x='step'")
    groups = groups or {name: [name] for name in runs}
    every_row = [row for rows in runs.values() for row in rows]
    logged = [m for m in metrics if any(cell_number(row.get(m)) is not None for row in every_row)]
    if not logged:
        raise ValueError(f"none of the metrics {tuple(metrics)} was logged by any run")
    columns = min(len(logged), 2)
    n_rows = math.ceil(len(logged) / columns)
    fig = Figure(figsize=(5.5 * columns, 3.6 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, columns, squeeze=False).ravel()
    for ax, metric in zip(axes, logged, strict=False):
        for variant, names in groups.items():
            curves = [metric_points(runs[name], metric, x) for name in names]
            if not any(xs for xs, _ in curves):
                continue
            if len(names) == 1:
                xs, ys = curves[0]
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=variant)
                continue
            grid, mean, low, high = seed_band(curves)
            (line,) = ax.plot(grid, mean, label=f"{variant} (mean of {len(names)})")
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(metric)
        ax.set_xlabel("time (s)" if x == "time" else x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(logged) :]:
        ax.set_axis_off()
    return fig

