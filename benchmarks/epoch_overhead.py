"""Where a Transformer epoch's time goes outside its training steps: validation, snapshots, checkpoints.

A run's ``perf.csv`` has two clocks per epoch: ``perf/epoch_time_s`` (first batch to the end of the
epoch, validation and checkpoint included) and ``perf/train_time_s`` (inside the training steps). On
the 9.6M Multi30k config they differ by about 19 s of 247. This script times the pieces of that
difference one by one, on a trained run's own model and validation split, in interleaved rounds:

- ``val loss``: the teacher-forced loss pass over the validation batches (as ``validation_step``);
- ``greedy, val batches``: greedy decoding of every scored validation source in those same batches
  (the run's ``train.batch_tokens``), which is what training does;
- ``greedy, N sentences``: the same sources decoded in length-sorted batches of N sentences;
- ``attention snapshots``: drawing ``train.attention_snapshots`` sentences' cross-attention to PNG;
- ``checkpoint``: ``last.ckpt``'s size written atomically (fsync), and its copy to ``best.ckpt``.

Printed: the median seconds of each piece, its share of the run's median epoch, and whether the
larger batches translated every sentence as the validation batches did (they may not, by float
rounding: a different batch is a different matrix product)::

    python benchmarks/epoch_overhead.py --run RUN_DIR --data-cache PREPARED --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from attnlab.checkpoints import atomic_torch_save, atomic_write
from attnlab.data.batching import collate, make_batches
from attnlab.data.cache import cached_prepare
from attnlab.decoding.greedy import greedy_decode
from attnlab.decoding.translator import Translator
from attnlab.rundir import read_rows
from attnlab.training.attention_snapshots import AttentionSnapshots
from attnlab.training.generator_loss import chunked_generator_loss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a trained Transformer run directory")
    parser.add_argument("--data-cache", required=True, help="the prepared-data cache the run trained from")
    parser.add_argument("--data-dir", help="the corpus folder, if not the one in the run's config")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="sentences per batch to try")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def val_loss(model, batches) -> float:
    total = 0.0
    for batch in batches:
        total += float(chunked_generator_loss(model.hidden_states(batch), model.generator, batch.tgt_out, 0.0))
    return total


def greedy(model, batches, max_len_ratio: float, max_len: int, scored: int) -> dict[int, list[int]]:
    """Translate the rows of the first ``scored`` pairs, batch by batch, as ``validation_step`` does."""
    out = {}
    for batch in batches:
        rows = batch.indices < scored
        hypotheses = greedy_decode(model, batch.src[rows], batch.src_lengths[rows], max_len_ratio, max_len)
        out.update({i: h.tokens for i, h in zip(batch.indices[rows].tolist(), hypotheses, strict=True)})
    return out


def checkpoint(state: dict, folder: Path) -> None:
    """What ``RunCheckpoints`` writes after an improving validation: ``last.ckpt``, then its copy as ``best.ckpt``."""
    atomic_torch_save(state, folder / "last.ckpt")
    with open(folder / "last.ckpt", "rb") as source:
        atomic_write(folder / "best.ckpt", lambda target: shutil.copyfileobj(source, target))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    translator = Translator.from_run(args.run, checkpoint="last")
    model, cfg = translator.model, translator.cfg
    if args.data_dir:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=args.data_dir))
    data = cached_prepare(cfg.data, args.data_cache)
    pairs = data.encoded["val"]
    scored = min(len(pairs), cfg.train.val_bleu_sentences or len(pairs))  # the first ones, as in training
    val_batches = [collate(pairs, rows) for rows in make_batches(pairs, cfg.train.batch_tokens,
                                                                 cfg.train.batch_size, shuffle=False)]
    first = [pairs[i] for i in range(scored)]  # positions among the first pairs are positions in the split
    sized = {n: [collate(pairs, rows) for rows in make_batches(first, batch_size=n, shuffle=False)] for n in args.sizes}
    ratio, longest = cfg.decode.max_len_ratio, cfg.decode.max_len
    weights = model.state_dict()
    state = {"state_dict": weights, "current_model_state": {k: v.clone() for k, v in weights.items()},
             "optimizer": [torch.zeros_like(p) for p in model.parameters() for _ in "mv"]}  # AdamW's two moments
    with tempfile.TemporaryDirectory() as folder:
        snapshots = AttentionSnapshots(Path(folder) / "attention", pairs, data.src_vocab, data.tgt_vocab,
                                       max(cfg.train.attention_snapshots, 1))
        jobs = {"val loss": lambda: val_loss(model, val_batches),
                f"greedy, val batches ({cfg.train.batch_tokens} tokens, {len(val_batches)})":
                    lambda: greedy(model, val_batches, ratio, longest, scored),
                **{f"greedy, {n} sentences ({len(b)})": (lambda b=b: greedy(model, b, ratio, longest, scored))
                   for n, b in sized.items()},
                "attention snapshots": lambda: snapshots.write(model, "bench"),
                "checkpoint (last + copy to best)": lambda: checkpoint(state, Path(folder))}
        times: dict[str, list[float]] = {name: [] for name in jobs}
        outputs: dict[str, object] = {}
        with torch.inference_mode():
            for _ in range(args.rounds):
                for name, job in jobs.items():
                    start = time.perf_counter()
                    outputs[name] = job()
                    times[name].append(time.perf_counter() - start)
        size = (Path(folder) / "last.ckpt").stat().st_size
    perf = [(float(r["perf/epoch_time_s"]), float(r["perf/train_time_s"]))
            for r in read_rows(Path(args.run) / "perf.csv", "perf file")]
    whole = [(e, s) for e, s in perf if s > 0.5 * max(s for _, s in perf)]  # not an epoch the budget cut short
    epoch = statistics.median(e for e, _ in whole)
    outside = statistics.median(e - s for e, s in whole)
    print(f"run {args.run}: median epoch {epoch:.1f} s, of which {outside:.1f} s outside the training steps "
          f"({len(whole)} whole epochs in perf.csv); {scored} scored val sentences; "
          f"{args.threads} threads, {args.rounds} rounds; checkpoint {size / 2**20:.0f} MB")
    reference = next(v for k, v in outputs.items() if k.startswith("greedy, val"))
    for name, values in times.items():
        median = statistics.median(values)
        same = ""
        if name.startswith("greedy") and outputs[name] is not reference:
            agree = sum(outputs[name][i] == reference[i] for i in reference) / len(reference)
            same = f"  same output as val batches: {agree:.1%}"
        print(f"{name:44s} {median:7.2f} s  {median / epoch:6.1%} of an epoch{same}")


if __name__ == "__main__":
    main()
