"""The REST API against a real uvicorn server on 127.0.0.1: every endpoint, every limit, bad ids, bad JSON."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest

from attnlab.decoding.translator import Translator
from attnlab.serve import Limits

TEXT, REFERENCE = "I am cold.", "J'ai froid."
LIMITS = Limits(max_chars=200, max_sentences=4, max_beam=4, max_n_best=3, max_body_bytes=16_384)  # cheap to cross


@pytest.fixture(scope="module")
def client(start_server):
    url, _ = start_server(LIMITS, cache_bytes=64 * 2**20)
    with httpx.Client(base_url=url, timeout=120) as http:
        yield http


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return detail


def test_runs_are_listed_with_ids_groups_and_reports(client: httpx.Client) -> None:
    runs = {run["id"]: run for run in client.get("/api/runs").json()}
    assert set(runs) == {"transformer", "sweep.gru", "other.gru", "unfinished"}  # a shared name gets its parent's
    transformer = runs["transformer"]
    assert transformer["architecture"] == "Transformer 2+2, d 32, 2 heads" and transformer["parameters"] > 0
    assert transformer["group"] == "sweep" and transformer["status"] == "finished" and transformer["has_init"]
    assert runs["sweep.gru"]["architecture"] == "GRU 16 + general attention (luong)"
    assert "val/loss" in transformer["best"] and transformer["train_time_s"] > 0
    assert runs["sweep.gru"]["report_id"] == transformer["report_id"] == "sweep"
    assert runs["other.gru"]["report_id"] is None and not runs["other.gru"]["has_init"]
    assert runs["unfinished"]["status"] == "no checkpoint yet" and not runs["unfinished"]["has_checkpoint"]


def test_run_details_have_config_and_curves(client: httpx.Client) -> None:
    details = client.get("/api/runs/transformer").json()
    assert details["config"]["model"]["arch"] == "transformer" and details["path"].endswith("transformer")
    points = details["curves"]["val/loss"]
    assert [p["epoch"] for p in points] == [0.0] and points[0]["time"] > 0 and math.isfinite(points[0]["value"])
    assert details["summary"]["parameters"]["total"] == details["parameters"]


@pytest.mark.parametrize("run_id", ["nope", "..", "transformer%2F..%2F..", "%2Fetc%2Fpasswd"])
def test_unknown_or_path_like_run_ids_are_404(client: httpx.Client, run_id: str) -> None:
    detail = _error(client.get(f"/api/runs/{run_id}"), 404)  # a path-like id matches no route at all
    if run_id == "nope":
        assert "'nope' is unknown; this server offers: other.gru, sweep.gru, transformer, unfinished" in detail
    response = client.post(f"/api/runs/{run_id}/translate", json={"sentences": [TEXT]})
    assert response.status_code == 404  # never a path: the id is looked up in the start-up catalog


def test_translate_matches_the_translator(client: httpx.Client, serve_runs) -> None:
    body = {"sentences": [TEXT, "He is a teacher."], "beam": 3, "n_best": 2}
    result = client.post("/api/runs/transformer/translate", json=body).json()
    assert (result["run"], result["beam"], result["n_best"]) == ("transformer", 3, 2)
    assert result["seconds"] >= result["load_seconds"] >= 0
    expected = Translator.from_run(serve_runs["sweep"] / "transformer").translate(body["sentences"], beam=3, n_best=2)
    for got, want in zip(result["translations"], expected, strict=True):
        assert got["source"] == want.source and got["src_tokens"] == want.src_tokens
        assert [c["text"] for c in got["n_best"]] == [c.text for c in want.n_best]
        scores = [c["normalized_score"] for c in got["n_best"]]
        assert scores == sorted(scores, reverse=True)
    greedy = client.post("/api/runs/sweep.gru/translate", json={"sentences": [TEXT], "beam": 1}).json()
    assert greedy["translations"][0]["n_best"][0]["normalized_score"] is None


@pytest.mark.parametrize(("body", "message"), [
    ({"sentences": []}, "sentences is empty"),
    ({"sentences": ["a ."] * (LIMITS.max_sentences + 1), "beam": 1}, f"at most {LIMITS.max_sentences}"),
    ({"sentences": ["x" * (LIMITS.max_chars + 1)], "beam": 1}, f"has {LIMITS.max_chars + 1} characters"),
    ({"sentences": [TEXT], "beam": LIMITS.max_beam + 1}, f"allows 1 (greedy) to {LIMITS.max_beam}"),
    ({"sentences": [TEXT], "beam": 0}, "beam is 0"),
    ({"sentences": [TEXT], "beam": 4, "n_best": LIMITS.max_n_best + 1}, f"at most {LIMITS.max_n_best}"),
    ({"sentences": [TEXT], "beam": 2, "n_best": 3}, "between 1 and the beam size (2)"),
    ({"sentences": ["i am " * 15], "beam": 1}, "has 30 tokens; this model reads at most 20 (decode.max_len=20)"),
])
def test_translate_limits_are_422_with_a_message(client: httpx.Client, body: dict, message: str) -> None:
    assert message in _error(client.post("/api/runs/transformer/translate", json=body), 422)


def test_bad_bodies(client: httpx.Client) -> None:
    url = "/api/runs/transformer/translate"
    bad_json = client.post(url, content=b'{"sentences": ["a",', headers={"Content-Type": "application/json"})
    assert "not valid JSON" in _error(bad_json, 400)
    assert "beam:" in _error(client.post(url, json={"sentences": [TEXT], "beam": "five"}), 422)
    assert "nbest: Extra inputs are not permitted" in _error(client.post(url, json={"sentences": [TEXT],
                                                                                    "nbest": 2}), 422)
    assert "sentences: Field required" in _error(client.post(url, json={}), 422)
    assert "body:" in _error(client.post(url, json=["not", "an", "object"]), 422)
    too_big = {"sentences": ["a" * (LIMITS.max_body_bytes + 1)]}
    assert f"at most {LIMITS.max_body_bytes}" in _error(client.post(url, json=too_big), 413)


def test_attention_forced_on_a_reference_with_the_initial_model(client: httpx.Client) -> None:
    body = {"text": TEXT, "reference": REFERENCE, "compare_init": True}
    result = client.post("/api/runs/transformer/attention", json=body).json()
    record = result["record"]
    assert result["forced"] and result["target"] == "j ai froid ."
    assert record["src_tokens"] == ["i", "am", "cold", "."]
    assert record["tgt_tokens"] == ["j", "ai", "froid", ".", "<eos>"]
    for version in ("attentions", "init_attentions"):
        assert set(record[version]) == {"encoder", "decoder", "cross"}
        cross = np.array(record[version]["cross"])  # (layers, heads, tgt, src)
        assert cross.shape == (2, 2, 5, 4)
        np.testing.assert_allclose(cross.sum(-1), 1.0, atol=1e-3)
    assert not np.allclose(record["attentions"]["cross"], record["init_attentions"]["cross"])
    assert len(result["stats"]) == 3 * 2 * 2
    encoder_row = next(row for row in result["stats"] if row["kind"] == "encoder")
    assert encoder_row["argmax_diagonal_agreement"] is None and encoder_row["init_entropy"] > 0  # NaN -> null


def test_attention_of_the_decoded_translation_and_its_view(client: httpx.Client) -> None:
    translated = client.post("/api/runs/sweep.gru/translate", json={"sentences": [TEXT], "beam": 1}).json()
    result = client.post("/api/runs/sweep.gru/attention", json={"text": TEXT, "kind": "cross"}).json()
    assert not result["forced"] and result["target"] == translated["translations"][0]["n_best"][0]["text"]
    assert list(result["record"]["attentions"]) == ["cross"] and result["record"]["init_attentions"] is None
    view = client.post("/api/runs/sweep.gru/attention/view", json={"text": TEXT})
    assert view.status_code == 200 and view.headers["content-type"].startswith("text/html")
    assert 'class="attnlab-view"' in view.text and 'data-role="maps"' in view.text
    assert "infer;dur=" in view.headers["server-timing"]


def test_attention_errors(client: httpx.Client) -> None:
    url = "/api/runs/{}/attention"
    assert "has no encoder self-attention; it has: cross" in _error(
        client.post(url.format("sweep.gru"), json={"text": TEXT, "kind": "encoder"}), 422)
    assert "kind: Input should be" in _error(client.post(url.format("sweep.gru"), json={"text": TEXT,
                                                                                       "kind": "self"}), 422)
    assert "empty after normalisation" in _error(client.post(url.format("sweep.gru"), json={"text": "  "}), 422)
    assert "reference has" in _error(client.post(url.format("sweep.gru"), json={
        "text": TEXT, "reference": "y" * (LIMITS.max_chars + 1)}), 422)
    assert "has no checkpoints/init.pt" in _error(
        client.post(url.format("other.gru"), json={"text": TEXT, "compare_init": True}), 409)
    assert "no checkpoint yet" in _error(client.post(url.format("unfinished"), json={"text": TEXT}), 409)
    assert "unknown" in _error(client.post(url.format("missing") + "/view", json={"text": TEXT}), 404)


@pytest.mark.parametrize("path", ["attention", "attention/view"])
def test_attention_limits_and_bad_bodies(client: httpx.Client, path: str) -> None:
    url = f"/api/runs/transformer/{path}"
    beam = {"text": TEXT, "beam": LIMITS.max_beam + 1}
    assert f"allows 1 (greedy) to {LIMITS.max_beam}" in _error(client.post(url, json=beam), 422)
    assert "beam is 0" in _error(client.post(url, json={"text": TEXT, "beam": 0}), 422)
    assert f"at most {LIMITS.max_chars}" in _error(client.post(url, json={"text": "x" * (LIMITS.max_chars + 1)}), 422)
    bad_json = client.post(url, content=b'{"text": "a', headers={"Content-Type": "application/json"})
    assert "not valid JSON" in _error(bad_json, 400)
    assert "text: Field required" in _error(client.post(url, json={}), 422)
    assert "compare_init:" in _error(client.post(url, json={"text": TEXT, "compare_init": "perhaps"}), 422)
    too_big = {"text": "a" * (LIMITS.max_body_bytes + 1)}
    assert f"at most {LIMITS.max_body_bytes}" in _error(client.post(url, json=too_big), 413)


def test_page_assets_reports_docs_and_status(client: httpx.Client) -> None:
    page = client.get("/").text
    assert "<script src=\"/static/app.js\"></script>" in page and "https://" not in page
    for name, kind in (("app.js", "javascript"), ("app.css", "css"), ("attention-view.js", "javascript")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert "sweep report" in client.get("/reports/sweep").text
    assert "unknown" in _error(client.get("/reports/nope"), 404)
    docs = client.get("/docs").text
    assert "swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/translate", "/api/runs/{run_id}/attention",
                 "/api/runs/{run_id}/attention/view", "/api/limits", "/api/status"):
        assert path in paths
    assert client.get("/api/limits").json() == LIMITS.as_dict()
    status = client.get("/api/status").json()
    assert status["runs"] == 4 and status["gate"]["in_progress"] == 0
    assert status["cache"]["bytes"] <= status["cache"]["max_bytes"] and status["cache"]["models"]
