"""Multi-reference scoring: grouping by source, and the numbers sacreBLEU itself gives."""

from __future__ import annotations

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

from attnlab.evaluation.references import GroupedReferences, spread_rows
from attnlab.evaluation.scores import reference_streams, score_corpus

PAIRS = [  # Tatoeba-like: one English source, several French translations, listed side by side
    ("i am cold .", "j ai froid ."),
    ("i am cold .", "je suis gele ."),
    ("he is tall .", "il est grand ."),
    ("she is happy .", "elle est heureuse ."),
    ("she is happy .", "elle est contente ."),
    ("she is happy .", "elle est ravie ."),
]
HYPOTHESES = ["j ai tres froid .", "il est grand .", "elle est contente ."]  # one per distinct source


def test_grouping_keeps_every_reference_of_a_source() -> None:
    grouped = GroupedReferences.from_pairs(PAIRS)
    assert grouped.sources == ["i am cold .", "he is tall .", "she is happy ."]
    assert grouped.references[2] == ["elle est heureuse .", "elle est contente .", "elle est ravie ."]
    assert grouped.group_of == [0, 0, 1, 2, 2, 2] and grouped.first_pairs == [0, 2, 3]
    limited = GroupedReferences.from_pairs(PAIRS, limit=2)
    assert limited.sources == grouped.sources[:2] and limited.group_of == [0, 0, 1, -1, -1, -1]
    identity = GroupedReferences.from_pairs(PAIRS, by_source=False)  # Multi30k: every line its own
    assert len(identity.sources) == len(PAIRS) and identity.first_pairs == list(range(len(PAIRS)))


def test_multi_reference_scores_equal_sacrebleus_own() -> None:
    grouped = GroupedReferences.from_pairs(PAIRS)
    scores = grouped.score(HYPOTHESES)
    # by hand: three reference streams, the missing ones None (sacreBLEU's variable-reference form)
    streams = [["j ai froid .", "il est grand .", "elle est heureuse ."],
               ["je suis gele .", None, "elle est contente ."],
               [None, None, "elle est ravie ."]]
    assert reference_streams(grouped.references) == streams
    assert scores["bleu"] == BLEU(force=True).corpus_score(HYPOTHESES, streams).score
    assert scores["chrf"] == CHRF().corpus_score(HYPOTHESES, streams).score
    assert scores["bleu_signature"].startswith("nrefs:var")
    # single-reference: every pair a line, the source's one translation repeated
    per_pair = [HYPOTHESES[g] for g in grouped.group_of]
    assert scores["bleu_1ref"] == sacrebleu.corpus_bleu(per_pair, [[r for _, r in PAIRS]], force=True).score
    assert scores["bleu"] > scores["bleu_1ref"]  # 'elle est contente' matches one of three references exactly
    assert scores["sentences"] == 3 and scores["pairs"] == 6


def test_one_reference_per_line_is_plain_sacrebleu() -> None:
    refs = ["il est grand .", "elle est ravie ."]
    hyps = ["il est grand .", "elle est contente ."]
    assert score_corpus(hyps, refs)["bleu"] == sacrebleu.corpus_bleu(hyps, [refs], force=True).score
    assert score_corpus(hyps, [[r] for r in refs])["bleu"] == score_corpus(hyps, refs)["bleu"]


def test_sample_rows_are_spread_and_distinct() -> None:
    sources = [s for s, _ in PAIRS]
    assert spread_rows(sources, 5) == [0, 2, 3] and spread_rows(sources, 2) == [0, 2]
    assert spread_rows(sources, 0) == [] and spread_rows([], 3) == []
