"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.config import ConfigError

__all__ = ["add_config_args", "at_least", "output_folder"]


def add_config_args(parser: argparse.ArgumentParser, config_required: bool) -> None:
    if config_required:
        parser.add_argument("config", help="YAML config file")
    else:
        parser.add_argument("--config", help="YAML config file (defaults are used without one)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key, e.g. --set model.attention=general (repeatable)")


def at_least(minimum: int, **flags: int | None) -> None:
    """Refuse ``--flag value`` below ``minimum`` (flags named in Python style, ``n_best`` for --n-best)."""
    for name, value in flags.items():
        if value is not None and value < minimum:
            raise ConfigError(f"--{name.replace('_', '-')} is {value}; it must be >= {minimum}")


def output_folder(path: str | Path, flag: str = "--out") -> Path:
    """A folder to write into (created later if missing); an existing file there is an error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; give a folder (it is created if missing)")
    return path
