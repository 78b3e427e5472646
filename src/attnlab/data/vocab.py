"""Vocabulary: tokens <-> ids, with the specials every model relies on at fixed indices."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from attnlab.data.errors import DataError

__all__ = ["Vocabulary", "PAD", "UNK", "BOS", "EOS", "SPECIALS", "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)


class _Ids(dict):
    """``stoi`` that answers ``<unk>`` for an unknown token (without storing it)."""

    def __missing__(self, token: str) -> int:
        return UNK_ID


class Vocabulary:
    """Ordered token list; ``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3, then by frequency."""

    def __init__(self, tokens: Sequence[str]):
        self.itos = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        self._lookup = _Ids(self.stoi)
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1,
              max_size: int | None = None) -> Vocabulary:
        """Count tokens; keep those seen ``min_freq`` times, most frequent first (ties: alphabetical)."""
        return cls.from_counts(Counter(token for sentence in sentences for token in sentence), min_freq, max_size)

    @classmethod
    def from_counts(cls, counts: Counter, min_freq: int = 1, max_size: int | None = None) -> Vocabulary:
        """Tokens seen at least ``min_freq`` times, most frequent first (ties: alphabetical)."""
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        return cls(ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode_flat(self, tokens: list[str]) -> np.ndarray:
        """Tokens to an int32 array of ids (unknown tokens to ``<unk>``), looked up in C rather than per token."""
        return np.fromiter(map(self._lookup.__getitem__, tokens), dtype=np.int32, count=len(tokens))

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Tokens to ids; unknown tokens map to ``<unk>``."""
        return [self._lookup[token] for token in tokens]

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """Ids to tokens, stopping at ``<eos>``; ``<pad>``/``<bos>`` are dropped when ``strip_specials``."""
        tokens = []
        for index in ids:
            index = int(index)
            if strip_specials and index == EOS_ID:
                break
            if strip_specials and index in (PAD_ID, BOS_ID):
                continue
            tokens.append(self.itos[index])
        return tokens

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"tokens": self.itos}, ensure_ascii=False, indent=0), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        try:
            itos = json.loads(path.read_text(encoding="utf-8"))["tokens"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"vocabulary file {path} is unreadable: {err}") from None
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise DataError(f"vocabulary file {path} is corrupt: 'tokens' must be a list of strings")
        if tuple(itos[: len(SPECIALS)]) != SPECIALS:
            raise DataError(f"vocabulary file {path} does not start with the specials {SPECIALS}")
        try:
            return cls(itos[len(SPECIALS):])
        except ValueError as err:
            raise DataError(f"vocabulary file {path} is corrupt: {err}") from None
