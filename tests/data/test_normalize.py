"""Normalisation against the PyTorch seq2seq tutorial's examples, and its prefix filter."""

from __future__ import annotations

import pytest

from attnlab.data.normalize import has_english_prefix, normalize_none, normalize_tutorial


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Go.", "go ."),
        ("Va !", "va !"),
        ("I'm cold.", "i m cold ."),
        ("J'ai froid.", "j ai froid ."),
        ("Ça alors ?", "ca alors ?"),
        ("Il a été élu président.", "il a ete elu president ."),
        ("Wait!  What?", "wait ! what ?"),
        ("Tom's 42-year-old \u00abfriend\u00bb.", "tom s year old friend ."),
    ],
)
def test_tutorial_normalisation(raw: str, expected: str) -> None:
    assert normalize_tutorial(raw) == expected


def test_none_keeps_case_and_accents() -> None:
    assert normalize_none("  Il a été   élu. ") == "Il a été élu."


@pytest.mark.parametrize(
    "english, kept",
    [("i am cold .", True), ("i m cold .", True), ("he s a teacher .", True), ("they re here .", True),
     ("you are late .", True), ("I'm cold.", True), ("She is tall.", True),
     ("go .", False), ("i have a dog .", False), ("hes here", False)],
)
def test_prefix_filter(english: str, kept: bool) -> None:
    assert has_english_prefix(english) is kept
