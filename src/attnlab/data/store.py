"""Prepared data on disk: token ids in flat binary arrays, everything else in JSON. No pickle.

A prepared-data folder holds one data config's corpus, encoded, in a form that opens in constant
memory whatever the corpus size (only the lengths are read when it opens; a pair's ids are read when
a batch needs them) and that cannot run code when opened::

    index.json                   format and version, the data config, the preparation report, the
                                 tokenizer kind, normalisation, per split its pair and token counts,
                                 and the size in bytes of every file below (a truncated file is caught)
    src_vocab.json tgt_vocab.json [spm_src.model spm_tgt.model]
    SPLIT.src.ids SPLIT.tgt.ids  int32 token ids of every sentence of SPLIT, one after the other
    SPLIT.src.off SPLIT.tgt.off  int64 offsets, pairs + 1 of them: sentence i is ids[off[i]:off[i + 1]]
    SPLIT.txt                    the normalised pairs, ``source<TAB>target``, one per line

``index.json`` is written last, so a folder without it is an unfinished preparation. A run directory
keeps its own copy of what translation needs (vocabularies, SentencePiece models, ``data.json``):
:meth:`PreparedData.save` and :func:`load_run_tokenizers`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from attnlab.data.errors import DataError
from attnlab.data.tokenizers import SentencePieceTokenizer, WordTokenizer, load_tokenizer
from attnlab.data.vocab import Vocabulary
from attnlab.rundir import RunDir

__all__ = ["FORMAT", "VERSION", "SPLITS", "DataReport", "EncodedSplit", "SplitWriter", "PreparedData",
           "save_text_pipeline", "open_prepared", "write_index", "load_run_tokenizers", "Tokenizer", "TextPair"]

FORMAT, VERSION = "attnlab-prepared-data", 1
SPLITS = ("train", "val", "test")
IDS, OFFSETS = np.dtype("<i4"), np.dtype("<i8")
Tokenizer = WordTokenizer | SentencePieceTokenizer
TextPair = tuple[str, str]


@dataclass
class DataReport:
    """Where every line went, for ``attnlab data stats``."""

    source: str = ""
    lines: int = 0
    empty_skipped: int = 0
    pairs_read: int = 0
    removed_prefix: int = 0
    removed_length: int = 0
    removed_duplicates: int = 0
    split_pairs: dict[str, int] = field(default_factory=dict)
    split_sources: dict[str, int] = field(default_factory=dict)  # distinct source sentences per split


class EncodedSplit(Sequence[tuple[np.ndarray, np.ndarray]]):
    """One split's pairs of id arrays on disk; ``split[i]`` is ``(src_ids, tgt_ids)``.

    A pair is read with two positioned reads per side (its offsets, then its ids), so the process
    holds only the lengths (4 bytes per pair and side, for batching), never the files: memory-mapping
    them would let every page a batch touches, and the pages around it, count towards the process's
    memory until the whole corpus sits there. Each pair read is checked against the vocabulary sizes,
    so a damaged file is named rather than fed to a model.
    """

    def __init__(self, folder: Path, name: str, vocab_sizes: tuple[int, int]):
        self.folder, self.name = folder, name
        self._sides = [_SplitSide(folder / f"{name}.{side}.ids", folder / f"{name}.{side}.off")
                       for side in ("src", "tgt")]
        self.vocab_sizes = vocab_sizes
        self.src_lengths, self.tgt_lengths = (side.lengths for side in self._sides)

    def __reduce__(self) -> tuple:  # opened again from its files in another process, not copied
        return EncodedSplit, (self.folder, self.name, self.vocab_sizes)

    def __len__(self) -> int:
        return len(self.src_lengths)

    def side_ids(self, side: int) -> np.ndarray:
        """Every token id of one side (0 source, 1 target), end to end, memory-mapped (for one pass over all)."""
        path = self._sides[side].ids_path
        return np.memmap(path, dtype=IDS, mode="r") if path.stat().st_size else np.empty(0, IDS)

    def _side(self, side: int, index: int) -> np.ndarray:
        ids = self._sides[side].read(index)
        if ids.size and (int(ids.max()) >= self.vocab_sizes[side] or int(ids.min()) < 0):
            raise DataError(f"{self._sides[side].ids_path} is corrupt: sentence {index} holds ids outside the "
                            f"vocabulary; delete {self.folder} to prepare again")
        return ids

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(f"pair {index} of {len(self)} in split {self.name}")
        index %= len(self)
        return self._side(0, index), self._side(1, index)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self[i] for i in range(len(self)))


class _SplitSide:
    """One side's ``.ids`` and ``.off`` files: checked and measured when opened (offsets streamed in
    chunks), then read one sentence at a time at its position."""

    _CHUNK = 1 << 20  # offsets per read when measuring

    def __init__(self, ids_path: Path, off_path: Path):
        self.ids_path = ids_path
        id_count, offset_count = _count(ids_path, IDS), _count(off_path, OFFSETS)
        self._ids, self._off = open(ids_path, "rb", buffering=0), open(off_path, "rb", buffering=0)  # noqa: SIM115
        self.lengths = np.empty(max(offset_count - 1, 0), dtype=np.int32)  # sentence i: off[i + 1] - off[i]
        previous, valid = None, offset_count > 0
        for first in range(0, offset_count, self._CHUNK):
            block = np.frombuffer(_read_at(self._off, min(self._CHUNK, offset_count - first) * OFFSETS.itemsize,
                                           first * OFFSETS.itemsize), OFFSETS)
            steps = np.diff(block) if previous is None else np.diff(block, prepend=previous)
            if (previous is None and block[0] != 0) or bool((steps < 0).any()):
                valid = False
                break
            written = 0 if previous is None else first - 1
            self.lengths[written:written + len(steps)] = steps
            previous = block[-1]
        if not valid or previous != id_count:
            raise DataError(f"{off_path} is corrupt: its offsets do not describe {ids_path}; delete "
                            f"{ids_path.parent} to prepare again")

    def read(self, index: int) -> np.ndarray:
        start, end = np.frombuffer(_read_at(self._off, 2 * OFFSETS.itemsize, index * OFFSETS.itemsize), OFFSETS)
        return np.frombuffer(_read_at(self._ids, int(end - start) * IDS.itemsize, int(start) * IDS.itemsize), IDS)


def _read_at(file: IO[bytes], size: int, position: int) -> bytes:
    """``size`` bytes at ``position``, without moving a shared file position where the system allows it."""
    if hasattr(os, "pread"):
        data = os.pread(file.fileno(), size, position)
    else:  # Windows
        file.seek(position)
        data = file.read(size)
    if len(data) != size:
        raise DataError(f"{file.name} is truncated: {size} bytes at byte {position} asked, {len(data)} there")
    return data


def _count(path: Path, dtype: np.dtype) -> int:
    size = path.stat().st_size
    if size % dtype.itemsize:
        raise DataError(f"{path} is truncated ({size} bytes is not a whole number of {dtype} values); delete "
                        f"{path.parent} to prepare again")
    return size // dtype.itemsize


class SplitWriter:
    """Appends encoded pairs of one split to its ``.ids``/``.off`` files, chunk by chunk."""

    def __init__(self, folder: Path, split: str):
        self.split = split
        self._files: list[tuple[IO[bytes], IO[bytes]]] = []
        self._ends = [0, 0]
        self.pairs = 0
        for side in ("src", "tgt"):
            ids = open(folder / f"{split}.{side}.ids", "wb")  # noqa: SIM115 - closed in close()
            off = open(folder / f"{split}.{side}.off", "wb")  # noqa: SIM115
            off.write(np.zeros(1, dtype=OFFSETS).tobytes())
            self._files.append((ids, off))

    def add(self, src: tuple[np.ndarray, np.ndarray], tgt: tuple[np.ndarray, np.ndarray]) -> None:
        """Append a chunk: per side, every id end to end and each sentence's length."""
        for side, (flat, lengths) in enumerate((src, tgt)):
            ids, off = self._files[side]
            ids.write(np.asarray(flat, dtype=IDS).tobytes())
            off.write((self._ends[side] + np.cumsum(lengths, dtype=OFFSETS)).tobytes())
            self._ends[side] += int(np.sum(lengths))
        self.pairs += len(src[1])

    def close(self) -> dict[str, int]:
        """Close the files; returns the split's counts for the index."""
        for ids, off in self._files:
            ids.close()
            off.close()
        return {"pairs": self.pairs, "src_tokens": self._ends[0], "tgt_tokens": self._ends[1]}


class _Texts(Mapping[str, list[TextPair]]):
    """``texts[split]``: the normalised pairs of a split, read from ``SPLIT.txt`` when first asked for."""

    def __init__(self, folder: Path, splits: Sequence[str]):
        self.folder, self.splits = folder, tuple(splits)
        self._loaded: dict[str, list[TextPair]] = {}

    def __getitem__(self, split: str) -> list[TextPair]:
        if split not in self.splits:
            raise KeyError(split)
        if split not in self._loaded:
            self._loaded[split] = [tuple(line.split("\t", 1)) for line in read_text_lines(self.folder / f"{split}.txt")]
        return self._loaded[split]

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    def __len__(self) -> int:
        return len(self.splits)


def read_text_lines(path: Path) -> Iterator[str]:
    """The lines of a prepared text file (UTF-8, ``\\n`` endings, no empty lines)."""
    with open(path, encoding="utf-8", newline="\n") as handle:
        for line in handle:
            yield line.rstrip("\n")


@dataclass
class PreparedData:
    """A prepared corpus: encoded splits (read from disk as needed), their normalised text, tokenizers and vocabularies.

    ``encoded[split]`` is an :class:`EncodedSplit`; ``texts[split]`` the list of normalised
    ``(source, target)`` pairs in the same order (read on first use). ``directory`` is the folder the
    data lives in; a temporary one is deleted with this object (``_keep``).
    """

    encoded: dict[str, EncodedSplit]
    texts: Mapping[str, list[TextPair]]
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    src_vocab: Vocabulary
    tgt_vocab: Vocabulary
    report: DataReport
    normalize: str
    directory: Path
    key: str = ""
    _keep: Any = None

    @property
    def shared_vocab(self) -> bool:
        return self.src_vocab is self.tgt_vocab

    def save(self, run_root: str | Path) -> None:
        """Write what translation needs into a run directory: vocabularies, SentencePiece models, ``data.json``."""
        root = Path(run_root)
        root.mkdir(parents=True, exist_ok=True)
        save_text_pipeline(root, self.src_tokenizer, self.tgt_tokenizer, self.src_vocab, self.tgt_vocab)
        meta = {"tokenizer": self.src_tokenizer.kind, "shared_vocab": self.shared_vocab, "normalize": self.normalize,
                "report": asdict(self.report), "prepared": self._location(root), "key": self.key}
        RunDir(root).data_json.write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def _location(self, root: Path) -> str | None:
        """Where the data lives, for a later resume: relative to the run when inside it (the run may move)."""
        if self._keep is not None:  # a temporary folder, gone with this object
            return None
        folder, root = self.directory.resolve(), root.resolve()
        return str(folder.relative_to(root)) if folder.is_relative_to(root) else str(folder)


def save_text_pipeline(folder: Path, src_tok: Tokenizer, tgt_tok: Tokenizer, src_vocab: Vocabulary,
                        tgt_vocab: Vocabulary) -> None:
    """Vocabularies and SentencePiece models under the run's file names (also in a prepared-data folder)."""
    files = RunDir(folder)
    src_vocab.save(files.src_vocab)
    tgt_vocab.save(files.tgt_vocab)
    src_tok.save(files.spm("src"))
    tgt_tok.save(files.spm("tgt"))


def write_index(folder: Path, index: dict[str, Any]) -> None:
    """Record every file's size and write ``index.json`` (the last file of a preparation)."""
    index = {**index, "format": FORMAT, "version": VERSION,
             "files": {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.name != "index.json"}}
    (folder / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False), encoding="utf-8")


def read_index(folder: Path) -> dict[str, Any]:
    """``index.json`` of a prepared-data folder, checked: format, version, every file present and whole."""
    path = folder / "index.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{folder} holds no prepared data (no index.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is corrupt ({err}); delete {folder} to prepare again") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise DataError(f"{path} is not an attnlab prepared-data index")
    if index.get("version") != VERSION:
        raise DataError(f"{path} has format version {index.get('version')}, this attnlab reads {VERSION}; delete "
                        f"{folder} to prepare again")
    for name, size in dict(index.get("files", {})).items():
        file = folder / name
        if not file.is_file() or file.stat().st_size != size:
            found = f"{file.stat().st_size} bytes" if file.is_file() else "missing"
            raise DataError(f"prepared file {file} is damaged (expected {size} bytes, found {found}); delete "
                            f"{folder} to prepare again")
    return index


def open_prepared(folder: str | Path, keep: Any = None) -> PreparedData:
    """Open a prepared-data folder: vocabularies and tokenizers loaded, the id files opened (not read)."""
    folder = Path(folder)
    index = read_index(folder)
    try:
        src_tok, tgt_tok, src_vocab, tgt_vocab = _tokenizers_and_vocabs(folder, index["tokenizer"],
                                                                        index["shared_vocab"],
                                                                        index.get("same_tokenizer", False))
        report = DataReport(**index["report"])
        splits = list(index["splits"])
    except (KeyError, TypeError) as err:
        raise DataError(f"{folder / 'index.json'} misses or mangles an entry ({err}); delete {folder} to prepare "
                        "again") from None
    sizes = (len(src_vocab), len(tgt_vocab))
    encoded = {name: EncodedSplit(folder, name, sizes) for name in splits}
    return PreparedData(encoded, _Texts(folder, splits), src_tok, tgt_tok, src_vocab, tgt_vocab, report,
                        index["normalize"], folder, index.get("key", ""), keep)


def _tokenizers_and_vocabs(folder: Path, kind: str, shared: bool,
                           same_tokenizer: bool) -> tuple[Tokenizer, Tokenizer, Vocabulary, Vocabulary]:
    if kind not in ("word", "sentencepiece"):
        raise DataError(f"{folder}: tokenizer {kind!r} is unknown; expected 'word' or 'sentencepiece'")
    files = RunDir(folder)  # a prepared-data folder names these files as a run does
    src_tok = _tokenizer(kind, files.spm("src"))
    tgt_tok = src_tok if same_tokenizer else _tokenizer(kind, files.spm("tgt"))
    src_vocab = Vocabulary.load(files.src_vocab)
    tgt_vocab = src_vocab if shared else Vocabulary.load(files.tgt_vocab)
    return src_tok, tgt_tok, src_vocab, tgt_vocab


def _tokenizer(kind: str, path: Path) -> Tokenizer:
    if kind == "word":
        return WordTokenizer()
    if not path.is_file():
        raise DataError(f"SentencePiece model {path} does not exist")
    try:
        return load_tokenizer(kind, path)
    except (RuntimeError, OSError) as err:
        raise DataError(f"SentencePiece model {path} is unreadable ({err})") from None


def load_run_tokenizers(run_root: str | Path) -> tuple[Tokenizer, Tokenizer, Vocabulary, Vocabulary, str]:
    """What a run saved with :meth:`PreparedData.save`: ``(src_tok, tgt_tok, src_vocab, tgt_vocab, normalize)``."""
    root = Path(run_root)
    path = RunDir(root).data_json
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        kind, shared, normalize = meta["tokenizer"], bool(meta["shared_vocab"]), meta["normalize"]
    except FileNotFoundError:
        raise DataError(f"{root} holds no prepared data (missing data.json)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path} is corrupt ({type(err).__name__}: {err})") from None
    if normalize not in ("tutorial", "none"):
        raise DataError(f"{path}: normalisation {normalize!r} is unknown")
    src_tok, tgt_tok, src_vocab, tgt_vocab = _tokenizers_and_vocabs(root, kind, shared, False)
    return src_tok, tgt_tok, src_vocab, tgt_vocab, normalize
