"""Bounded work: overload is refused with 503, a model loads once, the cache keeps to its memory budget.

Nothing here depends on timing: a loader that waits for an event holds requests in progress for as
long as a test needs, and the tests wait for states (with generous deadlines), never for durations.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from attnlab.decoding.translator import Translator
from attnlab.serve.cache import ModelCache, module_bytes
from attnlab.serve.explorer import load_translator
from attnlab.serve.limits import Limits

BODY = {"sentences": ["I am cold."], "beam": 1}


class HeldLoader:
    """The real loader, held back until ``release`` is set; counts its calls per (run, checkpoint)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls: dict[tuple[str, str], int] = {}

    def __call__(self, entry, checkpoint):
        self.calls[entry.id, checkpoint] = self.calls.get((entry.id, checkpoint), 0) + 1
        self.entered.set()
        assert self.release.wait(120), "the test never released the loader"
        return load_translator(entry, checkpoint)


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.02)


def test_overload_is_refused_with_503_at_once(start_server) -> None:
    loader = HeldLoader()
    url, _ = start_server(Limits(), workers=1, queue=0, loader=loader)
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=url, timeout=120) as client:
        first = pool.submit(client.post, "/api/runs/transformer/translate", json=BODY)
        assert loader.entered.wait(120)  # the one worker is busy and the queue holds nothing
        busy = client.post("/api/runs/transformer/translate", json=BODY)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "busy (1 requests in progress, 1 at a time)" in busy.json()["detail"]
        assert client.get("/api/status").json()["gate"] == {"workers": 1, "queue": 0, "in_progress": 1, "refused": 1}
        loader.release.set()
        assert first.result().status_code == 200
        assert client.post("/api/runs/transformer/translate", json=BODY).status_code == 200  # served again


def test_requests_wait_in_the_queue_and_a_model_loads_once(start_server) -> None:
    loader = HeldLoader()
    url, _ = start_server(Limits(), workers=2, queue=2, loader=loader)
    with ThreadPoolExecutor(4) as pool, httpx.Client(base_url=url, timeout=120) as client:
        pending = [pool.submit(client.post, "/api/runs/sweep.gru/translate", json=BODY) for _ in range(4)]
        _wait_for(lambda: client.get("/api/status").json()["gate"]["in_progress"] == 4, "4 requests in progress")
        assert client.post("/api/runs/sweep.gru/translate", json=BODY).status_code == 503  # 2 running + 2 waiting
        loader.release.set()
        texts = {response.result().json()["translations"][0]["n_best"][0]["text"] for response in pending}
    assert len(texts) == 1 and loader.calls == {("sweep.gru", "best"): 1}


def test_the_server_keeps_models_within_its_memory_budget(start_server, serve_runs) -> None:
    sizes = [module_bytes(Translator.from_run(serve_runs["sweep"] / name).model) for name in ("transformer", "gru")]
    url, explorer = start_server(Limits(), cache_bytes=max(sizes) + 1)  # room for one model, not two
    with httpx.Client(base_url=url, timeout=120) as client:
        for run in ("transformer", "sweep.gru", "transformer"):
            assert client.post(f"/api/runs/{run}/translate", json=BODY).status_code == 200
            cache = client.get("/api/status").json()["cache"]
            assert cache["models"] == [[run, "best"]] and cache["bytes"] <= cache["max_bytes"]
    assert explorer.cache.loads == 3 and explorer.cache.evictions == 2


class Blob:
    def __init__(self, size: int) -> None:
        self.size = size


def test_cache_evicts_least_recently_used_and_keeps_one_oversized_model() -> None:
    loaded: list[str] = []

    def loader(key: str) -> Blob:
        loaded.append(key)
        return Blob({"a": 40, "b": 40, "c": 40, "huge": 500}[key])

    cache: ModelCache[Blob] = ModelCache(loader, lambda blob: blob.size, max_bytes=100)
    for key in ("a", "b", "a", "c"):  # c pushes out b, the least recently used
        cache.get(key)
    assert cache.keys() == ["a", "c"] and loaded == ["a", "b", "c"] and cache.hits == 1
    assert cache.get("a").load_seconds == 0.0
    cache.get("huge")  # larger than the budget: kept alone
    assert cache.keys() == ["huge"] and cache.evictions == 3
    with pytest.raises(ValueError, match="positive memory budget"):
        ModelCache(loader, lambda blob: blob.size, max_bytes=0)


def test_a_failed_load_is_not_cached_and_can_be_retried() -> None:
    attempts: list[int] = []

    def loader(key: str) -> Blob:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk hiccup")
        return Blob(1)

    cache: ModelCache[Blob] = ModelCache(loader, lambda blob: blob.size, max_bytes=10)
    with pytest.raises(OSError, match="hiccup"):
        cache.get("a")
    assert cache.keys() == [] and cache.get("a").value.size == 1 and len(attempts) == 2
