"""The ``attnlab`` command: parses arguments, calls one API function, prints.

One module per group of commands (``data``, ``train``, ``translate``/``evaluate``/``export``,
``attention``, ``sweep``/``compare``, ``serve``); each adds its parser and imports what it runs only
when it runs, so ``attnlab --help`` loads neither torch nor Lightning nor matplotlib.

Every failure caused by input or environment prints one line, ``attnlab: error: ...``, naming what
and where, and exits non-zero: 2 for a mistake in the command, its config or its files, 1 for the
machine (a full or read-only disk), 130 for Ctrl-C (and SIGTERM to ``train`` or ``sweep``). A closed
pipe (``attnlab translate ... | head``) is not an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from attnlab.config import ConfigError
from attnlab.data.errors import DataError
from attnlab.rundir import RunError

__all__ = ["main", "build_parser", "USER_ERRORS"]

USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, RunError)


def build_parser() -> argparse.ArgumentParser:
    from attnlab.cli import attention, data, experiments, serving, training, translation

    parser = argparse.ArgumentParser(
        prog="attnlab",
        description="Build, train, compare and look inside seq2seq, attention and Transformer translation models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (data, training, translation, attention, experiments, serving):
        module.add_commands(sub)
    return parser


def _one_line(message: object) -> str:
    return " ".join(str(message).split("\n")).strip()


def _describe_os_error(err: OSError) -> str:
    """'No space left on device: runs/x/checkpoints/last.ckpt' and the like."""
    where = f": {err.filename}" if err.filename else ""
    return f"{err.strerror or _one_line(err)}{where}"


def _silence_stdout() -> None:
    """After a closed pipe, send what is left to /dev/null, so Python's exit does not fail on flushing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except USER_ERRORS as err:
        print(f"attnlab: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as err:  # the machine: a full or read-only disk, a missing permission
        print(f"attnlab: error: {_describe_os_error(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("attnlab: interrupted", file=sys.stderr)
        return 130
