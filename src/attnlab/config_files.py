"""Reading config files: YAML as people write it, and errors that name the file, line and column.

The loader is PyYAML's safe loader (no tag builds a Python object) with two changes: ``5e-4`` is a
number, as people mean it (YAML 1.1 wants ``5.0e-4``), and a key given twice in one mapping is an
error rather than a silent overwrite. Config sections and their keys are checked by
:mod:`attnlab.config`; suites (:mod:`attnlab.experiments.suite`) read their files here too.
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "parse_yaml", "parse_scalar", "read_yaml_mapping", "suggest"]


class ConfigError(ValueError):
    """A configuration problem, with the key and file it concerns."""


class _Loader(yaml.SafeLoader):
    """YAML as people write configs: ``5e-4`` is a number (YAML 1.1 wants ``5.0e-4``) and a key given
    twice in one mapping is an error rather than a silent overwrite. Built on the safe loader: no tags
    that construct Python objects."""


_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, typing.Hashable) and key in seen:
            raise _DuplicateKey(problem=f"key {key!r} appears twice in one mapping", problem_mark=key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text with :class:`_Loader`; errors are one line naming ``where``, the line and the column."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        place = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}{place}: not valid YAML ({problem})") from None


def parse_scalar(text: str) -> Any:
    """Parse an override value the way a config file would: 3 -> int, 5e-4 -> float, true -> bool, null -> None."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError:
        return text


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict:
    """A YAML file that must hold a mapping; errors name ``what`` and the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"{what} file {path} is a directory, not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} file {path} is not UTF-8 text (byte {err.start})") from None
    raw = parse_yaml(text, f"{what} file {path}")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} file {path} must be a mapping of sections, not a {type(raw).__name__}")
    return raw


def suggest(key: str, candidates: list[str]) -> str:
    """The end of an error message: ``; did you mean 'X'?`` when a candidate is close to ``key``, else ''."""
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
