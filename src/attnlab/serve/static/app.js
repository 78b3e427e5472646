/* The explorer page of `attnlab serve`: runs and curves, translation, attention, two runs side by side.
   Plain JavaScript over the REST API (/docs); attention is drawn by attention-view.js, the same view as
   the per-sentence pages and notebooks. Nothing is fetched from anywhere but this server. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const state = { runs: [], byId: {}, limits: null, current: null };
  const COLORS = ["#08519c", "#e6550d", "#31a354", "#756bb1"];
  const PANELS = [["loss", ["train/loss", "train/epoch_loss", "val/loss"]], ["perplexity", ["val/ppl"]],
    ["BLEU", ["val/bleu"]], ["chrF", ["val/chrf"]]];

  async function call(path, body) { // the Response, or an Error carrying the server's one-line detail
    const options = body === undefined ? {} :
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(path, options);
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (err) { /* not JSON: keep the status */ }
      throw new Error(detail);
    }
    return response;
  }
  const getJSON = async (path, body) => (await call(path, body)).json();

  function status(message, isError) {
    $("status").textContent = message || "";
    $("status").classList.toggle("error", Boolean(isError));
  }
  async function guarded(button, work) { // run work() with the button disabled; errors go to the status line
    button.disabled = true;
    status("working\u2026");
    try { await work(); status(""); } catch (err) { status(err.message, true); } finally { button.disabled = false; }
  }

  function node(tag, text, className) {
    const element = document.createElement(tag);
    if (text !== undefined && text !== null) element.textContent = text;
    if (className) element.className = className;
    return element;
  }
  const count = (n) => (n == null ? "" : n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e3 ? (n / 1e3).toFixed(1) + "K" : String(n));
  const fixed = (x, digits) => (x == null ? "" : Number(x).toFixed(digits));
  const seconds = (s) => (s == null ? "" : s >= 120 ? (s / 60).toFixed(1) + " min" : s.toFixed(s < 1 ? 3 : 1) + " s");

  function showTab(name) {
    for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.tab === name);
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.id === "tab-" + name);
  }

  function runRow(run) {
    const tr = node("tr");
    tr.dataset.run = run.id;
    const test = Object.entries(run.scores).filter(([k]) => k.startsWith("test")).map(([, v]) => v.toFixed(1));
    const group = node("td", run.group);
    if (run.report_id) {
      const link = node("a", "report");
      link.href = "/reports/" + encodeURIComponent(run.report_id);
      link.target = "_blank";
      group.append(" (", link, ")");
    }
    const cells = [node("td", run.name), group, node("td", run.architecture),
      node("td", count(run.parameters), "num"), node("td", fixed(run.best["val/bleu"], 2), "num"),
      node("td", run.best["val/loss"] == null ? "" : fixed(run.best["val/loss"], 3) + " / " + fixed(run.best["val/ppl"], 1), "num"),
      node("td", test.join(", "), "num"), node("td", run.epochs, "num"), node("td", seconds(run.train_time_s), "num"),
      node("td", run.status)];
    tr.append(...cells);
    tr.addEventListener("click", () => chooseRun(run.id));
    return tr;
  }

  function fillRunSelect(select, chosen) {
    select.innerHTML = "";
    for (const run of state.runs) select.add(new Option(run.group ? run.group + " / " + run.name : run.name, run.id));
    if (chosen) select.value = chosen;
  }

  async function chooseRun(id) {
    state.current = id;
    $("run-select").value = id;
    for (const tr of $("runs").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.run === id);
    const run = state.byId[id];
    $("attention-init").disabled = !run.has_init;
    if (!run.has_init) $("attention-init").checked = false;
    try {
      const details = await getJSON("/api/runs/" + encodeURIComponent(id));
      if (state.current === id) showDetails(details);
    } catch (err) { status(err.message, true); }
  }

  function showDetails(details) {
    $("run-details").hidden = false;
    $("run-title").textContent = details.name;
    $("run-meta").textContent = details.architecture + " \u00b7 " + count(details.parameters) + " parameters \u00b7 " +
      details.status + " \u00b7 " + details.path;
    $("run-config").textContent = JSON.stringify(details.config, null, 2);
    state.details = details;
    drawCurves();
  }

  function drawCurves() {
    const box = $("curves"), x = $("curve-x").value, curves = (state.details || {}).curves || {};
    box.innerHTML = "";
    for (const [title, metrics] of PANELS) {
      const series = metrics.filter((m) => curves[m]).map((m) => ({
        name: m, points: curves[m].filter((p) => p[x] != null).map((p) => [p[x], p.value]) }));
      if (!series.some((s) => s.points.length)) continue;
      const canvas = node("canvas");
      canvas.dataset.metric = title;
      box.appendChild(canvas);
      chart(canvas, title, series, x === "time" ? "training time (s)" : "epoch");
    }
    if (!box.childElementCount) box.textContent = "no metrics.csv yet";
  }

  function chart(canvas, title, series, xName) { // a small line chart: axes with end values, one line per series
    const W = 360, H = 220, ratio = window.devicePixelRatio || 1, pad = { l: 48, r: 12, t: 24, b: 34 };
    canvas.width = W * ratio; canvas.height = H * ratio;
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    const all = series.flatMap((s) => s.points);
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 1; y1 += 1; }
    const px = (v) => pad.l + ((v - x0) / (x1 - x0)) * (W - pad.l - pad.r);
    const py = (v) => H - pad.b - ((v - y0) / (y1 - y0)) * (H - pad.t - pad.b);
    g.font = "11px system-ui, sans-serif"; g.fillStyle = "#333"; g.strokeStyle = "#999";
    g.fillText(title, pad.l, 14);
    g.beginPath(); g.moveTo(pad.l, pad.t); g.lineTo(pad.l, H - pad.b); g.lineTo(W - pad.r, H - pad.b); g.stroke();
    g.textAlign = "right";
    g.fillText(y1.toPrecision(3), pad.l - 4, pad.t + 4); g.fillText(y0.toPrecision(3), pad.l - 4, H - pad.b);
    g.textAlign = "center";
    g.fillText(String(+x0.toFixed(1)), pad.l, H - pad.b + 13); g.fillText(String(+x1.toFixed(1)), W - pad.r, H - pad.b + 13);
    g.fillText(xName, (W + pad.l) / 2, H - 6);
    series.forEach((s, k) => {
      g.strokeStyle = g.fillStyle = COLORS[k % COLORS.length];
      g.beginPath();
      s.points.forEach(([a, b], i) => (i ? g.lineTo(px(a), py(b)) : g.moveTo(px(a), py(b))));
      g.stroke();
      for (const [a, b] of s.points) g.fillRect(px(a) - 1.5, py(b) - 1.5, 3, 3);
      g.textAlign = "right";
      g.fillText(s.name, W - pad.r, pad.t + 12 * k);
    });
  }

  async function translate() {
    const sentences = $("translate-input").value.split("\n").filter((line) => line.trim());
    const greedy = $("translate-search").value === "greedy";
    const body = { sentences: sentences, beam: greedy ? 1 : Number($("translate-beam").value),
      n_best: greedy ? 1 : Number($("translate-nbest").value) };
    const result = await getJSON("/api/runs/" + encodeURIComponent(state.current) + "/translate", body);
    const out = $("translate-output");
    out.innerHTML = "";
    for (const t of result.translations) {
      const box = node("div", null, "sentence-result");
      box.appendChild(node("div", t.source, "source"));
      const list = node("ol");
      for (const c of t.n_best) {
        const item = node("li", c.text || "(empty)");
        const normalised = c.normalized_score == null ? "" : ", normalised " + c.normalized_score.toFixed(3);
        item.appendChild(node("span", "log-prob " + c.score.toFixed(3) + normalised + (c.complete ? "" : ", cut at the length limit"), "score"));
        list.appendChild(item);
      }
      box.appendChild(list);
      out.appendChild(box);
    }
    $("translate-timing").textContent = timing(result.seconds, result.load_seconds, result.translations.length,
      greedy ? "greedy" : "beam " + body.beam);
  }

  function timing(total, load, sentences, how) {
    const loaded = load > 0 ? " (loading the model took " + seconds(load) + ")" : "";
    return sentences + " sentence" + (sentences === 1 ? "" : "s") + ", " + how + ": " + seconds(total) + loaded;
  }

  async function attentionView(runId, body, into) { // insert the server-rendered view and bring it to life
    const response = await call("/api/runs/" + encodeURIComponent(runId) + "/attention/view", body);
    into.innerHTML = await response.text();
    window.attnlab.mountViews(into);
    const times = {};
    for (const part of (response.headers.get("Server-Timing") || "").split(",")) {
      const match = part.trim().match(/^(\w+);dur=([\d.]+)/);
      if (match) times[match[1]] = Number(match[2]) / 1000;
    }
    return times;
  }

  function attentionBody(text, reference, kind, beam, init) {
    const body = { text: text, kind: kind, beam: beam, compare_init: init };
    if (reference.trim()) body.reference = reference;
    return body;
  }

  async function attention() {
    const body = attentionBody($("attention-text").value, $("attention-reference").value, $("attention-kind").value,
      Number($("attention-beam").value), $("attention-init").checked);
    const times = await attentionView(state.current, body, $("attention-output"));
    const how = body.reference ? "forced on the reference" : body.beam === 1 ? "greedy" : "beam " + body.beam;
    $("attention-timing").textContent = timing(times.infer, times.load, 1, how);
  }

  async function compare() {
    const out = $("compare-output");
    out.innerHTML = "";
    const text = $("compare-text").value, reference = $("compare-reference").value;
    const columns = [$("compare-a").value, $("compare-b").value].map((id) => {
      const column = node("div", null, "compare-column");
      column.dataset.run = id;
      const run = state.byId[id];
      column.append(node("h3", run.name), node("div", run.architecture, "meta"));
      const view = node("div");
      const meta = node("p", null, "meta");
      column.append(meta, view);
      out.appendChild(column);
      return { id: id, view: view, meta: meta };
    });
    for (const c of columns) { // one after the other: two models at once would only compete for the cores
      const times = await attentionView(c.id, attentionBody(text, reference, "all", 1, false), c.view);
      c.meta.textContent = timing(times.infer, times.load, 1, reference.trim() ? "forced on the reference" : "greedy");
    }
  }

  function limitInputs(limits) {
    for (const id of ["translate-beam", "attention-beam"]) $(id).max = limits.max_beam;
    $("translate-nbest").max = limits.max_n_best;
    for (const id of ["attention-text", "attention-reference", "compare-text", "compare-reference"]) $(id).maxLength = limits.max_chars;
    $("translate-search").addEventListener("change", () => {
      const greedy = $("translate-search").value === "greedy";
      $("translate-beam").disabled = $("translate-nbest").disabled = greedy;
    });
  }

  async function start() {
    for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => showTab(button.dataset.tab));
    const [runs, limits] = await Promise.all([getJSON("/api/runs"), getJSON("/api/limits")]);
    state.runs = runs; state.limits = limits;
    for (const run of runs) state.byId[run.id] = run;
    for (const run of runs) $("runs").tBodies[0].appendChild(runRow(run));
    fillRunSelect($("run-select"));
    fillRunSelect($("compare-a"), runs[0].id);
    fillRunSelect($("compare-b"), (runs[1] || runs[0]).id);
    limitInputs(limits);
    $("run-select").addEventListener("change", () => chooseRun($("run-select").value));
    $("curve-x").addEventListener("change", drawCurves);
    const forms = [["translate-form", "translate-go", translate], ["attention-form", "attention-go", attention],
      ["compare-form", "compare-go", compare]];
    for (const [form, button, work] of forms) {
      $(form).addEventListener("submit", (event) => { event.preventDefault(); guarded($(button), work); });
    }
    await chooseRun(runs[0].id);
    document.body.dataset.ready = "1";
  }

  start().catch((err) => status("could not start: " + err.message, true));
})();
