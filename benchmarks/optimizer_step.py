"""The optimiser step of a config's model: torch's fused kernel against the for-loop step.

attnlab steps Adam, AdamW and SGD with torch's fused kernel (one pass over every weight) where the
parameters allow it (``attnlab.training.optim.build_optimizer``); the for-loop step runs under mixed
precision with gradient clipping. This script builds a config's model, gives every parameter a
gradient, and times both steps in interleaved rounds, with the other per-step work on the weights
beside them (gradient clipping, the moving average's update), and prints medians and the ratio::

    python benchmarks/optimizer_step.py --config configs/multi30k-transformer.yaml --rounds 7 --threads 2

Vocabularies are the config's ``vocab_size`` on both sides (shared SentencePiece in the Multi30k configs).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

from attnlab.config import load_config
from attnlab.models.build import build_model
from attnlab.training.optim import build_optimizer


def seconds(work, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/multi30k-transformer.yaml")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved measuring rounds")
    parser.add_argument("--repeats", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    vocab = cfg.data.vocab_size
    steps, params = {}, {}
    for name, fused in (("fused", True), ("for-loop", False)):
        torch.manual_seed(0)
        params[name] = list(build_model(cfg.model, vocab, vocab).parameters())
        for p in params[name]:
            p.grad = torch.randn_like(p) * 1e-3
        steps[name] = build_optimizer(params[name], cfg.train, fused=fused)
    weights = params["for-loop"]
    average = [p.detach().clone() for p in weights]
    ema = get_ema_multi_avg_fn(cfg.train.ema_decay or 0.998)
    work = {f"{cfg.train.optimizer} step, {name}": optimizer.step for name, optimizer in steps.items()}
    work["gradient clipping (norm)"] = lambda: torch.nn.utils.clip_grad_norm_(weights, 1e9)
    work["moving average update"] = lambda: ema(average, [p.detach() for p in weights], 10)
    times = {name: [] for name in work}
    for _ in range(args.rounds):
        for name, step in work.items():
            times[name].append(seconds(step, args.repeats))
    count = sum(p.numel() for p in weights)
    print(f"{args.config}: {count / 1e6:.2f}M parameters in {len(weights)} tensors, {args.threads} threads, "
          f"{args.rounds} rounds x {args.repeats} steps, medians")
    for name, values in times.items():
        print(f"  {name:<32} {statistics.median(values) * 1e3:7.2f} ms  ({min(values) * 1e3:.2f}-"
              f"{max(values) * 1e3:.2f})")
    fused, loop = (statistics.median(times[f"{cfg.train.optimizer} step, {n}"]) for n in ("fused", "for-loop"))
    print(f"fused / for-loop: {fused / loop:.2f}x the time ({loop / fused:.1f}x faster)")


if __name__ == "__main__":
    main()
