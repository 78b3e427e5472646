"""Loading a trained model: a run's config, tokenizers and vocabularies, and the weights of one checkpoint.

Weights are read with :func:`attnlab.checkpoints.model_state` (``weights_only=True``), so opening a
run someone else made never runs code from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from attnlab.checkpoints import check_state_dict, model_state
from attnlab.config import Config, load_config
from attnlab.data.store import Tokenizer, load_run_tokenizers
from attnlab.data.vocab import Vocabulary
from attnlab.models.build import build_model
from attnlab.rundir import CHECKPOINT_NAMES, RunDir, run_of_checkpoint

__all__ = ["LoadedRun", "load_run", "load_weights"]


@dataclass
class LoadedRun:
    """A trained model with the run's own tokenizers, vocabularies and normalisation."""

    run: RunDir
    cfg: Config
    model: nn.Module
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    src_vocab: Vocabulary
    tgt_vocab: Vocabulary
    normalize: str
    checkpoint: Path


def load_weights(cfg: Config, src_vocab_size: int, tgt_vocab_size: int, checkpoint: Path,
                 device: str | torch.device = "cpu") -> nn.Module:
    """The model ``cfg`` describes, with the weights of ``checkpoint``, in evaluation mode on ``device``."""
    model = build_model(cfg.model, src_vocab_size, tgt_vocab_size)
    state = model_state(checkpoint)
    check_state_dict(model, state, checkpoint)
    model.load_state_dict(state)
    return model.to(device).eval()


def load_run(path: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu") -> LoadedRun:
    """Load a run's model: ``checkpoint`` is ``best``, ``last``, ``init`` or a checkpoint file; ``path`` may
    also be a checkpoint file inside a run's ``checkpoints/`` folder."""
    run, file = run_of_checkpoint(path)
    if file is None:
        file = run.checkpoint(checkpoint) if checkpoint in CHECKPOINT_NAMES else Path(checkpoint)
    cfg = load_config(run.config)
    src_tok, tgt_tok, src_vocab, tgt_vocab, normalize = load_run_tokenizers(run.root)
    model = load_weights(cfg, len(src_vocab), len(tgt_vocab), file, device)
    return LoadedRun(run, cfg, model, src_tok, tgt_tok, src_vocab, tgt_vocab, normalize, file)
