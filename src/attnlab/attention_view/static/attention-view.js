/* The interactive attention view of attnlab (attnlab.attention_view.html renders its markup; this script brings it
   to life). One script for the per-sentence HTML page, the notebook output and the `attnlab serve` page.

   Markup: an element of class "attnlab-view" holding controls marked with data-role (kind, layer, head,
   version, layout, scale, special), an info line, a note, an empty "maps" box, the statistics table and a
   <script type="application/json"> with the record: {src_tokens, tgt_tokens, attentions, init_attentions,
   title}, where attentions[kind][layer][head][query][key] is a weight. window.attnlab.mountViews(scope)
   mounts every view in scope that is not mounted yet; it is safe to load this script more than once. */
(function () {
  "use strict";
  const ns = (window.attnlab = window.attnlab || {});
  if (ns.mountViews) return;
  const SPECIAL = new Set(["<bos>", "<eos>"]);
  const VERSION_NAMES = { trained: "trained", init: "initial" };

  function tokensOf(data, kind) { // [query tokens, key tokens]
    if (kind === "encoder") return [data.src_tokens, data.src_tokens];
    if (kind === "decoder") return [data.tgt_tokens, data.tgt_tokens];
    return [data.tgt_tokens, data.src_tokens];
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fill(select, count, label) {
    const keep = Math.min(Number(select.value) || 0, count - 1);
    select.innerHTML = "";
    for (let i = 0; i < count; i++) select.add(new Option(label + " " + i, String(i)));
    select.value = String(Math.max(keep, 0));
  }

  function shown(tokens, withSpecial) { // positions to draw: never padding, <bos>/<eos> on request
    const kept = [];
    tokens.forEach((t, i) => { if (t !== "<pad>" && (withSpecial || !SPECIAL.has(t))) kept.push(i); });
    return kept;
  }

  class View {
    constructor(root) {
      this.root = root;
      this.data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
      const role = (name) => root.querySelector('[data-role="' + name + '"]');
      this.c = {};
      for (const name of ["kind", "layer", "head", "version", "layout", "scale", "special"]) this.c[name] = role(name);
      this.maps = role("maps");
      this.info = role("info");
      this.note = role("note");
      this.stats = role("stats");
      this.pinned = null; // {i, j} of a clicked token or cell, kept until clicked again
      this.listen();
      this.refreshChoices();
      this.draw();
    }

    get kind() { return this.c.kind.value; }
    get layer() { return Number(this.c.layer.value); }
    get head() { return Number(this.c.head.value); }
    versions() {
      const chosen = this.c.version ? this.c.version.value : "trained";
      return chosen === "both" ? ["init", "trained"] : [chosen];
    }
    source(version) { return version === "init" ? this.data.init_attentions : this.data.attentions; }
    weights(version, layer, head) { // (q, k) nested array, or undefined when that version lacks it
      const source = this.source(version), kind = this.kind;
      return source && source[kind] && source[kind][layer] ? source[kind][layer][head] : undefined;
    }

    refreshChoices() {
      fill(this.c.layer, this.data.attentions[this.kind].length, "layer");
      this.refreshHeads();
    }
    refreshHeads() { fill(this.c.head, this.data.attentions[this.kind][this.layer].length, "head"); }

    select(kind, layer, head) {
      this.c.kind.value = kind; this.refreshChoices();
      this.c.layer.value = String(layer); this.refreshHeads();
      this.c.head.value = String(head);
      this.c.layout.value = "single";
      this.draw();
    }

    listen() {
      const c = this.c;
      c.kind.addEventListener("change", () => { this.refreshChoices(); this.draw(); });
      c.layer.addEventListener("change", () => { this.refreshHeads(); this.draw(); });
      for (const name of ["head", "version", "layout", "scale", "special"]) {
        if (c[name]) c[name].addEventListener("change", () => this.draw());
      }
      this.maps.addEventListener("mouseover", (event) => { if (!this.pinned) this.hover(event.target); });
      this.maps.addEventListener("mouseleave", () => { if (!this.pinned) this.highlight(null, null); });
      this.maps.addEventListener("click", (event) => this.click(event.target));
      this.root.addEventListener("keydown", (event) => { if (event.key === "Escape") this.unpin(); });
      if (this.stats) {
        this.stats.tBodies[0].addEventListener("click", (event) => {
          const row = event.target.closest("tr");
          if (row) this.select(row.dataset.kind, Number(row.dataset.layer), Number(row.dataset.head));
        });
      }
    }

    position(target) { // {i, j} of a cell, a row label (j null) or a column label (i null)
      const node = target.closest ? target.closest("td, th") : null;
      if (!node || !this.maps.contains(node)) return null;
      const i = node.dataset.i === undefined ? null : Number(node.dataset.i);
      const j = node.dataset.j === undefined ? null : Number(node.dataset.j);
      return i === null && j === null ? null : { i: i, j: j };
    }

    hover(target) {
      const at = this.position(target);
      this.highlight(at ? at.i : null, at ? at.j : null);
    }

    click(target) {
      const mini = target.closest(".attnlab-mini");
      if (mini) { this.select(this.kind, Number(mini.dataset.layer), Number(mini.dataset.head)); return; }
      const at = this.position(target);
      if (!at) return;
      const same = this.pinned && this.pinned.i === at.i && this.pinned.j === at.j;
      this.pinned = same ? null : at;
      this.root.classList.toggle("attnlab-pinned", !same);
      this.highlight(at.i, at.j);
    }

    unpin() {
      this.pinned = null;
      this.root.classList.remove("attnlab-pinned");
      this.highlight(null, null);
    }

    highlight(i, j) { // mark row i and column j in every map on view, and say where the token looked
      for (const node of this.maps.querySelectorAll(".attnlab-hl, .attnlab-hot")) {
        node.classList.remove("attnlab-hl", "attnlab-hot");
      }
      const marks = [];
      if (i !== null) marks.push('[data-i="' + i + '"]');
      if (j !== null) marks.push('[data-j="' + j + '"]');
      for (const mark of marks) {
        for (const node of this.maps.querySelectorAll("td" + mark)) node.classList.add("attnlab-hl");
        for (const node of this.maps.querySelectorAll("th" + mark)) node.classList.add("attnlab-hot");
      }
      this.info.textContent = this.describe(i, j);
    }

    describe(i, j) {
      const [qTok, kTok] = tokensOf(this.data, this.kind);
      const version = this.versions()[this.versions().length - 1];
      const m = this.weights(version, this.layer, this.head);
      if (!m || (i === null && j === null)) return "hover a token or a cell; click to pin it";
      const rows = shown(qTok, this.c.special.checked), cols = shown(kTok, this.c.special.checked);
      if (i !== null && j !== null) return qTok[i] + " \u2192 " + kTok[j] + "   weight " + m[i][j].toFixed(4);
      if (i !== null) {
        const best = cols.reduce((a, b) => (m[i][b] > m[i][a] ? b : a), cols[0]);
        return qTok[i] + " looks most at " + kTok[best] + " (" + m[i][best].toFixed(3) + ")";
      }
      const best = rows.reduce((a, b) => (m[b][j] > m[a][j] ? b : a), rows[0]);
      return kTok[j] + " is looked at most by " + qTok[best] + " (" + m[best][j].toFixed(3) + ")";
    }

    draw() {
      const [qTok, kTok] = tokensOf(this.data, this.kind);
      const rows = shown(qTok, this.c.special.checked), cols = shown(kTok, this.c.special.checked);
      const grid = this.c.layout.value === "grid";
      const layers = this.data.attentions[this.kind];
      const cells = []; // every (version, layer, head) drawn
      for (const version of this.versions()) {
        for (let layer = 0; layer < layers.length; layer++) {
          for (let head = 0; head < layers[layer].length; head++) {
            if (grid || (layer === this.layer && head === this.head)) cells.push([version, layer, head]);
          }
        }
      }
      let top = 0;
      for (const [version, layer, head] of cells) {
        const m = this.weights(version, layer, head);
        if (m) for (const i of rows) for (const j of cols) top = Math.max(top, m[i][j]);
      }
      const scale = this.c.scale.value === "one" ? 1 : (top > 0 ? top : 1);
      this.maps.innerHTML = "";
      const missing = [];
      for (const version of this.versions()) {
        const panel = element("div", "attnlab-panel");
        panel.dataset.version = version;
        if (this.versions().length > 1) panel.appendChild(element("div", "attnlab-caption", VERSION_NAMES[version]));
        const body = grid ? this.gridOf(version, rows, cols, scale) : this.mapOf(version, this.layer, this.head,
          rows, cols, scale, true);
        if (body) panel.appendChild(body); else missing.push(VERSION_NAMES[version]);
        this.maps.appendChild(panel);
      }
      this.note.textContent = "darkest = " + scale.toFixed(3) + " (largest weight shown: " + top.toFixed(3) + ")" +
        (missing.length ? "; the " + missing.join(" and ") + " model has no such attention" : "");
      this.markCurrentStats();
      this.highlight(this.pinned ? this.pinned.i : null, this.pinned ? this.pinned.j : null);
    }

    gridOf(version, rows, cols, scale) {
      const layers = (this.source(version) || {})[this.kind];
      if (!layers) return null;
      const heads = Math.max(...layers.map((l) => l.length));
      const box = element("div", "attnlab-grid");
      box.style.gridTemplateColumns = "repeat(" + heads + ", auto)";
      for (let layer = 0; layer < layers.length; layer++) {
        for (let head = 0; head < layers[layer].length; head++) {
          const mini = element("div", "attnlab-mini");
          mini.dataset.layer = String(layer); mini.dataset.head = String(head);
          mini.title = "show layer " + layer + ", head " + head;
          mini.appendChild(element("div", "attnlab-caption", "layer " + layer + " \u00b7 head " + head));
          mini.appendChild(this.mapOf(version, layer, head, rows, cols, scale, false));
          box.appendChild(mini);
        }
      }
      return box;
    }

    mapOf(version, layer, head, rows, cols, scale, labelled) {
      const m = this.weights(version, layer, head);
      if (!m) return null;
      const [qTok, kTok] = tokensOf(this.data, this.kind);
      const table = element("table", "attnlab-map" + (labelled ? "" : " attnlab-small"));
      Object.assign(table.dataset, { version: version, layer: String(layer), head: String(head) });
      if (labelled) {
        const top = table.createTHead().insertRow();
        top.appendChild(element("th"));
        for (const j of cols) { const th = element("th", "attnlab-col", kTok[j]); th.dataset.j = j; top.appendChild(th); }
      }
      const body = table.createTBody();
      for (const i of rows) {
        const tr = body.insertRow();
        if (labelled) { const th = element("th", "attnlab-row", qTok[i]); th.dataset.i = i; tr.appendChild(th); }
        for (const j of cols) {
          const td = tr.insertCell(), w = m[i][j];
          td.style.background = "rgba(8, 48, 107, " + Math.min(w / scale, 1).toFixed(3) + ")";
          td.dataset.i = i; td.dataset.j = j;
          td.title = qTok[i] + " \u2192 " + kTok[j] + ": " + w.toFixed(4);
        }
      }
      return table;
    }

    markCurrentStats() {
      if (!this.stats) return;
      const grid = this.c.layout.value === "grid";
      for (const tr of this.stats.tBodies[0].rows) {
        const d = tr.dataset;
        const current = d.kind === this.kind && (grid || (Number(d.layer) === this.layer && Number(d.head) === this.head));
        tr.classList.toggle("attnlab-current", current);
      }
    }
  }

  ns.mountViews = function (scope) {
    const views = [];
    for (const root of (scope || document).querySelectorAll(".attnlab-view")) {
      if (root.attnlabView) continue;
      root.attnlabView = new View(root);
      views.push(root.attnlabView);
    }
    return views;
  };
})();
