"""The Multi30k papers' BLEU convention: lower-cased, Moses-tokenised (sacremoses), no smoothing."""

from __future__ import annotations

import math

import pytest

from attnlab.evaluation.references import GroupedReferences
from attnlab.evaluation.scores import moses_tokenize, score_corpus


def test_moses_preprocessing_splits_elisions_and_hyphens() -> None:
    assert moses_tokenize("L'homme porte un T-shirt rouge.", "fr") == "l' homme porte un t @-@ shirt rouge ."
    assert moses_tokenize("Un chien « noir »!", "fr") == 'un chien " noir " !'


def test_moses_bleu_matches_a_hand_computed_example() -> None:
    # hyp: l' homme porte un t @-@ shirt .        (8 tokens)
    # ref: l' homme porte un t @-@ shirt rouge .  (9 tokens)
    # matches: 1-grams 8/8, 2-grams 6/7, 3-grams 5/6, 4-grams 4/5 (only those ending in "shirt ." miss)
    # BLEU = exp(1 - 9/8) * (8/8 * 6/7 * 5/6 * 4/5) ** (1/4)
    scores = score_corpus(["L'homme porte un t-shirt."], ["L'homme porte un T-shirt rouge."], lang="fr")
    assert scores["bleu_lc_moses"] == pytest.approx(100 * math.exp(1 - 9 / 8) * (4 / 7) ** 0.25, abs=1e-9)
    signature = scores["bleu_lc_moses_signature"]
    assert "moses:fr" in signature and "case:lc" in signature and "smooth:none" in signature
    assert scores["bleu_lc_moses"] > scores["bleu_lc_tok"] > scores["bleu"]  # 13a keeps "l'homme" one token


def test_moses_bleu_only_with_a_language_and_with_every_reference() -> None:
    assert "bleu_lc_moses" not in score_corpus(["a cat ."], ["a cat ."])
    pairs = [("src one", "Le chat dort."), ("src one", "Un chat dort."), ("src two", "Il pleut.")]
    grouped = GroupedReferences.from_pairs(pairs, lang="fr")
    scores = grouped.score(["un chat dort .", "il pleut ."])
    assert scores["bleu_lc_moses"] == pytest.approx(100.0)  # the second reference of source one matches
