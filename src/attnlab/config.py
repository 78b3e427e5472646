"""Typed, frozen configuration: YAML files plus dotted command-line overrides.

A config has four sections, ``data``, ``model``, ``train`` and ``decode``; each is a frozen dataclass
that owns its defaults. Unknown keys and wrong types raise :class:`ConfigError` naming the key, the
file and, where one is close, the key that was probably meant::

    cfg = load_config("configs/quickstart.yaml", overrides=["model.attention=general"])

The ranges and cross-key rules a loaded config must keep are in :mod:`attnlab.config_checks`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from attnlab.config_checks import ACCELERATORS, PRECISIONS, VAL_METRICS, monitor_mode, validate
from attnlab.config_files import ConfigError, parse_scalar, read_yaml_mapping, suggest
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
    "config_yaml",
    "save_config",
    "apply_overrides",
    "validate",
    "VAL_METRICS",
    "PRECISIONS",
    "ACCELERATORS",
    "monitor_mode",
]


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
    schedule: Literal["constant", "noam", "inverse_sqrt", "linear", "linear_budget", "plateau"] = "constant"
    warmup: int = 0
    clip: float | None = 1.0
    label_smoothing: float = 0.0
    ema_decay: float = 0.0  # validate and save a moving average of the weights; 0: off (training/weight_average.py)
    trim_heap_every: int = 0  # give glibc's freed heap pages back every N steps and after validations; 0: never
    seed: int = 42
    patience: int | None = None  # early stopping patience in validations; None disables it
    monitor: str = "val/loss"  # metric for early stopping and the best checkpoint (see VAL_METRICS)
    precision: str = "32"  # passed to Lightning: 32, bf16-mixed, 16-mixed, or auto (see training/precision.py)
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


def _where(source: str | None) -> str:
    return f" in {source}" if source else ""


def _coerce(value: Any, tp: Any, key: str, source: str | None) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where lossless (int -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            hint = suggest(str(value), [str(a) for a in args])
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
                f"{suggest(f'{name}.{key}', dotted)}"
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
                f"config section {name!r}{_where(source)} is unknown{suggest(str(name), list(_SECTIONS))}"
            )
    config = Config(**{name: _build_section(name, raw.get(name), source) for name in _SECTIONS})
    validate(config, source)
    return config


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
                f"{suggest(section, list(_SECTIONS))}"
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


def config_yaml(cfg: Config) -> str:
    """The resolved config (every key, defaults included) as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config (every key, defaults included) as YAML."""
    Path(path).write_text(config_yaml(cfg), encoding="utf-8")
