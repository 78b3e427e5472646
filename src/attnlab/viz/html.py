"""One self-contained, interactive HTML page per sentence for looking at its attention.

The page needs nothing but a browser: CSS and JavaScript are inline, the data is embedded as JSON
in a ``<script type="application/json" id="attnlab-data">`` element (an :class:`AttentionRecord`
as a dict), and nothing is fetched (no CDN, no web fonts). Controls pick the kind (encoder /
decoder / cross), layer and head, the trained or initial model (when the record has both),
whether special tokens are shown, and the colour scale. The heatmap is an HTML table (queries as
rows, keys as columns); hovering a cell shows the token pair and its weight. Below it, the
statistics of :mod:`attnlab.viz.stats` for every head; the row of the head on view is
highlighted, and clicking a row shows that head.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnlab.viz.records import KINDS, AttentionRecord, check_token_counts, query_key_tokens
from attnlab.viz.stats import format_value, record_stats

__all__ = ["attention_html", "render_attention_html", "DATA_ELEMENT_ID"]

DATA_ELEMENT_ID = "attnlab-data"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1a1a1a; }
h1 { font-size: 1.3em; }
.sentence { margin: 0.2em 0; } .sentence b { display: inline-block; width: 4.5em; }
.controls { margin: 1em 0; display: flex; flex-wrap: wrap; gap: 1.2em; align-items: center; }
#info { min-height: 1.4em; font-family: ui-monospace, monospace; margin: 0.5em 0; }
#map { border-collapse: collapse; font-size: 12px; }
#map td { width: 18px; height: 18px; padding: 0; border: 1px solid #f0f0f0; }
#map td:hover { outline: 2px solid #d62728; }
#map th { font-weight: normal; padding: 1px 4px; white-space: nowrap; }
#map thead th { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; }
#map tbody th { text-align: right; }
#map th.hot { background: #ffe08a; }
#stats { border-collapse: collapse; margin-top: 1.5em; font-size: 13px; }
#stats th, #stats td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
#stats tr.current { background: #ffe08a; } #stats tbody tr { cursor: pointer; }
.note { color: #666; font-size: 0.9em; }
"""

_JS = """
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("attnlab-data").textContent);
  const SPECIAL = new Set(["<bos>", "<eos>", "<pad>"]);
  const byId = (id) => document.getElementById(id);
  const kindSel = byId("kind"), layerSel = byId("layer"), headSel = byId("head");
  const versionSel = byId("version"), scaleSel = byId("scale"), special = byId("special");

  function tokens(kind) {  // [query tokens, key tokens]
    if (kind === "encoder") return [data.src_tokens, data.src_tokens];
    if (kind === "decoder") return [data.tgt_tokens, data.tgt_tokens];
    return [data.tgt_tokens, data.src_tokens];
  }
  function maps() {
    return versionSel && versionSel.value === "init" ? data.init_attentions : data.attentions;
  }
  function fill(select, count, label) {
    const keep = Math.min(Number(select.value) || 0, count - 1);
    select.innerHTML = "";
    for (let i = 0; i < count; i++) select.add(new Option(label + " " + i, String(i)));
    select.value = String(Math.max(keep, 0));
  }
  function refreshHeads() {
    fill(headSel, data.attentions[kindSel.value][Number(layerSel.value)].length, "head");
  }
  function refreshChoices() {
    fill(layerSel, data.attentions[kindSel.value].length, "layer");
    refreshHeads();
  }
  function cell(text, tag) {
    const element = document.createElement(tag);
    element.textContent = text;
    return element;
  }
  function draw() {
    const kind = kindSel.value, layer = Number(layerSel.value), head = Number(headSel.value);
    const table = byId("map"), note = byId("note");
    table.innerHTML = "";
    const source = maps();
    if (!source || !source[kind] || !source[kind][layer] || !source[kind][layer][head]) {
      note.textContent = "The initial model has no such attention.";
      return;
    }
    const m = source[kind][layer][head];
    const [qTok, kTok] = tokens(kind);
    const rows = qTok.map((_, i) => i).filter((i) => special.checked || !SPECIAL.has(qTok[i]));
    const cols = kTok.map((_, j) => j).filter((j) => special.checked || !SPECIAL.has(kTok[j]));
    let top = 0;
    for (const i of rows) for (const j of cols) top = Math.max(top, m[i][j]);
    const scale = scaleSel.value === "one" ? 1 : (top > 0 ? top : 1);
    note.textContent = "darkest = " + scale.toFixed(3) + " (largest weight shown: " + top.toFixed(3) + ")";
    const head_row = table.createTHead().insertRow();
    head_row.appendChild(cell("", "th"));
    for (const j of cols) head_row.appendChild(cell(kTok[j], "th"));
    const body = table.createTBody();
    for (const i of rows) {
      const tr = body.insertRow();
      tr.appendChild(cell(qTok[i], "th"));
      for (const j of cols) {
        const td = tr.insertCell(), w = m[i][j], t = Math.min(w / scale, 1);
        td.style.background = "rgba(8, 48, 107, " + t.toFixed(3) + ")";
        td.dataset.i = i; td.dataset.j = j;
        td.title = qTok[i] + " \\u2192 " + kTok[j] + ": " + w.toFixed(4);
      }
    }
    for (const tr of byId("stats").tBodies[0].rows) {
      const d = tr.dataset;
      tr.classList.toggle("current", d.kind === kind && Number(d.layer) === layer && Number(d.head) === head);
    }
  }
  byId("map").addEventListener("mouseover", (event) => {
    const td = event.target.closest("td");
    for (const th of document.querySelectorAll("#map th.hot")) th.classList.remove("hot");
    if (!td) return;
    const [qTok, kTok] = tokens(kindSel.value), i = Number(td.dataset.i), j = Number(td.dataset.j);
    const m = maps()[kindSel.value][Number(layerSel.value)][Number(headSel.value)];
    byId("info").textContent = qTok[i] + " \\u2192 " + kTok[j] + "   weight " + m[i][j].toFixed(4);
    td.parentNode.cells[0].classList.add("hot");
    byId("map").tHead.rows[0].cells[td.cellIndex].classList.add("hot");
  });
  byId("stats").tBodies[0].addEventListener("click", (event) => {
    const tr = event.target.closest("tr");
    if (!tr) return;
    kindSel.value = tr.dataset.kind; refreshChoices();
    layerSel.value = tr.dataset.layer; refreshHeads();
    headSel.value = tr.dataset.head; draw();
  });
  kindSel.addEventListener("change", () => { refreshChoices(); draw(); });
  layerSel.addEventListener("change", () => { refreshHeads(); draw(); });
  for (const control of [headSel, versionSel, scaleSel, special]) {
    if (control) control.addEventListener("change", draw);
  }
  refreshChoices();
  draw();
})();
"""


def attention_html(sentence_record: AttentionRecord | Mapping[str, Any], path: str | Path) -> Path:
    """Write the interactive page of one sentence to ``path`` (an ``.html`` file) and return it.

    ``sentence_record`` is an :class:`AttentionRecord` or its ``to_dict()`` form.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_attention_html(sentence_record), encoding="utf-8")
    return path


def render_attention_html(sentence_record: AttentionRecord | Mapping[str, Any]) -> str:
    """The page of :func:`attention_html` as a string."""
    record = _checked_record(sentence_record)
    kinds = [kind for kind in KINDS if kind in record.attentions]
    title = record.title or "attention"
    controls = [_select("kind", [(k, k) for k in kinds]), _select("layer", []), _select("head", [])]
    if record.init_attentions is not None:
        controls.append(_select("version", [("trained", "trained"), ("init", "initial")], "model"))
    controls.append(_select("scale", [("map", "largest weight shown"), ("one", "0 to 1")], "colour scale"))
    specials = "show &lt;bos&gt;/&lt;eos&gt;/&lt;pad&gt;"
    controls.append(f'<label><input type="checkbox" id="special"> {specials}</label>')
    payload = json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False)
    # "<", ">" and "&" escaped so no token can close the script element; JSON parsers read them back.
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="sentence"><b>source</b> {html.escape(" ".join(record.src_tokens))}</p>',
            f'<p class="sentence"><b>target</b> {html.escape(" ".join(record.tgt_tokens))}</p>',
            f'<div class="controls">{"".join(controls)}</div>',
            '<div id="info" aria-live="polite">hover a cell</div>',
            '<p id="note" class="note"></p>',
            '<table id="map"></table>',
            _stats_table(record),
            f'<script type="application/json" id="{DATA_ELEMENT_ID}">{payload}</script>',
            f"<script>{_JS}</script>",
            "</body></html>",
        ]
    )


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


def _select(name: str, options: list[tuple[str, str]], label: str | None = None) -> str:
    items = "".join(f'<option value="{html.escape(v)}">{html.escape(text)}</option>' for v, text in options)
    return f'<label>{html.escape(label or name)} <select id="{name}">{items}</select></label>'


def _stats_table(record: AttentionRecord) -> str:
    rows = record_stats(record)
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
        "<caption>Per head: mean row entropy (nats), mean max weight, share of weight in the diagonal "
        "band (|i(K-1)/(Q-1) - j| &le; 1), share on &lt;eos&gt;/punctuation keys, and (cross only) share "
        "of rows whose argmax lies in the band. Padding excluded.</caption>"
    )
    head = f"<thead><tr>{header}</tr></thead>"
    return f'<table id="stats">{caption}{head}<tbody>{"".join(body)}</tbody></table>'
