"""Corpus readers: raw sentence pairs from Tatoeba, Multi30k, or the user's own parallel text.

Readers stream: :func:`iter_pairs` yields the pairs of a corpus one by one and counts, in a
:class:`RawCorpus` it fills as it goes, the lines read and those skipped and why, so that
``attnlab data stats`` can account for every line without the corpus ever being held in memory.
``read_*`` collect the same pairs into a list, for small inputs. Bad input raises
:class:`DataError` naming the file and line.

Text is UTF-8; a byte-order mark at the start of a file is dropped, and ``\\n``, ``\\r\\n`` and
``\\r`` (old Mac) all end a line. Files ending in ``.gz`` are read through gzip.
"""

from __future__ import annotations

import errno
import gzip
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from itertools import zip_longest
from pathlib import Path
from typing import IO

from attnlab.data.download import find_multi30k_file
from attnlab.data.errors import DataError

__all__ = [
    "RawCorpus",
    "bundled_tatoeba_path",
    "iter_lines",
    "iter_pairs",
    "read_tatoeba",
    "read_multi30k",
    "read_parallel_files",
    "read_tsv",
    "TATOEBA_LANGS",
    "MULTI30K_LANGS",
]

TATOEBA_LANGS = ("en", "fr")
MULTI30K_LANGS = ("en", "fr", "de")
_BOM = b"\xef\xbb\xbf"


@dataclass
class RawCorpus:
    """Counts of what a reader saw; ``pairs`` holds the pairs only when a ``read_*`` function collected them."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    lines: int = 0
    empty_skipped: int = 0
    source: str = ""


def bundled_tatoeba_path() -> Path:
    """The Tatoeba fra-eng zip shipped inside the package (CC-BY 2.0, see ATTRIBUTION.txt)."""
    return Path(str(resources.files("attnlab.data") / "resources" / "fra-eng.zip"))


def _check_file(path: Path, what: str = "data file") -> None:
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory, not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{what} {path} is empty")


@contextmanager
def _open_binary(path: Path) -> Iterator[IO[bytes]]:
    """The bytes of ``path``, through gzip when its name ends in ``.gz`` (checked to really be gzip)."""
    _check_file(path)
    if path.suffix != ".gz":
        with open(path, "rb") as handle:
            yield handle
        return
    with open(path, "rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise DataError(f"{path} is named .gz but is not gzip-compressed; rename it without .gz or "
                            "compress it with gzip")
    with gzip.open(path, "rb") as handle:
        yield handle


def _split_raw_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Raw lines without their endings, whichever of ``\\n``, ``\\r\\n`` or ``\\r`` ends them; a byte-order
    mark at the very start is dropped."""
    for number, raw in enumerate(chunks):
        if number == 0 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
            if not raw:  # a file holding only the mark has no lines
                continue
        if raw.endswith(b"\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n"):
            raw = raw[:-1]
        if b"\r" not in raw:
            yield raw
            continue
        parts = raw.split(b"\r")
        if parts[-1] == b"":  # a final \r ends the last line rather than starting an empty one
            parts.pop()
        yield from parts


def iter_lines(stream: IO[bytes], name: str) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for every line of a binary stream; invalid UTF-8 names the file and line."""
    number = 0
    try:
        for number, raw in enumerate(_split_raw_lines(stream), start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{name}, line {number}: invalid UTF-8 (byte {raw[err.start]:#04x} at column "
                                f"{err.start + 1}); convert the file to UTF-8 first") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{name} is a damaged gzip file after line {number} ({err}); download or copy it "
                        "again") from None


def _check_langs(corpus: str, src_lang: str, tgt_lang: str, known: tuple[str, ...]) -> None:
    for lang in (src_lang, tgt_lang):
        if lang not in known:
            raise DataError(f"corpus {corpus!r} has no language {lang!r}; it offers {', '.join(known)}")


def _tab_pairs(lines: Iterable[tuple[int, str]], name: str, counts: RawCorpus) -> Iterator[tuple[str, str]]:
    for number, line in lines:
        counts.lines += 1
        columns = line.split("\t")
        if len(columns) < 2:
            if not line.strip():
                counts.empty_skipped += 1
                continue
            raise DataError(f"{name}, line {number}: expected tab-separated source and target, got {line[:60]!r}")
        src, tgt = columns[0].strip(), columns[1].strip()
        if not src or not tgt:
            counts.empty_skipped += 1
            continue
        yield src, tgt


def _iter_tatoeba(path: Path, swap: bool, counts: RawCorpus) -> Iterator[tuple[str, str]]:
    """A manythings.org ``fra-eng`` zip (or its ``fra.txt``): ``English<TAB>French[<TAB>attribution]``."""
    _check_file(path, "Tatoeba file")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.endswith(".txt") and not n.startswith("_")]
                if not members:
                    raise DataError(f"{path} holds no sentence file (expected e.g. fra.txt)")
                counts.source = f"{path}:{members[0]}"
                with archive.open(members[0]) as stream:
                    for src, tgt in _tab_pairs(iter_lines(stream, counts.source), counts.source, counts):
                        yield (tgt, src) if swap else (src, tgt)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
            raise DataError(f"{path} is a damaged zip file ({err}); download or copy it again") from None
        except OSError as err:  # a damaged directory sends zipfile to seek before the file's start
            if err.errno != errno.EINVAL:
                raise  # the machine's error (a read error, a vanished file), not the file's
            raise DataError(f"{path} is a damaged zip file (an entry points outside the file); download or copy it "
                            "again") from None
        return
    counts.source = str(path)
    with _open_binary(path) as stream:
        for src, tgt in _tab_pairs(iter_lines(stream, str(path)), str(path), counts):
            yield (tgt, src) if swap else (src, tgt)


def _iter_tsv(path: Path, counts: RawCorpus) -> Iterator[tuple[str, str]]:
    counts.source = str(path)
    with _open_binary(path) as stream:
        yield from _tab_pairs(iter_lines(stream, str(path)), str(path), counts)


def _iter_parallel(src_path: Path, tgt_path: Path, counts: RawCorpus) -> Iterator[tuple[str, str]]:
    """Two line-aligned files. Pairs with an empty side are skipped and counted."""
    counts.source = f"{src_path} + {tgt_path}"
    with _open_binary(src_path) as src_stream, _open_binary(tgt_path) as tgt_stream:
        lines = zip_longest(iter_lines(src_stream, str(src_path)), iter_lines(tgt_stream, str(tgt_path)))
        for src_line, tgt_line in lines:
            if src_line is None or tgt_line is None:
                rest = 1 + sum(1 for _ in lines)
                src_count = counts.lines + (rest if tgt_line is None else 0)
                tgt_count = counts.lines + (rest if src_line is None else 0)
                raise DataError(f"parallel files are misaligned: {src_path} has {src_count} lines, "
                                f"{tgt_path} has {tgt_count}")
            counts.lines += 1
            src, tgt = src_line[1].strip(), tgt_line[1].strip()
            if not src or not tgt:
                counts.empty_skipped += 1
                continue
            yield src, tgt


def iter_pairs(corpus: str, counts: RawCorpus, *, src_lang: str = "en", tgt_lang: str = "fr",
               path: str | Path | None = None, src_file: str | Path | None = None,
               tgt_file: str | Path | None = None, split: str = "train",
               data_dir: str | Path | None = None, download: bool = True) -> Iterator[tuple[str, str]]:
    """Stream the ``(source, target)`` pairs of a corpus, counting lines and skips into ``counts``.

    ``tatoeba``: ``path`` (default: the bundled zip); ``files``: ``src_file`` and ``tgt_file``, or a TSV
    as ``src_file`` alone; ``multi30k``: ``split`` from ``data_dir`` / ``$ATTNLAB_DATA`` / the cache.
    """
    if corpus == "tatoeba":
        _check_langs("tatoeba", src_lang, tgt_lang, TATOEBA_LANGS)
        return _iter_tatoeba(Path(path) if path is not None else bundled_tatoeba_path(), src_lang == "fr", counts)
    if corpus == "multi30k":
        _check_langs("multi30k", src_lang, tgt_lang, MULTI30K_LANGS)
        src = find_multi30k_file(split, src_lang, data_dir, download=download)
        tgt = find_multi30k_file(split, tgt_lang, data_dir, download=download)
        return _iter_parallel(src, tgt, counts)
    if corpus == "files":
        if src_file is None:
            raise DataError("corpus 'files' needs a source file (data.src_file)")
        if tgt_file is None:
            return _iter_tsv(Path(src_file), counts)
        return _iter_parallel(Path(src_file), Path(tgt_file), counts)
    raise DataError(f"corpus {corpus!r} is unknown; choose tatoeba, multi30k or files")


def _collect(pairs: Iterator[tuple[str, str]], counts: RawCorpus) -> RawCorpus:
    counts.pairs = list(pairs)
    return counts


def read_tatoeba(path: str | Path | None = None, src_lang: str = "en", tgt_lang: str = "fr") -> RawCorpus:
    """Every pair of a Tatoeba release, in file order."""
    counts = RawCorpus()
    return _collect(iter_pairs("tatoeba", counts, src_lang=src_lang, tgt_lang=tgt_lang, path=path), counts)


def read_tsv(path: str | Path) -> RawCorpus:
    """One ``source<TAB>target`` pair per line; further columns are ignored."""
    counts = RawCorpus()
    return _collect(iter_pairs("files", counts, src_file=path), counts)


def read_parallel_files(src_path: str | Path, tgt_path: str | Path) -> RawCorpus:
    """Two line-aligned files (plain or .gz). Pairs with an empty side are skipped and counted."""
    counts = RawCorpus()
    return _collect(iter_pairs("files", counts, src_file=src_path, tgt_file=tgt_path), counts)


def read_multi30k(split: str, src_lang: str, tgt_lang: str, data_dir: str | Path | None = None,
                  download: bool = True) -> RawCorpus:
    """One Multi30k task-1 split, from ``data_dir``/``$ATTNLAB_DATA`` or the download cache."""
    counts = RawCorpus()
    pairs = iter_pairs("multi30k", counts, src_lang=src_lang, tgt_lang=tgt_lang, split=split, data_dir=data_dir,
                       download=download)
    return _collect(pairs, counts)
