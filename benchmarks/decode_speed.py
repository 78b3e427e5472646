"""Decoding speed of a trained Transformer run on each backend, side by side in one run.

PyTorch (attnlab's own search), CTranslate2 float32 and CTranslate2 int8, greedy and beam 5, one and
two threads, on the source side of the Multi30k test_2016_flickr split (1,000 sentences): raw text
through :class:`attnlab.decoding.translator.Translator` (normalisation, tokenisation, search,
detokenisation all included), batches of 64. Every configuration is timed once per round, rounds
interleaved (so a machine that gets busier slows every configuration alike), and the median printed
with cased sacreBLEU and the share of sentences translated exactly as PyTorch did::

    python benchmarks/decode_speed.py --run runs/multi30k-transformer --rounds 3

The CTranslate2 models are exported from the run into a temporary directory, as ``attnlab export``
does. Every backend ranks beam hypotheses the same way: ``--length-penalty-form power`` (the
default here) is the ranking CTranslate2 and attnlab search identically; with ``gnmt`` CTranslate2
re-ranks its hypotheses instead. ``--one-at-a-time N`` adds PyTorch at batch size 1 on the first N
sentences (one thread) and checks that batching did not change their translations.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from attnlab.decoding.translator import Translator
from attnlab.evaluation.evaluate import split_texts
from attnlab.evaluation.scores import score_corpus
from attnlab.export.ctranslate2 import export_run

DEFAULT_DATA = os.environ.get("ATTNLAB_DATA", "../shared/data/multi30k")  # from the project root
PEER_BEAM5 = 9.1  # Joey NMT, beam 5, sentences/s on this machine class (../shared/BENCHMARKS.md)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a trained Transformer run directory (Multi30k)")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--data-dir", default=DEFAULT_DATA, help="local Multi30k copy (default %(default)s)")
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--beams", default="1,5", help="beam sizes to measure; 1 is greedy (default %(default)s)")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are printed")
    parser.add_argument("--length-penalty", type=float, help="beam ranking alpha (default: the run's)")
    parser.add_argument("--length-penalty-form", default="power", choices=("gnmt", "power"))
    parser.add_argument("--one-at-a-time", type=int, default=0, metavar="N",
                        help="also time PyTorch at batch size 1 on the first N sentences (default 0: not)")
    return parser.parse_args()


@dataclass
class Backend:
    name: str
    threads: int
    translator: Translator


def timed(translator: Translator, sentences: list[str], beam: int, batch_size: int) -> tuple[float, list[str]]:
    """Seconds to translate ``sentences``, and the translations."""
    start = time.perf_counter()
    results = translator.translate(sentences, beam=beam, batch_size=batch_size)
    return time.perf_counter() - start, [r.text for r in results]


def load_backends(args: argparse.Namespace, folder: Path, threads: list[int]) -> list[Backend]:
    """PyTorch once (its threads are set before each measurement), each CTranslate2 model once per thread count."""
    pytorch = Translator.from_run(args.run, checkpoint=args.checkpoint, device="cpu")
    backends = [Backend("PyTorch", t, pytorch) for t in threads]
    for quantization in ("float32", "int8"):
        export = export_run(args.run, folder / quantization, quantization=quantization, checkpoint=args.checkpoint)
        backends += [Backend(f"CT2 {quantization}", t, Translator.from_run(export, threads=t)) for t in threads]
    for backend in backends:
        translator = backend.translator
        translator.length_penalty_form = args.length_penalty_form
        if args.length_penalty is not None:
            translator.length_penalty = args.length_penalty
    return backends


def run_rounds(backends: list[Backend], sentences: list[str], beams: list[int], args: argparse.Namespace) -> dict:
    """``{(backend, threads, beam): (seconds per round, outputs)}``, every configuration once per round."""
    results: dict = {}
    for round_ in range(args.rounds + 1):  # round 0 warms up: first calls allocate and dispatch slowly
        for beam in beams:
            for backend in backends:
                torch.set_num_threads(backend.threads)  # CTranslate2 keeps the count it was loaded with
                batch = sentences[:16] if round_ == 0 else sentences
                seconds, outputs = timed(backend.translator, batch, beam, args.batch_size)
                if round_:
                    times, _ = results.setdefault((backend.name, backend.threads, beam), ([], None))
                    results[backend.name, backend.threads, beam] = (times + [seconds], outputs)
    return results


def report(results: dict, sentences: list[str], references: list[str]) -> dict:
    """Print one row per configuration; return ``{key: (sentences/s, BLEU)}``."""
    print(f"{'threads':>7} {'search':>7} {'backend':<12} {'sent/s':>8} {'x PyTorch':>9} {'BLEU':>6} "
          f"{'same as PyTorch':>15}")
    rows = {}
    for (name, threads, beam), (times, outputs) in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        speed = len(sentences) / statistics.median(times)
        base_times, base_outputs = results["PyTorch", threads, beam]
        same = sum(a == b for a, b in zip(outputs, base_outputs, strict=True)) / len(outputs)
        bleu = score_corpus(outputs, references)["bleu"]
        rows[name, threads, beam] = (speed, bleu)
        search = "greedy" if beam == 1 else f"beam {beam}"
        print(f"{threads:>7} {search:>7} {name:<12} {speed:8.1f} "
              f"{speed / (len(sentences) / statistics.median(base_times)):8.2f}x {bleu:6.2f} {same:14.1%}")
    return rows


def one_at_a_time(translator: Translator, sentences: list[str], beams: list[int], batch_size: int) -> None:
    """PyTorch at batch size 1 against batched decoding, one thread, on ``sentences``."""
    torch.set_num_threads(1)
    print(f"\nPyTorch, one thread, the first {len(sentences)} sentences: batched ({batch_size}) vs one at a time")
    for beam in beams:
        timed(translator, sentences[:8], beam, 1)
        batched_s, batched = timed(translator, sentences, beam, batch_size)
        single_s, single = timed(translator, sentences, beam, 1)
        print(f"{'greedy' if beam == 1 else f'beam {beam}':>7}: {len(sentences) / batched_s:7.1f} vs "
              f"{len(sentences) / single_s:7.1f} sent/s; same outputs: {'yes' if batched == single else 'NO'}")


def main() -> None:
    args = parse_args()
    beams, threads = [int(b) for b in args.beams.split(",")], [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory(prefix="attnlab-decode-speed-") as folder:
        backends = load_backends(args, Path(folder), threads)
        cfg = backends[0].translator.cfg
        assert cfg is not None
        cfg = replace(cfg, data=replace(cfg.data, data_dir=args.data_dir))
        sentences, references = split_texts(cfg, args.split)
        ranking = f"{backends[0].translator.length_penalty_form} {backends[0].translator.length_penalty}"
        print(f"run {args.run} ({args.checkpoint}); {args.split}.{cfg.data.src_lang}: {len(sentences)} sentences, "
              f"batch size {args.batch_size}; medians of {args.rounds} interleaved rounds; beam ranking {ranking}; "
              f"cased sacreBLEU")
        rows = report(run_rounds(backends, sentences, beams, args), sentences, references)
        if args.one_at_a_time:
            one_at_a_time(backends[0].translator, sentences[: args.one_at_a_time], beams, args.batch_size)
    for t in threads:
        if ("CT2 int8", t, 5) in rows:
            speed, bleu = rows["CT2 int8", t, 5]
            print(f"CT2 int8 beam 5, {t} thread(s): {speed / PEER_BEAM5:.1f}x the peer's {PEER_BEAM5} sent/s "
                  f"(target 10x); BLEU {bleu - rows['PyTorch', t, 5][1]:+.2f} vs PyTorch float32 (target: within 0.5)")


if __name__ == "__main__":
    main()
