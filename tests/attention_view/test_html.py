"""The per-sentence HTML page: self-contained, and carrying every layer and head."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from attnlab.attention_view.html import DATA_ELEMENT_ID, attention_html
from attnlab.attention_view.records import AttentionRecord

SRC = ["<bos>", "le", "chat", "</script>", "<eos>", "<pad>"]  # a hostile token must not break the page
TGT = ["the", "cat", "&", "<eos>"]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _attentions(seed: int) -> dict[str, tuple[torch.Tensor, ...]]:
    rng = np.random.default_rng(seed)
    s, t = len(SRC), len(TGT)
    return {
        "encoder": tuple(torch.tensor(_softmax(rng.normal(size=(2, 4, s, s)))) for _ in range(3)),
        "decoder": tuple(torch.tensor(_softmax(rng.normal(size=(2, 4, t, t)))) for _ in range(2)),
        "cross": tuple(torch.tensor(_softmax(rng.normal(size=(2, 4, t, s)))) for _ in range(2)),
    }


def _embedded(page: str) -> dict:
    pattern = rf'<script type="application/json" id="{DATA_ELEMENT_ID}">(.*?)</script>'
    (payload,) = re.findall(pattern, page, flags=re.S)
    return json.loads(payload)


@pytest.fixture
def page_and_inputs(tmp_path):
    trained, initial = _attentions(0), _attentions(1)
    record = AttentionRecord.from_arrays(SRC, TGT, trained, init_attentions=initial, index=1, title="s1")
    path = attention_html(record, tmp_path / "pages" / "s1.html")
    return path.read_text(encoding="utf-8"), trained, initial


def test_page_is_self_contained(page_and_inputs):
    page, _, _ = page_and_inputs
    for forbidden in ("http://", "https://", "//cdn", "<script src", "<link href", "@import", "url("):
        assert forbidden not in page.lower()
    assert page.count("</script>") == 2  # the data element and the inline script; no token closes one


def test_page_holds_every_layer_and_head(page_and_inputs):
    page, trained, initial = page_and_inputs
    data = _embedded(page)
    assert data["src_tokens"] == SRC and data["tgt_tokens"] == TGT
    for stored, given in ((data["attentions"], trained), (data["init_attentions"], initial)):
        assert set(stored) == {"encoder", "decoder", "cross"}
        for kind, layers in given.items():
            assert len(stored[kind]) == len(layers)
            for stored_layer, layer in zip(stored[kind], layers, strict=True):
                np.testing.assert_allclose(np.array(stored_layer), layer[1].numpy(), atol=1e-4)
    assert AttentionRecord.from_dict(data).layers("cross")[0].shape == (4, len(TGT), len(SRC))


def test_page_has_controls_and_a_stats_row_per_head(page_and_inputs):
    page, _, _ = page_and_inputs
    for control in ('id="kind"', 'id="layer"', 'id="head"', 'id="version"', 'id="special"'):
        assert control in page
    assert page.count("<tr data-kind=") == 4 * (3 + 2 + 2)
    assert "init_entropy" in page


def test_record_without_initial_model_and_bad_shapes(tmp_path):
    record = AttentionRecord.from_arrays(["a", "b"], ["x"], {"cross": (np.array([[[0.3, 0.7]]]),)})
    page = attention_html(record.to_dict(), tmp_path / "rnn.html").read_text(encoding="utf-8")
    assert 'id="version"' not in page and _embedded(page)["init_attentions"] is None
    with pytest.raises(ValueError, match="key tokens"):
        AttentionRecord.from_arrays(["a"], ["x"], {"cross": (np.array([[[0.3, 0.7]]]),)})


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_inline_script_parses(page_and_inputs, tmp_path):
    page, _, _ = page_and_inputs
    script = page.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    (tmp_path / "page.js").write_text(script, encoding="utf-8")
    subprocess.run(["node", "--check", str(tmp_path / "page.js")], check=True)
