"""Why CTranslate2 beam search is slower on two threads than on one through attnlab, on this machine.

attnlab's CTranslate2 backend gives every source its own output limit (``ceil(1.5 * source length) +
5``, as the PyTorch search does), and CTranslate2 takes one ``max_decoding_length`` per call, so a
batch is split into one ``translate_batch`` call per distinct limit. This script decodes the source
side of a Multi30k split with an exported model, beam 5, and times, in interleaved rounds, for one
and two threads:

- ``attnlab search``: the backend's own search (batches of 64, longest first, split by limit);
- ``one call per batch``: the same batches, with the same options, in one call each, at the batch's
  largest limit (not attnlab's search: a sentence whose own limit is smaller may be searched longer).

::

    python benchmarks/ct2_threads.py --export EXPORT_DIR --rounds 3

Prints sentences/s (medians), the number of calls and the mean rows per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import torch

from attnlab.decoding.beam import LengthNorm
from attnlab.decoding.ctranslate2_backend import _options
from attnlab.decoding.greedy import length_limits
from attnlab.decoding.translator import Translator
from attnlab.evaluation.evaluate import split_texts

DEFAULT_DATA = os.environ.get("ATTNLAB_DATA", "../shared/data/multi30k")  # from the project root


Batches = list[tuple[list[list[int]], list[int]]]  # (source ids, each source's output limit)


def attnlab_search(translator: Translator, batches: Batches, beam: int) -> None:
    norm = LengthNorm(translator.length_penalty, translator.length_penalty_form)
    for batch, _ in batches:
        translator.fast_search.search(batch, beam, 1, norm, translator.max_len_ratio, translator.max_len)


def one_call_per_batch(translator: Translator, batches: Batches, beam: int) -> None:
    norm = LengthNorm(translator.length_penalty, translator.length_penalty_form)
    search = translator.fast_search
    for batch, limits in batches:
        search.engine.translate_batch([[search.src_itos[i] for i in ids] for ids in batch],
                                      **_options(beam, 1, norm, max(limits)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", required=True, help="a CTranslate2 export of a Transformer run")
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    translators = {t: Translator.from_run(args.export, threads=t) for t in (1, 2)}
    for translator in translators.values():
        translator.length_penalty_form = "power"
    reader = translators[1]
    cfg = reader.cfg
    sources, _ = split_texts(replace(cfg, data=replace(cfg.data, data_dir=args.data_dir)), args.split)
    ids = sorted((reader.read_source(s, i).src_ids for i, s in enumerate(sources)), key=len, reverse=True)
    ids = [row for row in ids if row]  # an empty source is answered without a search
    batches = []
    for start in range(0, len(ids), 64):
        batch = ids[start: start + 64]
        limits = length_limits(torch.tensor([len(row) for row in batch]), reader.max_len_ratio, reader.max_len)
        batches.append((batch, limits.tolist()))
    ways = {"attnlab search": attnlab_search, "one call per batch": one_call_per_batch}
    calls = {"attnlab search": sum(len(set(limits)) for _, limits in batches), "one call per batch": len(batches)}
    times: dict[tuple[str, int], list[float]] = {}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, way in ways.items():
            for threads, translator in translators.items():
                start = time.perf_counter()
                way(translator, batches if round_ else batches[:1], args.beam)
                if round_:
                    times.setdefault((name, threads), []).append(time.perf_counter() - start)
    print(f"{args.split}: {len(ids)} sentences, beam {args.beam}, batches of 64, medians of {args.rounds} rounds")
    print(f"{'way':<20} {'threads':>7} {'sent/s':>8} {'calls':>6} {'rows/call':>9}")
    for (name, threads), seconds in times.items():
        print(f"{name:<20} {threads:>7} {len(ids) / statistics.median(seconds):8.1f} {calls[name]:>6} "
              f"{len(ids) / calls[name]:9.1f}")
    print(f"(load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
