"""Per-head statistics against values worked out by hand."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from attnlab.attention_view.stats import (
    attention_stats,
    diagonal_band,
    head_stats,
    is_punctuation,
    stats_markdown,
    write_stats_csv,
)


def _tokens(n: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_identity_is_sharp_and_diagonal():
    stats = head_stats(np.eye(4), _tokens(4, "t"), _tokens(4), alignment=True)
    assert stats == pytest.approx(
        {
            "entropy": 0.0,
            "max_weight": 1.0,
            "diagonal_share": 1.0,
            "eos_punct_share": 0.0,
            "argmax_diagonal_agreement": 1.0,
        }
    )


def test_uniform_rows_have_entropy_ln_k():
    stats = head_stats(np.full((3, 5), 0.2), _tokens(3, "t"), _tokens(5))
    assert stats["entropy"] == pytest.approx(math.log(5))
    assert stats["max_weight"] == pytest.approx(0.2)
    assert math.isnan(stats["argmax_diagonal_agreement"])  # only asked for cross-attention


def test_hand_made_two_by_three():
    weights = np.array([[0.5, 0.5, 0.0], [0.6, 0.3, 0.1]])
    stats = head_stats(weights, ["x", "y"], ["a", ".", "<eos>"], band=1, alignment=True)
    row_entropies = [math.log(2), -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))]
    # band centres: row 0 -> key 0 (keys 0, 1 in band); row 1 -> key 2 (keys 1, 2 in band)
    assert stats == pytest.approx(
        {
            "entropy": sum(row_entropies) / 2,
            "max_weight": (0.5 + 0.6) / 2,
            "diagonal_share": (1.0 + 0.4) / 2,
            "eos_punct_share": (0.5 + 0.4) / 2,
            "argmax_diagonal_agreement": 0.5,  # row 1's argmax (key 0) is outside its band
        }
    )


def test_padding_is_ignored():
    real = np.array([[0.25, 0.75], [0.5, 0.5]])
    padded = np.zeros((3, 3))
    padded[:2, :2] = real
    padded[2, :2] = [0.9, 0.1]  # a padded query row may carry anything; it must not count
    with_pad = head_stats(padded, ["x", "y", "<pad>"], ["a", "b", "<pad>"], alignment=True)
    assert with_pad == pytest.approx(head_stats(real, ["x", "y"], ["a", "b"], alignment=True))


def test_diagonal_band_edge_cases():
    assert diagonal_band(1, 4).tolist() == [[True, True, False, False]]  # single row aligns with the first key
    assert diagonal_band(3, 1).all()
    assert diagonal_band(3, 3, band=0).tolist() == np.eye(3, dtype=bool).tolist()
    assert diagonal_band(2, 5, band=0).tolist()[1] == [False, False, False, False, True]


def test_punctuation_tokens():
    assert all(is_punctuation(t) for t in [".", "?!", "\u2581,", "«", "..."])
    assert not any(is_punctuation(t) for t in ["a.", "<eos>", "<unk>", "", "\u2581"])


def test_attention_stats_rows_per_kind_layer_head_with_initial_counterparts():
    src, tgt = ["a", "b", "c", "<pad>"], ["x", "y", "<eos>"]
    encoder = tuple(torch.full((2, 4, 4, 4), 1 / 3) for _ in range(2))  # (B, H, S, S)
    cross = (torch.eye(4)[None, None, :3].repeat(2, 1, 1, 1),)  # RNN-like: one layer, one head
    rows = attention_stats(
        {"encoder": encoder, "decoder": None, "cross": cross},
        src,
        tgt,
        init_attentions={"cross": (torch.full((2, 1, 3, 4), 0.25),)},
        index=1,
    )
    expected = [("encoder", layer, head) for layer in range(2) for head in range(4)] + [("cross", 0, 0)]
    assert [(r["kind"], r["layer"], r["head"]) for r in rows] == expected
    assert rows[0]["entropy"] == pytest.approx(math.log(3))
    assert math.isnan(rows[0]["argmax_diagonal_agreement"]) and math.isnan(rows[0]["init_entropy"])
    assert rows[-1]["entropy"] == pytest.approx(0.0) and rows[-1]["argmax_diagonal_agreement"] == 1.0
    assert rows[-1]["init_entropy"] == pytest.approx(math.log(3))  # uniform over the 3 real keys


def test_writers(tmp_path):
    rows = attention_stats({"cross": (np.eye(2)[None],)}, ["a", "b"], ["x", "y"])
    rows.append({**rows[0], "head": 1, "argmax_diagonal_agreement": math.nan})
    path = write_stats_csv(rows, tmp_path / "stats" / "heads.csv")
    with path.open() as handle:
        read = list(csv.DictReader(handle))
    assert read[0]["kind"] == "cross" and float(read[0]["entropy"]) == 0.0
    assert read[1]["argmax_diagonal_agreement"] == ""
    table = stats_markdown(rows)
    lines = table.strip().splitlines()
    assert lines[0].startswith("| kind | layer | head | entropy |") and len(lines) == 4
    assert "n/a" in lines[3] and "1.000" in lines[2]
