"""Training throughput of the shipped Multi30k configs, and model FLOPs utilisation (MFU).

Measured in one run on real Multi30k en->fr batches (the configs' own SentencePiece data and
token-budget batching): the Transformer config in fp32 and in bf16-mixed, and the RNN config.
Variants are measured in interleaved rounds, so drift on a shared machine hits all of them alike;
medians are printed. One step = forward, loss, backward, gradient clipping, optimiser step, exactly
what the training system runs per batch (validation excluded).

MFU = model FLOPs per second (counted with torch's FlopCounterMode on the same batches) divided by
this machine's measured matrix-multiply peak (2048x2048 ``torch.matmul``) in the same precision::

    python benchmarks/train_throughput.py --data-dir ../shared/data/multi30k
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from torch.utils.flop_counter import FlopCounterMode

from attnlab.config import load_config
from attnlab.data.batching import collate, make_batches, padding_share
from attnlab.data.prepare import prepare_data
from attnlab.models.build import build_model
from attnlab.training.losses import sequence_loss
from attnlab.training.optim import build_optimizer


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Median FLOP/s of a square matmul in ``dtype``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


class Variant:
    """A model, its optimiser and batches, stepped under one precision."""

    def __init__(self, name: str, config: str, precision: str, data_dir: str, batches: int, seed: int):
        cfg = load_config(config, [f"data.data_dir={data_dir}"])
        self.name, self.cfg, self.precision = name, cfg, precision
        data = prepare_data(cfg.data)
        train = data.encoded["train"]
        groups = make_batches(train, cfg.train.batch_tokens, cfg.train.batch_size, seed=seed)
        self.padding = padding_share(train, groups)
        self.batches = [collate(train, g) for g in groups[:batches]]
        torch.manual_seed(seed)
        self.model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab))
        self.optimizer = build_optimizer(list(self.model.parameters()), cfg.train)
        self.cursor = 0

    def autocast(self):
        if self.precision == "bf16-mixed":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def step(self, batch) -> None:
        with self.autocast():
            out = self.model(batch)
            loss = sequence_loss(out.logits, batch.tgt_out, self.cfg.train.label_smoothing) / batch.num_tgt_tokens
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip or 1e9)
        self.optimizer.step()

    def run(self, steps: int) -> tuple[float, int]:
        """Seconds and target tokens for the next ``steps`` batches."""
        tokens, start = 0, time.perf_counter()
        for _ in range(steps):
            batch = self.batches[self.cursor % len(self.batches)]
            self.cursor += 1
            self.step(batch)
            tokens += batch.num_tgt_tokens
        return time.perf_counter() - start, tokens

    def flops_per_token(self, count: int = 3) -> float:
        """Model FLOPs (forward + backward) per target token, counted on a few batches."""
        flops = tokens = 0
        for batch in self.batches[:count]:
            counter = FlopCounterMode(display=False)
            with counter, self.autocast():
                out = self.model(batch)
                loss = sequence_loss(out.logits, batch.tgt_out) / batch.num_tgt_tokens
                loss.backward()
            self.optimizer.zero_grad(set_to_none=True)
            flops += counter.get_total_flops()
            tokens += batch.num_tgt_tokens
        return flops / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/multi30k")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measuring rounds")
    parser.add_argument("--steps", type=int, default=6, help="steps per variant per round")
    parser.add_argument("--batches", type=int, default=60, help="distinct batches cycled through")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    peaks = {"32": matmul_peak(torch.float32), "bf16-mixed": matmul_peak(torch.bfloat16)}
    print(f"matmul peak (2048^2, {args.threads} threads): fp32 {peaks['32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16-mixed'] / 1e9:.0f} GFLOP/s")
    variants = [
        Variant("transformer fp32", "configs/multi30k-transformer.yaml", "32", args.data_dir, args.batches, 1),
        Variant("transformer bf16-mixed", "configs/multi30k-transformer.yaml", "bf16-mixed", args.data_dir,
                args.batches, 1),
        Variant("rnn fp32", "configs/multi30k-rnn.yaml", "32", args.data_dir, args.batches, 1),
    ]
    for v in variants:
        v.run(2)  # warm-up
    rates: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            seconds, tokens = v.run(args.steps)
            rates[v.name].append(tokens / seconds)
    print(f"\n{'variant':<24} {'tokens/s':>9} {'min':>7} {'max':>7} {'GFLOP/token':>12} {'MFU':>6} {'padding':>8}")
    medians = {}
    for v in variants:
        median = medians[v.name] = statistics.median(rates[v.name])
        per_token = v.flops_per_token()
        mfu = median * per_token / peaks[v.precision]
        print(f"{v.name:<24} {median:>9,.0f} {min(rates[v.name]):>7,.0f} {max(rates[v.name]):>7,.0f} "
              f"{per_token / 1e9:>12.3f} {mfu:>6.1%} {v.padding:>8.1%}")
    ratio = medians["transformer bf16-mixed"] / medians["transformer fp32"]
    print(f"\nbf16-mixed / fp32 (transformer): {ratio:.2f}x   ({args.rounds} rounds x {args.steps} steps, medians)")


if __name__ == "__main__":
    main()
