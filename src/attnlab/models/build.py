"""``build_model``: the one place a config becomes a model (a plain if/elif, no registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from attnlab.models.options import ARCHS
from attnlab.models.rnn_seq2seq import build_rnn_seq2seq
from attnlab.models.transformer import build_transformer

if TYPE_CHECKING:
    from attnlab.config import ModelConfig

__all__ = ["build_model"]


def build_model(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> nn.Module:
    """The model ``cfg.arch`` names, sized for the two vocabularies.

    Raises ValueError naming the config key when a value or a combination of values is invalid
    (e.g. ``model.attention_heads`` not dividing the hidden size).
    """
    for name, size in (("source", src_vocab_size), ("target", tgt_vocab_size)):
        if size < 2:
            raise ValueError(f"the {name} vocabulary has {size} entries; a model needs padding and tokens")
    if cfg.arch == "rnn":
        return build_rnn_seq2seq(cfg, src_vocab_size, tgt_vocab_size)
    if cfg.arch == "transformer":
        return build_transformer(cfg, src_vocab_size, tgt_vocab_size)
    raise ValueError(f"config key 'model.arch' is {cfg.arch!r}; expected one of {', '.join(ARCHS)}")
