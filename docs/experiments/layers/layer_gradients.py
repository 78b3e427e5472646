"""How much gradient reaches each encoder layer when a 2-layer encoder feeds a 1-layer decoder (layers suite).

With ``layer_mismatch: last`` the decoder starts from the encoder's top layer only, so the bottom
layer learns only through the top one; with ``average`` it starts from the mean of both layers, a
direct path to each. Same seed, model and batches for both (the suite's LSTM without attention, Adam
at its learning rate, clipping 1.0, batches of 32); prints, per mapping, the root mean square over
the steps of each encoder layer's gradient norm (before clipping) and the training loss at the start
and at the end.

A plain PyTorch loop over attnlab's model and batches. Run from the project root after the layers
sweep has prepared its data (``runs/sweeps/layers/prepared``); under a minute per mapping on one
thread for the default 200 steps::

    python docs/experiments/layers/layer_gradients.py --steps 200
"""

from __future__ import annotations

import argparse

import torch

from attnlab.config import load_config
from attnlab.data.batching import collate, make_batches
from attnlab.data.cache import cached_prepare
from attnlab.models.build import build_model
from attnlab.training.losses import sequence_loss

SUITE_BASE = "experiments/base/tatoeba-lstm.yaml"


def layer_of(name: str) -> str | None:
    """'bottom' or 'top' for the encoder LSTM's own weights (``..._l0``, ``..._l1``), else None."""
    if not name.startswith("encoder"):
        return None
    return {"_l0": "bottom", "_l1": "top"}.get(name.removesuffix("_reverse")[-3:])


def probe(mode: str, steps: int, data) -> tuple[dict[str, float], float, float]:
    cfg = load_config(SUITE_BASE, ["model.enc_layers=2", f"model.layer_mismatch={mode}"])
    train = data.encoded["train"]
    batches = make_batches(train, batch_size=cfg.train.batch_size, seed=cfg.train.seed, epoch=0)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    squares = {"bottom": 0.0, "top": 0.0}
    losses = []
    for step in range(steps):
        batch = collate(train, batches[step % len(batches)])
        loss = sequence_loss(model(batch).logits, batch.tgt_out, 0.0) / batch.num_tgt_tokens
        optimizer.zero_grad()
        loss.backward()
        for name, parameter in model.named_parameters():
            layer = layer_of(name)
            if layer is not None and parameter.grad is not None:
                squares[layer] += parameter.grad.norm().item() ** 2
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
        optimizer.step()
        losses.append(loss.item())
    window = max(1, min(20, steps // 2))
    rms = {layer: (total / steps) ** 0.5 for layer, total in squares.items()}
    return rms, sum(losses[:window]) / window, sum(losses[-window:]) / window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = cached_prepare(load_config(SUITE_BASE).data, "runs/sweeps/layers/prepared")
    print(f"{'mapping':8} {'bottom layer':>13} {'top layer':>10} {'loss, first steps':>18} {'last steps':>11}")
    for mode in ("last", "average"):
        rms, first, last = probe(mode, args.steps, data)
        print(f"{mode:8} {rms['bottom']:13.4f} {rms['top']:10.4f} {first:18.3f} {last:11.3f}")


if __name__ == "__main__":
    main()
