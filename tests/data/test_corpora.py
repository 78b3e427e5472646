"""Corpus readers on the real corpora, and every kind of bad input they must name clearly."""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path

import pytest

from attnlab.data.corpora import (
    bundled_tatoeba_path,
    read_multi30k,
    read_parallel_files,
    read_tatoeba,
    read_tsv,
)
from attnlab.data.download import download_file, find_multi30k_file, sha256_of
from attnlab.data.errors import DataError

TATOEBA_SHA256 = "5bcf6171612bbfb362b18aeb44bb5f6802249375cdb0227f2975032ad01ce85f"


def test_bundled_tatoeba_is_the_shared_release(tatoeba_zip: Path) -> None:
    assert sha256_of(bundled_tatoeba_path()) == TATOEBA_SHA256 == sha256_of(tatoeba_zip)
    attribution = bundled_tatoeba_path().with_name("ATTRIBUTION.txt").read_text()
    assert "manythings.org/anki" in attribution and "tatoeba.org" in attribution


def test_tatoeba_reads_every_pair_in_both_directions() -> None:
    en_fr = read_tatoeba(src_lang="en", tgt_lang="fr")
    assert len(en_fr.pairs) == en_fr.lines == 167_130
    assert en_fr.pairs[0] == ("Go.", "Va !")
    fr_en = read_tatoeba(src_lang="fr", tgt_lang="en")
    assert fr_en.pairs[0] == ("Va !", "Go.")


def test_tatoeba_accepts_the_newer_three_column_format(tmp_path: Path) -> None:
    text = "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\nHi.\tSalut !\tCC-BY\n"
    archive = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("fra.txt", text)
        z.writestr("_about.txt", "about")
    assert read_tatoeba(archive).pairs == [("Go.", "Va !"), ("Hi.", "Salut !")]
    plain = tmp_path / "fra.txt"
    plain.write_text(text, encoding="utf-8")
    assert read_tatoeba(plain).pairs == [("Go.", "Va !"), ("Hi.", "Salut !")]


def test_multi30k_from_shared_copy(multi30k_dir: Path) -> None:
    train = read_multi30k("train", "en", "fr", multi30k_dir, download=False)
    assert len(train.pairs) == 29_000
    assert train.pairs[0][0].startswith("Two young, White males")
    test = read_multi30k("test_2016_flickr", "en", "de", multi30k_dir, download=False)
    assert len(test.pairs) == 1_000


def test_multi30k_missing_locally_names_where_it_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ATTNLAB_DATA", raising=False)
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"val\.fr\.gz not found.*--data-dir"):
        find_multi30k_file("val", "fr", tmp_path, download=False)


def test_multi30k_env_var_points_to_local_copy(multi30k_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNLAB_DATA", str(multi30k_dir))
    assert find_multi30k_file("val", "de", download=False) == multi30k_dir / "val.de.gz"


def test_unknown_split_and_language() -> None:
    with pytest.raises(DataError, match="no split 'dev'"):
        find_multi30k_file("dev", "en", download=False)
    with pytest.raises(DataError, match="no language 'es'"):
        read_tatoeba(src_lang="es", tgt_lang="fr")


def test_download_checks_sha256_and_keeps_bad_file_aside(tmp_path: Path) -> None:
    source = tmp_path / "served.en.gz"
    source.write_bytes(gzip.compress(b"a dog runs\n"))
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = download_file(source.as_uri(), tmp_path / "cache" / "val.en.gz", good)
    assert dest.read_bytes() == source.read_bytes()
    with pytest.raises(DataError, match="checksum mismatch.*kept aside"):
        download_file(source.as_uri(), tmp_path / "cache" / "val.fr.gz", "0" * 64)
    assert (tmp_path / "cache" / "val.fr.gz.bad").is_file()
    assert not (tmp_path / "cache" / "val.fr.gz").exists()


def test_parallel_files_and_tsv(tmp_path: Path) -> None:
    (tmp_path / "a.en").write_text("hello\n\nbye\n", encoding="utf-8")
    (tmp_path / "a.fr").write_text("bonjour\nvide\nau revoir\n", encoding="utf-8")
    corpus = read_parallel_files(tmp_path / "a.en", tmp_path / "a.fr")
    assert corpus.pairs == [("hello", "bonjour"), ("bye", "au revoir")]
    assert corpus.empty_skipped == 1 and corpus.lines == 3
    (tmp_path / "a.tsv").write_text("hello\tbonjour\n\nbye\tau revoir\n", encoding="utf-8")
    tsv = read_tsv(tmp_path / "a.tsv")
    assert tsv.pairs == corpus.pairs and tsv.empty_skipped == 1


def test_misaligned_files_name_both_files_and_counts(tmp_path: Path) -> None:
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "a.fr").write_text("un\ndeux\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.en has 3 lines.*a\.fr has 2"):
        read_parallel_files(tmp_path / "a.en", tmp_path / "a.fr")


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.en").write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    (tmp_path / "a.fr").write_text("ok\nok\nok\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.en, line 3: invalid UTF-8"):
        read_parallel_files(tmp_path / "a.en", tmp_path / "a.fr")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothere.en does not exist"):
        read_parallel_files(tmp_path / "nothere.en", tmp_path / "nothere.fr")


def test_tsv_without_tab_names_line(tmp_path: Path) -> None:
    (tmp_path / "b.tsv").write_text("hello\tbonjour\njust one column\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.tsv, line 2: expected tab-separated"):
        read_tsv(tmp_path / "b.tsv")
