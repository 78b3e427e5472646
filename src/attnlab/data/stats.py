"""Corpus statistics: where every line went, length percentiles, vocabulary sizes and OOV rates."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from attnlab.data.prepare import PreparedData

__all__ = ["corpus_stats", "format_stats"]

PERCENTILES = (50, 90, 95, 99, 100)


def _percentiles(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {}
    values = np.percentile(np.asarray(lengths), PERCENTILES)
    return {("max" if p == 100 else f"p{p}"): float(v) for p, v in zip(PERCENTILES, values, strict=True)}


def _oov_rate(sentences: list[list[int]]) -> float:
    """Share of tokens that map to ``<unk>`` (id 1) under the training vocabulary."""
    total = sum(len(s) for s in sentences)
    unknown = sum(1 for s in sentences for token in s if token == 1)
    return unknown / total if total else 0.0


def corpus_stats(data: PreparedData, src_lang: str, tgt_lang: str) -> dict:
    """A JSON-ready summary of ``data``; lengths are in tokens of the run's tokenizer."""
    stats = {
        "direction": f"{src_lang}-{tgt_lang}",
        "tokenizer": data.src_tokenizer.kind,
        "report": asdict(data.report),
        "vocab": {"src": len(data.src_vocab), "tgt": len(data.tgt_vocab), "shared": data.shared_vocab},
        "splits": {},
    }
    for name, pairs in data.encoded.items():
        src = [s for s, _ in pairs]
        tgt = [t for _, t in pairs]
        stats["splits"][name] = {
            "pairs": len(pairs),
            "unique_sources": len(set(s for s, _ in data.texts[name])),
            "src_len": _percentiles([len(s) for s in src]),
            "tgt_len": _percentiles([len(t) for t in tgt]),
            "src_oov": _oov_rate(src),
            "tgt_oov": _oov_rate(tgt),
        }
    return stats


def format_stats(stats: dict) -> str:
    """A human-readable table of :func:`corpus_stats`."""
    r = stats["report"]
    lines = [
        f"corpus       {r['source']}",
        f"direction    {stats['direction']}   tokenizer {stats['tokenizer']}",
        f"read         {r['pairs_read']:,} pairs from {r['lines']:,} lines "
        f"({r['empty_skipped']:,} empty skipped)",
        f"filtered     prefix -{r['removed_prefix']:,}  length -{r['removed_length']:,}  "
        f"duplicates -{r['removed_duplicates']:,}",
        f"vocabulary   src {stats['vocab']['src']:,}  tgt {stats['vocab']['tgt']:,}"
        + ("  (shared)" if stats["vocab"]["shared"] else ""),
        "",
        f"{'split':<6} {'pairs':>8} {'sources':>8}  {'src len p50/p95/max':>20}  {'tgt len p50/p95/max':>20}"
        f"  {'src OOV':>7} {'tgt OOV':>7}",
    ]
    for name, s in stats["splits"].items():
        def lens(d: dict) -> str:
            return f"{d.get('p50', 0):.0f}/{d.get('p95', 0):.0f}/{d.get('max', 0):.0f}" if d else "-"
        lines.append(
            f"{name:<6} {s['pairs']:>8,} {s['unique_sources']:>8,}  {lens(s['src_len']):>20}  "
            f"{lens(s['tgt_len']):>20}  {s['src_oov']:>7.2%} {s['tgt_oov']:>7.2%}"
        )
    return "\n".join(lines)
