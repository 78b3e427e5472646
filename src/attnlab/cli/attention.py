"""``attnlab attention``: every attention map of one sentence, drawn, counted and saved."""

from __future__ import annotations

import argparse

from attnlab.cli.common import at_least, output_folder
from attnlab.config import ConfigError

__all__ = ["add_commands"]


def cmd_attention(args: argparse.Namespace) -> int:
    from attnlab.evaluation.attention import FORMATS, attention_report

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--format {args.format!r} is not a comma-separated list of {', '.join(FORMATS)}")
    at_least(1, beam=args.beam)
    output_folder(args.out)
    report = attention_report(args.run_dir, args.text, reference=args.reference, kind=args.kind,
                              compare_init=args.compare_init, beam=args.beam, formats=formats, out_dir=args.out,
                              checkpoint=args.checkpoint, name=args.name, dpi=args.dpi)
    print(f"source: {' '.join(report.record.src_tokens)}")
    print(f"{'reference (forced)' if report.forced else 'translation'}: {report.target}")
    print("wrote:")
    print("".join(f"  {path}\n" for path in report.files))
    print(report.markdown, end="")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    attention = sub.add_parser(
        "attention", help="draw every attention map of one sentence, with per-head statistics",
        description="Run one sentence through a trained run and write its attention: the cross map, a layers x heads "
                    "grid per kind, an interactive HTML page and a statistics table (CSV and Markdown, also "
                    "printed). Without --reference the run translates the sentence (greedy, or --beam N); with "
                    "--reference that translation is forced through the decoder instead. Target rows are "
                    "labelled by the token they predict (y1 .. yn, <eos>). --compare-init runs the same tokens "
                    "through the weights at initialisation and adds before/after figures and init_* columns.",
    )  # fmt: skip
    attention.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by 'attnlab train'")
    attention.add_argument("--text", required=True, help="the source sentence (raw; normalised the run's way)")
    attention.add_argument("--reference", help="a translation to force instead of decoding one")
    attention.add_argument("--kind", default="all", choices=("all", "encoder", "decoder", "cross"),
                           help="which attention to draw (default all that the model has)")
    attention.add_argument("--compare-init", action="store_true",
                           help="also run the weights at initialisation (checkpoints/init.pt) on the same tokens")
    attention.add_argument("--beam", type=int, default=1, help="beam size when decoding; 1 is greedy (default 1)")
    attention.add_argument("--format", default="png,svg,html",
                           help="comma-separated: png, svg, pdf, html (default png,svg,html)")
    attention.add_argument("--checkpoint", default="best", help="best, last, init or a checkpoint path (default best)")
    attention.add_argument("--out", required=True, help="folder for the files (created if missing)")
    attention.add_argument("--name", help="file name stem (default: a slug of --text)")
    attention.add_argument("--dpi", type=int, default=150, help="resolution of png figures (default 150)")
    attention.set_defaults(func=cmd_attention)


