"""Fixtures shared by the export tests: one thread for torch and CTranslate2 alike; whether int8 products are exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Equality between backends is checked on one thread each (CTranslate2 takes torch's count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def int8_products_exact() -> bool:
    """Whether this CPU has VNNI, with which int8 dot products accumulate in 32 bits without saturating.

    Without it (AVX2 only, e.g. a Zen 3 EPYC), oneDNN, CTranslate2's int8 backend on AMD, adds pairs of
    u8*s8 products in saturating 16-bit lanes (vpmaddubsw): int8 exports drift further from float32 (README,
    "Export and translate fast"). Not Linux: assumed exact, so the stricter bounds apply.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return True
    return "avx512_vnni" in flags or "avx_vnni" in flags
