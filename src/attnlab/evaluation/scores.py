"""sacreBLEU wrappers: every score travels with its signature.

Three BLEU numbers, each labelled by its signature:

- ``bleu``: standard cased sacreBLEU on detokenised text (13a), the headline.
- ``bleu_lc_tok``: the same, lower-cased (sacreBLEU's 13a tokeniser with ``lowercase=True``).
- ``bleu_lc_moses`` (when the target language is given): the convention of the Multi30k papers, whose
  pipeline is Moses' ``lowercase.perl | normalize-punctuation.perl -l L | tokenizer.perl -l L -a``
  on both sides, then ``multi-bleu.perl``. Here the same steps run through sacremoses, a Python port
  of the Moses scripts, and BLEU is counted on its tokens without smoothing, as ``multi-bleu.perl``
  does. Moses splits French elisions (``l' homme``) and, with ``-a``, hyphens (``t @-@ shirt``), so
  this number is higher than the 13a ones; it is the one to compare with the literature.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import sacremoses
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

__all__ = ["score_corpus", "sacrebleu_metric", "reference_streams", "moses_tokenize", "moses_bleu"]


def sacrebleu_metric(name: str) -> Metric:
    """The sacreBLEU metric behind our ``bleu`` or ``chrf`` score, configured as :func:`score_corpus` uses it."""
    # force=True: text under the tutorial normalisation is tokenised on purpose ("va ."), on both sides.
    if name == "bleu":
        return BLEU(force=True)
    if name == "chrf":
        return CHRF()
    raise ValueError(f"metric {name!r} is unknown; choose 'bleu' or 'chrf'")


def reference_streams(references: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacreBLEU's reference streams: one reference per line, or several (``None`` where a line has fewer)."""
    if all(isinstance(r, str) for r in references):
        return [list(references)]  # type: ignore[arg-type]
    count = max((len(r) for r in references), default=1)
    if any(len(r) == 0 for r in references):
        raise ValueError("every line needs at least one reference")
    return [[r[k] if k < len(r) else None for r in references] for k in range(count)]  # type: ignore[index]


@lru_cache(maxsize=8)
def _moses(lang: str) -> tuple[sacremoses.MosesPunctNormalizer, sacremoses.MosesTokenizer]:
    return sacremoses.MosesPunctNormalizer(lang=lang), sacremoses.MosesTokenizer(lang=lang)


def moses_tokenize(text: str, lang: str) -> str:
    """The Multi30k papers' preprocessing of one line: lower-case, Moses punctuation normalisation,
    Moses tokenisation with aggressive hyphen splitting (``-a``), tokens joined by spaces."""
    normalizer, tokenizer = _moses(lang)
    return tokenizer.tokenize(normalizer.normalize(text.lower()), aggressive_dash_splits=True, escape=False,
                              return_str=True)


def moses_bleu(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
               lang: str) -> tuple[float, str]:
    """BLEU in the Multi30k papers' convention (module docstring) and its signature."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hyps = [moses_tokenize(h, lang) for h in hypotheses]
    refs = [[None if r is None else moses_tokenize(r, lang) for r in stream]
            for stream in reference_streams(references)]
    # Already lower-cased and tokenised; no smoothing, as multi-bleu.perl.
    bleu = BLEU(lowercase=True, tokenize="none", smooth_method="none", force=True)
    score = bleu.corpus_score(hyps, refs).score
    moses = f"moses:{lang}+lc+punct-norm+aggressive-dash|sacremoses:{sacremoses.__version__}"
    return score, f"{moses}|{bleu.get_signature()}"


def score_corpus(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
                 lang: str | None = None) -> dict:
    """BLEU, chrF and lower-cased BLEU, each with its signature; with ``lang`` (the target language) also
    ``bleu_lc_moses``, the Multi30k papers' convention.

    ``references``: one string per hypothesis, or a list of strings per hypothesis (multi-reference;
    lines may have different numbers of references).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hyps, refs = list(hypotheses), reference_streams(references)
    bleu, chrf = sacrebleu_metric("bleu"), sacrebleu_metric("chrf")
    bleu_lc = BLEU(lowercase=True, tokenize="13a", force=True)
    b = bleu.corpus_score(hyps, refs)
    c = chrf.corpus_score(hyps, refs)
    lc = bleu_lc.corpus_score(hyps, refs)
    papers = {}
    if lang is not None:
        papers["bleu_lc_moses"], papers["bleu_lc_moses_signature"] = moses_bleu(hyps, references, lang)
    return {
        "bleu": b.score,
        "bleu_signature": str(bleu.get_signature()),
        "bleu_detail": str(b),
        "chrf": c.score,
        "chrf_signature": str(chrf.get_signature()),
        "bleu_lc_tok": lc.score,
        "bleu_lc_tok_signature": str(bleu_lc.get_signature()),
        **papers,
        "sentences": len(hyps),
    }
