"""References grouped by source sentence, for multi-reference scoring.

Tatoeba lists several translations of many English sentences, and attnlab's split keeps all of them
in one split. Scoring each (source, translation) line on its own counts a correct translation that
differs from *that* line's reference as wrong. So a split is scored two ways:

- **multi-reference** (the headline): one line per distinct source, scored against every reference
  of that source (sacreBLEU's several reference streams, ``None`` where a source has fewer);
- **single-reference** (beside it, labelled ``_1ref``): every pair is a line with its own reference,
  the model's one translation of the source repeated for each of its references.

Multi30k has one reference per caption and its test sets are fixed lists of lines, so its grouping is
the identity (``by_source=False``) and both numbers are the standard single-reference score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from attnlab.evaluation.scores import score_corpus

__all__ = ["GroupedReferences", "spread_rows"]


def spread_rows(sources: Sequence[str], count: int) -> list[int]:
    """Up to ``count`` row indices spread evenly over ``sources``, each with a different source (the first
    row of it): the sentences shown as samples in logs and reports."""
    if count <= 0 or not sources:
        return []
    first: dict[str, int] = {}
    for index, source in enumerate(sources):
        first.setdefault(source, index)
    distinct = sorted(first.values())
    step = max(len(distinct) / count, 1.0)
    return sorted({distinct[int(k * step)] for k in range(min(count, len(distinct)))})


@dataclass(frozen=True)
class GroupedReferences:
    """``sources[g]`` and ``references[g]`` per group; ``group_of[i]`` and ``pair_references[i]`` per pair of the
    split, in split order (``group_of`` is -1 for pairs beyond a ``limit``)."""

    sources: list[str]
    references: list[list[str]]
    group_of: list[int]
    pair_references: list[str]
    lang: str | None = None  # the references' language: adds the Multi30k papers' BLEU (see .scores)

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str]], by_source: bool = True,
                   limit: int | None = None, lang: str | None = None) -> GroupedReferences:
        """Group ``(source, reference)`` pairs; with ``limit``, only the first ``limit`` groups are scored."""
        index: dict[str, int] = {}
        sources: list[str] = []
        references: list[list[str]] = []
        group_of: list[int] = []
        for number, (source, reference) in enumerate(pairs):
            key = source if by_source else str(number)
            group = index.get(key, -1)
            if group < 0 and (limit is None or len(sources) < limit):
                group = index[key] = len(sources)
                sources.append(source)
                references.append([])
            if group >= 0:
                references[group].append(reference)
            group_of.append(group)
        return cls(sources, references, group_of, [reference for _, reference in pairs], lang)

    @property
    def first_pairs(self) -> list[int]:
        """The pair index of each group's first pair, in group order (the pairs to translate)."""
        first: dict[int, int] = {}
        for pair, group in enumerate(self.group_of):
            if group >= 0:
                first.setdefault(group, pair)
        return [first[g] for g in range(len(self.sources))]

    def score(self, hypotheses: Sequence[str]) -> dict:
        """BLEU and chrF of one hypothesis per group: multi-reference, and ``*_1ref`` per scored pair."""
        if len(hypotheses) != len(self.sources):
            raise ValueError(f"{len(hypotheses)} hypotheses for {len(self.sources)} source sentences")
        multi = score_corpus(hypotheses, self.references, self.lang)
        scored = [(g, ref) for g, ref in zip(self.group_of, self.pair_references, strict=True) if g >= 0]
        single = score_corpus([hypotheses[g] for g, _ in scored], [ref for _, ref in scored])
        ones = {f"{key}_1ref": single[key] for key in ("bleu", "bleu_signature", "chrf", "chrf_signature")}
        return {**multi, **ones, "pairs": len(scored)}
