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
from attnlab.rundir import RunError

__all__ = ["main", "build_parser"]

USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, RunError, FileNotFoundError)


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


def cmd_train(args: argparse.Namespace) -> int:
    from attnlab.training.run import default_run_dir, resume, train

    if args.resume:
        if args.config or args.set or args.run_dir or args.data_cache:
            raise ConfigError("--resume continues a run with its own config; give no CONFIG, --set, --run-dir or "
                              "--data-cache")
        run_dir = args.resume
        start = lambda: resume(run_dir)  # noqa: E731
    else:
        if not args.config:
            raise ConfigError("give a CONFIG file (e.g. configs/quickstart.yaml) or --resume RUN_DIR")
        cfg = load_config(args.config, args.set)
        run_dir = args.run_dir or default_run_dir(args.config)
        start = lambda: train(cfg, run_dir, data_cache=args.data_cache)  # noqa: E731
    try:
        run, summary = start()
    except (KeyboardInterrupt, SystemExit) as stop:
        # Lightning shuts down gracefully on Ctrl-C and then exits with status 1: say what to do next.
        if isinstance(stop, SystemExit) and stop.code in (0, None):
            raise
        print(f"attnlab: training interrupted; the run keeps its last checkpoint. Continue with:\n"
              f"  attnlab train --resume {run_dir}", file=sys.stderr)
        return 130
    if summary.get("restarted"):
        print(f"attnlab: {run.root} had stopped before its first validation; it was trained again from the start",
              file=sys.stderr)
    print(_train_report(run.root, summary))
    return 0


def _train_report(run_dir, summary: dict) -> str:
    """The end of a training run, as a person wants to read it."""
    from attnlab.models.summary import format_summary

    best = summary.get("best", {})
    lines = [f"run directory: {run_dir}", f"parameters:    {format_summary(summary['parameters'])}"]
    if best:
        lines.append(f"best val:      loss {best.get('val/loss', float('nan')):.3f}  "
                     f"ppl {best.get('val/ppl', float('nan')):.2f}  BLEU {best.get('val/bleu', float('nan')):.2f}  "
                     f"chrF {best.get('val/chrf', float('nan')):.2f}  (epoch {best.get('epoch')})")
    if summary.get("tokens_per_sec"):
        lines.append(f"speed:         {summary['tokens_per_sec']:,.0f} target tokens/s, "
                     f"train time {summary['train_time_s']:.0f} s, peak memory {summary['peak_memory_mb']:,.0f} MB")
    samples = (run_dir / "samples.txt")
    if samples.is_file():
        last = samples.read_text(encoding="utf-8").strip().split("== ")[-1]
        lines += ["", "validation samples (" + last.strip().split("\n", 1)[0] + "):",
                  *("  " + line for line in last.strip().split("\n")[1:] if line)]
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attnlab.evaluation.evaluate import evaluate_run

    if (args.src is None) != (args.ref is None):
        raise ConfigError("--src and --ref go together")
    scores = evaluate_run(args.run_dir, split=args.split, src_file=args.src, ref_file=args.ref, beam=args.beam,
                          checkpoint=args.checkpoint, batch_size=args.batch_size, data_dir=args.data_dir,
                          backend=args.backend, length_penalty=args.length_penalty,
                          length_penalty_form=args.length_penalty_form)
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    print(f"{scores['split']}: {scores['sentences']:,} sentences, beam {scores['beam']}, {scores['checkpoint']} "
          f"checkpoint, {scores['backend']} backend")
    print(f"BLEU  {scores['bleu']:6.2f}   {scores['bleu_signature']}")
    print(f"chrF  {scores['chrf']:6.2f}   {scores['chrf_signature']}")
    print(f"BLEU  {scores['bleu_lc_tok']:6.2f}   lower-cased, tokenised (Multi30k literature convention)  "
          f"{scores['bleu_lc_tok_signature']}")
    print(f"wrote {scores['output_dir']}/hyps.txt and scores.json")
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


def _add_train_command(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model from a config; writes a complete run directory")
    train.add_argument("config", nargs="?", help="YAML config file, e.g. configs/quickstart.yaml")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    train.add_argument("--run-dir", help="where to write the run (default runs/<config>-<time>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--data-cache", metavar="DIR",
                       help="reuse the data prepared for this config in DIR, or prepare and store it there "
                            "(a sweep's prepared/ folder)")
    train.set_defaults(func=cmd_train)


def _read_chunks(stream, name: str, size: int):
    """Yield lists of at most ``size`` lines from a binary stream, each decoded as UTF-8 on its own.

    Decoding per line lets an invalid byte be reported with its line number; reading in chunks keeps
    memory bounded however long the input is.
    """
    chunk: list[str] = []
    for number, raw in enumerate(stream, start=1):
        try:
            chunk.append(raw.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError as err:
            raise DataError(f"{name}, line {number}: not valid UTF-8 (byte {raw[err.start]:#04x} at column "
                            f"{err.start + 1}); convert the file to UTF-8 first") from None
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _translation_lines(result, n_best: int) -> list[str]:
    """One line (the best text), or ``n_best`` lines ``TEXT<TAB>LOG-PROB<TAB>NORMALISED-SCORE``."""
    if n_best == 1:
        return [result.text]
    lines = []
    for rank in range(n_best):
        if rank < len(result.n_best):
            c = result.n_best[rank]
            normalized = c.score if c.normalized_score is None else c.normalized_score
            lines.append(f"{c.text}\t{c.score:.4f}\t{normalized:.4f}")
        else:  # the search found fewer hypotheses (an empty input has one): keep K lines per input
            lines.append("\t-inf\t-inf")
    return lines


def cmd_translate(args: argparse.Namespace) -> int:
    import contextlib
    import warnings

    from attnlab.decoding.translator import Translator

    for flag, value in (("--beam", args.beam), ("--n-best", args.n_best), ("--batch-size", args.batch_size)):
        if value < 1:
            raise ConfigError(f"{flag} is {value}; it must be >= 1")
    if args.n_best > args.beam:
        raise ConfigError(f"--n-best {args.n_best} is larger than --beam {args.beam}; raise --beam")
    translator = Translator.from_run(args.run_dir, checkpoint=args.checkpoint, backend=args.backend)
    if args.length_penalty is not None:
        translator.length_penalty = args.length_penalty
    if args.length_penalty_form is not None:
        translator.length_penalty_form = args.length_penalty_form
    with contextlib.ExitStack() as files:
        source = files.enter_context(open(args.input, "rb")) if args.input else sys.stdin.buffer
        target = files.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
        first_line = 1
        for chunk in _read_chunks(source, args.input or "<stdin>", args.batch_size * 8):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results = translator.translate(chunk, beam=args.beam, n_best=args.n_best,
                                               batch_size=args.batch_size, first_line=first_line)
            for warning in caught:
                print(f"attnlab: warning: {warning.message}", file=sys.stderr)
            target.write("".join(line + "\n" for r in results for line in _translation_lines(r, args.n_best)))
            target.flush()
            first_line += len(chunk)
    return 0


def _add_translate_command(sub: argparse._SubParsersAction) -> None:
    translate = sub.add_parser(
        "translate", help="translate raw sentences (one per line) with a trained run",
        description="Read raw sentences, one per line, and write one translation per line in the same order "
                    "(an empty line gives an empty line). With --n-best K > 1, each input gives exactly K lines "
                    "'TEXT<TAB>LOG-PROB<TAB>NORMALISED-SCORE', best first; missing hypotheses are written as "
                    "'<TAB>-inf<TAB>-inf'. Input is read and translated in chunks, so any length fits in memory.",
    )  # fmt: skip
    translate.add_argument("run_dir", metavar="RUN_DIR",
                           help="a run directory made by 'attnlab train', or an export made by 'attnlab export'")
    translate.add_argument("--beam", type=int, default=5, help="beam size; 1 is greedy search (default 5)")
    translate.add_argument("--n-best", type=int, default=1, help="translations per input, <= --beam (default 1)")
    translate.add_argument("--input", help="UTF-8 text file, one sentence per line (default stdin)")
    translate.add_argument("--output", help="file to write (default stdout)")
    translate.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    translate.add_argument("--checkpoint", default="best", help="best, last, init or a checkpoint path (default best)")
    _add_backend_args(translate)
    translate.set_defaults(func=cmd_translate)


def _add_backend_args(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and the beam ranking, shared by translate and evaluate."""
    parser.add_argument("--backend", choices=("torch", "ctranslate2"),
                        help="who searches: torch (default for a run directory) or ctranslate2 (default for a "
                             "directory made by 'attnlab export'; a run's Transformer is converted in memory)")
    parser.add_argument("--length-penalty", type=float, metavar="ALPHA",
                        help="beam ranking alpha (default: the run's decode.length_penalty)")
    parser.add_argument("--length-penalty-form", choices=("gnmt", "power"),
                        help="gnmt: log P / ((5 + steps) / 6) ** alpha; power: log P / steps ** alpha, CTranslate2's, "
                             "which both backends search identically (default: the run's decode.length_penalty_form)")


def _add_evaluate_command(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("evaluate", help="translate a split or a file with a trained run and score it")
    evaluate.add_argument("run_dir", help="a run directory (or one of its checkpoints), or an export directory")
    evaluate.add_argument("--split", default="test",
                          help="train, val, test, or a Multi30k split name such as test_2017_flickr")
    evaluate.add_argument("--src", help="raw source file to translate instead of a split")
    evaluate.add_argument("--ref", help="reference translations of --src, one per line")
    evaluate.add_argument("--beam", type=int, help="beam size (default: the run's decode.beam)")
    evaluate.add_argument("--checkpoint", default="best", help="best, last, init, or a checkpoint path")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--data-dir", help="local copy of the corpus, if it moved since training")
    evaluate.add_argument("--json", action="store_true")
    _add_backend_args(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_attention(args: argparse.Namespace) -> int:
    from attnlab.evaluation.attention import FORMATS, attention_report

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--format {args.format!r} is not a comma-separated list of {', '.join(FORMATS)}")
    for flag, value in (("--beam", args.beam), ("--dpi", args.dpi)):
        if value < 1:
            raise ConfigError(f"{flag} is {value}; it must be >= 1")
    report = attention_report(args.run_dir, args.text, reference=args.reference, kind=args.kind,
                              compare_init=args.compare_init, beam=args.beam, formats=formats, out_dir=args.out,
                              checkpoint=args.checkpoint, name=args.name, dpi=args.dpi)
    print(f"source: {' '.join(report.record.src_tokens)}")
    print(f"{'reference (forced)' if report.forced else 'translation'}: {report.target}")
    print("wrote:")
    print("".join(f"  {path}\n" for path in report.files))
    print(report.markdown, end="")
    return 0


def _add_attention_command(sub: argparse._SubParsersAction) -> None:
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from attnlab.experiments.sweep import run_sweep

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
                    "interrupted ones. See experiments/README.md for the suite format.",
    )  # fmt: skip
    sweep.add_argument("suite", metavar="SUITE", help="suite file, e.g. experiments/attention.yaml")
    sweep.add_argument("--seeds", type=int, default=1, help="runs per variant, with train.seed + 0, 1, ... (default 1)")
    sweep.add_argument("--out", help="sweep folder (default runs/sweeps/<suite name>)")
    sweep.add_argument("--jobs", type=int, default=1,
                       help="runs trained at once, each in its own process (default 1; with 2, also give "
                            "--set train.num_threads=1)")
    sweep.add_argument("--reuse", metavar="DIR",
                       help="a folder of earlier sweeps (e.g. runs/sweeps): runs with exactly the same config "
                            "(seed included) are linked from there instead of trained again")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key in every variant, e.g. --set train.epochs=2 (repeatable)")
    sweep.set_defaults(func=cmd_sweep)


def cmd_compare(args: argparse.Namespace) -> int:
    from attnlab.experiments.compare import compare_runs

    names = [n.strip() for n in args.names.split(",")] if args.names else None
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


def cmd_export(args: argparse.Namespace) -> int:
    from attnlab.export import export_run

    out = export_run(args.run_dir, args.out, quantization=args.quantization, checkpoint=args.checkpoint)
    size = sum(path.stat().st_size for path in out.iterdir() if path.name == "model.bin")
    print(f"exported {args.run_dir} ({args.checkpoint} checkpoint) to {out}: CTranslate2, {args.quantization} "
          f"weights, model.bin {size / 1e6:.1f} MB")
    print(f"translate with: attnlab translate {out} < input.txt")
    return 0


def _add_export_command(sub: argparse._SubParsersAction) -> None:
    from attnlab.export.layout import QUANTIZATIONS

    export = sub.add_parser(
        "export", help="export a Transformer run for fast inference (CTranslate2)",
        description="Write a directory holding the run's model in CTranslate2's format plus everything needed to "
                    "translate raw text the way the run does (tokenizer models, vocabularies, normalisation, "
                    "direction, length limits, decode settings) and, for provenance, the run's config, scores and "
                    "file checksums (attnlab_export.json). 'attnlab translate OUT' and 'attnlab evaluate OUT' then "
                    "use CTranslate2. RNN runs are refused: CTranslate2 runs Transformer models only.",
    )  # fmt: skip
    export.add_argument("run_dir", metavar="RUN_DIR", help="a Transformer run directory made by 'attnlab train'")
    export.add_argument("--format", default="ctranslate2", choices=("ctranslate2",), help="export format")
    export.add_argument("--quantization", default="float32", choices=QUANTIZATIONS,
                        help="weight type (default float32; int8 weights take a quarter of the space and "
                             "decode faster on CPUs)")
    export.add_argument("--checkpoint", default="best", help="best, last, init or a checkpoint path (default best)")
    export.add_argument("--out", required=True, help="the export directory (must not exist, or be empty)")
    export.set_defaults(func=cmd_export)


def cmd_serve(args: argparse.Namespace) -> int:
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn", "fastapi_offline") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"attnlab: error: 'attnlab serve' needs {', '.join(missing)}; install them with "
              "pip install 'attnlab[serve]'", file=sys.stderr)
        return 2
    for flag, value, least in (("--workers", args.workers, 1), ("--queue", args.queue, 0),
                               ("--cache-mb", args.cache_mb, 1)):
        if value < least:
            raise ConfigError(f"{flag} is {value}; it must be >= {least}")
    from attnlab.serve.server import ListenError, serve  # imports FastAPI only when serving

    try:
        serve(args.paths or ["runs"], host=args.host, port=args.port, workers=args.workers, queue=args.queue,
              cache_mb=args.cache_mb, log=lambda line: print(line, flush=True))
    except ListenError as err:
        print(f"attnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl-C, then passes the signal on: the normal way out
        pass
    print("attnlab serve: stopped")
    return 0


def _add_serve_command(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="explore runs in the browser: translate, attention, curves, two runs side by side",
        description="Serve a web page and a REST API (documented at /docs) over trained runs: the runs with their "
                    "curves and reports, translation (greedy or beam, n-best), every attention map of a sentence "
                    "(kind, layer, head, layers x heads, forced decoding of a reference, the model at "
                    "initialisation beside the trained one) and two runs side by side. PATH is a run directory, a "
                    "sweep folder or a folder of runs (default runs/). Models load on first use. Everything works "
                    "offline; listening beyond 127.0.0.1 prints a warning, as the server has no authentication.",
    )  # fmt: skip
    serve.add_argument("paths", nargs="*", metavar="PATH", help="run directories or folders of runs (default runs/)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=int, default=2, help="requests that run models at once (default 2)")
    serve.add_argument("--queue", type=int, default=32,
                       help="requests that may wait for a worker; more are refused with 503 (default 32)")
    serve.add_argument("--cache-mb", type=int, default=1024,
                       help="memory for loaded models, least recently used dropped first (default 1024)")
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnlab",
        description="Build, train, compare and look inside seq2seq, attention and Transformer translation models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(sub)
    _add_train_command(sub)
    _add_evaluate_command(sub)
    _add_translate_command(sub)
    _add_export_command(sub)
    _add_attention_command(sub)
    _add_sweep_command(sub)
    _add_compare_command(sub)
    _add_serve_command(sub)
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
