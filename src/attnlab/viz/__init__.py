"""Looking inside attention: heatmaps, an interactive HTML page, per-head statistics, curves.

Everything here takes arrays (numpy arrays, torch tensors, nested lists) and token lists, never
models. Attention follows the Hugging Face layout: per kind ("encoder", "decoder", "cross") a
tuple with one ``(batch, heads, query_len, key_len)`` array per layer; pick one sentence with
``index=``. This package is the only part of attnlab that imports matplotlib.
"""

from attnlab.viz.bertviz_adapter import bertviz_arguments, to_bertviz
from attnlab.viz.curves import metric_points, plot_curves
from attnlab.viz.heatmaps import plot_attention, plot_attention_grid, plot_before_after, save_figure
from attnlab.viz.html import attention_html, render_attention_html, render_attention_view
from attnlab.viz.records import SPECIAL_TOKENS, AttentionRecord, sentence_layers
from attnlab.viz.stats import (
    attention_stats,
    diagonal_band,
    head_stats,
    is_punctuation,
    record_stats,
    stats_markdown,
    write_stats_csv,
)

__all__ = [
    "AttentionRecord",
    "SPECIAL_TOKENS",
    "sentence_layers",
    "plot_attention",
    "plot_attention_grid",
    "plot_before_after",
    "save_figure",
    "attention_html",
    "render_attention_html",
    "render_attention_view",
    "attention_stats",
    "record_stats",
    "head_stats",
    "diagonal_band",
    "is_punctuation",
    "write_stats_csv",
    "stats_markdown",
    "plot_curves",
    "metric_points",
    "to_bertviz",
    "bertviz_arguments",
]
