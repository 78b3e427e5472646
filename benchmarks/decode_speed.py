"""Decoding speed of a trained run: greedy and beam search, batched against one sentence at a time.

Source side of the Multi30k test_2016_flickr split (1,000 sentences), raw text through
:class:`attnlab.decoding.translator.Translator` (normalisation, tokenisation, search, detokenisation
all included). Batched decoding translates every sentence; one-at-a-time decoding (batch size 1)
translates only the first ``--subset`` sentences, and the speeds compare sentences per second. Each
measurement is repeated and the median printed::

    python benchmarks/decode_speed.py --run runs/multi30k-transformer --repeats 3 --subset 100

It also checks that batching did not change the translations of the subset. One torch thread by
default (``--threads``): on a busy 2-core machine two intra-op threads made tiny-model decoding tens of
times slower, waiting on each other at every small op.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from attnlab.config import load_config
from attnlab.data.corpora import read_multi30k
from attnlab.decoding.translator import Translator

DEFAULT_DATA = os.environ.get("ATTNLAB_DATA", "../shared/data/multi30k")  # from the project root


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a trained run directory (Multi30k, any architecture)")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--data-dir", default=DEFAULT_DATA, help="local Multi30k copy (default %(default)s)")
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--beams", default="1,5", help="beam sizes to measure; 1 is greedy (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--subset", type=int, default=100, help="sentences decoded one at a time (default 100)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: a decoding step is many small ops, and on a shared "
                             "machine a second intra-op thread mostly waits; 0 keeps torch's choice)")
    return parser.parse_args()


def timed(translator: Translator, sentences: list[str], beam: int, batch_size: int) -> tuple[float, list[str]]:
    """Seconds to translate ``sentences``, and the translations."""
    start = time.perf_counter()
    results = translator.translate(sentences, beam=beam, batch_size=batch_size)
    return time.perf_counter() - start, [r.text for r in results]


def measure(translator: Translator, sentences: list[str], beam: int, batch_size: int, repeats: int) -> dict:
    """Median sentences per second over ``repeats`` runs, and the last run's outputs."""
    timed(translator, sentences[:8], beam, batch_size)  # warm-up: first calls allocate and dispatch slowly
    seconds, outputs = [], []
    for _ in range(repeats):
        elapsed, outputs = timed(translator, sentences, beam, batch_size)
        seconds.append(elapsed)
    median = statistics.median(seconds)
    return {"sent_per_s": len(sentences) / median, "seconds": median, "outputs": outputs}


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    translator = Translator.from_run(args.run, checkpoint=args.checkpoint, device="cpu")
    data = load_config(Path(args.run) / "config.yaml").data
    sentences = [src for src, _ in read_multi30k(args.split, data.src_lang, data.tgt_lang, args.data_dir).pairs]
    subset = sentences[: args.subset]
    print(f"run {args.run} ({args.checkpoint}); {args.split}.{data.src_lang}: {len(sentences)} sentences; "
          f"torch threads {torch.get_num_threads()}; medians of {args.repeats} repeats")
    print(f"batched: all {len(sentences)} sentences, batch size {args.batch_size}; "
          f"one at a time: the first {len(subset)} sentences only")
    print(f"{'search':>8} {'batched sent/s':>15} {'one-at-a-time sent/s':>21} {'ratio':>7}  same outputs on subset")
    for beam in (int(b) for b in args.beams.split(",")):
        batched = measure(translator, sentences, beam, args.batch_size, args.repeats)
        single = measure(translator, subset, beam, 1, args.repeats)
        same = batched["outputs"][: len(subset)] == single["outputs"]
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(f"{name:>8} {batched['sent_per_s']:15.1f} {single['sent_per_s']:21.1f} "
              f"{batched['sent_per_s'] / single['sent_per_s']:6.1f}x  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
