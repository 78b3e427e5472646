"""The shared attention view: records keep arrays, statistics are computed once, notebook outputs are inline."""

from __future__ import annotations

import re

import numpy as np
import torch

import attnlab.attention_view.html as html_module
import attnlab.evaluation.attention as attention_module
from attnlab.attention_view.html import VIEW_ASSETS, render_attention_view, view_asset, view_fragment
from attnlab.attention_view.records import AttentionRecord
from attnlab.attention_view.stats import record_stats
from attnlab.decoding.translator import Candidate, Translation
from attnlab.evaluation.attention import AttentionReport, write_attention_files

SRC, TGT = ["le", "chat", "<eos>"], ["the", "cat", "<eos>"]


def _record() -> AttentionRecord:
    rng = np.random.default_rng(0)
    cross = rng.random((1, 2, len(TGT), len(SRC)))  # (batch, heads, q, k)
    cross /= cross.sum(-1, keepdims=True)
    return AttentionRecord.from_arrays(SRC, TGT, {"cross": (cross, cross[:, ::-1])}, title="t")


def test_record_keeps_arrays_and_serialises_only_to_dict() -> None:
    given = np.full((2, len(TGT), len(SRC)), 1 / 3)
    record = AttentionRecord.from_arrays(SRC, TGT, {"cross": (given,)}, decimals=None)
    stored = record.attentions["cross"][0]
    assert isinstance(stored, np.ndarray) and stored.shape == (2, 3, 3) and not np.shares_memory(stored, given)
    assert record.layers("cross")[0] is stored  # no conversion on the way to the drawing code
    data = record.to_dict()
    assert isinstance(data["attentions"]["cross"][0], list) and data["init_attentions"] is None
    again = AttentionRecord.from_dict(data)
    np.testing.assert_array_equal(again.layers("cross")[0], stored)


def test_statistics_are_computed_once_for_page_and_tables(tmp_path, monkeypatch) -> None:
    calls = []

    def counted(record, band=1.0):
        calls.append(1)
        return record_stats(record, band)

    monkeypatch.setattr(attention_module, "record_stats", counted)
    monkeypatch.setattr(html_module, "record_stats", counted)
    files = write_attention_files(_record(), tmp_path / "s", formats=("html",))
    assert len(calls) == 1 and {p.suffix for p in files} == {".html", ".csv", ".md"}
    assert 'data-kind="cross" data-layer="1" data-head="1"' in files[0].read_text(encoding="utf-8")


def test_notebook_outputs_are_inline_and_do_not_share_ids() -> None:
    first, second = render_attention_view(_record()), render_attention_view(_record())
    ids = [set(re.findall(r'id="([^"]+)"', page)) for page in (first, second)]
    assert ids[0] and not ids[0] & ids[1]
    for page in (first, second):
        assert view_asset("attention-view.js") in page and view_asset("attention-view.css") in page
        assert "<script src" not in page and "http" not in page
        assert page.count('class="attnlab-view"') == 1
    assert set(VIEW_ASSETS) == {"attention-view.js", "attention-view.css"}
    assert "<script" not in view_fragment(_record()).replace('<script type="application/json"', "")


def test_results_show_themselves_in_notebooks() -> None:
    record = _record()
    stats = record_stats(record)
    report = AttentionReport(record, "the cat", False, stats)
    assert report._repr_html_().count("<tr data-kind=") == len(stats) == 4
    cross = tuple(torch.tensor(layer) for layer in record.layers("cross"))
    candidate = Candidate("the cat", ["the", "cat"], -1.0, cross_attentions=cross)
    translation = Translation("le chat", ["le", "chat", "<eos>"], [1, 2, 3], [candidate])
    assert "the cat" in translation._repr_html_() and 'data-role="maps"' in translation._repr_html_()
    plain = Translation("le chat", ["le", "chat", "<eos>"], [1, 2, 3], [Candidate("the cat", ["the", "cat"], -1.0)])
    assert plain._repr_html_() is None  # without return_attention=True: the plain repr
