"""Fixtures shared by the export tests: one thread for torch and CTranslate2 alike."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Equality between backends is checked on one thread each (CTranslate2 takes torch's count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
