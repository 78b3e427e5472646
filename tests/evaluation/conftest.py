"""Fixtures for the evaluation tests: a tiny real corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnlab.data.corpora import read_tatoeba
from attnlab.data.normalize import has_english_prefix


@pytest.fixture(scope="session")
def tatoeba_tsv(tmp_path_factory) -> Path:
    """300 short Tatoeba pairs in the tutorial's setting, as a TSV (a few seconds of training per epoch at most)."""
    pairs = [p for p in read_tatoeba().pairs if has_english_prefix(p[0]) and len(p[0].split()) <= 6][:300]
    path = tmp_path_factory.mktemp("corpus") / "tatoeba-300.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path
