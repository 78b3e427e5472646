"""Typed, frozen configuration: YAML files plus dotted command-line overrides.

A config has four sections, ``data``, ``model``, ``train`` and ``decode``; each is a frozen dataclass
that owns its defaults. Unknown keys and wrong types raise :class:`ConfigError` naming the key, the
file and, where one is close, the key that was probably meant::

    cfg = load_config("configs/quickstart.yaml", overrides=["model.attention=general"])
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from attnlab.config_files import ConfigError, parse_scalar, read_yaml_mapping
from attnlab.models.options import (
    Activation,
    Arch,
    AttentionKind,
    BridgeKind,
    Cell,
    LayerMismatch,
    Norm,
    Placement,
    Positional,
    TeacherForcingMode,
    TieMode,
    check_model,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "DecodeConfig",
    "Config",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "save_config",
    "apply_overrides",
    "validate",
    "VAL_METRICS",
    "PRECISIONS",
    "ACCELERATORS",
    "monitor_mode",
]

VAL_METRICS = ("val/loss", "val/ppl", "val/bleu", "val/chrf", "val/bleu_1ref", "val/chrf_1ref")
PRECISIONS = ("32", "32-true", "64", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp", "deepspeed")


def monitor_mode(metric: str) -> str:
    """'max' for scores that grow (BLEU, chrF), 'min' for losses and perplexity."""
    return "max" if ("bleu" in metric or "chrf" in metric) else "min"


@dataclass(frozen=True)
class DataConfig:
    corpus: Literal["tatoeba", "multi30k", "files"] = "tatoeba"
    src_lang: str = "en"
    tgt_lang: str = "fr"
    normalize: Literal["tutorial", "none"] = "tutorial"
    max_len: int | None = 10  # tokens per side after normalisation; None keeps every length
    prefixes: bool = False  # the tutorial's English prefix filter ("i am", "he is", ...)
    dedup: bool = True
    tokenizer: Literal["word", "sentencepiece"] = "word"
    spm_model_type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = 8000  # SentencePiece vocabulary size
    min_freq: int = 1  # word vocabulary
    max_size: int | None = None  # word vocabulary
    shared_vocab: bool = False  # one joint vocabulary (and SentencePiece model) for both sides
    data_dir: str | None = None  # local copy of a corpus (Multi30k); else $ATTNLAB_DATA or the cache
    path: str | None = None  # tatoeba: another fra-eng style zip or txt instead of the bundled one
    src_file: str | None = None  # corpus "files": line-aligned source file, or a TSV
    tgt_file: str | None = None  # corpus "files": line-aligned target file (omit for a TSV)
    val_ratio: float = 0.05  # tatoeba/files: share of unique source sentences held out for val
    test_ratio: float = 0.05  # ... and for test
    split_seed: int = 1234
    train_split: str = "train"  # multi30k split names
    val_split: str = "val"
    test_split: str = "test_2016_flickr"
    max_train_pairs: int | None = None  # keep the first N training pairs (quick experiments)


@dataclass(frozen=True)
class ModelConfig:
    """The choices are declared in :mod:`attnlab.models.options`, with the rules that tie them together."""

    arch: Arch = "rnn"
    # shared by both families
    emb_dim: int = 256
    enc_layers: int = 1
    dec_layers: int = 1
    dropout: float = 0.1
    tie_embeddings: TieMode = "none"
    # RNN family
    cell: Cell = "gru"
    hid_dim: int = 256
    bidirectional: bool = False
    bridge: BridgeKind = "concat"
    reverse_src: bool = False
    packed: bool = True
    layer_mismatch: LayerMismatch = "last"
    attention: AttentionKind = "general"
    attention_heads: int = 1
    attention_placement: Placement = "luong"
    input_feeding: bool = False
    # Transformer family
    d_model: int = 256
    heads: int = 4
    ffn_dim: int = 1024
    norm: Norm = "post"
    positional: Positional = "sinusoidal"
    activation: Activation = "relu"
    max_positions: int = 512


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    max_steps: int = -1  # -1: limited by epochs only
    max_minutes: float | None = None  # wall-clock budget for training (Lightning's max_time)
    batch_tokens: int | None = 4096  # token budget per batch (padded positions, larger side)
    batch_size: int | None = None  # or a sentence count per batch (then batch_tokens must be null)
    lr: float = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = 0.0
    schedule: Literal["constant", "noam", "inverse_sqrt", "plateau"] = "constant"
    warmup: int = 0
    clip: float | None = 1.0
    label_smoothing: float = 0.0
    seed: int = 42
    patience: int | None = None  # early stopping patience in validations; None disables it
    monitor: str = "val/loss"  # metric for early stopping and the best checkpoint (see VAL_METRICS)
    precision: str = "32"  # passed to Lightning: 32, bf16-mixed, 16-mixed (see PRECISIONS)
    accelerator: str = "auto"  # auto, cpu, gpu (see ACCELERATORS)
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    logger: Literal["tensorboard", "wandb", "csv"] = "tensorboard"
    teacher_forcing: float = 1.0
    teacher_forcing_mode: TeacherForcingMode = "step"
    val_bleu_sentences: int | None = 1000  # greedy-translate at most this many val sentences
    val_check_interval: float = 1.0
    log_every: int = 50
    num_samples: int = 5  # validation translations written to samples.txt
    attention_snapshots: int = 2  # validation sentences drawn to attention/ after each validation; 0: none
    num_threads: int | None = None  # torch CPU threads; None leaves torch's default


@dataclass(frozen=True)
class DecodeConfig:
    beam: int = 1
    length_penalty: float = 0.6  # GNMT alpha
    # beam ranking: "gnmt" log P / ((5 + steps) / 6) ** alpha; "power" log P / tokens ** alpha (CTranslate2's)
    length_penalty_form: Literal["gnmt", "power"] = "gnmt"
    max_len_ratio: float = 1.5
    max_len: int = 100
    batch_size: int = 64


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "decode": DecodeConfig,
}


def _suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _where(source: str | None) -> str:
    return f" in {source}" if source else ""


def _coerce(value: Any, tp: Any, key: str, source: str | None) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where lossless (int -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            hint = _suggest(str(value), [str(a) for a in args])
            raise ConfigError(
                f"config key '{key}'{_where(source)} is {value!r}; expected one of {choices}{hint}"
            )
        return value
    if origin in (typing.Union, getattr(types, "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, source)
            except ConfigError as err:
                errors.append(err)
        names = " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in args)
        raise ConfigError(
            f"config key '{key}'{_where(source)} is {value!r} ({type(value).__name__}); expected {names}"
        )
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. precision: 32
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"config key '{key}'{_where(source)} is {value!r} ({type(value).__name__}); "
        f"expected {tp.__name__}"
    )


def _build_section(name: str, values: Any, source: str | None) -> Any:
    cls = _SECTIONS[name]
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config section '{name}'{_where(source)} must be a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        key = str(key)  # YAML allows non-string keys (3:, null:, ? [a]); none of them names a config key
        if key not in names:
            dotted = [f"{name}.{n}" for n in names]
            raise ConfigError(
                f"config key {f'{name}.{key}'!r}{_where(source)} is unknown"
                f"{_suggest(f'{name}.{key}', dotted)}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{name}.{key}", source)
    return cls(**kwargs)


def config_from_dict(raw: Any, source: str | None = None) -> Config:
    """Build a :class:`Config` from nested dicts, checking every key and type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config{_where(source)} must be a mapping with sections {list(_SECTIONS)}")
    for name in raw:
        if name not in _SECTIONS:
            raise ConfigError(
                f"config section {name!r}{_where(source)} is unknown{_suggest(str(name), list(_SECTIONS))}"
            )
    config = Config(**{name: _build_section(name, raw.get(name), source) for name in _SECTIONS})
    validate(config, source)
    return config


def validate(cfg: Config, source: str | None = None) -> None:
    """Every range and cross-key rule, in one place, run by the loader before anything is created.

    The model's own rules live with the model choices (:func:`attnlab.models.options.check_model`);
    they are run here too, so a config is refused before any data is read or folder made.
    """
    try:
        check_model(cfg.model)
        _check_data(cfg.data)
        _check_train(cfg.train)
        _check_decode(cfg.decode)
        _check_across(cfg)
    except ValueError as err:
        raise ConfigError(_with_source(str(err), source) if source else str(err)) from None


def _with_source(message: str, source: str) -> str:
    """Put 'in FILE' right after the first quoted key of ``message``."""
    match = re.search(r"'[a-z_]+\.[a-z_0-9]+'", message)
    if not match:
        return f"{message} (in {source})"
    return f"{message[:match.end()]} in {source}{message[match.end():]}"


def _at_least(section: str, values: Any, minimum: float, *keys: str, optional: bool = False) -> None:
    for key in keys:
        value = getattr(values, key)
        if optional and value is None:
            continue
        if value < minimum:
            raise ValueError(f"config key '{section}.{key}' is {value}; it must be >= {minimum}")


def _in_unit_interval(section: str, values: Any, *keys: str, closed: bool = False) -> None:
    for key in keys:
        value = getattr(values, key)
        if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
            raise ValueError(f"config key '{section}.{key}' is {value}; it must be in [0, 1{']' if closed else ')'}")


def _check_data(d: DataConfig) -> None:
    _at_least("data", d, 1, "max_len", "max_train_pairs", optional=True)
    _at_least("data", d, 1, "min_freq")
    _at_least("data", d, 8, "vocab_size")
    _at_least("data", d, len(("<pad>", "<unk>", "<bos>", "<eos>")) + 1, "max_size", optional=True)
    _in_unit_interval("data", d, "val_ratio", "test_ratio")
    if d.val_ratio + d.test_ratio >= 1.0:
        raise ValueError(f"config keys 'data.val_ratio' and 'data.test_ratio' add up to {d.val_ratio + d.test_ratio}, "
                         "leaving nothing to train on; keep their sum below 1")
    if d.src_lang == d.tgt_lang:
        raise ValueError(f"config keys 'data.src_lang' and 'data.tgt_lang' are both {d.src_lang!r}")
    if d.corpus == "files" and not d.src_file:
        raise ValueError("config key 'data.src_file' is required when data.corpus is 'files'")
    # Keys that would do nothing are refused rather than silently ignored.
    for key, corpus in (("src_file", "files"), ("tgt_file", "files"), ("path", "tatoeba"), ("data_dir", "multi30k")):
        if getattr(d, key) is not None and d.corpus != corpus:
            raise ValueError(f"config key 'data.{key}' applies to data.corpus '{corpus}' only (the corpus is "
                             f"{d.corpus!r}); remove it or set data.corpus={corpus}")
    if d.tokenizer == "word" and d.spm_model_type != "unigram":
        raise ValueError("config key 'data.spm_model_type' applies to data.tokenizer 'sentencepiece' only")


def _check_train(t: TrainConfig) -> None:
    _at_least("train", t, 1, "epochs", "log_every", "num_nodes")
    _at_least("train", t, 0, "warmup", "weight_decay", "num_samples", "attention_snapshots")
    _at_least("train", t, 1, "batch_tokens", "batch_size", "patience", "val_bleu_sentences", "num_threads",
              optional=True)
    if (t.batch_tokens is None) == (t.batch_size is None):
        raise ValueError("config keys 'train.batch_tokens' and 'train.batch_size': set exactly one of them")
    if t.max_steps != -1 and t.max_steps < 1:
        raise ValueError(f"config key 'train.max_steps' is {t.max_steps}; use -1 (no limit) or a number >= 1")
    for key in ("lr", "max_minutes", "clip"):
        value = getattr(t, key)
        if value is not None and not value > 0:
            raise ValueError(f"config key 'train.{key}' is {value}; it must be > 0")
    _in_unit_interval("train", t, "label_smoothing")
    _in_unit_interval("train", t, "teacher_forcing", closed=True)
    if not 0.0 < t.val_check_interval <= 1.0:
        raise ValueError(f"config key 'train.val_check_interval' is {t.val_check_interval}; it must be in (0, 1] "
                         "(the share of an epoch between validations)")
    for key, choices in (("monitor", VAL_METRICS), ("precision", PRECISIONS), ("accelerator", ACCELERATORS),
                         ("strategy", STRATEGIES)):
        if getattr(t, key) not in choices:
            raise ValueError(f"config key 'train.{key}' is {getattr(t, key)!r}; expected one of {', '.join(choices)}"
                             f"{_suggest(str(getattr(t, key)), list(choices))}")
    devices = t.devices
    if not (devices == "auto" or (isinstance(devices, int) and (devices >= 1 or devices == -1))):
        raise ValueError(f"config key 'train.devices' is {devices!r}; use a number >= 1, -1 (all) or 'auto'")


def _check_decode(d: DecodeConfig) -> None:
    _at_least("decode", d, 1, "beam", "max_len", "batch_size")
    _at_least("decode", d, 0, "length_penalty")
    if not d.max_len_ratio > 0:
        raise ValueError(f"config key 'decode.max_len_ratio' is {d.max_len_ratio}; it must be > 0")


def _check_across(cfg: Config) -> None:
    m, d = cfg.model, cfg.data
    if m.tie_embeddings == "three_way" and not d.shared_vocab:
        raise ValueError("config key 'model.tie_embeddings' is 'three_way', which needs one vocabulary for source "
                         "and target: set data.shared_vocab=true")
    if m.arch == "transformer" and d.max_len is not None and d.max_len + 1 > m.max_positions:
        raise ValueError(f"config key 'model.max_positions' is {m.max_positions}, but training sentences may have "
                         f"data.max_len={d.max_len} tokens (+1 for <bos>/<eos>); raise model.max_positions")


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Apply ``section.key=value`` overrides to nested dicts (a copy is returned)."""
    merged = {name: dict(values or {}) for name, values in (raw or {}).items()}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, text = item.split("=", 1)
        parts = dotted.strip().split(".")
        if len(parts) != 2:
            raise ConfigError(f"override key {dotted!r} must be section.key, e.g. model.attention")
        section, key = parts
        if section not in _SECTIONS:
            raise ConfigError(
                f"config section {section!r} (from --set {item!r}) is unknown"
                f"{_suggest(section, list(_SECTIONS))}"
            )
        merged.setdefault(section, {})
        if merged[section] is None:
            merged[section] = {}
        merged[section][key] = parse_scalar(text)
    return merged


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply dotted overrides."""
    raw: Any = {}
    source = None
    if path is not None:
        source = str(path)
        raw = read_yaml_mapping(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
        source = f"{source} (with --set overrides)" if source else "--set overrides"
    return config_from_dict(raw, source)


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config (every key, defaults included) as YAML."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
