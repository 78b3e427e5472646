"""Prepared data shared between runs: ``DIR/<key>/``, one prepared-data folder per data config.

``cached_prepare(cfg, DIR)`` opens ``DIR/<key>`` when an earlier call made it, else prepares it there.
The key is a hash of every ``data:`` key plus the size and modification time of the files the config
reads, so editing the corpus or changing any data key prepares afresh. The folders hold only arrays
and JSON (:mod:`attnlab.data.store`), so a cache handed over by someone else cannot run code; a damaged
one is named in the error rather than silently used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from attnlab.data.prepare import Progress, prepare_data
from attnlab.data.store import VERSION, PreparedData, open_prepared

if TYPE_CHECKING:
    from attnlab.config import DataConfig

__all__ = ["cached_prepare", "data_key"]


def data_key(cfg: DataConfig) -> str:
    """A short hash naming the data ``cfg`` prepares: its keys and the identity of the files it reads."""
    files = {}
    for name in ("path", "src_file", "tgt_file"):
        value = getattr(cfg, name)
        if value and Path(value).is_file():
            stat = Path(value).stat()
            files[name] = [str(Path(value).resolve()), stat.st_size, stat.st_mtime_ns]
    text = json.dumps({"format": VERSION, "data": dataclasses.asdict(cfg), "files": files}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def cached_prepare(cfg: DataConfig, directory: str | Path, progress: Progress | None = None) -> PreparedData:
    """``prepare_data(cfg)``, stored in (or opened from) ``directory/<key>``."""
    key = data_key(cfg)
    folder = Path(directory) / key
    if folder.exists():
        return open_prepared(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return prepare_data(cfg, folder, progress=progress, key=key)
