"""Training speed of the RNN teacher-forcing fast path against the step loop, on real Multi30k batches.

The same LSTM + general-attention model (emb 256, hid 512, Luong placement) trains with
``model.teacher_forced`` (the whole target in one RNN call, one batched attention) and with
``model.unroll`` (``decode_step`` once per position, what ``teacher_forcing < 1`` uses); the two are
measured alternately in one run, so machine drift hits both alike. Optionally also the BiLSTM +
Bahdanau model of BENCHMARKS.md, which always runs the loop::

    python benchmarks/rnn_fast_path.py --steps 8 --bahdanau

Prints target tokens/s (real tokens, padding excluded) per step: medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from attnlab.config import DataConfig, ModelConfig
from attnlab.data.batching import Batch, collate, make_batches
from attnlab.data.prepare import prepare_data
from attnlab.data.vocab import PAD_ID
from attnlab.models.build import build_model
from attnlab.models.rnn_seq2seq import RNNSeq2Seq


def load_batches(args: argparse.Namespace) -> tuple[list[Batch], int, int]:
    cfg = DataConfig(corpus="multi30k", data_dir=args.data_dir, normalize="none", max_len=None,
                     max_train_pairs=args.pairs)  # fmt: skip
    data = prepare_data(cfg)
    train = data.encoded["train"]
    batches = [collate(train, b) for b in make_batches(train, batch_tokens=args.batch_tokens, seed=1)]
    return batches, len(data.src_vocab), len(data.tgt_vocab)


def train_step(model: RNNSeq2Seq, optimizer: torch.optim.Optimizer, batch: Batch, loop: bool) -> float:
    """One optimiser step; returns its wall time in seconds."""
    start = time.perf_counter()
    state = model.encode(batch.src, batch.src_lengths)
    if loop:
        logits, _ = model.unroll(state, batch.tgt_in, teacher_forcing=1.0)
    else:
        logits, _ = model.teacher_forced(state, batch.tgt_in)
    loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def measure(model: RNNSeq2Seq, batches: list[Batch], steps: int, modes: dict[str, bool]) -> dict[str, list]:
    """Alternate the modes batch by batch; tokens/s per step for each mode (after one warm-up step)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    rates: dict[str, list[float]] = {name: [] for name in modes}
    for i, batch in enumerate(batches[: steps + 1]):
        for name, loop in modes.items():
            seconds = train_step(model, optimizer, batch, loop)
            if i > 0:
                rates[name].append(batch.num_tgt_tokens / seconds)
    return rates


def report(rates: dict[str, list[float]]) -> dict[str, float]:
    """Print median and best tokens/s per mode (on a shared machine the best is the least disturbed)."""
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, r in rates.items():
        print(f"  {name:<28} median {medians[name]:6.0f} tgt tok/s, best {max(r):6.0f}, worst {min(r):6.0f}")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/multi30k")  # from the project root
    parser.add_argument(
        "--pairs", type=int, default=3000, help="training pairs to read (vocabulary, batches)"
    )
    parser.add_argument("--batch-tokens", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=8, help="measured batches per mode")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bahdanau", action="store_true", help="also time BiLSTM 512 + Bahdanau (loop only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batches, src_vocab, tgt_vocab = load_batches(args)
    tokens = sum(b.num_tgt_tokens for b in batches) / len(batches)
    vocab = f"vocab {src_vocab}/{tgt_vocab}"
    print(f"Multi30k en-fr: {len(batches)} batches of ~{tokens:.0f} target tokens, {vocab}")

    cfg = ModelConfig(cell="lstm", emb_dim=256, hid_dim=512, attention="general", dropout=0.1)
    model = build_model(cfg, src_vocab, tgt_vocab).train()
    print("LSTM 512 + general attention (Luong):")
    rates = measure(
        model, batches, args.steps, {"fast path (teacher_forced)": False, "step loop (unroll)": True}
    )
    report(rates)
    fast, loop = rates["fast path (teacher_forced)"], rates["step loop (unroll)"]
    per_batch = [f / s for f, s in zip(fast, loop, strict=True)]  # same batch, back to back
    print(
        f"  fast path / step loop: median of per-batch ratios {statistics.median(per_batch):.2f}x, "
        f"ratio of medians {statistics.median(fast) / statistics.median(loop):.2f}x"
    )

    if args.bahdanau:
        cfg = ModelConfig(cell="lstm", emb_dim=256, hid_dim=512, bidirectional=True, bridge="linear",
                          attention="additive", attention_placement="bahdanau", dropout=0.1)  # fmt: skip
        print("BiLSTM 512 + Bahdanau (additive) attention, step loop:")
        report(
            measure(build_model(cfg, src_vocab, tgt_vocab).train(), batches, args.steps, {"step loop": True})
        )


if __name__ == "__main__":
    main()
