"""How fast this CPU runs the Multi30k Transformer's own matrix products: the ceiling on its MFU.

``train_throughput.py`` reports MFU against the best 2048x2048 ``torch.matmul``. The model's products
are smaller and skinnier (d_model 256, ffn 1024, a 4,096-token batch, the generator in chunks of
262 rows), and a product with a short inner or outer dimension does fewer operations per byte it
moves. This script times each product one training step runs (every linear layer's forward and its
two backward products, the chunked generator's three) in isolation, interleaved with the 2048x2048
reference, and prints each one's share of the peak and their average weighted by the step's
FLOPs. That average is what a step made of nothing but these products would reach: no MFU above it
is possible without changing the shapes (a wider model, longer batches).

    python benchmarks/matmul_shapes.py --threads 2 --rounds 5

Attention's own products (batched 16x64 by 64x16 per head) are left out: about 3% of the step's
FLOPs, and they run inside ``scaled_dot_product_attention``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

TOKENS, D_MODEL, FFN, VOCAB, LAYERS = 4096, 256, 1024, 8000, 3
CHUNK_ROWS = (1 << 21) // VOCAB  # attnlab.training.generator_loss.CHUNK_ELEMENTS // vocabulary
POOL_BYTES = 96 << 20  # operand sets per product, together: three times this CPU's 32 MB L3


def linear_products(name: str, n: int, d_in: int, d_out: int, count: int, dtype: torch.dtype) -> list[tuple]:
    """Forward ``x W^T + b``, then the input gradient ``g W`` and the weight gradient ``g^T x``.

    Each product comes with ``copies`` sets of operands, together larger than the last-level cache, so
    that a "cold" timing reads its operands from memory as a training step does (the step's
    activations were written by other operations since), and a "hot" one reuses the first set.
    """
    size = (n * d_in + n * d_out + d_in * d_out) * torch.finfo(dtype).bits // 8
    copies = max(2, -(-POOL_BYTES // size))
    xs = [torch.randn(n, d_in, dtype=dtype) for _ in range(copies)]
    ws = [torch.randn(d_out, d_in, dtype=dtype) for _ in range(copies)]
    gs = [torch.randn(n, d_out, dtype=dtype) for _ in range(copies)]
    b = torch.randn(d_out, dtype=dtype)
    flops = 2 * n * d_in * d_out
    return [
        (f"{name} forward ({n}x{d_in} @ {d_in}x{d_out})", count, flops, lambda i: F.linear(xs[i], ws[i], b), copies),
        (f"{name} input grad ({n}x{d_out} @ {d_out}x{d_in})", count, flops, lambda i: gs[i] @ ws[i], copies),
        (f"{name} weight grad ({d_out}x{n} @ {n}x{d_in})", count, flops, lambda i: gs[i].t() @ xs[i], copies),
    ]


def step_products(dtype: torch.dtype) -> list[tuple]:
    """The products of one training step: 3 encoder and 3 decoder layers, then the generator."""
    attention_blocks = 3 * LAYERS  # encoder self-, decoder self- and cross-attention, each with q, k, v, out
    cases = linear_products("attention projection", TOKENS, D_MODEL, D_MODEL, 4 * attention_blocks, dtype)
    cases += linear_products("feed-forward in", TOKENS, D_MODEL, FFN, 2 * LAYERS, dtype)
    cases += linear_products("feed-forward out", TOKENS, FFN, D_MODEL, 2 * LAYERS, dtype)
    chunks = TOKENS // CHUNK_ROWS
    cases += linear_products("generator chunk", CHUNK_ROWS, D_MODEL, VOCAB, chunks, dtype)
    return cases


def best_seconds(fn: Callable[[int], torch.Tensor], copies: int, repeats: int, cold: bool) -> float:
    """Best time of one call: over ``repeats`` passes of ``copies`` calls, on every operand set in turn
    (cold) or on the first one each time (hot)."""
    for i in range(copies):  # warm-up: kernels picked, every copy's pages touched
        fn(i)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(copies):
            fn(i if cold else 0)
        times.append((time.perf_counter() - start) / copies)
    return min(times)


def measure(dtype: torch.dtype, rounds: int, repeats: int) -> tuple[float, list[tuple[str, int, int, float, float]]]:
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    cases = step_products(dtype)
    peak, hot, cold = [], [[] for _ in cases], [[] for _ in cases]
    for _ in range(rounds):  # interleaved: drift on a shared machine hits the reference and the shapes alike
        peak.append(2 * 2048**3 / best_seconds(lambda i: a @ b, 1, repeats, cold=False))
        for index, (_, _, flops, fn, copies) in enumerate(cases):
            hot[index].append(flops / best_seconds(fn, copies, repeats, cold=False))
            cold[index].append(flops / best_seconds(fn, copies, repeats, cold=True))
    return max(peak), [(name, count, flops, max(h), max(c))
                       for (name, count, flops, _, _), h, c in zip(cases, hot, cold, strict=True)]


def report(dtype: torch.dtype, peak: float, rows: list[tuple[str, int, int, float, float]]) -> None:
    print(f"\n{str(dtype).removeprefix('torch.')}: 2048x2048 matmul peak {peak / 1e9:,.0f} GFLOP/s; "
          "each product's best rate with its operands in cache (hot) and read from memory (cold)")
    print(f"  {'product':<58}{'per step':>9}{'FLOP share':>11}{'hot':>7}{'cold':>7}  (of the peak)")
    total_flops = sum(count * flops for _, count, flops, _, _ in rows)
    for name, count, flops, hot, cold in rows:
        print(f"  {name:<58}{count:>9}{count * flops / total_flops:>11.1%}{hot / peak:>7.0%}{cold / peak:>7.0%}")
    for label, column in (("hot", 3), ("cold", 4)):
        seconds = sum(row[1] * row[2] / row[column] for row in rows)
        print(f"  a step's products together, {label}: {total_flops / 1e9:,.1f} GFLOP in {seconds * 1e3:,.0f} ms, "
              f"{total_flops / seconds / peak:.0%} of the peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="timings per product per round (the best counts)")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{args.threads} threads, {args.rounds} rounds; batch of {TOKENS} tokens, d_model {D_MODEL}, ffn {FFN}, "
          f"vocabulary {VOCAB} in chunks of {CHUNK_ROWS} rows")
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        peak, rows = measure(dtype, args.rounds, args.repeats)
        report(dtype, peak, rows)


if __name__ == "__main__":
    main()
