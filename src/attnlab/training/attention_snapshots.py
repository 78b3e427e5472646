"""A callback that draws the cross-attention of a few fixed validation sentences after every validation.

Looking through ``<run>/attention/`` in order shows attention forming over training::

    init-sent0.png  epoch000-sent0.png  epoch001-sent0.png  ...

Each image is the layers x heads grid of one sentence, teacher-forced on its reference (the same
pass as training's loss, with ``return_attention=True``), so every epoch's picture has the same rows
and columns. Rows are labelled by the token they predict (``y1 .. yn, <eos>``). Drawing is left to
:mod:`attnlab.viz`; a batch of 2-3 short sentences costs one forward pass and about a second of
plotting per validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch

from attnlab.data.batching import collate
from attnlab.data.vocab import EOS, Vocabulary
from attnlab.viz import plot_attention_grid, save_figure

__all__ = ["AttentionSnapshots", "pick_snapshot_pairs"]

Pair = tuple[Sequence[int], Sequence[int]]


def pick_snapshot_pairs(pairs: Sequence[Pair], count: int, min_len: int = 4, max_len: int = 12) -> list[int]:
    """Indices of ``count`` pairs, the first ones whose sides both have ``min_len``..``max_len`` tokens
    (long enough to show an alignment, short enough to read); topped up with the first pairs."""
    readable = [i for i, (s, t) in enumerate(pairs) if min_len <= len(s) <= max_len and min_len <= len(t) <= max_len]
    chosen = readable[:count]
    chosen += [i for i in range(len(pairs)) if i not in chosen][: count - len(chosen)]
    return chosen


class AttentionSnapshots(L.Callback):
    """Writes ``<folder>/epoch{E:03d}-sent{i}.png`` after each validation (and ``init-sent{i}.png`` at the start).

    ``pairs``: encoded validation pairs ``(src_ids, tgt_ids)`` without specials, as in
    ``PreparedData.encoded["val"]``; ``count`` of them are chosen by :func:`pick_snapshot_pairs`.
    """

    def __init__(self, folder: Path, pairs: Sequence[Pair], src_vocab: Vocabulary, tgt_vocab: Vocabulary,
                 count: int = 2, dpi: int = 80):
        self.folder, self.dpi = Path(folder), dpi
        self.pairs = [pairs[i] for i in pick_snapshot_pairs(pairs, count)]
        self.src_tokens = [[src_vocab.itos[i] for i in s] for s, _ in self.pairs]
        self.tgt_tokens = [[tgt_vocab.itos[i] for i in t] + [EOS] for _, t in self.pairs]  # what each row predicts

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.pairs and not list(self.folder.glob("init-sent*.png")):
            self.write(pl_module.model, "init")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not self.pairs:
            return
        self.write(pl_module.model, f"epoch{trainer.current_epoch:03d}")

    @torch.no_grad()
    def write(self, model: torch.nn.Module, prefix: str) -> list[Path]:
        """Draw every chosen sentence under ``model`` as ``<folder>/<prefix>-sent{i}.png``."""
        batch = collate(self.pairs, range(len(self.pairs))).to(next(model.parameters()).device)
        was_training = model.training
        model.eval()
        try:
            cross = model(batch, return_attention=True).cross_attentions  # per layer (B, heads, T, S)
        finally:
            model.train(was_training)
        if not cross:  # an RNN without attention: nothing to draw
            return []
        paths = []
        for i, (src, tgt) in enumerate(zip(self.src_tokens, self.tgt_tokens, strict=True)):
            layers = [layer[i, :, : len(tgt), : len(src)] for layer in cross]  # (heads, q, k) without padding
            fig = plot_attention_grid(layers, src, tgt, kind="cross", show_special=True,
                                      title=f"{prefix} · {' '.join(src)} → {' '.join(tgt[:-1])}")
            paths += save_figure(fig, self.folder / f"{prefix}-sent{i}", formats=("png",), dpi=self.dpi)
        return paths
