"""Shared fixtures: the real corpora in ../shared/data, and small files made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
