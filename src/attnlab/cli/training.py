"""``attnlab train``: a config in, a complete run directory out; ``--resume`` continues one."""

from __future__ import annotations

import argparse
import math
import sys

from attnlab.config import ConfigError, load_config

__all__ = ["add_commands"]


def cmd_train(args: argparse.Namespace) -> int:
    from attnlab.training.run import default_run_dir, resume, train

    if args.resume:
        if args.config or args.run_dir or args.data_cache:
            raise ConfigError("--resume continues a run with its own config; give no CONFIG, --run-dir or "
                              "--data-cache")
        run_dir, caps = args.resume, _resume_caps(args.set or [])
        start = lambda: resume(run_dir, **caps)  # noqa: E731
    else:
        if not args.config:
            raise ConfigError("give a CONFIG file (e.g. configs/quickstart.yaml) or --resume RUN_DIR")
        cfg = load_config(args.config, args.set)
        run_dir = args.run_dir or default_run_dir(args.config)
        start = lambda: train(cfg, run_dir, data_cache=args.data_cache)  # noqa: E731
    try:
        run, summary = start()
    except (KeyboardInterrupt, SystemExit) as stop:
        # Lightning shuts down gracefully on Ctrl-C and then exits with status 1; SIGTERM arrives as a
        # KeyboardInterrupt (attnlab.training.run): say what to do next.
        if isinstance(stop, SystemExit) and stop.code in (0, None):
            raise
        print(f"attnlab: training interrupted; the run keeps its last checkpoint. Continue with:\n"
              f"  attnlab train --resume {run_dir}", file=sys.stderr)
        return 130
    if summary.get("restarted"):
        print(f"attnlab: {run.root} had stopped before its first validation; it was trained again from the start",
              file=sys.stderr)
    if summary.get("stopped_by_budget"):
        print(f"attnlab: the time budget (train.max_minutes) stopped the run before its epoch cap; to train it "
              f"on:\n  attnlab train --resume {run.root} --set train.max_minutes=null", file=sys.stderr)
    print(_train_report(run.root, summary))
    return 0


def _resume_caps(overrides: list[str]) -> dict[str, float]:
    """The two keys ``--resume`` takes: ``--set train.epochs=N`` and ``--set train.max_minutes=M`` (or null),
    to train a run that ended at its epoch cap or time budget on."""
    caps: dict[str, float] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        key, value = key.strip(), value.strip()
        if key == "train.epochs":
            caps["epochs"] = _epoch_count(value)
        elif key == "train.max_minutes":
            caps["max_minutes"] = _minutes(value)
        else:
            raise ConfigError("--resume continues a run with its own config; the keys it takes are --set "
                              "train.epochs=N (a higher epoch cap) and --set train.max_minutes=M (a longer time "
                              "budget, or null for none)")
    return caps


def _epoch_count(value: str) -> int:
    try:
        epochs = int(value)
    except ValueError:
        raise ConfigError(f"--set train.epochs={value}: an epoch count is a whole number") from None
    if epochs < 1:
        raise ConfigError(f"--set train.epochs={value}: it must be >= 1")
    return epochs


def _minutes(value: str) -> float:
    if value.lower() in ("null", "none", "~"):
        return math.inf  # no budget
    try:
        minutes = float(value)
    except ValueError:
        raise ConfigError(f"--set train.max_minutes={value}: give a number of minutes, or null for no budget") from None
    if not minutes > 0 or math.isinf(minutes):
        raise ConfigError(f"--set train.max_minutes={value}: it must be a positive number of minutes (or null)")
    return minutes


def _train_report(run_dir, summary: dict) -> str:
    """The end of a training run, as a person wants to read it."""
    from attnlab.models.summary import format_summary

    best = summary.get("best", {})
    lines = [f"run directory: {run_dir}", f"parameters:    {format_summary(summary['parameters'])}"]
    if best:
        nan = float("nan")
        lines.append(f"best val:      loss {best.get('val/loss', nan):.3f}  ppl {best.get('val/ppl', nan):.2f}  "
                     f"BLEU {best.get('val/bleu', nan):.2f}  chrF {best.get('val/chrf', nan):.2f}  "
                     f"(epoch {best.get('epoch')})")
        if "val/bleu_1ref" in best:  # Tatoeba: the headline scores use every reference of a source
            lines.append(f"               every reference of a source; against one: BLEU {best['val/bleu_1ref']:.2f}  "
                         f"chrF {best.get('val/chrf_1ref', nan):.2f}")
    if summary.get("tokens_per_sec"):
        lines.append(f"speed:         {summary['tokens_per_sec']:,.0f} target tokens/s, "
                     f"train time {summary['train_time_s']:.0f} s, peak memory {summary['peak_memory_mb']:,.0f} MB")
    from attnlab.rundir import RunDir

    samples = RunDir(run_dir).samples
    if samples.is_file():
        last = samples.read_text(encoding="utf-8").strip().split("== ")[-1]
        lines += ["", "validation samples (" + last.strip().split("\n", 1)[0] + "):",
                  *("  " + line for line in last.strip().split("\n")[1:] if line)]
    return "\n".join(lines)


def add_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model from a config; writes a complete run directory")
    train.add_argument("config", nargs="?", help="YAML config file, e.g. configs/quickstart.yaml")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    train.add_argument("--run-dir", help="where to write the run (default runs/<config>-<time>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint; "
                       "with --set train.epochs=N or --set train.max_minutes=M (null: none), train a run that "
                       "ended at its epoch cap or time budget on")
    train.add_argument("--data-cache", metavar="DIR",
                       help="reuse the data prepared for this config in DIR, or prepare and store it there "
                            "(a sweep's prepared/ folder)")
    train.set_defaults(func=cmd_train)


