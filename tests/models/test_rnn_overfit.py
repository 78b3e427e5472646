"""End to end: each attention type learns a toy task (reverse short random sequences) by heart.

200 pairs over 10 symbols, lengths 3 to 7; the model must reach 95% teacher-forced token accuracy on
them within ``MAX_EPOCHS`` epochs (a budget in epochs, not seconds, so a busy machine cannot make the
test fail; on an idle 2-core CPU each type needs 10 to 15 epochs, about a second). Slow: run with
``-m slow``; ``-s`` shows the epochs and seconds each type took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from attnlab.config import ModelConfig
from attnlab.models.build import build_model

PAD, BOS, EOS, FIRST_SYMBOL, VOCAB = 0, 1, 2, 3, 13
PAIRS, BATCH, MAX_EPOCHS = 200, 50, 100


@dataclass
class Batch:
    src: torch.Tensor  # (B, S)
    src_lengths: torch.Tensor  # (B,)
    tgt_in: torch.Tensor  # (B, T): <bos> + reversed source
    tgt_out: torch.Tensor  # (B, T): reversed source + <eos>


def reverse_task(n: int = PAIRS, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 8, (n,), generator=g)
    S = int(lengths.max())
    src = torch.full((n, S), PAD)
    tgt_in = torch.full((n, S + 1), PAD)
    tgt_out = torch.full((n, S + 1), PAD)
    for i, length in enumerate(lengths.tolist()):
        tokens = torch.randint(FIRST_SYMBOL, VOCAB, (length,), generator=g)
        src[i, :length] = tokens
        tgt_in[i, : length + 1] = torch.cat([torch.tensor([BOS]), tokens.flip(0)])
        tgt_out[i, : length + 1] = torch.cat([tokens.flip(0), torch.tensor([EOS])])
    return Batch(src, lengths, tgt_in, tgt_out)


def split(data: Batch, size: int) -> list[Batch]:
    return [
        Batch(
            data.src[i : i + size],
            data.src_lengths[i : i + size],
            data.tgt_in[i : i + size],
            data.tgt_out[i : i + size],
        )  # fmt: skip
        for i in range(0, len(data.src), size)
    ]


@torch.no_grad()
def token_accuracy(model: torch.nn.Module, data: Batch) -> float:
    model.eval()
    predictions = model(data).logits.argmax(-1)  # (B, T), teacher forced
    real = data.tgt_out != PAD
    model.train()
    return (predictions[real] == data.tgt_out[real]).float().mean().item()


def train_until(model: torch.nn.Module, data: Batch, target: float) -> tuple[float, int, float]:
    """Adam on mini-batches until ``target`` accuracy or ``MAX_EPOCHS``: (accuracy, epochs, seconds)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start, epochs, accuracy = time.perf_counter(), 0, 0.0
    while epochs < MAX_EPOCHS:
        for batch in split(data, BATCH):
            logits = model(batch).logits
            loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        epochs += 1
        if epochs >= 5 and (accuracy := token_accuracy(model, data)) >= target:
            break
    return accuracy, epochs, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize(
    "attention,placement",
    [
        ("dot", "luong"),
        ("scaled_dot", "luong"),
        ("general", "luong"),
        ("concat", "luong"),
        ("additive", "bahdanau"),
        ("qkv", "luong"),
        ("multihead", "luong"),
        ("none", "luong"),
    ],
)
def test_each_attention_type_overfits_the_reverse_task(attention: str, placement: str) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(
        cell="gru", emb_dim=32, hid_dim=64, bidirectional=True, bridge="concat", dropout=0.0,
        attention=attention, attention_placement=placement,
        attention_heads=4 if attention == "multihead" else 1,
    )  # fmt: skip
    model = build_model(cfg, VOCAB, VOCAB)
    accuracy, epochs, seconds = train_until(model, reverse_task(), target=0.95)
    print(f"\n{attention}/{placement}: token accuracy {accuracy:.3f} after {epochs} epochs, {seconds:.1f} s")
    assert accuracy >= 0.95, f"{attention}: {accuracy:.3f} after {epochs} epochs ({seconds:.0f} s)"
