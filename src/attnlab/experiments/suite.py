"""Experiment suites: several variants of one config, trained on the same data with the same budget.

A suite is a YAML file, by convention ``experiments/NAME.yaml``::

    description: Attention types on the tutorial's Tatoeba subset.   # optional, shown in the report
    base: base/tatoeba-lstm.yaml     # a config file, relative to this file ...
    # base:                          # ... or the config sections inline
    #   data: {corpus: tatoeba, prefixes: true, max_len: 10}
    #   model: {cell: lstm, hid_dim: 512}
    common:                          # optional: overrides applied to every variant (list or mapping)
      - model.bidirectional=true
    baseline: none                   # the variant the others are compared with (default: the first)
    variants:                        # name -> its overrides, applied after ``common``
      none: []                       # the base as it is
      dot: [model.attention=dot]     # a list of section.key=value ...
      additive:                      # ... or a mapping of dotted keys to values
        model.attention: additive
        model.attention_placement: bahdanau

Keys are checked like ``--set`` overrides: an unknown key or a wrong type is an error naming the
variant. Variant names become run directory names, so they use letters, digits, ``.``, ``_``
and ``-``; ``report`` and ``prepared`` are taken by the sweep, and a ``-seedN`` ending is kept for
the runs of further seeds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from attnlab.config import Config, ConfigError, apply_overrides, config_from_dict
from attnlab.config_files import read_yaml_mapping

__all__ = ["Suite", "Variant", "load_suite", "RESERVED_NAMES"]

RESERVED_NAMES = ("report", "prepared")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SEED_SUFFIX = re.compile(r"-seed\d+$")
_KEYS = {"description", "base", "common", "baseline", "variants"}


@dataclass(frozen=True)
class Variant:
    """One variant: its name, its overrides as ``section.key=value`` strings, and the resolved config."""

    name: str
    overrides: tuple[str, ...]
    config: Config


@dataclass(frozen=True)
class Suite:
    """A loaded suite; ``variants`` keeps the file's order."""

    name: str
    path: Path
    description: str
    baseline: str
    variants: dict[str, Variant]


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """Read a suite file and resolve every variant's config; ``overrides`` (``--set``) apply last, to all."""
    path = Path(path)
    raw = read_yaml_mapping(path, "suite")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"suite {path}: unknown key(s) {unknown}; a suite has {sorted(_KEYS)}")
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, dict) or not variants_raw:
        raise ConfigError(f"suite {path}: 'variants' must map variant names to their overrides")
    base = _base(raw.get("base"), path)
    common = _override_list(raw.get("common"), f"suite {path}, 'common'")
    variants = {}
    for name, value in variants_raw.items():
        _check_name(str(name), path)
        own = _override_list(value, f"suite {path}, variant '{name}'")
        merged = apply_overrides(base, common + own + list(overrides or []))
        config = config_from_dict(merged, f"{path} (variant '{name}')")
        variants[str(name)] = Variant(str(name), tuple(own), config)
    baseline = str(raw.get("baseline") or next(iter(variants)))
    if baseline not in variants:
        raise ConfigError(f"suite {path}: baseline '{baseline}' is not one of the variants {list(variants)}")
    return Suite(path.stem, path, str(raw.get("description") or ""), baseline, variants)


def _base(value: Any, suite_path: Path) -> dict:
    """The base config as nested dicts: inline sections, or a config file relative to the suite."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return read_yaml_mapping(suite_path.parent / value, f"base config of suite {suite_path}:")
    raise ConfigError(f"suite {suite_path}: 'base' must be a config path or config sections")


def _override_list(value: Any, where: str) -> list[str]:
    """``[a.b=1, ...]`` as it is, or ``{a.b: 1}`` as ``["a.b=1"]``."""
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if isinstance(value, dict):
        return [f"{key}={_scalar_text(item)}" for key, item in value.items()]
    raise ConfigError(f"{where}: expected a list of section.key=value strings or a mapping of dotted keys")


def _scalar_text(value: Any) -> str:
    """A value as override text that reads back as the same value: ``dot``, ``true``, ``null``, ``"yes"``."""
    try:
        if isinstance(value, str) and yaml.safe_load(value) == value:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value)  # JSON scalars are YAML too


def _check_name(name: str, path: Path) -> None:
    if not _NAME.fullmatch(name) or name in RESERVED_NAMES or _SEED_SUFFIX.search(name):
        raise ConfigError(f"suite {path}: variant name '{name}' cannot name a run directory; use letters, digits, "
                          f"'.', '_' and '-', not {list(RESERVED_NAMES)} nor a '-seedN' ending")
