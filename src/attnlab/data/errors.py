"""The one exception type for bad data input: it always names the file (and line where known)."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A problem with input data: a missing or misaligned file, bad encoding, bad checksum, ..."""
