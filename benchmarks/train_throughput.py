"""Training throughput of the shipped Multi30k configs: MFU, a plain torch.nn.Transformer beside it, bf16.

Measured in one run on real Multi30k en->fr batches (the configs' own SentencePiece data and
token-budget batching):

- ``attnlab transformer fp32`` and ``bf16-mixed``: ``configs/multi30k-transformer.yaml``, stepped
  through the training system's own ``_step`` (so the loss is the one training uses), then backward,
  gradient clipping and the optimiser, as Lightning runs them;
- ``torch.nn.Transformer fp32``: the reference: the same sizes (3+3 layers, d_model 256, 4 heads, ffn
  1024, pre-norm, dropout 0.1, tied generator, label smoothing 0.1, AdamW) written plainly with
  ``torch.nn.Transformer`` and ``F.cross_entropy`` over full logits, on the same batches;
- ``attnlab rnn fp32``: ``configs/multi30k-rnn.yaml``.

Variants run in interleaved rounds, so drift on a shared machine hits all of them alike; medians are
printed. MFU = model FLOPs per second (torch's FlopCounterMode on the very batches stepped) over this
machine's matrix-multiply peak, the best of 2048x2048 ``torch.matmul`` timings taken between the
rounds in the same precision. ``--profile`` adds where the step's time goes, by operator category::

    python benchmarks/train_throughput.py --rounds 5 --steps 4 --threads 2 --profile

``--bf16 auto`` (the default) measures bf16-mixed only on a CPU with AVX-512 BF16 or AMX: elsewhere
torch emulates bf16, so slowly that the run would not finish in reasonable time.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from step_profile import print_breakdown, profile_step
from torch import nn
from torch.profiler import record_function
from torch.utils.flop_counter import FlopCounterMode

from attnlab.config import load_config
from attnlab.data.batching import Batch, collate, make_batches, padding_share
from attnlab.data.prepare import prepare_data
from attnlab.data.vocab import PAD_ID
from attnlab.evaluation.references import GroupedReferences
from attnlab.models.build import build_model
from attnlab.models.embeddings import sinusoidal_table
from attnlab.training.optim import build_optimizer
from attnlab.training.precision import cpu_has_bf16
from attnlab.training.system import TranslationSystem

DEFAULT_DATA = os.environ.get("ATTNLAB_DATA", "../shared/data/multi30k")  # from the project root


def matmul_seconds(dtype: torch.dtype, size: int = 2048, repeats: int = 3) -> list[float]:
    """Seconds of ``repeats`` square matmuls in ``dtype``, after one warm-up."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return times


class PlainTransformer(nn.Module):
    """The reference: ``torch.nn.Transformer`` with embeddings and a tied generator, as a user writes it."""

    def __init__(self, vocab: int, d_model: int, heads: int, layers: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model, padding_idx=PAD_ID)
        self.register_buffer("positions", sinusoidal_table(512, d_model), persistent=False)
        self.transformer = nn.Transformer(d_model, heads, layers, layers, ffn_dim, dropout, batch_first=True,
                                          norm_first=True)
        self.dropout = nn.Dropout(dropout)
        self.generator = nn.Linear(d_model, vocab)
        self.generator.weight = self.embed.weight
        self.scale = math.sqrt(d_model)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(tokens) * self.scale + self.positions[: tokens.size(1)])  # (B, T, D)

    def forward(self, batch: Batch) -> torch.Tensor:
        causal = nn.Transformer.generate_square_subsequent_mask(batch.tgt_in.size(1), dtype=torch.bool)
        hidden = self.transformer(self._embed(batch.src), self._embed(batch.tgt_in), tgt_mask=causal,
                                  src_key_padding_mask=batch.src.eq(PAD_ID),
                                  tgt_key_padding_mask=batch.tgt_in.eq(PAD_ID),
                                  memory_key_padding_mask=batch.src.eq(PAD_ID))
        return self.generator(hidden)  # (B, T, V)


class Variant:
    """A model and its optimiser, stepped on given batches in one precision; FLOPs counted per batch."""

    def __init__(self, name: str, cfg, model: nn.Module, batches: list[Batch], precision: str = "32",
                 reference: bool = False):
        self.name, self.cfg, self.model, self.batches = name, cfg, model.train(), batches
        self.precision, self.reference = precision, reference
        self.optimizer = build_optimizer(list(model.parameters()), cfg.train)
        self.system = None if reference else TranslationSystem(
            model, cfg.train, cfg.decode, cfg.model.d_model, lambda ids: "", GroupedReferences.from_pairs([])).train()
        self.flops = [self._count_flops(b) for b in batches]
        self.cursor = 0

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16-mixed" else nullcontext()

    def loss(self, batch: Batch) -> torch.Tensor:
        with self.autocast():
            if self.reference:
                logits = self.model(batch)
                loss_sum = F.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(), ignore_index=PAD_ID,
                                           reduction="sum", label_smoothing=self.cfg.train.label_smoothing)
            else:
                loss_sum, _ = self.system._step(batch, teacher_forcing=1.0)
        return loss_sum / batch.num_tgt_tokens

    def step(self, index: int) -> None:
        loss = self.loss(self.batches[index])
        self.optimizer.zero_grad(set_to_none=True)
        with record_function("backward"):
            loss.backward()
        with record_function("clip"):
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip or 1e9)
        self.optimizer.step()

    def _count_flops(self, batch: Batch) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            self.loss(batch).backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops()

    def run(self, steps: int) -> tuple[float, int, int]:
        """Seconds, target tokens and model FLOPs of the next ``steps`` batches."""
        tokens = flops = 0
        start = time.perf_counter()
        for _ in range(steps):
            index = self.cursor % len(self.batches)
            self.cursor += 1
            self.step(index)
            tokens += self.batches[index].num_tgt_tokens
            flops += self.flops[index]
        return time.perf_counter() - start, tokens, flops


def load(config: str, data_dir: str, count: int, batch_tokens: int | None):
    budget = [f"train.batch_tokens={batch_tokens}"] if batch_tokens else []
    cfg = load_config(config, [f"data.data_dir={data_dir}", *budget])
    data = prepare_data(cfg.data)
    train = data.encoded["train"]
    groups = make_batches(train, cfg.train.batch_tokens, cfg.train.batch_size, seed=1)
    return cfg, data, [collate(train, g) for g in groups[:count]], padding_share(train, groups), (train, groups)


def build_variants(args: argparse.Namespace) -> tuple[list[Variant], dict]:
    cfg, data, batches, padding, split = load("configs/multi30k-transformer.yaml", args.data_dir, args.batches,
                                              args.batch_tokens)
    m = cfg.model
    vocab = len(data.tgt_vocab)
    torch.manual_seed(1)
    variants = [Variant("attnlab transformer fp32", cfg, build_model(m, vocab, vocab), batches)]
    if args.bf16 == "on" or (args.bf16 == "auto" and cpu_has_bf16()):
        torch.manual_seed(1)
        variants.append(Variant("attnlab transformer bf16-mixed", cfg, build_model(m, vocab, vocab), batches,
                                "bf16-mixed"))
    torch.manual_seed(1)
    plain = PlainTransformer(vocab, m.d_model, m.heads, m.enc_layers, m.ffn_dim, m.dropout)
    variants.append(Variant("torch.nn.Transformer fp32", cfg, plain, batches, reference=True))
    rnn_cfg, rnn_data, rnn_batches, rnn_padding, _ = load("configs/multi30k-rnn.yaml", args.data_dir, args.batches,
                                                          args.batch_tokens)
    torch.manual_seed(1)
    rnn = build_model(rnn_cfg.model, len(rnn_data.src_vocab), len(rnn_data.tgt_vocab))
    variants.append(Variant("attnlab rnn fp32", rnn_cfg, rnn, rnn_batches))
    info = {"padding": {"transformer": padding, "rnn": rnn_padding}, "vocab": vocab, "ffn_dim": m.ffn_dim,
            "split": split}
    return variants, info


def measure(variants: list[Variant], rounds: int, steps: int) -> tuple[dict, dict]:
    """Interleaved rounds: every variant, then matmul timings. Per-round tokens/s and FLOP/s per variant."""
    results: dict[str, dict[str, list[float]]] = {v.name: {"tokens/s": [], "flop/s": []} for v in variants}
    dtypes = {"32": torch.float32, "bf16-mixed": torch.bfloat16}
    matmul: dict[str, list[float]] = {p: [] for p in dtypes if any(v.precision == p for v in variants)}
    for v in variants:
        v.run(2)  # warm-up
    for _ in range(rounds):
        for v in variants:
            seconds, tokens, flops = v.run(steps)
            results[v.name]["tokens/s"].append(tokens / seconds)
            results[v.name]["flop/s"].append(flops / seconds)
        for precision, times in matmul.items():
            times += matmul_seconds(dtypes[precision])
    peaks = {precision: 2 * 2048**3 / min(times) for precision, times in matmul.items()}
    return results, peaks


def report(variants: list[Variant], results: dict, peaks: dict, info: dict, args: argparse.Namespace) -> None:
    bf16_peak = f", bf16 {peaks['bf16-mixed'] / 1e9:.0f} GFLOP/s" if "bf16-mixed" in peaks else ""
    print(f"matmul peak (2048^2, best of {3 * args.rounds}, {args.threads} threads): "
          f"fp32 {peaks['32'] / 1e9:.0f} GFLOP/s{bf16_peak}")
    print(f"\n{'variant':<32} {'tokens/s':>9} {'min':>7} {'max':>7} {'GFLOP/token':>12} {'MFU':>6} {'padding':>8}")
    medians = {}
    for v in variants:
        rates, flop_rates = results[v.name]["tokens/s"], results[v.name]["flop/s"]
        medians[v.name] = statistics.median(rates)
        mfu = statistics.median(flop_rates) / peaks[v.precision]
        per_token = sum(v.flops) / sum(b.num_tgt_tokens for b in v.batches)
        padding = info["padding"]["rnn" if "rnn" in v.name else "transformer"]
        print(f"{v.name:<32} {medians[v.name]:>9,.0f} {min(rates):>7,.0f} {max(rates):>7,.0f} "
              f"{per_token / 1e9:>12.3f} {mfu:>6.1%} {padding:>8.1%}")
    fp32 = medians["attnlab transformer fp32"]
    print(f"\nattnlab / torch.nn.Transformer (fp32): {fp32 / medians['torch.nn.Transformer fp32']:.2f}x")
    if "attnlab transformer bf16-mixed" in medians:
        print(f"bf16-mixed / fp32 (attnlab transformer): {medians['attnlab transformer bf16-mixed'] / fp32:.2f}x")
    else:
        why = ("--bf16 off" if args.bf16 == "off"
               else "this CPU has no AVX-512 BF16 or AMX; --bf16 on measures it anyway")
        print(f"bf16-mixed: not measured ({why})")
    print(f"({args.rounds} rounds x {args.steps} steps per variant, medians; load average at the end "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def collate_seconds(split, count: int) -> float:
    """Median seconds to collate one batch of the Transformer config (done once per step in training)."""
    train, groups = split
    times = []
    for group in list(groups)[:count]:
        start = time.perf_counter()
        collate(train, group)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measuring rounds")
    parser.add_argument("--steps", type=int, default=4, help="steps per variant per round")
    parser.add_argument("--batches", type=int, default=12, help="distinct batches cycled through")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-tokens", type=int, help="token budget of a batch (default: each config's own)")
    parser.add_argument("--profile", action="store_true", help="also print where a step's time goes")
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                        help="measure bf16-mixed: auto = where the CPU has AVX-512 BF16 or AMX")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants, info = build_variants(args)
    results, peaks = measure(variants, args.rounds, args.steps)
    report(variants, results, peaks, info, args)
    if args.profile:
        collation = {"data collation (per batch)": collate_seconds(info["split"], 50)}
        for v in [v for v in variants if "rnn" not in v.name]:
            totals = profile_step(v.step, range(args.steps), info["vocab"], info["ffn_dim"])
            print_breakdown(v.name, totals, args.steps, collation if v is variants[0] else None)


if __name__ == "__main__":
    main()
