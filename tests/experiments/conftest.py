"""Fixtures for the evaluation tests: a tiny real corpus."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tatoeba_tsv(tatoeba_tsv_of) -> Path:
    """300 short Tatoeba pairs in the tutorial's setting, as a TSV (a few seconds of training per epoch at most)."""
    return tatoeba_tsv_of(300)
