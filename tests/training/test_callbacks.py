"""Small pieces of the training callbacks that need no trainer."""

from __future__ import annotations

from attnlab.evaluation.references import spread_rows as pick_sample_rows


def test_samples_are_spread_and_have_distinct_sources() -> None:
    sources = ["a", "a", "b", "c", "c", "d", "e", "f", "g", "h"]
    rows = pick_sample_rows(sources, 5)
    assert len(rows) == 5 and len({sources[i] for i in rows}) == 5
    assert rows[0] == 0 and rows[-1] >= 7
    assert pick_sample_rows(["a", "a"], 5) == [0]
    assert pick_sample_rows([], 3) == [] and pick_sample_rows(sources, 0) == []
