"""A small Transformer learns to reverse 200 random sequences (the Joey NMT "reverse" smoke test)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from attnlab.models.transformer import Transformer

PAD, BOS, EOS = 0, 1, 2
VOCAB = 13  # 3 specials + 10 symbols


def reverse_task(pairs: int = 200, seed: int = 0) -> SimpleNamespace:
    """Sources of 3-8 random symbols; the target is the source reversed, framed by <bos> ... <eos>."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 9, (pairs,), generator=g)
    src = torch.full((pairs, 8), PAD)
    tgt = torch.full((pairs, 10), PAD)
    for i, n in enumerate(lengths.tolist()):
        symbols = torch.randint(3, VOCAB, (n,), generator=g)
        src[i, :n] = symbols
        tgt[i, : n + 2] = torch.cat([torch.tensor([BOS]), symbols.flip(0), torch.tensor([EOS])])
    return SimpleNamespace(src=src, src_lengths=lengths, tgt_in=tgt[:, :-1], tgt_out=tgt[:, 1:])


def batch_rows(data: SimpleNamespace, rows: torch.Tensor) -> SimpleNamespace:
    return SimpleNamespace(**{name: value[rows] for name, value in vars(data).items()})


def token_accuracy(model: Transformer, data: SimpleNamespace) -> float:
    model.eval()
    with torch.no_grad():
        predictions = model(data).logits.argmax(-1)  # (N, T): teacher-forced
    model.train()
    real = data.tgt_out.ne(PAD)
    return (predictions.eq(data.tgt_out) & real).sum().item() / real.sum().item()


def greedy_exact_matches(model: Transformer, data: SimpleNamespace) -> float:
    """Share of sources whose greedy decode (through the cached ``decode_step``) is the reference."""
    model.eval()
    with torch.no_grad():
        state = model.encode(data.src, data.src_lengths)
        tokens = data.tgt_in[:, 0]
        outputs = []
        for _ in range(data.tgt_out.size(1)):
            step = model.decode_step(tokens, state)
            tokens, state = step.logits.argmax(-1), step.state
            outputs.append(tokens)
    hypotheses = torch.stack(outputs, dim=1).masked_fill(data.tgt_out.eq(PAD), PAD)  # (N, T)
    return hypotheses.eq(data.tgt_out).all(dim=1).float().mean().item()


@pytest.mark.slow
def test_small_transformer_overfits_the_reverse_task() -> None:
    torch.manual_seed(0)
    data = reverse_task()
    model = Transformer(VOCAB, VOCAB, d_model=64, heads=4, enc_layers=2, dec_layers=2, ffn_dim=128, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    accuracy = 0.0
    for epoch in range(150):
        for rows in torch.randperm(200).split(20):
            batch = batch_rows(data, rows)
            logits = model(batch).logits  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch.tgt_out.reshape(-1), ignore_index=PAD)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch % 5 == 4:
            accuracy = token_accuracy(model, data)
            if accuracy >= 0.99:
                break
    assert accuracy >= 0.95, f"teacher-forced token accuracy {accuracy:.3f} after {epoch + 1} epochs"
    assert greedy_exact_matches(model, data) >= 0.8
