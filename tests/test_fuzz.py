"""Property-based tests: any config text and any corpus bytes give a valid result or a one-line error.

"One-line error" means one of attnlab's own error types (ConfigError, DataError) with a message of a
single line; anything else (a KeyError, a TypeError, a traceback) is a bug the fuzzer found.
"""

from __future__ import annotations

import gzip
import io
import string
import zipfile

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attnlab.config import Config, ConfigError, config_from_dict, load_config
from attnlab.config_files import parse_yaml
from attnlab.data.corpora import RawCorpus, iter_lines, iter_pairs
from attnlab.data.errors import DataError

SECTIONS = {"data": ["corpus", "max_len", "src_lang", "tokenizer", "vocab_size", "val_ratio", "src_file", "path"],
            "model": ["arch", "cell", "hid_dim", "dropout", "attention", "attention_heads", "heads", "d_model",
                      "tie_embeddings", "bridge", "max_positions", "input_feeding"],
            "train": ["epochs", "lr", "batch_tokens", "batch_size", "precision", "monitor", "label_smoothing",
                      "teacher_forcing", "devices", "patience"],
            "decode": ["beam", "max_len", "length_penalty"]}
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(["lstm", "transformer", "val/bleu", "bf16-mixed", "auto",
                                                           "three_way", "5e-4", "multihead", "files", "none"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS, max_size=2))


@st.composite
def raw_configs(draw: st.DrawFn) -> object:
    sections = {}
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "modle"]), unique=True, max_size=4)):
        keys = SECTIONS.get(section, ["x"]) + ["unknown_key"]
        sections[section] = draw(st.dictionaries(st.sampled_from(keys), VALUES, max_size=4))
    return draw(st.one_of(st.just(sections), VALUES))


def _one_line(err: Exception) -> None:
    message = str(err)
    assert message and "\n" not in message, repr(message)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_configs())
def test_config_from_any_mapping_is_valid_or_one_clear_error(raw: object) -> None:
    try:
        cfg = config_from_dict(raw, "fuzz.yaml")
    except ConfigError as err:
        _one_line(err)
        return
    assert isinstance(cfg, Config)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "é:{}[]-#&*!|>'\"%@`", max_size=120))
def test_config_text_parses_or_fails_in_one_line(text: str) -> None:
    try:
        raw = parse_yaml(text, "fuzz.yaml")
    except ConfigError as err:
        _one_line(err)
        return
    try:
        config_from_dict(raw, "fuzz.yaml")
    except ConfigError as err:
        _one_line(err)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["train.lr", "train.epochs", "model.dropout", "decode.beam", "data.max_len", "train.devices"]),
       st.text(alphabet=string.ascii_letters + string.digits + ".-+e_ ", max_size=10))
def test_set_overrides_are_checked_like_files(key: str, value: str) -> None:
    try:
        load_config(None, [f"{key}={value}"])
    except ConfigError as err:
        _one_line(err)


def test_yaml_numbers_and_duplicates() -> None:
    assert parse_yaml("lr: 5e-4\nb: 1E3\nc: -2.5e+2", "x") == {"lr": 5e-4, "b": 1000.0, "c": -250.0}
    assert load_config(None, ["train.lr=5e-4"]).train.lr == 5e-4
    try:
        parse_yaml("train:\n  lr: 1\n  lr: 2\n", "cfg.yaml")
    except ConfigError as err:
        assert "cfg.yaml, line 3" in str(err) and "'lr' appears twice" in str(err)
    else:
        raise AssertionError("a duplicate key was accepted")
    assert yaml.safe_load("lr: 5e-4") == {"lr": "5e-4"}  # why attnlab has its own loader


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_corpus_bytes_read_or_fail_in_one_line(tmp_path_factory, raw: bytes) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    for name in ("c.tsv", "c.gz"):
        path = folder / name
        path.write_bytes(raw)
        counts = RawCorpus()
        try:
            pairs = list(iter_pairs("files", counts, src_file=path))
        except DataError as err:
            _one_line(err)
            continue
        assert all(s and t and "\n" not in s + t for s, t in pairs)
        assert counts.lines >= len(pairs) + counts.empty_skipped


def _read_or_fail_in_one_line(pairs) -> list[tuple[str, str]]:
    try:
        return list(pairs)
    except DataError as err:
        _one_line(err)
        return []


def _tatoeba_zip(text: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fra.txt", text)
        archive.writestr("_about.txt", b"attribution")
    return buffer.getvalue()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 10**6), st.binary(min_size=1, max_size=8))
@example(raw=b"", at=3478, patch=b"\x8a")  # found by this test: a local header offset before the file's start
def test_tatoeba_files_and_zips_read_or_fail_in_one_line(tmp_path_factory, raw: bytes, at: int,
                                                         patch: bytes) -> None:
    """Any bytes as the release; any sentence file inside a good zip; a good zip with some bytes overwritten."""
    folder = tmp_path_factory.mktemp("fuzz")
    archive = _tatoeba_zip(b"Go.\tVa !\tCC-BY 2.0\nI am cold.\tJ'ai froid.\n" * 3)
    at %= len(archive)
    damaged = archive[:at] + patch + archive[at + len(patch):]
    for name, content in (("fra.txt", raw), ("raw.zip", raw), ("inner.zip", _tatoeba_zip(raw)),
                          ("damaged.zip", damaged)):
        path = folder / name
        path.write_bytes(content)
        for swap in (False, True):
            pairs = _read_or_fail_in_one_line(iter_pairs("tatoeba", RawCorpus(), path=path,
                                                         src_lang="fr" if swap else "en",
                                                         tgt_lang="en" if swap else "fr"))
            assert all(s and t and "\n" not in s + t for s, t in pairs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200), st.booleans())
def test_multi30k_folders_read_or_fail_in_one_line(tmp_path_factory, src: bytes, tgt: bytes, compress: bool) -> None:
    """A local Multi30k copy whose two files hold any bytes, gzip-compressed or not (a .gz name either way)."""
    folder = tmp_path_factory.mktemp("fuzz")
    for lang, content in (("en", src), ("fr", tgt)):
        (folder / f"val.{lang}.gz").write_bytes(gzip.compress(content) if compress else content)
    pairs = _read_or_fail_in_one_line(iter_pairs("multi30k", RawCorpus(), split="val", data_dir=folder,
                                                 download=False))
    assert all(s and t and "\n" not in s + t for s, t in pairs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab\t é", max_size=8), max_size=6), st.sampled_from(["\n", "\r\n", "\r"]),
       st.booleans())
def test_line_endings_and_bom(lines: list[str], ending: str, bom: bool) -> None:
    raw = ("\ufeff" if bom else "") + ending.join(lines) + (ending if lines else "")
    got = [text for _, text in iter_lines(io.BytesIO(raw.encode("utf-8")), "x")]
    assert got == lines
