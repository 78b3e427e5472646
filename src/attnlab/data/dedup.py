"""Duplicates and distinct counts over 64-bit hashes, in memory that does not grow with the corpus.

A split's hashes are in a file (``HASHES``: per pair, the hash of the pair and of its source). They
are spread over buckets by their value, so that each bucket holds about ``BUCKET`` records; a bucket
is sorted in memory on its own. What is kept is a ``uint8`` mask the size of the split, as a memory
map. Peak memory is one bucket and one chunk, whatever the corpus size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["HASH_FIELDS", "first_occurrences", "distinct_sources", "keep_first"]

HASH_FIELDS = 2  # per pair: the pair's hash, the source's hash (int64 each)
BUCKET = 1 << 20  # records sorted at once
_CHUNK = 1 << 20  # records read at once


def _hashes(path: Path) -> np.ndarray:
    """(n, HASH_FIELDS) int64, memory-mapped."""
    size = path.stat().st_size // (8 * HASH_FIELDS)
    if size == 0:
        return np.empty((0, HASH_FIELDS), dtype=np.int64)
    return np.memmap(path, dtype=np.int64, mode="r", shape=(size, HASH_FIELDS))


def _buckets(values: Iterator[tuple[np.ndarray, np.ndarray]], count: int, folder: Path) -> list[Path]:
    """Write ``(value, index)`` records into ``count`` bucket files by value; returns their paths."""
    paths = [folder / f"bucket-{b}.bin" for b in range(count)]
    handles = [open(p, "wb") for p in paths]  # noqa: SIM115 - closed below
    try:
        for value, index in values:
            which = (value.view(np.uint64) % np.uint64(count)).astype(np.int64)
            order = np.argsort(which, kind="stable")  # records of one bucket together, in index order
            bounds = np.searchsorted(which[order], np.arange(count + 1))
            records = np.stack([value[order], index[order]], axis=1)  # (m, 2)
            for b in range(count):
                records[bounds[b]:bounds[b + 1]].tofile(handles[b])
    finally:
        for handle in handles:
            handle.close()
    return paths


def first_occurrences(hashes_path: Path, keep_path: Path, dedup: bool) -> np.ndarray:
    """A memory-mapped ``uint8`` mask over the split's pairs: 1 for the first occurrence of each pair hash
    (every pair when ``dedup`` is False)."""
    hashes = _hashes(hashes_path)
    n = len(hashes)
    keep = np.memmap(keep_path, dtype=np.uint8, mode="w+", shape=(max(n, 1),))[:n]
    keep[:] = 1
    if not dedup or n == 0:
        return keep
    count = max(1, -(-n // BUCKET))
    chunks = ((np.array(hashes[i:i + _CHUNK, 0]), np.arange(i, min(i + _CHUNK, n))) for i in range(0, n, _CHUNK))
    for path in _buckets(chunks, count, hashes_path.parent):
        records = np.fromfile(path, dtype=np.int64).reshape(-1, 2)  # in index order within the bucket
        _, first = np.unique(records[:, 0], return_index=True)
        later = np.ones(len(records), dtype=bool)
        later[first] = False
        keep[records[later, 1]] = 0
        path.unlink()
    return keep


def keep_first(keep: np.ndarray, limit: int) -> None:
    """Clear ``keep`` after its first ``limit`` kept entries (in place, chunk by chunk)."""
    seen = 0
    for i in range(0, len(keep), _CHUNK):
        block = keep[i:i + _CHUNK]
        running = seen + np.cumsum(block, dtype=np.int64)
        block[running > limit] = 0
        seen = int(running[-1]) if len(running) else seen


def distinct_sources(hashes_path: Path, keep: np.ndarray) -> int:
    """How many distinct source hashes the kept pairs have."""
    hashes = _hashes(hashes_path)
    n = len(hashes)
    if n == 0:
        return 0
    count = max(1, -(-int(np.count_nonzero(keep)) // BUCKET))
    chunks = ((np.array(hashes[i:i + _CHUNK, 1][keep[i:i + _CHUNK] == 1]),
               np.arange(i, min(i + _CHUNK, n))[keep[i:i + _CHUNK] == 1]) for i in range(0, n, _CHUNK))
    total = 0
    for path in _buckets(chunks, count, hashes_path.parent):
        total += int(np.unique(np.fromfile(path, dtype=np.int64).reshape(-1, 2)[:, 0]).size)
        path.unlink()
    return total
