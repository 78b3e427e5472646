"""sacreBLEU wrappers: every score travels with its signature.

Two BLEU conventions are reported. ``bleu`` is standard cased sacreBLEU on detokenised text (13a).
``bleu_lc_tok`` is the number the Multi30k literature reports: lower-cased and tokenised
(sacreBLEU's 13a tokeniser with ``lowercase=True``), clearly labelled as such.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

__all__ = ["score_corpus", "sacrebleu_metric", "reference_streams"]


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


def score_corpus(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> dict:
    """BLEU, chrF and lower-cased tokenised BLEU, each with its sacreBLEU signature.

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
    return {
        "bleu": b.score,
        "bleu_signature": str(bleu.get_signature()),
        "bleu_detail": str(b),
        "chrf": c.score,
        "chrf_signature": str(chrf.get_signature()),
        "bleu_lc_tok": lc.score,
        "bleu_lc_tok_signature": str(bleu_lc.get_signature()),
        "sentences": len(hyps),
    }
