"""``attnlab data stats``: where every line of a corpus went, lengths, vocabularies, OOV rates."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attnlab.cli.common import add_config_args
from attnlab.config import ConfigError, load_config

__all__ = ["add_commands"]

_FLAGS = {"corpus": "corpus", "src_lang": "src_lang", "tgt_lang": "tgt_lang", "data_dir": "data_dir",
          "src": "src_file", "tgt": "tgt_file", "max_len": "max_len", "normalize": "normalize",
          "tokenizer": "tokenizer", "prefixes": "prefixes"}


def data_overrides(args: argparse.Namespace) -> list[str]:
    """Turn the convenience flags into ``data.key=value`` overrides; refuse flags that would do nothing."""
    if args.tgt is not None and args.src is None:
        raise ConfigError("--tgt needs --src (the source file it is aligned with)")
    if args.src is not None and args.corpus not in (None, "files"):
        raise ConfigError(f"--src reads your own files, but --corpus is {args.corpus!r}; drop --corpus or use "
                          "--corpus files")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        what = "is a file" if Path(args.data_dir).exists() else "does not exist"
        raise ConfigError(f"--data-dir {args.data_dir} {what}")
    overrides = []
    for flag, key in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"data.{key}={json.dumps(value) if isinstance(value, str) else value}")
    if args.src and args.corpus is None:
        overrides.insert(0, "data.corpus=files")
    return overrides + list(args.set or [])


def cmd_stats(args: argparse.Namespace) -> int:
    from attnlab.data.prepare import prepare_data
    from attnlab.data.stats import corpus_stats, format_stats

    cfg = load_config(args.config, data_overrides(args))
    stats = corpus_stats(prepare_data(cfg.data), cfg.data.src_lang, cfg.data.tgt_lang)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    stats = data_sub.add_parser("stats", help="pair counts, length percentiles, vocabulary sizes, OOV rates")
    add_config_args(stats, config_required=False)
    stats.add_argument("--corpus", choices=["tatoeba", "multi30k", "files"])
    stats.add_argument("--src-lang")
    stats.add_argument("--tgt-lang")
    stats.add_argument("--data-dir", help="local copy of Multi30k (else $ATTNLAB_DATA, else download)")
    stats.add_argument("--src", help="source file (corpus 'files'): line-aligned text, or a TSV alone")
    stats.add_argument("--tgt", help="target file (corpus 'files')")
    stats.add_argument("--max-len", type=int, help="maximum tokens per side")
    stats.add_argument("--normalize", choices=["tutorial", "none"])
    stats.add_argument("--tokenizer", choices=["word", "sentencepiece"])
    stats.add_argument("--prefixes", action=argparse.BooleanOptionalAction, default=None,
                       help="keep only the tutorial's English prefixes (i am, he is, ...)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(func=cmd_stats)
