"""The explorer page in a real Chromium (Debian's package) driven by Playwright, against a real server.

Skipped only where Chromium is not installed (``.ci/run`` installs it when it can). Set
``ATTNLAB_SCREENSHOTS=DIR`` to save the screenshots of docs/explorer.md, and ``ATTNLAB_EXPLORER_RUNS``
(paths separated by ``:``) to serve other runs than the tiny ones trained here (real runs for those
screenshots); they need a Transformer with 2+ layers, 2+ heads and checkpoints/init.pt, and one other run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attnlab.attention_view.html import render_attention_html, render_attention_view
from attnlab.attention_view.records import AttentionRecord

TEXT = "You are not as tall as I am."
CHROMIUM_FLAGS = ["--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEW = "#attention-output .attnlab-view"
TRAINED_MAP = f"{VIEW} table.attnlab-map[data-version='trained']"


def _chromium() -> str:
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("Debian's chromium is not installed and could not be installed here "
                "(as root: apt-get update && apt-get install -y chromium; .ci/run does this when it can)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _open(browser: Any, url: str | None = None) -> Any:
    """A new page that records console errors and uncaught exceptions in ``page.errors``."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.errors = []
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    if url:
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
    return page


@pytest.fixture(scope="module")
def page(browser: Any, start_server: Any) -> Iterator[Any]:
    given = os.environ.get("ATTNLAB_EXPLORER_RUNS")
    url, _ = start_server(paths=[Path(p) for p in given.split(":")] if given else None)
    page = _open(browser, url)
    yield page
    page.close()


@pytest.fixture(scope="module")
def runs(page: Any) -> dict[str, dict]:
    """The Transformer to look inside and another run to compare it with."""
    listed = page.evaluate("fetch('/api/runs').then(r => r.json())")
    transformer = next(r for r in listed if r["arch"] == "transformer" and r["has_init"])
    other = next(r for r in listed if r["id"] != transformer["id"] and r["has_checkpoint"])
    return {"transformer": transformer, "other": other}


def _shot(page: Any, name: str, selector: str = "body") -> None:
    folder = os.environ.get("ATTNLAB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.locator(selector).first.screenshot(path=str(Path(folder) / f"{name}.png"))


def _colours(page: Any, table: str) -> list[str]:
    return page.eval_on_selector_all(f"{table} td", "cells => cells.map(c => c.style.background)")


def _view_data(page: Any, view: str) -> dict:
    return json.loads(page.text_content(f"{view} script[type='application/json']"))


def test_runs_list_and_curves(page: Any, runs: dict) -> None:
    listed = page.evaluate("fetch('/api/runs').then(r => r.json())")
    assert page.locator("#runs tbody tr").count() == len(listed)
    page.click(f"#runs tbody tr[data-run='{runs['transformer']['id']}']")
    # the first run's details are on show from the start: wait for the chosen run's, not for any
    page.wait_for_function("name => document.querySelector('#run-title').textContent === name",
                           arg=runs["transformer"]["name"])
    page.wait_for_selector("#run-details:not([hidden]) #curves canvas")
    assert page.locator(f"#runs tbody tr.selected[data-run='{runs['transformer']['id']}']").count() == 1
    epochs = page.locator("#curves canvas").count()
    page.select_option("#curve-x", "time")
    assert epochs >= 2 and page.locator("#curves canvas").count() == epochs
    page.select_option("#curve-x", "epoch")
    _shot(page, "runs")
    assert page.errors == []


def test_translate_with_beam_search_and_n_best(page: Any, runs: dict) -> None:
    page.click("nav button[data-tab='translate']")
    page.select_option("#run-select", runs["transformer"]["id"])
    page.fill("#translate-input", f"{TEXT}\nHe is a teacher.")
    page.select_option("#translate-search", "beam")
    page.fill("#translate-beam", "3")
    page.fill("#translate-nbest", "2")
    page.click("#translate-go")
    page.wait_for_selector("#translate-output .sentence-result >> nth=1")
    results = page.locator("#translate-output .sentence-result")
    assert results.count() == 2 and all(results.nth(i).locator("li").count() == 2 for i in range(2))
    assert "2 sentences, beam 3:" in page.text_content("#translate-timing")
    _shot(page, "translate", "main")
    assert page.errors == []


def test_attention_map_layers_heads_and_hover(page: Any, runs: dict) -> None:
    page.click("nav button[data-tab='attention']")
    page.select_option("#run-select", runs["transformer"]["id"])
    page.fill("#attention-text", TEXT)
    page.check("#attention-init")
    page.click("#attention-go")
    page.wait_for_selector(TRAINED_MAP)
    data = _view_data(page, VIEW)
    src, tgt = data["src_tokens"], data["tgt_tokens"]
    assert page.input_value(f"{VIEW} [data-role='kind']") == "cross"
    assert page.locator(f"{TRAINED_MAP} td").count() == len(tgt) * len(src)  # one cell per (target, source) pair
    before = _colours(page, TRAINED_MAP)
    page.select_option(f"{VIEW} [data-role='layer']", "1")
    after_layer = _colours(page, TRAINED_MAP)
    page.select_option(f"{VIEW} [data-role='head']", "1")
    after_head = _colours(page, TRAINED_MAP)
    assert before != after_layer != after_head
    assert page.get_attribute(TRAINED_MAP, "data-layer") == "1" and page.get_attribute(TRAINED_MAP, "data-head") == "1"
    page.hover(f"{TRAINED_MAP} th.attnlab-row >> nth=0")  # a target token: its row lights up
    assert page.locator(f"{TRAINED_MAP} td.attnlab-hl").count() == len(src)
    assert " looks most at " in page.text_content(f"{VIEW} [data-role='info']")
    page.hover(f"{TRAINED_MAP} td >> nth=0")  # a cell: its row and its column
    assert page.locator(f"{TRAINED_MAP} td.attnlab-hl").count() == len(src) + len(tgt) - 1
    page.click(f"{TRAINED_MAP} th.attnlab-col >> nth=1")  # a pinned source token stays lit while the mouse moves
    page.hover(f"{TRAINED_MAP} th.attnlab-row >> nth=0")
    assert page.locator(f"{TRAINED_MAP} td.attnlab-hl").count() == len(tgt)
    assert "attnlab-pinned" in page.get_attribute(VIEW, "class")
    page.select_option(f"{VIEW} [data-role='version']", "both")
    assert page.locator(f"{VIEW} table.attnlab-map").count() == 2  # initial beside trained
    _shot(page, "attention", "main")
    page.click(f"{TRAINED_MAP} th.attnlab-col >> nth=1")  # unpin
    _check_grid_and_stats(page, data)
    assert page.errors == []


def _check_grid_and_stats(page: Any, data: dict) -> None:
    layers, heads = len(data["attentions"]["cross"]), len(data["attentions"]["cross"][0])
    page.select_option(f"{VIEW} [data-role='version']", "trained")
    page.select_option(f"{VIEW} [data-role='layout']", "grid")
    assert page.locator(f"{VIEW} .attnlab-mini").count() == layers * heads
    _shot(page, "attention-grid", VIEW)
    page.click(f"{VIEW} .attnlab-stats tr[data-kind='decoder'][data-layer='0'][data-head='1']")
    assert page.input_value(f"{VIEW} [data-role='layout']") == "single"
    assert page.input_value(f"{VIEW} [data-role='kind']") == "decoder"
    chosen = [page.input_value(f"{VIEW} [data-role='{role}']") for role in ("layer", "head")]
    assert chosen == ["0", "1"]
    assert page.locator(f"{VIEW} .attnlab-stats tr.attnlab-current").count() == 1
    assert page.locator(f"{TRAINED_MAP} td").count() == len(data["tgt_tokens"]) ** 2


def test_compare_two_runs_side_by_side(page: Any, runs: dict) -> None:
    page.click("nav button[data-tab='compare']")
    page.select_option("#compare-a", runs["transformer"]["id"])
    page.select_option("#compare-b", runs["other"]["id"])
    page.fill("#compare-text", TEXT)
    page.click("#compare-go")
    page.wait_for_selector(".compare-column >> nth=1 >> table.attnlab-map")
    columns = page.locator(".compare-column")
    assert [columns.nth(i).get_attribute("data-run") for i in range(2)] == [runs["transformer"]["id"],
                                                                           runs["other"]["id"]]
    for i in range(2):
        view = f".compare-column:nth-child({i + 1}) .attnlab-view"
        data = _view_data(page, view)
        assert page.locator(f"{view} table.attnlab-map td").count() == len(data["src_tokens"]) * len(data["tgt_tokens"])
    _shot(page, "compare", "main")
    assert page.errors == []


def _record(seed: int, src: list[str], tgt: list[str]) -> AttentionRecord:
    rng = np.random.default_rng(seed)
    weights = rng.random((2, len(tgt), len(src)))
    return AttentionRecord.from_arrays(src, tgt, {"cross": (weights / weights.sum(-1, keepdims=True),)})


def test_notebook_outputs_and_the_standalone_page_work_offline(browser: Any) -> None:
    page = _open(browser)
    page.route("**/*", lambda route: route.abort())  # no network at all: everything must be inline
    first, second = _record(0, ["a", "b", "c"], ["x", "<eos>"]), _record(1, ["d", "e"], ["y", "z", "<eos>"])
    page.set_content(f"<html><body>{render_attention_view(first)}<p>next cell</p>{render_attention_view(second)}"
                     "</body></html>")  # two outputs of one notebook, in one document
    views = page.locator(".attnlab-view")
    assert views.count() == 2
    page.select_option(".attnlab-view >> nth=0 >> [data-role='head']", "1")
    assert page.locator(".attnlab-view >> nth=0 >> table.attnlab-map td").count() == 3 * 2
    assert page.locator(".attnlab-view >> nth=1 >> table.attnlab-map td").count() == 2 * 3
    assert page.input_value(".attnlab-view >> nth=1 >> [data-role='head']") == "0"  # views are independent
    page.set_content(render_attention_html(first))
    assert page.locator("#map, table.attnlab-map").count() == 1
    assert page.errors == []
    page.close()


def test_api_docs_render_without_network(browser: Any, page: Any) -> None:
    docs = _open(browser)
    origin = page.url.rstrip("/")
    docs.route("**/*", lambda route: route.continue_() if route.request.url.startswith(origin) else route.abort())
    docs.goto(f"{origin}/docs")
    docs.wait_for_selector(".swagger-ui .opblock-summary-path[data-path='/api/runs/{run_id}/attention']")
    assert docs.errors == []
    docs.close()
