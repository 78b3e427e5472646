"""``attnlab translate``, ``evaluate`` and ``export``: using a trained run (PyTorch or CTranslate2)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TextIO

from attnlab.cli.common import at_least
from attnlab.config import ConfigError
from attnlab.data.corpora import iter_lines
from attnlab.data.errors import DataError

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_evaluate_command(sub)
    _add_translate_command(sub)
    _add_export_command(sub)


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


def _read_chunks(stream: IO[bytes], name: str, size: int) -> Iterator[list[str]]:
    """Lists of at most ``size`` lines, read and decoded as the corpus readers do (UTF-8 named by line, BOM and
    CR endings handled); chunks keep memory bounded however long the input is."""
    chunk: list[str] = []
    for _, line in iter_lines(stream, name):
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_files(source: str | None, target: str | None) -> None:
    """Refuse, before loading anything, an input that is not a file or an output that would destroy one."""
    if source is not None and not Path(source).is_file():
        raise DataError(f"--input {source} {'is a directory' if Path(source).is_dir() else 'does not exist'}")
    if target is None:
        return
    if Path(target).is_dir():
        raise DataError(f"--output {target} is a directory; give a file name")
    if source is not None and Path(target).exists() and os.path.samefile(source, target):
        raise DataError(f"--output {target} is the --input file; translating would overwrite what it reads")


@contextlib.contextmanager
def _output(target: str | None) -> Iterator[TextIO]:
    """stdout, or a file written beside ``target`` and renamed over it at the end: an interrupted run never
    leaves a truncated file, and an existing one is replaced only by a complete translation."""
    if target is None:
        yield sys.stdout
        return
    path = Path(target)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_translate(args: argparse.Namespace) -> int:
    import warnings

    from attnlab.decoding.translator import Translator

    at_least(1, beam=args.beam, n_best=args.n_best, batch_size=args.batch_size)
    if args.n_best > args.beam:
        raise ConfigError(f"--n-best {args.n_best} is larger than --beam {args.beam}; raise --beam")
    _check_files(args.input, args.output)
    translator = Translator.from_run(args.run_dir, checkpoint=args.checkpoint, backend=args.backend)
    if args.length_penalty is not None:
        translator.length_penalty = args.length_penalty
    if args.length_penalty_form is not None:
        translator.length_penalty_form = args.length_penalty_form
    with contextlib.ExitStack() as files:
        source = files.enter_context(open(args.input, "rb")) if args.input else sys.stdin.buffer
        target = files.enter_context(_output(args.output))
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attnlab.evaluation.evaluate import evaluate_run

    if (args.src is None) != (args.ref is None):
        raise ConfigError("--src and --ref go together")
    at_least(1, beam=args.beam, batch_size=args.batch_size)
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
    print(f"BLEU  {scores['bleu_lc_tok']:6.2f}   lower-cased 13a  {scores['bleu_lc_tok_signature']}")
    if "bleu_lc_moses" in scores:
        print(f"BLEU  {scores['bleu_lc_moses']:6.2f}   lower-cased, Moses-tokenised (the Multi30k papers' convention)  "
              f"{scores['bleu_lc_moses_signature']}")
    print(f"wrote {scores['output_dir']}/hyps.txt and scores.json")
    return 0


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


def cmd_export(args: argparse.Namespace) -> int:
    from attnlab.export.ctranslate2 import export_run

    out = export_run(args.run_dir, args.out, quantization=args.quantization, checkpoint=args.checkpoint)
    size = sum(path.stat().st_size for path in out.iterdir() if path.name == "model.bin")
    print(f"exported {args.run_dir} ({args.checkpoint} checkpoint) to {out}: CTranslate2, {args.quantization} "
          f"weights, model.bin {size / 1e6:.1f} MB")
    print(f"translate with: attnlab translate {out} < input.txt")
    return 0


def _add_export_command(sub: argparse._SubParsersAction) -> None:
    from attnlab.decoding.export_layout import QUANTIZATIONS

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


