"""Fixtures for the explorer: tiny real runs, and the app on a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from attnlab.serve import Explorer, Limits, create_app, discover
from attnlab.serve.server import bind


def _overrides(tsv: Path) -> list[str]:
    return ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.1", "data.test_ratio=0.1",
            "train.batch_tokens=300", "train.logger=csv", "train.val_bleu_sentences=null",
            "train.attention_snapshots=0", "train.epochs=1", "decode.max_len=20"]


@pytest.fixture(scope="session")
def serve_runs(tatoeba_tsv_of, tmp_path_factory) -> dict[str, Path]:
    """A sweep-like folder (a tiny Transformer and a tiny GRU with attention, and report/report.html) and
    another folder holding a second ``gru`` without checkpoints/init.pt and a run with no checkpoint yet."""
    from attnlab.config import load_config
    from attnlab.training.run import train

    root = tmp_path_factory.mktemp("serve")
    sweep, other = root / "sweep", root / "other"
    base = _overrides(tatoeba_tsv_of(300))
    transformer = ["model.arch=transformer", "model.d_model=32", "model.heads=2", "model.ffn_dim=64",
                   "model.enc_layers=2", "model.dec_layers=2"]
    gru = ["model.arch=rnn", "model.cell=gru", "model.emb_dim=16", "model.hid_dim=16", "model.attention=general"]
    train(load_config(None, base + transformer), sweep / "transformer")
    train(load_config(None, base + gru), sweep / "gru")
    (sweep / "report").mkdir()
    (sweep / "report" / "report.html").write_text("<!DOCTYPE html><title>sweep report</title><p>report</p>")
    shutil.copytree(sweep / "gru", other / "gru")
    (other / "gru" / "checkpoints" / "init.pt").unlink()
    shutil.copytree(sweep / "gru", other / "unfinished", ignore=shutil.ignore_patterns("checkpoints"))
    return {"sweep": sweep, "other": other}


@contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; yield its base URL."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:  # waiting for start-up, not timing anything
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="session")
def start_server(serve_runs: dict[str, Path]) -> Iterator[Callable[..., tuple[str, Explorer]]]:
    """``start(limits=None, workers=2, queue=8, paths=None, **explorer_options)``: the explorer over ``paths``
    (default: both folders of ``serve_runs``) on a free port of 127.0.0.1; returns (base URL, explorer).
    Every server started is stopped at the end of the session."""
    with ExitStack() as servers:

        def start(limits: Limits | None = None, workers: int = 2, queue: int = 8, paths: list[Path] | None = None,
                  **options: Any) -> tuple[str, Explorer]:
            explorer = Explorer(discover(paths or [serve_runs["sweep"], serve_runs["other"]]), limits, **options)
            url = servers.enter_context(running(create_app(explorer, workers=workers, queue=queue)))
            return url, explorer

        yield start
