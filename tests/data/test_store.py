"""The prepared-data format: flat binary arrays and JSON, the same whatever the chunking, and every
damaged file named in a one-line error."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from attnlab.config import load_config
from attnlab.data import prepare as prepare_module
from attnlab.data.batching import collate, make_batches
from attnlab.data.cache import cached_prepare, data_key
from attnlab.data.errors import DataError
from attnlab.data.prepare import prepare_data
from attnlab.data.store import EncodedSplit, _SplitSide, open_prepared


def data_config(tsv: Path, *extra: str):
    return load_config(None, ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.1",
                              "data.test_ratio=0.1", *extra]).data


def arrays(data) -> dict[str, list[tuple[list[int], list[int]]]]:
    return {split: [(s.tolist(), t.tolist()) for s, t in pairs] for split, pairs in data.encoded.items()}


@pytest.fixture(scope="module")
def tsv(tatoeba_tsv_of) -> Path:
    return tatoeba_tsv_of(600)


SPM = ["data.tokenizer=sentencepiece", "data.vocab_size=200", "data.shared_vocab=true"]


@pytest.mark.parametrize("extra", [[], SPM])
def test_one_chunk_or_many_gives_identical_arrays(tsv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  extra: list[str]) -> None:
    cfg = data_config(tsv, *extra)
    whole = prepare_data(cfg, tmp_path / "whole")
    monkeypatch.setattr(prepare_module, "CHUNK", 37)  # 600 pairs in 17 chunks ...
    monkeypatch.setattr(prepare_module, "_PARALLEL_FROM", 4 * 37)  # ... cleaned and encoded by 2 worker processes
    chunked = prepare_data(cfg, tmp_path / "chunked", workers=2)
    assert arrays(chunked) == arrays(whole) and sum(len(p) for p in whole.encoded.values()) > 500
    assert dict(chunked.texts) == dict(whole.texts) and chunked.report == whole.report
    assert chunked.src_vocab.itos == whole.src_vocab.itos and chunked.tgt_vocab.itos == whole.tgt_vocab.itos
    for name in ("train.src.ids", "train.tgt.off", "val.txt"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes()


def test_split_on_disk_gives_the_batches_of_plain_lists(tsv: Path, tmp_path: Path) -> None:
    data = prepare_data(data_config(tsv), tmp_path / "p")
    train = data.encoded["train"]
    assert isinstance(train.side_ids(0), np.memmap)
    plain = [(s.tolist(), t.tolist()) for s, t in train]  # the pairs as Python lists, as before the store
    for kwargs in ({"batch_tokens": 200}, {"batch_size": 16}):
        for epoch in range(2):
            mapped = make_batches(train, seed=7, epoch=epoch, **kwargs)
            listed = make_batches(plain, seed=7, epoch=epoch, **kwargs)
            assert mapped == listed
    batch = list(make_batches(train, batch_tokens=200, seed=7))[3]
    a, b = collate(train, batch), collate(plain, batch)
    assert all(getattr(a, k).equal(getattr(b, k)) for k in ("src", "src_lengths", "tgt_in", "tgt_out", "indices"))


def test_dedup_and_split_match_the_texts(tsv: Path, tmp_path: Path) -> None:
    lines = tsv.read_text(encoding="utf-8").splitlines()
    doubled = tmp_path / "doubled.tsv"
    doubled.write_text("\n".join(lines + lines[:50]) + "\n", encoding="utf-8")  # 50 exact duplicates at the end
    once, twice = prepare_data(data_config(tsv)), prepare_data(data_config(doubled))
    assert twice.report.removed_duplicates == once.report.removed_duplicates + 50
    assert arrays(twice) == arrays(once)
    sources = {split: {s for s, _ in once.texts[split]} for split in ("train", "val", "test")}
    assert not sources["train"] & (sources["val"] | sources["test"])
    assert once.report.split_sources == {split: len(s) for split, s in sources.items()}


def test_lengths_read_in_chunks_and_a_split_reopened_elsewhere(tsv: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    data = prepare_data(data_config(tsv), tmp_path / "p")
    train = data.encoded["train"]
    expected = [len(s) for s, _ in train], [len(t) for _, t in train]
    monkeypatch.setattr(_SplitSide, "_CHUNK", 7)  # offsets measured 7 at a time, across many chunk borders
    again = EncodedSplit(tmp_path / "p", "train", train.vocab_sizes)
    assert (again.src_lengths.tolist(), again.tgt_lengths.tolist()) == expected
    copy = pickle.loads(pickle.dumps(again))  # what a spawned worker receives: the files' names, not their ids
    assert len(pickle.dumps(again)) < 1000 and [t.tolist() for _, t in copy] == [t.tolist() for _, t in train]


@pytest.mark.parametrize("damage", ["first offset not 0", "offsets decrease", "offsets past the ids"])
def test_damaged_offsets_are_named(tsv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    folder = tmp_path / "p"
    prepare_data(data_config(tsv), folder)
    monkeypatch.setattr(_SplitSide, "_CHUNK", 5)
    path = folder / "train.tgt.off"
    offsets = np.fromfile(path, dtype="<i8")
    if damage == "first offset not 0":
        offsets[0] = 1
    elif damage == "offsets decrease":
        offsets[len(offsets) // 2] = offsets[len(offsets) // 2 + 1] + 1
    else:
        offsets[-1] += 1
    offsets.tofile(path)
    with pytest.raises(DataError, match=r"train\.tgt\.off is corrupt: its offsets do not describe .*train\.tgt\.ids"):
        EncodedSplit(folder, "train", (10**6, 10**6))


def test_damaged_files_are_named(tsv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    prepare_data(data_config(tsv), folder)
    ids = folder / "train.src.ids"
    good = ids.read_bytes()
    ids.write_bytes(good[:-8])  # truncated
    with pytest.raises(DataError, match=r"train\.src\.ids is damaged \(expected \d+ bytes, found \d+"):
        open_prepared(folder)
    ids.write_bytes(b"\xff" * len(good))  # garbage of the right size: caught when a pair is read
    data = open_prepared(folder)
    with pytest.raises(DataError, match=r"train\.src\.ids is corrupt: sentence 0 holds ids outside the vocabulary"):
        data.encoded["train"][0]
    ids.write_bytes(good)
    (folder / "index.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"index\.json is corrupt"):
        open_prepared(folder)
    (folder / "index.json").unlink()
    with pytest.raises(DataError, match="holds no prepared data"):
        open_prepared(folder)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_in_a_cache_is_never_loaded(tsv: Path, tmp_path: Path) -> None:
    cfg = data_config(tsv)
    cache = tmp_path / "cache"
    cache.mkdir()
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    (cache / f"{data_key(cfg)}.pkl").write_bytes(pickle.dumps(payload))  # where the old cache looked
    data = cached_prepare(cfg, cache)
    assert len(data.encoded["train"]) > 0 and not marker.exists()
    index = json.loads((cache / data_key(cfg) / "index.json").read_text())
    assert index["format"] == "attnlab-prepared-data" and "train.src.ids" in index["files"]
    assert all(not p.name.endswith((".pkl", ".pt", ".npy")) for p in (cache / data_key(cfg)).iterdir())
