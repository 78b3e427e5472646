"""The interactive attention view of one sentence, and the self-contained HTML page around it.

One view serves three places: the per-sentence page :func:`attention_html` writes (``attnlab
attention``), notebooks (``_repr_html_`` of the results built on an :class:`AttentionRecord`)
and the ``attnlab serve`` explorer. Python renders the markup (:func:`view_fragment`): the sentence,
the controls, the per-head statistics table of :mod:`attnlab.attention_view.stats` and the record as JSON in a
``<script type="application/json">`` element. One script shipped in the package,
``static/attention-view.js`` (with ``attention-view.css``), brings it to life: kind (encoder /
decoder / cross), layer and head, a single map or the layers x heads grid, the trained model, the
model at initialisation or both side by side, the colour scale, special tokens shown or not;
hovering a token or a cell highlights its row and column and says where it looked (a click pins
it); clicking a statistics row or a map of the grid shows that head.

Pages and notebook outputs inline the CSS and the script, so they need nothing but a browser: no
CDN, no web fonts, no network. Element ids carry a prefix so several views can share a document.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from attnlab.attention_view.records import KINDS, AttentionRecord, check_token_counts, query_key_tokens
from attnlab.attention_view.stats import format_value, record_stats

__all__ = [
    "attention_html",
    "render_attention_html",
    "render_attention_view",
    "view_fragment",
    "view_asset",
    "VIEW_ASSETS",
    "DATA_ELEMENT_ID",
]

DATA_ELEMENT_ID = "attnlab-data"
VIEW_ASSETS = ("attention-view.js", "attention-view.css")
Stats = Sequence[Mapping[str, Any]]


@cache
def view_asset(name: str) -> str:
    """The text of one of the view's files shipped in the package (see ``VIEW_ASSETS``)."""
    if name not in VIEW_ASSETS:
        raise ValueError(f"{name!r} is not one of the view's files {VIEW_ASSETS}")
    return (resources.files("attnlab.attention_view") / "static" / name).read_text(encoding="utf-8")


def _inline_script() -> str:
    return f"<script>{view_asset('attention-view.js')}\nwindow.attnlab.mountViews(document);</script>"


def attention_html(
    sentence_record: AttentionRecord | Mapping[str, Any], path: str | Path, stats: Stats | None = None
) -> Path:
    """Write the interactive page of one sentence to ``path`` (an ``.html`` file) and return it.

    ``sentence_record`` is an :class:`AttentionRecord` or its ``to_dict()`` form; ``stats`` its
    :func:`~attnlab.attention_view.stats.record_stats` rows when the caller already has them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_attention_html(sentence_record, stats), encoding="utf-8")
    return path


def render_attention_html(sentence_record: AttentionRecord | Mapping[str, Any], stats: Stats | None = None) -> str:
    """The page of :func:`attention_html` as a string: the view with its CSS and script inline."""
    record = _checked_record(sentence_record)
    title = record.title or "attention"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>body {{ margin: 1.5em; }}\n{view_asset('attention-view.css')}</style></head><body>",
            view_fragment(record, stats, prefix=""),
            _inline_script(),
            "</body></html>",
        ]
    )


def render_attention_view(sentence_record: AttentionRecord | Mapping[str, Any], stats: Stats | None = None) -> str:
    """The view as one self-contained HTML snippet (CSS and script inline), for notebooks.

    Its element ids get a fresh prefix, so any number of views can share one notebook page.
    """
    record = _checked_record(sentence_record)
    fragment = view_fragment(record, stats, prefix=f"attnlab-{uuid.uuid4().hex[:8]}-")
    return f"<style>{view_asset('attention-view.css')}</style>\n{fragment}\n{_inline_script()}"


def view_fragment(record: AttentionRecord, stats: Stats | None = None, prefix: str = "") -> str:
    """The view's markup alone: sentence, controls, statistics and data, for a page that loads the script.

    ``prefix`` starts every element id (``""`` gives ``id="kind"``, ``id="attnlab-data"``, ...).
    ``stats``: the record's statistics rows (computed here when not given).
    """
    rows = record_stats(record) if stats is None else stats
    payload = json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False)
    # "<", ">" and "&" escaped so no token can close the script element; JSON parsers read them back.
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = f'<div class="attnlab-title">{html.escape(record.title)}</div>' if record.title else ""
    return "\n".join(
        [
            f'<div class="attnlab-view" id="{prefix}view" tabindex="-1">',
            title,
            _sentence("source", record.src_tokens),
            _sentence("target", record.tgt_tokens),
            f'<div class="attnlab-controls">{"".join(_controls(record, prefix))}</div>',
            '<div class="attnlab-info" data-role="info" aria-live="polite">hover a token or a cell</div>',
            '<p class="attnlab-note" data-role="note"></p>',
            '<div class="attnlab-maps" data-role="maps"></div>',
            _stats_table(rows, prefix),
            f'<script type="application/json" id="{prefix}{DATA_ELEMENT_ID}">{payload}</script>',
            "</div>",
        ]
    )


def _sentence(name: str, tokens: Sequence[str]) -> str:
    return f'<p class="attnlab-sentence"><b>{name}</b> {html.escape(" ".join(tokens))}</p>'


def _controls(record: AttentionRecord, prefix: str) -> list[str]:
    kinds = [kind for kind in KINDS if kind in record.attentions]
    default_kind = "cross" if "cross" in kinds else kinds[0]
    controls = [
        _select("kind", [(k, k) for k in kinds], prefix, selected=default_kind),
        _select("layer", [], prefix),
        _select("head", [], prefix),
        _select("layout", [("single", "one head"), ("grid", "layers \u00d7 heads")], prefix, "show"),
    ]
    if record.init_attentions is not None:
        versions = [("trained", "trained"), ("init", "initial"), ("both", "initial beside trained")]
        controls.append(_select("version", versions, prefix, "model"))
    controls.append(_select("scale", [("map", "largest weight shown"), ("one", "0 to 1")], prefix, "colour scale"))
    checkbox = f'<input type="checkbox" id="{prefix}special" data-role="special" checked>'
    controls.append(f"<label>{checkbox} show &lt;bos&gt;/&lt;eos&gt;</label>")
    return controls


def _checked_record(sentence_record: AttentionRecord | Mapping[str, Any]) -> AttentionRecord:
    record = (
        sentence_record if isinstance(sentence_record, AttentionRecord) else AttentionRecord.from_dict(sentence_record)
    )
    if not record.attentions:
        raise ValueError("the record holds no attention; build it with AttentionRecord.from_arrays(...)")
    for init, version in ((False, record.attentions), (True, record.init_attentions or {})):
        for kind in version:
            query_tokens, key_tokens = query_key_tokens(kind, record.src_tokens, record.tgt_tokens)
            for layer in record.layers(kind, init=init):
                check_token_counts(layer, query_tokens, key_tokens)
    return record


def _select(
    name: str, options: list[tuple[str, str]], prefix: str, label: str | None = None, selected: str | None = None
) -> str:
    items = "".join(
        f'<option value="{html.escape(v)}"{" selected" if v == selected else ""}>{html.escape(text)}</option>'
        for v, text in options
    )
    element = f'<select id="{prefix}{name}" data-role="{name}">{items}</select>'
    return f"<label>{html.escape(label or name)} {element}</label>"


def _stats_table(rows: Stats, prefix: str) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(f"<td>{html.escape(format_value(row[c]))}</td>" for c in columns)
        key = f'data-kind="{row["kind"]}" data-layer="{row["layer"]}" data-head="{row["head"]}"'
        body.append(f"<tr {key}>{cells}</tr>")
    caption = (
        "<caption>Per head (click a row to show it): mean row entropy (nats), mean max weight, share of weight "
        "in the diagonal band (|i(K-1)/(Q-1) - j| &le; 1), share on &lt;eos&gt;/punctuation keys, and (cross "
        "only) share of rows whose argmax lies in the band. Padding excluded.</caption>"
    )
    head = f"<thead><tr>{header}</tr></thead>"
    table = f'<table class="attnlab-stats" id="{prefix}stats" data-role="stats">'
    return f'{table}{caption}{head}<tbody>{"".join(body)}</tbody></table>'
