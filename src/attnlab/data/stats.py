"""Corpus statistics: where every line went, length percentiles, vocabulary sizes and OOV rates."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from attnlab.data.store import PreparedData
from attnlab.data.vocab import UNK_ID

__all__ = ["corpus_stats", "format_stats"]

PERCENTILES = (50, 90, 95, 99, 100)


def _percentiles(lengths: np.ndarray) -> dict[str, float]:
    if not len(lengths):
        return {}
    values = np.percentile(np.asarray(lengths), PERCENTILES)
    return {("max" if p == 100 else f"p{p}"): float(v) for p, v in zip(PERCENTILES, values, strict=True)}


def _oov_rate(ids: np.ndarray) -> float:
    """Share of tokens that map to ``<unk>`` under the training vocabulary."""
    step = 1 << 24  # in slices, so the comparison never holds a corpus-sized array
    unknown = sum(int(np.count_nonzero(ids[i:i + step] == UNK_ID)) for i in range(0, ids.size, step))
    return unknown / ids.size if ids.size else 0.0


def corpus_stats(data: PreparedData, src_lang: str, tgt_lang: str) -> dict:
    """A JSON-ready summary of ``data``; lengths are in tokens of the run's tokenizer.

    Everything comes from the prepared arrays and the report, read in chunks of the memory map, so
    the statistics of a large corpus take no more memory than its preparation.
    """
    stats = {
        "direction": f"{src_lang}-{tgt_lang}",
        "tokenizer": data.src_tokenizer.kind,
        "report": asdict(data.report),
        "vocab": {"src": len(data.src_vocab), "tgt": len(data.tgt_vocab), "shared": data.shared_vocab},
        "splits": {},
    }
    for name, split in data.encoded.items():
        stats["splits"][name] = {
            "pairs": len(split),
            "unique_sources": data.report.split_sources.get(name, 0),
            "src_len": _percentiles(split.src_lengths),
            "tgt_len": _percentiles(split.tgt_lengths),
            "src_oov": _oov_rate(split.side_ids(0)),
            "tgt_oov": _oov_rate(split.side_ids(1)),
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
