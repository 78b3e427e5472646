"""Numbers that summarise each attention head, so heads, layers and runs can be compared.

Pure numpy (no matplotlib). For one head's ``(q, k)`` map, after dropping ``<pad>`` query rows and
key columns and any row with no weight at all, and renormalising each row over the kept keys
(a no-op when padding already holds zero weight):

entropy
    mean over rows of ``-sum_j p_ij ln p_ij`` (natural log, zero weights ignored). 0 for a one-hot
    row, ``ln K`` for a uniform row over K keys.
max_weight
    mean over rows of the largest weight in the row.
diagonal_share
    share of all weight inside the diagonal band. Row ``i`` of ``Q`` is expected to align with key
    ``c_i = i * (K - 1) / (Q - 1)`` (the monotonic alignment that stretches the first row onto the
    first key and the last row onto the last key); key ``j`` is in the band when
    ``|c_i - j| <= band``. With ``Q == 1`` the single row has ``c_0 = 0``; with ``K == 1`` every
    weight is in the band.
eos_punct_share
    share of all weight on keys that are ``<eos>`` or made only of punctuation characters (Unicode
    categories P* and S*, which covers Python's ``string.punctuation``; subword marks ignored).
argmax_diagonal_agreement
    cross-attention only (NaN for self-attention): the share of rows whose largest weight falls
    on a key inside the band, i.e. how often the hard alignment is monotonic.
"""

from __future__ import annotations

import csv
import math
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.attention_view.records import AttentionRecord, check_token_counts, query_key_tokens, sentence_layers

__all__ = [
    "STAT_NAMES",
    "is_punctuation",
    "diagonal_band",
    "head_stats",
    "attention_stats",
    "record_stats",
    "write_stats_csv",
    "stats_markdown",
]

STAT_NAMES = ("entropy", "max_weight", "diagonal_share", "eos_punct_share", "argmax_diagonal_agreement")
_SUBWORD_MARKS = ("\u2581", "@@")  # SentencePiece's word-start mark and subword-nmt's continuation mark


def is_punctuation(token: str) -> bool:
    """True when ``token`` (subword marks aside) is non-empty and every character is punctuation."""
    for mark in _SUBWORD_MARKS:
        token = token.replace(mark, "")
    return bool(token) and all(unicodedata.category(ch).startswith(("P", "S")) for ch in token)


def diagonal_band(q: int, k: int, band: float = 1.0) -> np.ndarray:
    """Boolean ``(q, k)`` mask of the keys within ``band`` of each row's monotonic alignment."""
    centres = np.arange(q) * (k - 1) / (q - 1) if q > 1 else np.zeros(1)  # (q,)
    return np.abs(centres[:, None] - np.arange(k)[None, :]) <= band + 1e-9  # (q, k)


def head_stats(
    weights: Any,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    band: float = 1.0,
    alignment: bool = False,
) -> dict[str, float]:
    """The statistics of one head's ``(q, k)`` map; see the module docstring for definitions.

    ``alignment`` asks for ``argmax_diagonal_agreement`` (meaningful for cross-attention).
    All values are NaN when no row carries weight.
    """
    weights = np.asarray(weights, dtype=np.float64)
    check_token_counts(weights, query_tokens, key_tokens)
    rows = np.array([t != "<pad>" for t in query_tokens], dtype=bool)
    cols = np.array([t != "<pad>" for t in key_tokens], dtype=bool)
    kept = weights[rows][:, cols]  # (Q, K) without padding
    kept_keys = [t for t, keep in zip(key_tokens, cols, strict=True) if keep]
    band_mask = diagonal_band(*kept.shape, band=band) if kept.size else np.zeros_like(kept, dtype=bool)
    totals = kept.sum(axis=1)  # (Q,)
    live = totals > 0
    if not live.any():
        return {name: math.nan for name in STAT_NAMES}
    p = kept[live] / totals[live, None]  # (Q', K), rows sum to 1
    band_mask = band_mask[live]
    logs = np.log(np.where(p > 0, p, 1.0))  # ln 1 = 0 makes zero weights drop out
    special = np.array([t == "<eos>" or is_punctuation(t) for t in kept_keys], dtype=bool)  # (K,)
    agreement = math.nan
    if alignment:
        best = p.argmax(axis=1)  # (Q',)
        agreement = float(band_mask[np.arange(len(best)), best].mean())
    return {
        "entropy": float(-(p * logs).sum(axis=1).mean()),
        "max_weight": float(p.max(axis=1).mean()),
        "diagonal_share": float((p * band_mask).sum(axis=1).mean()),
        "eos_punct_share": float(p[:, special].sum(axis=1).mean()),
        "argmax_diagonal_agreement": agreement,
    }


def attention_stats(
    attentions: Mapping[str, Any],
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    init_attentions: Mapping[str, Any] | None = None,
    index: int | None = None,
    band: float = 1.0,
) -> list[dict[str, Any]]:
    """One row per (kind, layer, head) of one sentence.

    ``attentions`` maps a kind ("encoder", "decoder", "cross") to a tuple of per-layer arrays,
    each ``(heads, q, k)`` or ``(batch, heads, q, k)`` with ``index`` (kinds mapped to ``None`` are
    skipped). ``init_attentions``, the same sentence under the untrained model, adds ``init_*``
    columns (NaN where the initial model lacks that kind, layer or head).
    Rows: ``{"kind", "layer", "head", "entropy", ..., "init_entropy", ...}``.
    """
    rows: list[dict[str, Any]] = []
    for kind, layers in attentions.items():
        if layers is None:
            continue
        query_tokens, key_tokens = query_key_tokens(kind, src_tokens, tgt_tokens)
        trained = sentence_layers(layers, index)
        initial = _initial_layers(init_attentions, kind, index)
        for layer, heads in enumerate(trained):
            for head, weights in enumerate(heads):
                row: dict[str, Any] = {"kind": kind, "layer": layer, "head": head}
                row.update(head_stats(weights, query_tokens, key_tokens, band, alignment=kind == "cross"))
                if init_attentions is not None:
                    init_map = _head_or_none(initial, layer, head)
                    init_row = (
                        head_stats(init_map, query_tokens, key_tokens, band, alignment=kind == "cross")
                        if init_map is not None
                        else dict.fromkeys(STAT_NAMES, math.nan)
                    )
                    row.update({f"init_{name}": value for name, value in init_row.items()})
                rows.append(row)
    return rows


def _initial_layers(init_attentions: Mapping[str, Any] | None, kind: str, index: int | None) -> list[np.ndarray]:
    if init_attentions is None or init_attentions.get(kind) is None:
        return []
    return sentence_layers(init_attentions[kind], index)


def _head_or_none(layers: list[np.ndarray], layer: int, head: int) -> np.ndarray | None:
    if layer < len(layers) and head < layers[layer].shape[0]:
        return layers[layer][head]
    return None


def record_stats(record: AttentionRecord, band: float = 1.0) -> list[dict[str, Any]]:
    """:func:`attention_stats` of an :class:`AttentionRecord` (with ``init_*`` columns if it has them)."""
    return attention_stats(record.attentions, record.src_tokens, record.tgt_tokens, record.init_attentions, band=band)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    return columns


def write_stats_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` as CSV (NaN written as a blank cell, as Lightning's CSVLogger does)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_columns(rows))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if _is_nan(value) else value for key, value in row.items()})
    return path


def stats_markdown(rows: Sequence[Mapping[str, Any]], digits: int = 3) -> str:
    """``rows`` as a GitHub-flavoured Markdown table; floats rounded to ``digits``, NaN as ``n/a``."""
    if not rows:
        return ""
    columns = _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def format_value(value: Any, digits: int = 3) -> str:
    """How one statistic is printed in tables: floats rounded, NaN and missing as ``n/a``."""
    if value is None or _is_nan(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
