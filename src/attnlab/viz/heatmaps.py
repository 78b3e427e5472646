"""Attention heatmaps with matplotlib: one map, a layers x heads grid, and initial-vs-trained pairs.

Every function takes arrays (numpy, torch tensors or nested lists) plus token lists and returns a
:class:`matplotlib.figure.Figure`. Figures are built with ``Figure()`` rather than ``pyplot``, so
nothing here picks a backend or keeps figures alive in pyplot's global registry; in a notebook,
display the returned figure, or pass ``ax=`` from your own ``plt.subplots()``.

Keys (attended-to tokens) run along x, queries along y: for cross-attention source along x and
target along y; for encoder self-attention both are source tokens, for decoder self-attention both
are target tokens. Padding and the special tokens ``<bos>``, ``<eos>``, ``<pad>`` are dropped (rows,
columns and labels together) unless ``show_special=True``; ``<unk>`` is always kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from attnlab.attention_view.records import (
    check_token_counts,
    query_key_tokens,
    sentence_layers,
    to_numpy,
    visible_positions,
)

__all__ = ["plot_attention", "plot_attention_grid", "plot_before_after", "save_figure"]

# kind -> (key axis, query axis)
_AXIS_NAMES = {
    "encoder": ("source", "source"),
    "decoder": ("target", "target"),
    "cross": ("source", "target"),
}
_CELL_INCHES = 0.3  # one token in a single map; 40 tokens -> 12 inches
_MAX_INCHES = 26.0


def plot_attention(
    weights: Any,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    show_special: bool = False,
    colorbar: bool = True,
    vmax: float | None = None,
    cmap: str = "viridis",
) -> Figure:
    """One attention map: ``weights`` (tgt_len, src_len), source tokens along x, target along y.

    Leading axes of size 1 are dropped, so a (1, 1, q, k) slice works too. For a self-attention
    map pass the same tokens twice. ``vmax`` defaults to the largest weight shown (the colour scale
    starts at 0). Returns the figure (``ax.figure`` when ``ax`` is given).
    """
    matrix = to_numpy(weights)
    while matrix.ndim > 2 and matrix.shape[0] == 1:
        matrix = matrix[0]
    if matrix.ndim != 2:
        raise ValueError(
            f"plot_attention draws one (q, k) map but got shape {matrix.shape}; "
            "select a layer and head, or use plot_attention_grid for all of them"
        )
    check_token_counts(matrix, tgt_tokens, src_tokens)
    matrix, y_tokens, x_tokens = _visible(matrix, tgt_tokens, src_tokens, show_special)
    if ax is None:
        fig = Figure(figsize=_single_map_size(x_tokens, y_tokens), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = _draw_map(ax, matrix, x_tokens, y_tokens, _vmax([matrix], vmax), cmap)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(image, ax=ax, label="attention weight", shrink=0.8)
    return fig.figure  # the root figure, also when ``ax`` lives in a SubFigure


def plot_attention_grid(
    layers: Any,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    kind: str = "cross",
    index: int | None = None,
    show_special: bool = False,
    title: str | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    first_layer: int = 0,
) -> Figure:
    """All heads of all layers of one attention kind for one sentence: a layers x heads grid.

    ``layers``: tuple of per-layer arrays, each (heads, q, k), or (batch, heads, q, k) with
    ``index`` choosing the sentence. ``kind`` ("encoder", "decoder", "cross") decides which tokens
    label the axes. All panels share one colour scale (0 to ``vmax``, by default the largest weight
    shown) and one colour bar. The RNN family's single map comes out as a single panel.
    ``first_layer`` is the number of the first layer given, for the panel titles: to draw only the
    last of ``n`` layers pass ``layers[-1:]`` with ``first_layer=n - 1``.
    """
    per_layer = _checked_layers(layers, index, kind, src_tokens, tgt_tokens)
    query_tokens, key_tokens = query_key_tokens(kind, src_tokens, tgt_tokens)
    n_heads = max(layer.shape[0] for layer in per_layer)
    panels: list[list[np.ndarray | None]] = []
    titles: list[list[str]] = []
    for layer_index, layer in enumerate(per_layer):
        panels.append([layer[h] if h < layer.shape[0] else None for h in range(n_heads)])
        titles.append([f"layer {first_layer + layer_index} · head {h}" for h in range(n_heads)])
    return _panel_figure(
        panels, titles, query_tokens, key_tokens, kind, show_special, title, vmax, cmap, label_every_row=False
    )


def plot_before_after(
    init_layers: Any,
    trained_layers: Any,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    kind: str = "cross",
    index: int | None = None,
    show_special: bool = False,
    title: str | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
) -> Figure:
    """One sentence under the model at initialisation and after training, head by head.

    Layout: one row per (layer, head), two columns, "initial" on the left and "trained" on the
    right, so each head's change reads across a row; every panel carries its own token labels.
    Inputs are as for :func:`plot_attention_grid` and must have the same layers and heads.
    Both columns share one colour scale.
    """
    initial = _checked_layers(init_layers, index, kind, src_tokens, tgt_tokens)
    trained = _checked_layers(trained_layers, index, kind, src_tokens, tgt_tokens)
    shapes_initial, shapes_trained = [x.shape for x in initial], [x.shape for x in trained]
    if shapes_initial != shapes_trained:
        raise ValueError(
            f"initial and trained attention differ in layers/heads/lengths: {shapes_initial} vs "
            f"{shapes_trained}; pass the same sentence from the same architecture"
        )
    query_tokens, key_tokens = query_key_tokens(kind, src_tokens, tgt_tokens)
    panels: list[list[np.ndarray | None]] = []
    titles: list[list[str]] = []
    for layer_index, (before, after) in enumerate(zip(initial, trained, strict=True)):
        for head in range(before.shape[0]):
            panels.append([before[head], after[head]])
            name = f"layer {layer_index} · head {head}"
            titles.append([f"{name} · initial", f"{name} · trained"])
    return _panel_figure(
        panels, titles, query_tokens, key_tokens, kind, show_special, title, vmax, cmap, label_every_row=True
    )


def save_figure(
    fig: Figure, path_stem: str | Path, formats: Sequence[str] = ("png", "svg", "pdf"), dpi: int = 150
) -> list[Path]:
    """Save ``fig`` as ``<path_stem>.<format>`` for each format (parent folders are created)."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"  # not with_suffix: "run.v2" must stay "run.v2.png"
        fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    return paths


def _checked_layers(
    layers: Any, index: int | None, kind: str, src_tokens: Sequence[str], tgt_tokens: Sequence[str]
) -> list[np.ndarray]:
    """Per-layer (heads, q, k) arrays for one sentence, checked against the tokens of ``kind``."""
    query_tokens, key_tokens = query_key_tokens(kind, src_tokens, tgt_tokens)
    per_layer = sentence_layers(layers, index)
    for layer in per_layer:
        check_token_counts(layer, query_tokens, key_tokens)
    return per_layer


def _visible(
    matrix: np.ndarray, query_tokens: Sequence[str], key_tokens: Sequence[str], show_special: bool
) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop special rows and columns from ``matrix`` (q, k) and from the labels, consistently."""
    rows, cols = visible_positions(query_tokens, show_special), visible_positions(key_tokens, show_special)
    if len(rows) == 0 or len(cols) == 0:
        raise ValueError("every token is special (<bos>/<eos>/<pad>); pass show_special=True to draw them")
    return matrix[np.ix_(rows, cols)], [query_tokens[i] for i in rows], [key_tokens[j] for j in cols]


def _vmax(matrices: Sequence[np.ndarray], vmax: float | None) -> float:
    if vmax is not None:
        return vmax
    largest = max(float(np.nanmax(m)) for m in matrices if m.size)
    return largest if largest > 0 else 1.0


def _label(token: str) -> str:
    return token.replace("$", r"\$")  # a "$" pair in tokens would otherwise switch on mathtext


def _label_inches(tokens: Sequence[str]) -> float:
    """Room for the longest rotated or horizontal tick label."""
    return 0.5 + 0.07 * max((len(t) for t in tokens), default=0)


def _single_map_size(x_tokens: Sequence[str], y_tokens: Sequence[str]) -> tuple[float, float]:
    width = len(x_tokens) * _CELL_INCHES + _label_inches(y_tokens) + 1.6  # + colour bar
    height = len(y_tokens) * _CELL_INCHES + _label_inches(x_tokens) + 0.8  # + title
    return float(np.clip(width, 4.0, _MAX_INCHES)), float(np.clip(height, 3.0, _MAX_INCHES))


def _font_size(ax: Axes, n_x: int, n_y: int) -> tuple[float, float]:
    """Tick label sizes (x, y) in points that fit one token's cell, between 4 and 10 points."""
    fig = ax.figure.figure
    box = ax.get_position()
    width_pt = box.width * fig.get_figwidth() * 72 / max(n_x, 1)
    height_pt = box.height * fig.get_figheight() * 72 / max(n_y, 1)
    return float(np.clip(0.75 * width_pt, 4, 10)), float(np.clip(0.75 * height_pt, 4, 10))


def _draw_map(
    ax: Axes,
    matrix: np.ndarray,
    x_tokens: Sequence[str],
    y_tokens: Sequence[str],
    vmax: float,
    cmap: str,
    x_labels: bool = True,
    y_labels: bool = True,
) -> AxesImage:
    """Draw ``matrix`` (len(y_tokens), len(x_tokens)) on ``ax`` with one tick per token."""
    image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    x_size, y_size = _font_size(ax, len(x_tokens), len(y_tokens))
    ax.set_xticks(range(len(x_tokens)), [_label(t) for t in x_tokens], rotation=90, fontsize=x_size)
    ax.set_yticks(range(len(y_tokens)), [_label(t) for t in y_tokens], fontsize=y_size)
    ax.tick_params(length=2, labelbottom=x_labels, labelleft=y_labels)
    return image


def _panel_figure(
    panels: list[list[np.ndarray | None]],
    titles: list[list[str]],
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    kind: str,
    show_special: bool,
    title: str | None,
    vmax: float | None,
    cmap: str,
    label_every_row: bool,
) -> Figure:
    """A grid of maps (rows x cols, ``None`` = empty slot) with one shared colour scale and bar."""
    shown = [
        [None if m is None else _visible(m, query_tokens, key_tokens, show_special) for m in row] for row in panels
    ]
    first = next(v for row in shown for v in row if v is not None)
    _, y_tokens, x_tokens = first
    scale = _vmax([v[0] for row in shown for v in row if v is not None], vmax)
    n_rows, n_cols = len(panels), len(panels[0])
    side = float(np.clip(0.13 * max(len(x_tokens), len(y_tokens)) + 0.9, 2.2, 6.0))
    fig = Figure(
        figsize=(
            min(n_cols * (side + _label_inches(y_tokens) * (0.3 if label_every_row else 0.1)) + 1.8, 60.0),
            min(n_rows * (side + _label_inches(x_tokens) * (0.9 if label_every_row else 0.1)) + 1.0, 200.0),
        ),
        layout="constrained",
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for r, row in enumerate(shown):
        for c, visible in enumerate(row):
            ax = axes[r, c]
            if visible is None:
                ax.set_axis_off()
                continue
            x_labels, y_labels = label_every_row or r == n_rows - 1, label_every_row or c == 0
            image = _draw_map(ax, visible[0], x_tokens, y_tokens, scale, cmap, x_labels, y_labels)
            ax.set_title(titles[r][c], fontsize=9)
    key_name, query_name = _AXIS_NAMES[kind]
    fig.supxlabel(f"{key_name} (keys)")
    fig.supylabel(f"{query_name} (queries)")
    if title:
        fig.suptitle(title)
    fig.colorbar(image, ax=axes, label="attention weight", shrink=min(0.6, 3.0 / n_rows + 0.2))
    return fig
