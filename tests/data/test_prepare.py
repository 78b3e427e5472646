"""The whole data pipeline on the real Tatoeba corpus: filters, leakage-free split, tokenisers, vocab."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnlab.config import DataConfig
from attnlab.data.prepare import prepare_data, split_of
from attnlab.data.store import load_run_tokenizers
from attnlab.data.tokenizers import train_sentencepiece
from attnlab.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary


@pytest.fixture(scope="module")
def tutorial_data():
    """The tutorial's setting: tutorial normalisation, English prefixes, up to 10 tokens."""
    return prepare_data(DataConfig(corpus="tatoeba", prefixes=True, max_len=10))


def test_tutorial_filter_keeps_only_prefixed_short_pairs(tutorial_data) -> None:
    report = tutorial_data.report
    assert report.pairs_read == 167_130
    kept = sum(report.split_pairs.values())
    assert kept == report.pairs_read - report.removed_prefix - report.removed_length - report.removed_duplicates
    assert 10_000 < kept < 20_000  # the tutorial's filter keeps roughly 10k-15k pairs
    for pairs in tutorial_data.texts.values():
        for src, tgt in pairs:
            assert src.startswith(("i am", "i m", "he is", "he s", "she is", "she s", "you are", "you re",
                                   "we are", "we re", "they are", "they re"))
            assert len(src.split()) <= 10 and len(tgt.split()) <= 10


def test_no_test_or_val_source_appears_in_train(tutorial_data) -> None:
    train_sources = {src for src, _ in tutorial_data.texts["train"]}
    for split in ("val", "test"):
        sources = {src for src, _ in tutorial_data.texts[split]}
        assert sources and not sources & train_sources


def test_split_is_deterministic_and_roughly_proportional() -> None:
    sentences = [f"sentence {i}" for i in range(20_000)]
    splits = [split_of(s, 7, 0.1, 0.05) for s in sentences]
    assert splits == [split_of(s, 7, 0.1, 0.05) for s in sentences]
    assert abs(splits.count("test") / len(splits) - 0.05) < 0.01
    assert abs(splits.count("val") / len(splits) - 0.10) < 0.01
    assert splits != [split_of(s, 8, 0.1, 0.05) for s in sentences]


def test_direction_fr_en_swaps_sides() -> None:
    data = prepare_data(DataConfig(corpus="tatoeba", src_lang="fr", tgt_lang="en", prefixes=True))
    src, tgt = data.texts["train"][0]
    assert tgt.startswith(("i ", "he ", "she ", "you ", "we ", "they "))


def test_duplicates_removed(tmp_path: Path) -> None:
    (tmp_path / "c.tsv").write_text("Hi.\tSalut.\nhi .\tsalut .\nBye.\tSalut.\n", encoding="utf-8")
    data = prepare_data(DataConfig(corpus="files", src_file=str(tmp_path / "c.tsv"), val_ratio=0, test_ratio=0))
    assert data.report.removed_duplicates == 1
    assert data.texts["train"] == [("hi .", "salut ."), ("bye .", "salut .")]


def test_encoded_ids_match_vocab(tutorial_data) -> None:
    vocab = tutorial_data.src_vocab
    (src_text, _), (src_ids, _) = tutorial_data.texts["val"][0], tutorial_data.encoded["val"][0]
    assert vocab.decode(src_ids.tolist()) == [t if t in vocab else "<unk>" for t in src_text.split()]


def test_vocabulary_specials_and_save_load(tmp_path: Path) -> None:
    vocab = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"], ["d"]], min_freq=2)
    assert vocab.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert vocab.itos[4:] == ["a", "b"]
    assert vocab.encode(["a", "zzz"]) == [4, UNK_ID]
    assert vocab.decode([BOS_ID, 4, 5, EOS_ID, 4]) == ["a", "b"]
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").itos == vocab.itos
    assert len(Vocabulary.build([["a", "b", "c"]], max_size=5)) == 5


def test_sentencepiece_round_trip_and_save(tmp_path: Path, tutorial_data) -> None:
    train = [src for src, _ in tutorial_data.texts["train"]]
    for model_type in ("unigram", "bpe"):
        tok = train_sentencepiece(train, vocab_size=500, model_type=model_type)
        for sentence in train[:200]:
            assert tok.decode(tok.encode(sentence)) == sentence
    tok.save(tmp_path / "m.model")
    assert type(tok).load(tmp_path / "m.model").encode(train[0]) == tok.encode(train[0])


def test_sentencepiece_joint_vocab_and_run_files(tmp_path: Path, multi30k_dir: Path) -> None:
    cfg = DataConfig(corpus="multi30k", data_dir=str(multi30k_dir), normalize="none", tokenizer="sentencepiece",
                     vocab_size=1000, shared_vocab=True, max_len=None, max_train_pairs=3000)
    data = prepare_data(cfg)
    assert data.shared_vocab and data.src_vocab is data.tgt_vocab
    assert data.report.split_pairs == {"train": 3000, "val": 1014, "test": 1000}
    data.save(tmp_path)
    src_tok, tgt_tok, src_vocab, tgt_vocab, normalize = load_run_tokenizers(tmp_path)
    assert normalize == "none" and src_vocab is tgt_vocab and src_vocab.itos == data.src_vocab.itos
    text = data.texts["test"][0][1]
    assert tgt_tok.decode(tgt_vocab.decode(tgt_vocab.encode(tgt_tok.encode(text)))) == text
