"""``attnlab sweep`` and ``attnlab compare``: train suites of variants, and compare finished runs."""

from __future__ import annotations

import argparse
import sys

from attnlab.cli.common import at_least, output_folder

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_sweep_command(sub)
    _add_compare_command(sub)


def cmd_sweep(args: argparse.Namespace) -> int:
    from attnlab.experiments.sweep import run_sweep

    at_least(1, seeds=args.seeds, jobs=args.jobs)
    if args.out is not None:
        output_folder(args.out)
    try:
        paths = run_sweep(args.suite, out_dir=args.out, seeds=args.seeds, overrides=args.set, jobs=args.jobs,
                          reuse=args.reuse, log=lambda line: print(f"attnlab sweep: {line}", flush=True))
    except KeyboardInterrupt:
        print("attnlab: sweep interrupted; run the same command again to resume it", file=sys.stderr)
        return 130
    print(f"report: {paths['html']}\n        {paths['markdown']}")
    return 0


def _add_sweep_command(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser(
        "sweep", help="train, evaluate and compare every variant of an experiment suite",
        description="Train every variant of a suite (experiments/NAME.yaml: a base config and named variants of "
                    "it) on the same prepared data and budget, evaluate each on val and test, and write a "
                    "comparison report to OUT/report/. Running it again skips finished runs and resumes "
                    "interrupted ones; with a higher train.epochs, runs that ended at the old cap train on. See "
                    "experiments/README.md for the suite format.",
    )  # fmt: skip
    sweep.add_argument("suite", metavar="SUITE", help="suite file, e.g. experiments/attention.yaml")
    sweep.add_argument("--seeds", type=int, default=1, help="runs per variant, with train.seed + 0, 1, ... (default 1)")
    sweep.add_argument("--out", help="sweep folder (default runs/sweeps/<suite name>)")
    sweep.add_argument("--jobs", type=int, default=1,
                       help="runs trained at once, each in its own process (default 1; with 2, also give "
                            "--set train.num_threads=1)")
    sweep.add_argument("--reuse", metavar="DIR",
                       help="a folder of earlier sweeps (e.g. runs/sweeps): runs with the same config (seed "
                            "included; an epoch cap they never reached may differ) are linked from there instead "
                            "of trained again")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key in every variant, e.g. --set train.epochs=2 (repeatable)")
    sweep.set_defaults(func=cmd_sweep)


def cmd_compare(args: argparse.Namespace) -> int:
    from attnlab.experiments.compare import compare_runs

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    output_folder(args.out)
    paths = compare_runs(args.run_dirs, args.out, baseline=args.baseline, names=names, title=args.title,
                         log=lambda line: print(f"attnlab compare: {line}", flush=True))
    print(f"report: {paths['html']}\n        {paths['markdown']}")
    return 0


def _add_compare_command(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser(
        "compare", help="compare finished runs in one report (table, curves, translations, attention)",
        description="Write report.md and a self-contained report.html comparing the runs: config differences, "
                    "parameters, speed, memory, validation and test BLEU/chrF with signatures, paired bootstrap "
                    "p-values against the baseline, curves, translations and cross-attention. Runs named "
                    "NAME-seedN count as seeds of NAME (mean +- std). Val and test are evaluated where needed.",
    )  # fmt: skip
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories")
    compare.add_argument("--out", required=True, help="folder for the report (created if missing)")
    compare.add_argument("--baseline", help="the variant to compare against (default: the first)")
    compare.add_argument("--names", help="comma-separated variant names, one per RUN_DIR (default: folder names)")
    compare.add_argument("--title", help="report title")
    compare.set_defaults(func=cmd_compare)


