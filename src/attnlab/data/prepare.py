"""From a ``data:`` config to a prepared-data folder (:mod:`attnlab.data.store`), streaming.

Stages, each reading the previous one's files, so that memory does not grow with the corpus:

1. **text**: stream the corpus; normalise, apply the prefix, empty and length filters; assign each pair
   to its split (by a seeded hash of its source sentence, or by file for Multi30k); append it to
   ``SPLIT.partial``, and the 64-bit hashes of the pair and of its source to ``SPLIT.hashes``.
2. **dedup**: keep the first occurrence of every pair hash, and the first ``max_train_pairs``
   training pairs; count distinct sources; write ``SPLIT.txt``. Hashes are sorted in buckets of a
   fixed size, not held in a set of strings (:mod:`attnlab.data.dedup`).
3. **vocab**: tokenizers and vocabularies from the training text; SentencePiece on an evenly spaced
   sample of at most ``SPM_SAMPLE`` sentences (all of them for corpora below that).
4. **encode**: every split into memory-mapped id arrays, chunk by chunk.

Chunks are cleaned and encoded in worker processes when a corpus has more than a few chunks. The
result is the same whatever the chunking and the number of workers: pairs keep their corpus order.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, replace
from itertools import chain, compress, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from attnlab.data.corpora import RawCorpus, iter_pairs
from attnlab.data.dedup import distinct_sources, first_occurrences, keep_first
from attnlab.data.errors import DataError
from attnlab.data.normalize import get_normalizer, has_english_prefix
from attnlab.data.store import (
    SPLITS,
    DataReport,
    PreparedData,
    SplitWriter,
    TextPair,
    Tokenizer,
    open_prepared,
    read_text_lines,
    save_text_pipeline,
    write_index,
)
from attnlab.data.tokenizers import SentencePieceTokenizer, WordTokenizer, train_sentencepiece
from attnlab.data.vocab import Vocabulary

if TYPE_CHECKING:
    from attnlab.config import DataConfig

__all__ = ["prepare_data", "prepare_texts", "read_splits", "split_of", "CHUNK", "SPM_SAMPLE"]

CHUNK = 20_000  # pairs per chunk of work
SPM_SAMPLE = 1_000_000  # sentences SentencePiece is trained on at most
_PARALLEL_FROM = 10 * CHUNK  # corpora with more pairs than this are cleaned and encoded by worker processes
Progress = Callable[[str], None]


def split_of(source: str, seed: int, val_ratio: float, test_ratio: float) -> str:
    """Assign a source sentence to a split by a seeded hash: every copy of it lands in one split."""
    digest = hashlib.sha1(f"{seed}\t{source}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_ratio:
        return "test"
    return "val" if u < test_ratio + val_ratio else "train"


# ---------------------------------------------------------------------------------------- stage 1
def _clean_chunk(pairs: list[TextPair]) -> tuple[list[tuple[str, str, str]], list[int]]:
    """Normalise and filter one chunk. Returns kept ``(split, src, tgt)`` and the removed counts
    ``[prefix, empty, length]``. ``fixed_split`` is the split of every pair (Multi30k) or None (by hash)."""
    cfg, fixed_split = _SHARED
    normalize = get_normalizer(cfg.normalize)
    english = 0 if cfg.src_lang == "en" else 1
    kept, removed = [], [0, 0, 0]
    for raw in pairs:
        english_text = normalize(raw[english]) if cfg.prefixes else ""
        if cfg.prefixes and not has_english_prefix(english_text):
            removed[0] += 1
            continue
        if cfg.prefixes:
            src, tgt = (english_text, normalize(raw[1])) if english == 0 else (normalize(raw[0]), english_text)
        else:
            src, tgt = normalize(raw[0]), normalize(raw[1])
        if not src or not tgt:
            removed[1] += 1
            continue
        # normalised text is single-spaced: a sentence of n words has n - 1 spaces
        if cfg.max_len is not None and (src.count(" ") >= cfg.max_len or tgt.count(" ") >= cfg.max_len):
            removed[2] += 1
            continue
        split = fixed_split or split_of(src, cfg.split_seed, cfg.val_ratio, cfg.test_ratio)
        kept.append((split, src, tgt))
    return kept, removed


class _TextStage:
    """Stage 1's output: per split, the partial text file and, in ``SPLIT.hashes``, the hash of every pair
    and of its source (:mod:`attnlab.data.dedup`)."""

    def __init__(self, folder: Path, splits: Iterable[str]):
        self.files = {s: open(folder / f"{s}.partial", "w", encoding="utf-8", newline="\n") for s in splits}  # noqa: SIM115
        self.hashes = {s: open(folder / f"{s}.hashes", "wb") for s in self.files}  # noqa: SIM115

    def add(self, kept: list[tuple[str, str, str]]) -> None:
        lines: dict[str, list[str]] = {s: [] for s in self.files}
        for split, src, tgt in kept:
            lines[split].append(f"{src}\t{tgt}\n")
        for split, text in lines.items():
            # Python's string hash: salted per process, but this process computes every one of them
            pairs = np.fromiter(map(hash, text), dtype=np.int64, count=len(text))
            sources = np.fromiter((hash(line.split("\t", 1)[0]) for line in text), dtype=np.int64, count=len(text))
            np.stack([pairs, sources], axis=1).tofile(self.hashes[split])
            self.files[split].write("".join(text))

    def close(self) -> None:
        for handle in (*self.files.values(), *self.hashes.values()):
            handle.close()


def _chunks(pairs: Iterator[TextPair], size: int = CHUNK) -> Iterator[list[TextPair]]:
    while chunk := list(islice(pairs, size)):
        yield chunk


def _stage_text(cfg: DataConfig, folder: Path, report: DataReport, workers: int) -> None:
    english = 0 if cfg.src_lang == "en" else 1 if cfg.tgt_lang == "en" else None
    if cfg.prefixes and english is None:
        raise DataError("data.prefixes filters English sentences, but neither side of this direction is 'en'")
    stage = _TextStage(folder, SPLITS)
    try:
        for split, pairs, counts in _sources(cfg):
            # Multi30k's evaluation sets stay whole: filtering them would change the benchmark.
            split_cfg = cfg if split in (None, "train") else replace(cfg, max_len=None, prefixes=False)
            for kept, removed in _parallel_map(_clean_chunk, _chunks(pairs), workers, (split_cfg, split)):
                stage.add(kept)
                report.removed_prefix += removed[0]
                report.empty_skipped += removed[1]
                report.removed_length += removed[2]
            report.source = f"{report.source} + {counts.source}" if report.source else counts.source
            report.lines += counts.lines
            report.empty_skipped += counts.empty_skipped
            report.pairs_read += counts.lines - counts.empty_skipped
    finally:
        stage.close()


def _sources(cfg: DataConfig) -> Iterator[tuple[str | None, Iterator[TextPair], RawCorpus]]:
    """``(fixed split or None, pair stream, its counts)`` per corpus file set."""
    if cfg.corpus == "multi30k":
        for split, name in (("train", cfg.train_split), ("val", cfg.val_split), ("test", cfg.test_split)):
            counts = RawCorpus()
            yield split, iter_pairs("multi30k", counts, src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang, split=name,
                                    data_dir=cfg.data_dir), counts
        return
    counts = RawCorpus()
    yield None, iter_pairs(cfg.corpus, counts, src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang, path=cfg.path,
                           src_file=cfg.src_file, tgt_file=cfg.tgt_file), counts


# ---------------------------------------------------------------------------------------- stage 2
def _stage_dedup(cfg: DataConfig, folder: Path, report: DataReport) -> None:
    for split in SPLITS:
        hashes, keep_path = folder / f"{split}.hashes", folder / f"{split}.keep"
        keep = first_occurrences(hashes, keep_path, cfg.dedup and (cfg.corpus != "multi30k" or split == "train"))
        report.removed_duplicates += len(keep) - int(np.count_nonzero(keep))
        if split == "train" and cfg.max_train_pairs is not None:
            keep_first(keep, cfg.max_train_pairs)
        report.split_pairs[split] = int(np.count_nonzero(keep))
        report.split_sources[split] = distinct_sources(hashes, keep)
        partial = folder / f"{split}.partial"
        flags = chain.from_iterable(keep[i:i + CHUNK].tolist() for i in range(0, len(keep), CHUNK))
        with open(partial, encoding="utf-8", newline="\n") as lines, \
                open(folder / f"{split}.txt", "w", encoding="utf-8", newline="\n") as out:
            out.writelines(compress(lines, flags))
        del keep
        for path in (partial, hashes, keep_path):
            path.unlink()
    if not report.split_pairs["train"]:
        raise DataError(_nothing_left(report))


def _nothing_left(report: DataReport) -> str:
    if report.pairs_read == 0:
        return f"{report.source} holds no sentence pairs ({report.lines:,} lines, all empty)"
    return (f"no training pairs left from {report.source}: of {report.pairs_read:,} pairs, the prefix filter removed "
            f"{report.removed_prefix:,}, the length filter {report.removed_length:,}, duplicates "
            f"{report.removed_duplicates:,}; relax data.max_len or data.prefixes")


def prepare_texts(cfg: DataConfig, folder: str | Path, workers: int | None = None) -> DataReport:
    """Stages 1-2: ``SPLIT.txt`` in ``folder`` for train, val and test; returns the report."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = DataReport()
    _stage_text(cfg, folder, report, _workers(workers))
    _stage_dedup(cfg, folder, report)
    return report


def read_splits(cfg: DataConfig) -> tuple[dict[str, list[TextPair]], DataReport]:
    """Normalised, filtered text pairs for train/val/test, as ``cfg`` describes them (for small corpora)."""
    with tempfile.TemporaryDirectory(prefix="attnlab-text-") as tmp:
        report = prepare_texts(cfg, tmp)
        texts = {s: [tuple(line.split("\t", 1)) for line in read_text_lines(Path(tmp) / f"{s}.txt")] for s in SPLITS}
    return texts, report  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------- stage 3
def _text_side(path: Path, side: int) -> Iterator[str]:
    return (line.split("\t", 1)[side] for line in read_text_lines(path))


def _sample(sentences: Iterable[str], total: int, limit: int) -> Iterator[str]:
    """All ``sentences`` when there are at most ``limit``; else ``limit`` of them, evenly spaced."""
    if total <= limit:
        yield from sentences
        return
    step = total / limit
    picks = iter(int(k * step) for k in range(limit))
    target = next(picks)
    for index, sentence in enumerate(sentences):
        if index == target:
            yield sentence
            target = next(picks, -1)


def _make_tokenizers(cfg: DataConfig, train_txt: Path, pairs: int) -> tuple[Tokenizer, Tokenizer]:
    if cfg.tokenizer == "word":
        return WordTokenizer(), WordTokenizer()

    def train(sides: tuple[int, ...]) -> SentencePieceTokenizer:
        limit = SPM_SAMPLE // len(sides)
        text = (s for side in sides for s in _sample(_text_side(train_txt, side), pairs, limit))
        return train_sentencepiece(text, cfg.vocab_size, cfg.spm_model_type, seed_sentences=SPM_SAMPLE)

    if cfg.shared_vocab:
        joint = train((0, 1))
        return joint, joint
    return train((0,)), train((1,))


def _count_chunk(sentences: list[str]) -> Counter:
    (tokenizer,) = _SHARED
    return Counter(tokenizer.encode_batch(sentences)[0])


def _make_vocab(cfg: DataConfig, tokenizer: Tokenizer, train_txt: Path, sides: tuple[int, ...],
                workers: int) -> Vocabulary:
    if isinstance(tokenizer, SentencePieceTokenizer):
        return Vocabulary(tokenizer.pieces)
    counts: Counter = Counter()
    for side in sides:
        for chunk_counts in _parallel_map(_count_chunk, _chunks(_text_side(train_txt, side)), workers, (tokenizer,)):
            counts.update(chunk_counts)
    return Vocabulary.from_counts(counts, min_freq=cfg.min_freq, max_size=cfg.max_size)


# ---------------------------------------------------------------------------------------- stage 4
def _encode_chunk(lines: list[str]) -> tuple[tuple, tuple]:
    """A chunk of ``source<TAB>target`` lines as, per side, every id end to end and each sentence's length."""
    src_tok, tgt_tok, src_vocab, tgt_vocab = _SHARED
    pairs = [line.split("\t", 1) for line in lines]
    sides = []
    for side, (tokenizer, vocab) in enumerate(((src_tok, src_vocab), (tgt_tok, tgt_vocab))):
        tokens, lengths = tokenizer.encode_batch([pair[side] for pair in pairs])
        sides.append((vocab.encode_flat(tokens), np.asarray(lengths, dtype=np.int64)))
    return sides[0], sides[1]


def _stage_encode(folder: Path, split: str, tools: tuple, workers: int) -> dict[str, int]:
    writer = SplitWriter(folder, split)
    for src, tgt in _parallel_map(_encode_chunk, _chunks(read_text_lines(folder / f"{split}.txt")), workers, tools):
        writer.add(src, tgt)
    return writer.close()


# ---------------------------------------------------------------------------------------- running
def _workers(workers: int | None) -> int:
    return max(1, workers if workers is not None else min(4, os.cpu_count() or 1))


_SHARED: Any = None  # what every chunk of a stage needs (config, tokenizers, vocabularies), set once per process


def _share(value: Any) -> None:
    global _SHARED
    _SHARED = value


def _parallel_map(function: Callable[[Any], Any], work: Iterator[Any], workers: int, shared: Any) -> Iterator[Any]:
    """``map(function, work)`` in order, ``shared`` set for it; in a pool of ``workers`` processes (each given
    ``shared`` once, not with every chunk) once the work exceeds a few chunks."""
    head = list(islice(work, _PARALLEL_FROM // CHUNK + 1))
    if workers == 1 or len(head) <= _PARALLEL_FROM // CHUNK:
        _share(shared)
        yield from map(function, head)
        yield from map(function, work)
        return
    # fork: the workers run plain Python on strings, and a user's script needs no __main__ guard
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    items = chain(head, work)
    with context.Pool(workers, initializer=_share, initargs=(shared,)) as pool:
        # a few chunks per worker at a time: reading never runs ahead of the workers by more than that
        while window := list(islice(items, 2 * workers)):
            yield from pool.map(function, window)


def prepare_data(cfg: DataConfig, directory: str | Path | None = None, workers: int | None = None,
                 progress: Progress | None = None, key: str = "") -> PreparedData:
    """Prepare the corpus ``cfg`` names into ``directory`` (a temporary folder when None) and open it.

    The folder is built under a temporary name beside ``directory`` and renamed into place when
    complete, so an interrupted preparation never leaves a half-made folder behind. ``progress``
    is called with each stage's name as it starts (``text``, ``vocab``, ``encode``) and with ``done``.
    """
    say = progress or (lambda _: None)
    keep = None
    if directory is None:
        keep = tempfile.TemporaryDirectory(prefix="attnlab-prepared-")
        directory = Path(keep.name) / "data"
    target = Path(directory)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _build(cfg, staging, _workers(workers), say, key)
        if target.exists():  # another process finished the same preparation first: keep theirs
            shutil.rmtree(staging)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say("done")
    return open_prepared(target, keep)


def _build(cfg: DataConfig, folder: Path, workers: int, say: Progress, key: str) -> None:
    say("text")
    report = prepare_texts(cfg, folder, workers)
    say("vocab")
    train_txt = folder / "train.txt"
    src_tok, tgt_tok = _make_tokenizers(cfg, train_txt, report.split_pairs["train"])
    if cfg.shared_vocab:
        src_vocab = tgt_vocab = _make_vocab(cfg, src_tok, train_txt, (0, 1), workers)
    else:
        src_vocab = _make_vocab(cfg, src_tok, train_txt, (0,), workers)
        tgt_vocab = _make_vocab(cfg, tgt_tok, train_txt, (1,), workers)
    say("encode")
    splits = {s: _stage_encode(folder, s, (src_tok, tgt_tok, src_vocab, tgt_vocab), workers) for s in SPLITS}
    save_text_pipeline(folder, src_tok, tgt_tok, src_vocab, tgt_vocab)
    write_index(folder, {"key": key, "data": asdict(cfg), "tokenizer": src_tok.kind, "normalize": cfg.normalize,
                         "shared_vocab": cfg.shared_vocab, "same_tokenizer": src_tok is tgt_tok,
                         "report": asdict(report), "splits": splits})
