"""Looking inside attention with matplotlib: heatmaps, layer x head grids, before/after, curves, reports.

Everything here takes arrays (numpy arrays, torch tensors, nested lists) and token lists, never
models. Attention follows the Hugging Face layout: per kind ("encoder", "decoder", "cross") a
tuple with one ``(batch, heads, query_len, key_len)`` array per layer; pick one sentence with
``index=``. This package is the only part of attnlab that imports matplotlib.

The records, per-head statistics and the interactive HTML view live below decoding, in
:mod:`attnlab.attention_view` (numpy only), so that a translation can show itself in a notebook
without decoding importing this package.
"""

from attnlab.viz.bertviz_adapter import bertviz_arguments, to_bertviz
from attnlab.viz.curves import metric_points, plot_curves
from attnlab.viz.heatmaps import plot_attention, plot_attention_grid, plot_before_after, save_figure

__all__ = [
    "plot_attention",
    "plot_attention_grid",
    "plot_before_after",
    "save_figure",
    "plot_curves",
    "metric_points",
    "to_bertviz",
    "bertviz_arguments",
]
