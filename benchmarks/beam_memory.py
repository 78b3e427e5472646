"""Beam search with a sentence's encoder memory shared by its beams, against copying it to every beam.

Until issue 17, beam search copied each sentence's encoder memory and every layer's cross-attention
keys and values to its K beam rows, and copied them again on every step when it followed the
backpointers (``share_memory=False`` still does). Now the K rows of a sentence share one copy: the
decoder's cross-attention reads them as K queries of one row. This script decodes the source side of
a Multi30k split with a trained Transformer run both ways, in interleaved rounds, and prints
sentences/s (medians), the speed-up, and whether the translations are the same::

    python benchmarks/beam_memory.py --run RUN_DIR --rounds 3 --threads 1

Sources are read as the Translator reads them (normalised, tokenised); batches of 64, longest first,
the run's length penalty. Only the search is timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import torch

from attnlab.decoding.beam import beam_search
from attnlab.decoding.translator import Translator
from attnlab.evaluation.evaluate import split_texts

DEFAULT_DATA = os.environ.get("ATTNLAB_DATA", "../shared/data/multi30k")  # from the project root


def batches(translator: Translator, sentences: list[str], size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(src (B, S), lengths (B,)) batches of the encoded sentences, longest first, as the Translator makes them."""
    ids = sorted((translator.read_source(s, i).src_ids for i, s in enumerate(sentences)), key=len, reverse=True)
    out = []
    for start in range(0, len(ids), size):
        chunk = [row for row in ids[start : start + size] if row]
        lengths = torch.tensor([len(row) for row in chunk])
        src = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long)
        for r, row in enumerate(chunk):
            src[r, : len(row)] = torch.tensor(row)
        out.append((src, lengths))
    return out


def decode(translator: Translator, work: list, beam: int, share: bool) -> tuple[float, list[list[int]]]:
    """Seconds to search every batch, and the best hypothesis' tokens per sentence."""
    outputs = []
    start = time.perf_counter()
    for src, lengths in work:
        found = beam_search(translator.model, src, lengths, beam, 1, translator.length_penalty,
                            translator.max_len_ratio, translator.max_len,
                            length_penalty_form=translator.length_penalty_form, share_memory=share)
        outputs += [hypotheses[0].tokens for hypotheses in found]
    return time.perf_counter() - start, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a trained Transformer run directory (Multi30k)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    translator = Translator.from_run(args.run)
    cfg = replace(translator.cfg, data=replace(translator.cfg.data, data_dir=args.data_dir))
    sources, _ = split_texts(cfg, args.split)
    work = batches(translator, sources, args.batch_size)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    outputs: dict[bool, list[list[int]]] = {}
    with torch.inference_mode():
        decode(translator, work[:1], args.beam, True)  # warm-up
        for _ in range(args.rounds):
            for share in (False, True):
                elapsed, outputs[share] = decode(translator, work, args.beam, share)
                seconds[share].append(elapsed)
    n = sum(len(lengths) for _, lengths in work)
    copied, shared = statistics.median(seconds[False]), statistics.median(seconds[True])
    same = sum(a == b for a, b in zip(outputs[False], outputs[True], strict=True)) / n
    print(f"{args.run}: {args.split}, {n} sentences, beam {args.beam}, batches of {args.batch_size}, "
          f"{args.threads} thread(s), medians of {args.rounds} interleaved rounds")
    print(f"  memory copied to every beam (before): {n / copied:7.1f} sentences/s")
    print(f"  memory shared by a sentence's beams:  {n / shared:7.1f} sentences/s   {copied / shared:.2f}x")
    print(f"  same translations: {same:.1%}   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
