"""Why a learned bridge trains slower than averaging the two directions (the encoder suite).

Trains the suite's bidirectional LSTM without attention for a few epochs, same seed and batches, in
six settings, and prints the training loss per epoch:

- ``average``: (forward + backward) / 2, nothing to learn;
- ``affine``: W [forward; backward] + b, randomly initialised, as the suite trains it (``bi-affine``);
- ``affine, started as average``: W = [I/2, I/2], b = 0, the same function as ``average`` at step 0;
- the same, its projection learning at a tenth of the model's learning rate;
- ``average`` and the started-as-average projection without gradient clipping.

(No tanh anywhere: with the ``linear`` bridge's tanh the projection learns slower still.)

A plain PyTorch loop (Adam, the suite's learning rate, clipping and batches of 32), not
``attnlab train``: the bridge's learning rate needs its own parameter group. Run from the project
root after the encoder sweep has prepared its data (``runs/sweeps/encoder/prepared``); about three
minutes per line on one thread::

    python docs/experiments/encoder/bridge_learning.py --epochs 3
"""

from __future__ import annotations

import argparse

import torch

from attnlab.config import load_config
from attnlab.data.batching import collate, make_batches
from attnlab.data.cache import cached_prepare
from attnlab.models.build import build_model
from attnlab.training.losses import sequence_loss

# name: (bridge, start as the average, the bridge's learning rate as a share of the model's, clip gradients)
SETTINGS = {
    "average": ("average", False, 1.0, True),
    "affine": ("affine", False, 1.0, True),
    "affine, started as average": ("affine", True, 1.0, True),
    "affine, started as average, lr / 10": ("affine", True, 0.1, True),
    "average, no clipping": ("average", False, 1.0, False),
    "affine, started as average, no clipping": ("affine", True, 1.0, False),
}


def config(bridge: str):
    return load_config("experiments/base/tatoeba-lstm.yaml", ["model.bidirectional=true", f"model.bridge={bridge}"])


def train_losses(bridge: str, start_as_average: bool, bridge_lr: float, clip: bool, epochs: int, data) -> list[float]:
    """Training loss per target token after each epoch."""
    cfg = config(bridge)
    train = data.encoded["train"]
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab)).train()
    projections = list(model.bridge.direction_proj.parameters()) if model.bridge.direction_proj else []
    if start_as_average:
        eye = torch.eye(cfg.model.hid_dim)
        with torch.no_grad():
            for projection in model.bridge.direction_proj:
                projection.weight.copy_(torch.cat([eye, eye], 1) / 2)
                projection.bias.zero_()
    learned_here = {id(p) for p in projections}
    others = [p for p in model.parameters() if id(p) not in learned_here]
    groups = [{"params": others}] + ([{"params": projections, "lr": cfg.train.lr * bridge_lr}] if projections else [])
    optimizer = torch.optim.Adam(groups, lr=cfg.train.lr)
    losses = []
    for epoch in range(epochs):
        total, tokens = 0.0, 0
        for group in make_batches(train, batch_size=cfg.train.batch_size, seed=cfg.train.seed, epoch=epoch):
            batch = collate(train, group)
            loss = sequence_loss(model(batch, teacher_forcing=1.0).logits, batch.tgt_out, cfg.train.label_smoothing)
            optimizer.zero_grad()
            (loss / batch.num_tgt_tokens).backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
            optimizer.step()
            total, tokens = total + loss.item(), tokens + batch.num_tgt_tokens
        losses.append(total / tokens)
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prepared", default="runs/sweeps/encoder/prepared")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = cached_prepare(config("average").data, args.prepared)  # the bridge does not change the data
    for name, setting in SETTINGS.items():
        losses = train_losses(*setting, epochs=args.epochs, data=data)
        print(f"{name:<42} training loss per epoch: {', '.join(f'{x:.3f}' for x in losses)}", flush=True)


if __name__ == "__main__":
    main()
