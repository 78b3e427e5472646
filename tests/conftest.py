"""Shared fixtures: the real corpora in ../shared/data, and small files made on the fly."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

# Fixed thread counts in the math libraries whatever the machine's load, before torch loads them:
# seeded equality tests compare results bit for bit (importing attnlab sets the same).
for _name in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
    os.environ.setdefault(_name, "FALSE")

import pytest  # noqa: E402
import torch  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Two threads keep the suite's timings the same on every 2-core machine it runs on.
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the real corpora are expected in {SHARED_DATA} (../shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def multi30k_dir(shared_data: Path) -> Path:
    return shared_data / "multi30k"


@pytest.fixture(scope="session")
def tatoeba_zip(shared_data: Path) -> Path:
    return shared_data / "tatoeba" / "fra-eng.zip"


@pytest.fixture(scope="session")
def tatoeba_tsv_of(tmp_path_factory):
    """``make(n)``: a TSV of the first ``n`` short Tatoeba pairs in the tutorial's setting (English
    prefixes, at most 6 words), for tiny end-to-end runs. The corpus is read once per session."""
    from attnlab.data.corpora import read_tatoeba
    from attnlab.data.normalize import has_english_prefix

    short = [p for p in read_tatoeba().pairs if has_english_prefix(p[0]) and len(p[0].split()) <= 6]
    folder = tmp_path_factory.mktemp("tatoeba-tsv")

    def make(n: int) -> Path:
        path = folder / f"tatoeba-{n}.tsv"
        if not path.exists():
            path.write_text("".join(f"{s}\t{t}\n" for s, t in short[:n]), encoding="utf-8")
        return path

    return make


@pytest.fixture
def wait_for_file():
    """``wait(path, process)``: wait until ``path`` exists, or the process ends, or a generous timeout
    (300 s) passes; fails saying which. For tests that signal a process once it has written a file."""

    def wait(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert path.exists(), f"{path} did not appear; the process ended with {process.poll()}"

    return wait
