"""Corpus readers: raw sentence pairs from Tatoeba, Multi30k, or the user's own parallel text.

Every reader returns a :class:`RawCorpus`: the pairs in file order plus what was skipped and why,
so that ``attnlab data stats`` can account for every line. Bad input raises :class:`DataError`
naming the file and line.
"""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from attnlab.data.download import find_multi30k_file
from attnlab.data.errors import DataError

__all__ = [
    "RawCorpus",
    "bundled_tatoeba_path",
    "read_tatoeba",
    "read_multi30k",
    "read_parallel_files",
    "read_tsv",
    "TATOEBA_LANGS",
    "MULTI30K_LANGS",
]

TATOEBA_LANGS = ("en", "fr")
MULTI30K_LANGS = ("en", "fr", "de")


@dataclass
class RawCorpus:
    """Sentence pairs ``(source, target)`` in file order, and a count of skipped lines."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    lines: int = 0
    empty_skipped: int = 0
    source: str = ""


def bundled_tatoeba_path() -> Path:
    """The Tatoeba fra-eng zip shipped inside the package (CC-BY 2.0, see ATTRIBUTION.txt)."""
    return Path(str(resources.files("attnlab.data") / "resources" / "fra-eng.zip"))


def _decode_lines(raw: bytes, name: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)``; invalid UTF-8 is an error naming the file and line."""
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{name}, line {number}: invalid UTF-8 ({err.reason} at byte {err.start})") from None


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def _strip_final_newline(raw: bytes) -> bytes:
    return raw[:-1] if raw.endswith(b"\n") else raw


def _check_langs(corpus: str, src_lang: str, tgt_lang: str, known: tuple[str, ...]) -> None:
    for lang in (src_lang, tgt_lang):
        if lang not in known:
            raise DataError(f"corpus {corpus!r} has no language {lang!r}; it offers {', '.join(known)}")


def read_tatoeba(path: str | Path | None = None, src_lang: str = "en", tgt_lang: str = "fr") -> RawCorpus:
    """Read a manythings.org ``fra-eng`` zip (or its ``fra.txt``).

    Lines are ``English<TAB>French`` with an optional third attribution column (newer releases).
    """
    _check_langs("tatoeba", src_lang, tgt_lang, TATOEBA_LANGS)
    path = Path(path) if path is not None else bundled_tatoeba_path()
    if not path.is_file():
        raise DataError(f"Tatoeba file {path} does not exist")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith(".txt") and not n.startswith("_")]
            if not members:
                raise DataError(f"{path} holds no sentence file (expected e.g. fra.txt)")
            name = f"{path}:{members[0]}"
            raw = archive.read(members[0])
    else:
        name, raw = str(path), _read_bytes(path)
    corpus = _read_tab_pairs(raw, name, min_columns=2)
    if src_lang == "fr":
        corpus.pairs = [(fr, en) for en, fr in corpus.pairs]
    return corpus


def _read_tab_pairs(raw: bytes, name: str, min_columns: int) -> RawCorpus:
    corpus = RawCorpus(source=name)
    for number, line in _decode_lines(_strip_final_newline(raw), name):
        corpus.lines += 1
        columns = line.split("\t")
        if len(columns) < min_columns:
            if not line.strip():
                corpus.empty_skipped += 1
                continue
            raise DataError(f"{name}, line {number}: expected tab-separated source and target, got {line[:60]!r}")
        src, tgt = columns[0].strip(), columns[1].strip()
        if not src or not tgt:
            corpus.empty_skipped += 1
            continue
        corpus.pairs.append((src, tgt))
    return corpus


def read_tsv(path: str | Path) -> RawCorpus:
    """One ``source<TAB>target`` pair per line; further columns are ignored."""
    path = Path(path)
    return _read_tab_pairs(_strip_final_newline(_read_bytes(path)), str(path), min_columns=2)


def read_parallel_files(src_path: str | Path, tgt_path: str | Path) -> RawCorpus:
    """Two line-aligned files (plain or .gz). Pairs with an empty side are skipped and counted."""
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    src_lines = list(_decode_lines(_strip_final_newline(_read_bytes(src_path)), str(src_path)))
    tgt_lines = list(_decode_lines(_strip_final_newline(_read_bytes(tgt_path)), str(tgt_path)))
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"parallel files are misaligned: {src_path} has {len(src_lines)} lines, "
            f"{tgt_path} has {len(tgt_lines)}"
        )
    corpus = RawCorpus(source=f"{src_path} + {tgt_path}", lines=len(src_lines))
    for (_, src), (_, tgt) in zip(src_lines, tgt_lines, strict=True):
        src, tgt = src.strip(), tgt.strip()
        if not src or not tgt:
            corpus.empty_skipped += 1
            continue
        corpus.pairs.append((src, tgt))
    return corpus


def read_multi30k(
    split: str, src_lang: str, tgt_lang: str, data_dir: str | Path | None = None, download: bool = True
) -> RawCorpus:
    """Read one Multi30k task-1 split, from ``data_dir``/``$ATTNLAB_DATA`` or the download cache."""
    _check_langs("multi30k", src_lang, tgt_lang, MULTI30K_LANGS)
    src = find_multi30k_file(split, src_lang, data_dir, download=download)
    tgt = find_multi30k_file(split, tgt_lang, data_dir, download=download)
    return read_parallel_files(src, tgt)

