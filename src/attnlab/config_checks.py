"""The rules a config must keep: ranges per key and the rules across keys, run by the loader.

:func:`validate` runs every rule before anything is created (no data read, no folder made); the
model's own rules live with the model choices (:func:`attnlab.models.options.check_model`) and are
run from here too. A broken rule is a :class:`ConfigError` naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import TYPE_CHECKING, Any

from attnlab.config_files import ConfigError, suggest
from attnlab.models.options import check_model

if TYPE_CHECKING:
    from attnlab.config import Config, DataConfig, DecodeConfig, TrainConfig

__all__ = ["validate", "monitor_mode", "VAL_METRICS", "PRECISIONS", "ACCELERATORS", "STRATEGIES"]

VAL_METRICS = ("val/loss", "val/ppl", "val/bleu", "val/chrf", "val/bleu_1ref", "val/chrf_1ref")
PRECISIONS = ("auto", "32", "32-true", "64", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp", "deepspeed")


def monitor_mode(metric: str) -> str:
    """'max' for scores that grow (BLEU, chrF), 'min' for losses and perplexity."""
    return "max" if ("bleu" in metric or "chrf" in metric) else "min"


def validate(cfg: Config, source: str | None = None) -> None:
    """Every range and cross-key rule, in one place, run by the loader before anything is created.

    The model's own rules live with the model choices (:func:`attnlab.models.options.check_model`);
    they are run here too, so a config is refused before any data is read or folder made.
    """
    try:
        _check_finite(cfg)
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


def _check_finite(cfg: Config) -> None:
    """No NaN or infinity anywhere: YAML reads ``.nan`` and ``.inf`` as numbers, and NaN passes every ``<``."""
    for section in dataclasses.fields(cfg):
        values = getattr(cfg, section.name)
        for key in dataclasses.fields(values):
            value = getattr(values, key.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"config key '{section.name}.{key.name}' is {value}; it must be a finite number")


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
    if not 0 <= t.seed < 2**32:
        raise ValueError(f"config key 'train.seed' is {t.seed}; it must be in [0, 2**32) (numpy's seed range)")
    _at_least("train", t, 1, "epochs", "log_every", "num_nodes")
    _at_least("train", t, 0, "warmup", "weight_decay", "num_samples", "attention_snapshots", "trim_heap_every")
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
    if t.schedule == "linear_budget" and t.max_minutes is None:
        raise ValueError("config key 'train.schedule' is 'linear_budget', which decays to zero at the time budget: "
                         "set train.max_minutes too (or use the schedule 'linear')")
    _in_unit_interval("train", t, "label_smoothing", "ema_decay")
    _in_unit_interval("train", t, "teacher_forcing", closed=True)
    if not 0.0 < t.val_check_interval <= 1.0:
        raise ValueError(f"config key 'train.val_check_interval' is {t.val_check_interval}; it must be in (0, 1] "
                         "(the share of an epoch between validations)")
    for key, choices in (("monitor", VAL_METRICS), ("precision", PRECISIONS), ("accelerator", ACCELERATORS),
                         ("strategy", STRATEGIES)):
        if getattr(t, key) not in choices:
            raise ValueError(f"config key 'train.{key}' is {getattr(t, key)!r}; expected one of {', '.join(choices)}"
                             f"{suggest(str(getattr(t, key)), list(choices))}")
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
