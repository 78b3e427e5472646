"""Text normalisation presets and the classic sentence filters.

``tutorial`` reproduces the PyTorch "translation with a sequence to sequence network" tutorial:
Unicode to ASCII (accents dropped), lower case, ``.!?`` split off as their own tokens, every other
symbol turned into a space. ``none`` keeps the text as it is (only surrounding white space and
runs of inner white space are folded) and leaves the rest to the tokenizer.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

__all__ = ["NORMALIZERS", "normalize_tutorial", "normalize_none", "get_normalizer", "ENG_PREFIXES",
           "has_english_prefix"]

_PUNCT = re.compile(r"([.!?])")
_NON_LETTERS = re.compile(r"[^a-zA-Z.!?]+")
_SPACES = re.compile(r"\s+")


@functools.cache
def _combining_marks() -> dict[int, None]:
    """A ``str.translate`` table deleting every combining mark (category Mn); built once per process."""
    return dict.fromkeys(cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Mn")


def unicode_to_ascii(text: str) -> str:
    """Drop combining marks after NFD decomposition: 'Ça été' -> 'Ca ete'."""
    if text.isascii():  # nothing to decompose: most English text
        return text
    return unicodedata.normalize("NFD", text).translate(_combining_marks())


def normalize_tutorial(text: str) -> str:
    """The tutorial's ``normalizeString``: 'I'm cold.' -> 'i m cold .'"""
    text = unicode_to_ascii(text.lower().strip())
    text = _PUNCT.sub(r" \1", text)
    text = _NON_LETTERS.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize_none(text: str) -> str:
    return " ".join(text.split())  # runs of white space folded, ends stripped


NORMALIZERS: dict[str, Callable[[str], str]] = {"tutorial": normalize_tutorial, "none": normalize_none}


def get_normalizer(name: str) -> Callable[[str], str]:
    if name not in NORMALIZERS:
        raise ValueError(f"unknown normalisation {name!r}; choose one of {sorted(NORMALIZERS)}")
    return NORMALIZERS[name]


# The tutorial's filter keeps English sentences that start with these (after tutorial normalisation,
# "I'm" has become "i m"). Raw-cased text is lower-cased and its apostrophes turned to spaces first.
ENG_PREFIXES = (
    "i am ", "i m ",
    "he is", "he s ",
    "she is", "she s ",
    "you are", "you re ",
    "we are", "we re ",
    "they are", "they re ",
)


def has_english_prefix(english: str) -> bool:
    """True when an English sentence starts with one of the tutorial's prefixes."""
    text = _SPACES.sub(" ", english.lower().replace("'", " ").replace("\u2019", " ")).strip()
    return text.startswith(ENG_PREFIXES)
