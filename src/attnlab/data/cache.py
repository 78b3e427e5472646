"""A disk cache of :class:`PreparedData`, so that the runs of a sweep prepare their corpus once.

``cached_prepare(cfg, directory)`` returns what ``prepare_data(cfg)`` returns, reading it from
``directory/<key>.pkl`` when an earlier call wrote it. The key is a hash of every ``data:`` key plus
the size and modification time of the files the config reads, so editing the corpus or changing any
data key prepares afresh. Files are written atomically and only read back from directories the
caller owns (a sweep's ``prepared/`` folder): pickle is not for files from elsewhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnlab.data.prepare import DataReport, PreparedData, prepare_data
from attnlab.data.tokenizers import SentencePieceTokenizer, WordTokenizer
from attnlab.data.vocab import SPECIALS, Vocabulary

if TYPE_CHECKING:
    from attnlab.config import DataConfig

__all__ = ["cached_prepare", "data_key"]

_FORMAT = 1  # bump when the stored layout or the preparation itself changes


def data_key(cfg: DataConfig) -> str:
    """A short hash naming the data ``cfg`` prepares: its keys and the identity of the files it reads."""
    files = {}
    for name in ("path", "src_file", "tgt_file"):
        value = getattr(cfg, name)
        if value and Path(value).is_file():
            stat = Path(value).stat()
            files[name] = [str(Path(value).resolve()), stat.st_size, stat.st_mtime_ns]
    text = json.dumps({"format": _FORMAT, "data": dataclasses.asdict(cfg), "files": files}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def cached_prepare(cfg: DataConfig, directory: str | Path) -> PreparedData:
    """``prepare_data(cfg)``, stored in (or read from) ``directory``."""
    path = Path(directory) / f"{data_key(cfg)}.pkl"
    if path.is_file():
        try:
            return _from_plain(pickle.loads(path.read_bytes()))
        except Exception:  # an unreadable or outdated file: prepare again and overwrite it
            pass
    data = prepare_data(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pickle.dumps(_to_plain(data), protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, path)
    return data


def _to_plain(data: PreparedData) -> dict[str, Any]:
    """Only builtins and bytes: the SentencePiece processor itself does not pickle."""
    def proto(tokenizer: Any) -> bytes | None:
        return tokenizer.model_proto if isinstance(tokenizer, SentencePieceTokenizer) else None

    return {"format": _FORMAT, "texts": data.texts, "encoded": data.encoded,
            "src_itos": data.src_vocab.itos, "tgt_itos": data.tgt_vocab.itos, "shared": data.shared_vocab,
            "src_spm": proto(data.src_tokenizer), "tgt_spm": proto(data.tgt_tokenizer),
            "same_tokenizer": data.src_tokenizer is data.tgt_tokenizer,
            "report": dataclasses.asdict(data.report), "normalize": data.normalize}


def _from_plain(plain: dict[str, Any]) -> PreparedData:
    if plain.get("format") != _FORMAT:
        raise ValueError("cached data of another format")
    src_vocab = Vocabulary(plain["src_itos"][len(SPECIALS):])
    tgt_vocab = src_vocab if plain["shared"] else Vocabulary(plain["tgt_itos"][len(SPECIALS):])

    def tokenizer(proto: bytes | None) -> WordTokenizer | SentencePieceTokenizer:
        return WordTokenizer() if proto is None else SentencePieceTokenizer(proto)

    src_tok = tokenizer(plain["src_spm"])
    tgt_tok = src_tok if plain["same_tokenizer"] else tokenizer(plain["tgt_spm"])
    return PreparedData(plain["texts"], plain["encoded"], src_tok, tgt_tok, src_vocab, tgt_vocab,
                        DataReport(**plain["report"]), plain["normalize"])
