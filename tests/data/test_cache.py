"""The prepared-data cache gives back exactly what ``prepare_data`` makes, and notices a changed corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnlab.config import load_config
from attnlab.data import cache
from attnlab.data.cache import cached_prepare, data_key
from attnlab.data.prepare import prepare_data

PAIRS = [(f"i am number {i} .", f"je suis le numero {i} .") for i in range(40)] + [("he is tall .", "il est grand .")]


def data_config(tsv: Path, *extra: str):
    return load_config(None, ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.2",
                              "data.test_ratio=0.2", *extra]).data


@pytest.mark.parametrize("extra", [[], ["data.shared_vocab=true", "data.tokenizer=sentencepiece",
                                        "data.vocab_size=60"]])
def test_cached_data_equals_prepared_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    cfg = data_config(tsv, *extra)
    fresh = prepare_data(cfg)
    cached_prepare(cfg, tmp_path / "prepared")
    monkeypatch.setattr(cache, "prepare_data", lambda *a, **k: pytest.fail("prepared again despite the cache"))
    loaded = cached_prepare(cfg, tmp_path / "prepared")
    assert dict(loaded.texts) == dict(fresh.texts) and loaded.report == fresh.report
    for split in fresh.encoded:
        assert [(s.tolist(), t.tolist()) for s, t in loaded.encoded[split]] == \
            [(s.tolist(), t.tolist()) for s, t in fresh.encoded[split]]
    assert loaded.src_vocab.itos == fresh.src_vocab.itos and loaded.tgt_vocab.itos == fresh.tgt_vocab.itos
    assert loaded.shared_vocab == fresh.shared_vocab
    sentence = "i am number 7 ."
    assert loaded.src_tokenizer.encode(sentence) == fresh.src_tokenizer.encode(sentence)


def test_key_follows_the_config_and_the_corpus_file(tmp_path: Path) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    key = data_key(data_config(tsv))
    assert data_key(data_config(tsv)) == key and data_key(data_config(tsv, "data.max_len=5")) != key
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS[:-1]), encoding="utf-8")
    assert data_key(data_config(tsv)) != key
