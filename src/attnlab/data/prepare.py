"""From a ``data:`` config to encoded splits: read -> normalise -> filter -> split -> tokenise -> vocab.

``prepare_data(cfg.data)`` returns a :class:`PreparedData`; ``save`` writes what a run needs to turn
raw text into ids again (vocabularies, SentencePiece models, the data report) and ``load_prepared``
reads it back without touching the corpus.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from attnlab.data.corpora import RawCorpus, read_multi30k, read_parallel_files, read_tatoeba, read_tsv
from attnlab.data.errors import DataError
from attnlab.data.normalize import get_normalizer, has_english_prefix
from attnlab.data.tokenizers import SentencePieceTokenizer, WordTokenizer, load_tokenizer, train_sentencepiece
from attnlab.data.vocab import Vocabulary

if TYPE_CHECKING:
    from attnlab.config import DataConfig

__all__ = ["PreparedData", "DataReport", "prepare_data", "load_prepared", "split_of", "read_splits"]

Tokenizer = WordTokenizer | SentencePieceTokenizer
TextPair = tuple[str, str]
SPLITS = ("train", "val", "test")


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


@dataclass
class PreparedData:
    """Normalised text and encoded ids per split, with the tokenizers and vocabularies that made them."""

    texts: dict[str, list[TextPair]]
    encoded: dict[str, list[tuple[list[int], list[int]]]]
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    src_vocab: Vocabulary
    tgt_vocab: Vocabulary
    report: DataReport
    normalize: str = "tutorial"

    @property
    def shared_vocab(self) -> bool:
        return self.src_vocab is self.tgt_vocab

    def save(self, directory: str | Path) -> None:
        """Write vocabularies, tokenizer models and the report into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.src_vocab.save(directory / "src_vocab.json")
        self.tgt_vocab.save(directory / "tgt_vocab.json")
        for side, tokenizer in (("src", self.src_tokenizer), ("tgt", self.tgt_tokenizer)):
            tokenizer.save(directory / f"spm_{side}.model")
        meta = {"tokenizer": self.src_tokenizer.kind, "shared_vocab": self.shared_vocab,
                "normalize": self.normalize, "report": asdict(self.report)}
        (directory / "data.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def load_prepared(directory: str | Path) -> tuple[Tokenizer, Tokenizer, Vocabulary, Vocabulary, str]:
    """Read back ``(src_tokenizer, tgt_tokenizer, src_vocab, tgt_vocab, normalize)`` saved by a run."""
    directory = Path(directory)
    meta_path = directory / "data.json"
    if not meta_path.is_file():
        raise DataError(f"{directory} holds no prepared data (missing data.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    kind = meta["tokenizer"]
    src_tok = load_tokenizer(kind, directory / "spm_src.model" if kind == "sentencepiece" else None)
    tgt_tok = load_tokenizer(kind, directory / "spm_tgt.model" if kind == "sentencepiece" else None)
    src_vocab = Vocabulary.load(directory / "src_vocab.json")
    tgt_vocab = src_vocab if meta["shared_vocab"] else Vocabulary.load(directory / "tgt_vocab.json")
    return src_tok, tgt_tok, src_vocab, tgt_vocab, meta["normalize"]


def split_of(source: str, seed: int, val_ratio: float, test_ratio: float) -> str:
    """Assign a source sentence to a split by a seeded hash: every copy of it lands in one split."""
    digest = hashlib.sha1(f"{seed}\t{source}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_ratio:
        return "test"
    return "val" if u < test_ratio + val_ratio else "train"


def _clean(pairs: list[TextPair], cfg: DataConfig, report: DataReport) -> list[TextPair]:
    """Normalise, then apply the prefix, length and duplicate filters, counting what each removes."""
    normalize = get_normalizer(cfg.normalize)
    english = 0 if cfg.src_lang == "en" else 1 if cfg.tgt_lang == "en" else None
    if cfg.prefixes and english is None:
        raise DataError("data.prefixes filters English sentences, but neither side of this direction is 'en'")
    kept, seen = [], set()
    for raw in pairs:
        if cfg.prefixes and not has_english_prefix(normalize(raw[english])):
            report.removed_prefix += 1
            continue
        pair = (normalize(raw[0]), normalize(raw[1]))
        if not pair[0] or not pair[1]:
            report.empty_skipped += 1
            continue
        if cfg.max_len is not None and max(len(pair[0].split()), len(pair[1].split())) > cfg.max_len:
            report.removed_length += 1
            continue
        if cfg.dedup:
            if pair in seen:
                report.removed_duplicates += 1
                continue
            seen.add(pair)
        kept.append(pair)
    return kept


def _account(report: DataReport, raw: RawCorpus) -> None:
    report.source = f"{report.source} + {raw.source}" if report.source else raw.source
    report.lines += raw.lines
    report.empty_skipped += raw.empty_skipped
    report.pairs_read += len(raw.pairs)


def read_splits(cfg: DataConfig) -> tuple[dict[str, list[TextPair]], DataReport]:
    """Normalised, filtered text pairs for train/val/test, as ``cfg`` describes them."""
    report = DataReport()
    if cfg.corpus == "multi30k":
        splits = {}
        names = {"train": cfg.train_split, "val": cfg.val_split, "test": cfg.test_split}
        for split, name in names.items():
            raw = read_multi30k(name, cfg.src_lang, cfg.tgt_lang, cfg.data_dir)
            _account(report, raw)
            # Evaluation sets stay whole: filtering them would change the benchmark.
            split_cfg = cfg if split == "train" else _unfiltered(cfg)
            splits[split] = _clean(raw.pairs, split_cfg, report)
    else:
        if cfg.corpus == "tatoeba":
            raw = read_tatoeba(cfg.path, cfg.src_lang, cfg.tgt_lang)
        elif cfg.tgt_file:
            raw = read_parallel_files(cfg.src_file, cfg.tgt_file)
        else:
            raw = read_tsv(cfg.src_file)
        _account(report, raw)
        splits = {name: [] for name in SPLITS}
        for pair in _clean(raw.pairs, cfg, report):
            splits[split_of(pair[0], cfg.split_seed, cfg.val_ratio, cfg.test_ratio)].append(pair)
    if cfg.max_train_pairs is not None:
        splits["train"] = splits["train"][: cfg.max_train_pairs]
    if not splits["train"]:
        raise DataError(f"no training pairs left from {report.source} after filtering; relax data.max_len "
                        "or data.prefixes")
    report.split_pairs = {name: len(pairs) for name, pairs in splits.items()}
    return splits, report


def _unfiltered(cfg: DataConfig) -> DataConfig:
    return replace(cfg, max_len=None, prefixes=False, dedup=False)


def _make_tokenizers(cfg: DataConfig, train: list[TextPair]) -> tuple[Tokenizer, Tokenizer]:
    if cfg.tokenizer == "word":
        return WordTokenizer(), WordTokenizer()
    src_text, tgt_text = [s for s, _ in train], [t for _, t in train]
    if cfg.shared_vocab:
        joint = train_sentencepiece(src_text + tgt_text, cfg.vocab_size, cfg.spm_model_type)
        return joint, joint
    return (train_sentencepiece(src_text, cfg.vocab_size, cfg.spm_model_type),
            train_sentencepiece(tgt_text, cfg.vocab_size, cfg.spm_model_type))


def _make_vocab(cfg: DataConfig, tokenizer: Tokenizer, sentences: list[list[str]]) -> Vocabulary:
    if isinstance(tokenizer, SentencePieceTokenizer):
        return Vocabulary(tokenizer.pieces)
    return Vocabulary.build(sentences, min_freq=cfg.min_freq, max_size=cfg.max_size)


def prepare_data(cfg: DataConfig) -> PreparedData:
    """Read, clean, split, tokenise and encode the corpus ``cfg`` names."""
    texts, report = read_splits(cfg)
    src_tok, tgt_tok = _make_tokenizers(cfg, texts["train"])
    tokens = {name: ([src_tok.encode(s) for s, _ in pairs], [tgt_tok.encode(t) for _, t in pairs])
              for name, pairs in texts.items()}
    src_train, tgt_train = tokens["train"]
    if cfg.shared_vocab:
        src_vocab = tgt_vocab = _make_vocab(cfg, src_tok, src_train + tgt_train)
    else:
        src_vocab, tgt_vocab = _make_vocab(cfg, src_tok, src_train), _make_vocab(cfg, tgt_tok, tgt_train)
    encoded = {name: [(src_vocab.encode(s), tgt_vocab.encode(t)) for s, t in zip(*tokens[name], strict=True)]
               for name in texts}
    return PreparedData(texts, encoded, src_tok, tgt_tok, src_vocab, tgt_vocab, report, cfg.normalize)
