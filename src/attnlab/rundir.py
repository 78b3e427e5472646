"""The run directory: one folder per run holding everything needed to reuse it.

This module is the layout alone: every file name of a run is spelled here, once. Loading a trained
model is :mod:`attnlab.decoding.loading`; reading checkpoints is :mod:`attnlab.checkpoints`::

    config.yaml            the resolved config (every key)
    data.json              tokenizer kind, normalisation, data report, where the prepared data is
    src_vocab.json tgt_vocab.json [spm_src.model spm_tgt.model]
    prepared/              the encoded corpus (memory-mapped arrays), unless a shared --data-cache holds it
    checkpoints/           init.pt (weights at initialisation), best.ckpt, last.ckpt
    metrics.csv perf.csv summary.json samples.txt attention/ tensorboard/
    eval/                  stored evaluations, one folder per (checkpoint, split or file, beam, penalty)
    .lock                  held while a training process writes the run
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = ["RunError", "RunDir", "RunLock", "open_run", "create_run", "run_of_checkpoint", "read_json", "read_rows",
           "cell_number", "CHECKPOINT_NAMES", "TEXT_PIPELINE_FILES"]

CHECKPOINT_NAMES = ("best", "last", "init")
_CONFIG, _DATA_JSON, _SRC_VOCAB, _TGT_VOCAB = "config.yaml", "data.json", "src_vocab.json", "tgt_vocab.json"
_SPM_MODELS = {"src": "spm_src.model", "tgt": "spm_tgt.model"}  # exist only with the SentencePiece tokenizer
# what turning raw text into ids and back needs (a run's, an export's)
TEXT_PIPELINE_FILES = (_CONFIG, _DATA_JSON, _SRC_VOCAB, _TGT_VOCAB, *_SPM_MODELS.values())


class RunError(ValueError):
    """A problem with a run directory or checkpoint, named with its path."""


@dataclass(frozen=True)
class RunDir:
    """Paths of one run's files; nothing here reads or writes them."""

    root: Path

    config = property(lambda self: self.root / _CONFIG)
    data_json = property(lambda self: self.root / _DATA_JSON)
    src_vocab = property(lambda self: self.root / _SRC_VOCAB)
    tgt_vocab = property(lambda self: self.root / _TGT_VOCAB)
    prepared = property(lambda self: self.root / "prepared")
    checkpoints = property(lambda self: self.root / "checkpoints")
    init = property(lambda self: self.root / "checkpoints" / "init.pt")
    best = property(lambda self: self.root / "checkpoints" / "best.ckpt")
    last = property(lambda self: self.root / "checkpoints" / "last.ckpt")
    metrics = property(lambda self: self.root / "metrics.csv")
    perf = property(lambda self: self.root / "perf.csv")
    summary = property(lambda self: self.root / "summary.json")
    samples = property(lambda self: self.root / "samples.txt")
    attention = property(lambda self: self.root / "attention")
    evaluations = property(lambda self: self.root / "eval")
    lock_file = property(lambda self: self.root / ".lock")

    def spm(self, side: str) -> Path:
        """The SentencePiece model of ``side`` (``src`` or ``tgt``)."""
        return self.root / _SPM_MODELS[side]

    def checkpoint(self, name: str) -> Path:
        """``best``, ``last`` or ``init``; ``best`` falls back to ``last`` when the run has no best yet."""
        if name not in CHECKPOINT_NAMES:
            raise RunError(f"checkpoint {name!r} is unknown; choose one of {', '.join(CHECKPOINT_NAMES)} or give a "
                           "checkpoint file")
        path = {"best": self.best, "last": self.last, "init": self.init}[name]
        if name == "best" and not path.is_file() and self.last.is_file():
            return self.last
        if not path.is_file():
            raise RunError(f"{self.root} has no {path.relative_to(self.root)}"
                           + (" (the run stopped before its first validation)" if name != "init" else ""))
        return path

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def __fspath__(self) -> str:
        return str(self.root)


def open_run(path: str | Path) -> RunDir:
    """An existing run; a directory without ``config.yaml`` and ``data.json`` is not one."""
    root = Path(path)
    if not root.exists():
        raise RunError(f"run directory {root} does not exist")
    if not root.is_dir():
        raise RunError(f"{root} is a file, not a run directory (expected a folder made by 'attnlab train')")
    run = RunDir(root)
    missing = [p.name for p in (run.config, run.data_json) if not p.is_file()]
    if missing:
        raise RunError(f"{root} is not an attnlab run directory (missing {', '.join(missing)})")
    return run


def run_of_checkpoint(path: str | Path) -> tuple[RunDir, Path | None]:
    """A run directory, or a checkpoint file inside ``RUN/checkpoints/``: the run and that file (or None)."""
    path = Path(path)
    if path.is_file():
        if path.parent.name != "checkpoints":
            raise RunError(f"{path} is a file but not a checkpoint inside a run's checkpoints/ folder")
        return open_run(path.parent.parent), path
    return open_run(path), None


class RunLock:
    """An exclusive lock on a run directory, held while one process trains into it.

    ``flock`` on ``RUN/.lock``: the system releases it when the process ends, however it ends, so a
    killed run never stays locked. A second training of the same directory gets a clear error.
    """

    def __init__(self, run: RunDir):
        self.run = run
        self._handle: TextIO | None = None

    def acquire(self) -> RunLock:
        handle = open(self.run.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            if err.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise RunError(f"run directory {self.run.root} is in use by another training ({holder}); wait for "
                               "it to finish or choose another --run-dir") from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._handle is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def create_run(path: str | Path) -> tuple[RunDir, RunLock]:
    """A new run directory, locked; refuses to overwrite an existing run and checks it is writable."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise RunError(f"--run-dir {root} is a file, not a folder")
    try:
        (root / "checkpoints").mkdir(parents=True, exist_ok=True)
        lock = RunLock(RunDir(root)).acquire()
    except OSError as err:
        raise RunError(f"run directory {root} is not writable: {err.strerror}") from None
    run = RunDir(root)
    if run.config.exists():
        lock.release()
        raise RunError(f"{root} already holds a run; continue it with 'attnlab train --resume {root}' "
                       "or choose another --run-dir")
    return run, lock


def read_rows(path: Path, what: str = "metrics file") -> list[dict[str, str]]:
    """The rows of a run's CSV file (``metrics.csv``, ``perf.csv``); none when it does not exist yet."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise RunError(f"{what} {path} is unreadable or corrupt ({err})") from None
    if rows and not {"epoch", "step"} <= set(rows[0]):
        raise RunError(f"{what} {path} is corrupt: it has no epoch and step columns")
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        if not all(_is_count(row[key]) for key in ("epoch", "step")):
            raise RunError(f"{what} {path} is corrupt at line {line}: epoch {row['epoch']!r} and step "
                           f"{row['step']!r} must be whole numbers")
    return rows


def _is_count(cell: str | None) -> bool:
    """True for a CSV cell holding a non-negative whole number ('3', or '3.0' as some tools write it)."""
    number = cell_number(cell)
    return number is not None and math.isfinite(number) and number >= 0 and number.is_integer()


def cell_number(value: Any) -> float | None:
    """A CSV cell as a number; None for a blank (not logged on that row), NaN or text."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object that belongs to a run or a prepared dataset; a missing or corrupt one is a RunError."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{what} {path} is unreadable or corrupt ({err}); restore it or retrain") from None
    if not isinstance(value, dict):
        raise RunError(f"{what} {path} is corrupt: it holds a JSON {type(value).__name__}, not an object; "
                       "restore it or retrain")
    return value
