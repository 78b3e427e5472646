"""The ``attnlab`` command: parses arguments, calls one API function, prints.

Errors that users can fix (config, data, run directory) print one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from attnlab.config import ConfigError, load_config
from attnlab.data.errors import DataError

__all__ = ["main", "build_parser"]

USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, FileNotFoundError)


def _data_overrides(args: argparse.Namespace) -> list[str]:
    """Turn the ``data stats`` convenience flags into ``data.key=value`` overrides."""
    flags = {
        "corpus": "corpus", "src_lang": "src_lang", "tgt_lang": "tgt_lang", "data_dir": "data_dir",
        "src": "src_file", "tgt": "tgt_file", "max_len": "max_len", "normalize": "normalize",
        "tokenizer": "tokenizer", "prefixes": "prefixes",
    }
    overrides = []
    for flag, key in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"data.{key}={json.dumps(value) if isinstance(value, str) else value}")
    if getattr(args, "src", None) and getattr(args, "corpus", None) is None:
        overrides.insert(0, "data.corpus=files")
    return overrides + list(args.set or [])


def cmd_data_stats(args: argparse.Namespace) -> int:
    from attnlab.data.prepare import prepare_data
    from attnlab.data.stats import corpus_stats, format_stats

    cfg = load_config(args.config, _data_overrides(args))
    stats = corpus_stats(prepare_data(cfg.data), cfg.data.src_lang, cfg.data.tgt_lang)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def _add_config_args(parser: argparse.ArgumentParser, config_required: bool) -> None:
    if config_required:
        parser.add_argument("config", help="YAML config file")
    else:
        parser.add_argument("--config", help="YAML config file (defaults are used without one)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key, e.g. --set model.attention=general (repeatable)")


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    stats = data_sub.add_parser("stats", help="pair counts, length percentiles, vocabulary sizes, OOV rates")
    _add_config_args(stats, config_required=False)
    stats.add_argument("--corpus", choices=["tatoeba", "multi30k", "files"])
    stats.add_argument("--src-lang")
    stats.add_argument("--tgt-lang")
    stats.add_argument("--data-dir", help="local copy of the corpus (else $ATTNLAB_DATA, else download)")
    stats.add_argument("--src", help="source file (corpus 'files'): line-aligned text, or a TSV alone")
    stats.add_argument("--tgt", help="target file (corpus 'files')")
    stats.add_argument("--max-len", type=int, help="maximum tokens per side")
    stats.add_argument("--normalize", choices=["tutorial", "none"])
    stats.add_argument("--tokenizer", choices=["word", "sentencepiece"])
    stats.add_argument("--prefixes", action=argparse.BooleanOptionalAction, default=None,
                       help="keep only the tutorial's English prefixes (i am, he is, ...)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(func=cmd_data_stats)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnlab",
        description="Build, train, compare and look inside seq2seq, attention and Transformer translation models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except USER_ERRORS as err:
        print(f"attnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("attnlab: interrupted", file=sys.stderr)
        return 130
