"""Memory and time of data preparation and of training as the corpus grows (issue 18).

A synthetic parallel corpus of N pairs is made from Multi30k's training pairs, repeated with a
suffix on both sides (" r<k>") so that no pair is a duplicate; then, each in a fresh process:

1. ``prepare``: attnlab's streaming preparation of the corpus (``--normalize none``, ``--max-len 100``,
   word tokens), with the wall time of each stage (text: read, normalise, filter, split and
   deduplicate; vocab; encode) and the peak RSS so far at its end (the process's and its worker
   processes');
2. ``train``: ``attnlab train`` for a few hundred steps of a small Transformer (d_model 64: the
   model's share of memory is not what is measured) on that prepared data
   (``--data-cache``), with the process's peak RSS. The same training on 100,000 pairs gives the
   model's own needs; the difference is what the corpus costs. (No validation runs within these
   steps: an epoch of the smallest corpus is longer.)

``--old PATH`` also prepares the smallest size with an older attnlab checkout (``PATH/src``) in the
same run, for the per-pair speed and memory before the streaming rewrite.

    python benchmarks/prepare_scale.py --sizes 1000000 5000000 --steps 200 [--old /path/to/old/checkout]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"

PREPARE = r"""
import json, resource, sys, time
from attnlab.config import load_config
from attnlab.data.cache import cached_prepare
stages, started = [], time.perf_counter()
def rss():
    usage = resource.getrusage
    return max(usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
def progress(stage):
    stages.append((stage, time.perf_counter() - started, rss()))
cfg = load_config(None, sys.argv[2:])
cached_prepare(cfg.data, sys.argv[1], progress=progress)
print(json.dumps(stages))
"""

PREPARE_OLD = r"""
import json, resource, sys, time
from attnlab.config import load_config
from attnlab.data.prepare import prepare_data
started = time.perf_counter()
cfg = load_config(None, sys.argv[1:])
data = prepare_data(cfg.data)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps([["done", time.perf_counter() - started, rss]]))
"""


def make_corpus(folder: Path, pairs: int) -> tuple[Path, Path]:
    """``pairs`` lines from Multi30k's training pairs, repeated with a distinguishing suffix."""
    with gzip.open(MULTI30K / "train.en.gz", "rt", encoding="utf-8") as handle:
        src = handle.read().splitlines()
    with gzip.open(MULTI30K / "train.fr.gz", "rt", encoding="utf-8") as handle:
        tgt = handle.read().splitlines()
    paths = folder / f"corpus-{pairs}.en", folder / f"corpus-{pairs}.fr"
    if paths[0].exists():
        return paths
    with open(paths[0], "w", encoding="utf-8") as out_src, open(paths[1], "w", encoding="utf-8") as out_tgt:
        for start in range(0, pairs, len(src)):
            k = start // len(src)
            count = min(len(src), pairs - start)
            out_src.write("".join(f"{s} r{k}\n" for s in src[:count]))
            out_tgt.write("".join(f"{t} r{k}\n" for t in tgt[:count]))
    return paths


def data_overrides(src: Path, tgt: Path) -> list[str]:
    return ["data.corpus=files", f"data.src_file={src}", f"data.tgt_file={tgt}", "data.normalize=none",
            "data.max_len=100", "data.min_freq=2", "data.val_ratio=0.001", "data.test_ratio=0.001"]


def run_child(script: str, args: list[str], pythonpath: Path | None = None) -> tuple[list, float]:
    """Run a Python snippet in a fresh process; its printed stages and the process tree's peak RSS (MB)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else dict(os.environ)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(out.stdout.strip().splitlines()[-1]), max(after, before) / 1024


def train_peak(cache: Path, src: Path, tgt: Path, steps: int, folder: Path) -> float:
    """Peak RSS (MB) of 'attnlab train' for ``steps`` steps on the prepared data of that corpus."""
    args = [arg for o in data_overrides(src, tgt) + [
        "model.arch=transformer", "model.d_model=64", "model.heads=2", "model.ffn_dim=128",
        "model.enc_layers=1", "model.dec_layers=1", "model.max_positions=128", f"train.max_steps={steps}",
        "train.batch_tokens=2048", "train.logger=csv", "train.attention_snapshots=0", "train.num_threads=1",
        "train.val_bleu_sentences=100", "train.log_every=50"] for arg in ("--set", o)]
    config = folder / "empty.yaml"
    config.write_text("{}\n")
    run_dir = folder / f"run-{src.stem}-{time.time_ns()}"
    command = [sys.executable, "-m", "attnlab", "train", str(config), *args, "--run-dir", str(run_dir),
               "--data-cache", str(cache)]
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
               "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def report(label: str, pairs: int, stages: list) -> None:
    """``stages``: (name, seconds since the start, peak RSS so far) as each stage starts, then ("done", ...)."""
    parts = [f"{name} {end - start:6.1f} s / peak {rss:7,.0f} MB"
             for (name, start, _), (_, end, rss) in zip(stages, stages[1:], strict=False)]
    total = stages[-1][1]
    print(f"{label:<8} {pairs:>10,} pairs  total {total:6.1f} s ({total / pairs * 1e6:5.1f} s per million)  "
          f"peak {max(r for _, _, r in stages):7,.0f} MB   | " + " | ".join(parts), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--steps", type=int, default=200, help="training steps per measurement")
    parser.add_argument("--old", type=Path, help="an older attnlab checkout to prepare the smallest size with")
    parser.add_argument("--folder", type=Path, help="where corpora and prepared data go (default: a temporary one)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="attnlab-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; files in {folder}", flush=True)
    small = make_corpus(folder, 100_000)
    run_child(PREPARE, [str(folder / "cache"), *data_overrides(*small)])
    baseline = train_peak(folder / "cache", *small, args.steps, folder)
    print(f"training {args.steps} steps on 100,000 pairs (the model's own needs): peak {baseline:,.0f} MB",
          flush=True)
    for pairs in args.sizes:
        src, tgt = make_corpus(folder, pairs)
        stages, _ = run_child(PREPARE, [str(folder / "cache"), *data_overrides(src, tgt)])
        report("attnlab", pairs, stages)
        if args.old is not None and pairs == min(args.sizes):
            old, _ = run_child(PREPARE_OLD, data_overrides(src, tgt), pythonpath=args.old / "src")
            report("before", pairs, old)
        peak = train_peak(folder / "cache", src, tgt, args.steps, folder)
        print(f"training {args.steps} steps on {pairs:,} pairs: peak {peak:,.0f} MB ({peak - baseline:+,.0f} MB over "
              "the model's own needs)", flush=True)


if __name__ == "__main__":
    main()
