"""The run directory: one folder per run holding everything needed to reuse it.

::

    config.yaml            the resolved config (every key)
    data.json              tokenizer kind, normalisation, data report
    src_vocab.json tgt_vocab.json [spm_src.model spm_tgt.model]
    checkpoints/           init.pt (weights at initialisation), best.ckpt, last.ckpt
    metrics.csv perf.csv summary.json samples.txt tensorboard/
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from attnlab.config import Config, load_config
from attnlab.data.prepare import load_prepared
from attnlab.models.build import build_model

__all__ = ["RunError", "RunDir", "open_run", "create_run", "LoadedRun", "load_run", "check_state_dict",
           "model_state_from_checkpoint"]


class RunError(ValueError):
    """A problem with a run directory or checkpoint, named with its path."""


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def init(self) -> Path:
        return self.checkpoints / "init.pt"

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def __fspath__(self) -> str:
        return str(self.root)


def open_run(path: str | Path) -> RunDir:
    """An existing run; a directory without ``config.yaml`` and ``data.json`` is not one."""
    root = Path(path)
    if not root.is_dir():
        raise RunError(f"{root} is not a directory (expected a run directory made by 'attnlab train')")
    missing = [name for name in ("config.yaml", "data.json") if not (root / name).is_file()]
    if missing:
        raise RunError(f"{root} is not an attnlab run directory (missing {', '.join(missing)})")
    return RunDir(root)


def create_run(path: str | Path) -> RunDir:
    """A new run directory; refuses to overwrite an existing run and checks it is writable."""
    root = Path(path)
    if (root / "config.yaml").exists():
        raise RunError(f"{root} already holds a run; continue it with 'attnlab train --resume {root}' "
                       "or choose another --run-dir")
    try:
        (root / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise RunError(f"run directory {root} is not writable: {err.strerror}") from None
    return RunDir(root)


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Raise a clear error when ``state`` was saved from another model or vocabulary."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise RunError(f"checkpoint {source} is from another model: missing {missing[:3]}, "
                       f"unexpected {unexpected[:3]}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise RunError(f"checkpoint {source} does not fit this model: '{key}' has shape "
                           f"{tuple(state[key].shape)}, the model expects {tuple(tensor.shape)} "
                           "(another vocabulary or model size?)")


@dataclass
class LoadedRun:
    """A trained model with the run's own tokenizers, vocabularies and normalisation."""

    run: RunDir
    cfg: Config
    model: nn.Module
    src_tokenizer: object
    tgt_tokenizer: object
    src_vocab: object
    tgt_vocab: object
    normalize: str


def model_state_from_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The ``nn.Module`` weights from a Lightning checkpoint (``model.`` prefix removed) or a plain state."""
    if not path.is_file():
        raise RunError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which
        raise RunError(f"checkpoint {path} is unreadable: {err}") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise RunError(f"checkpoint {path} holds no model weights")
    return {k.removeprefix("model."): v for k, v in state.items()}


def load_run(path: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu") -> LoadedRun:
    """Load a run's model (``best``, ``last``, ``init`` or a checkpoint path) for decoding."""
    candidate = Path(path)
    if candidate.is_file():  # a checkpoint inside a run's checkpoints/ folder
        run, ckpt = open_run(candidate.parent.parent), candidate
    else:
        run = open_run(candidate)
        ckpt = {"best": run.best, "last": run.last, "init": run.init}.get(checkpoint, Path(checkpoint))
        if checkpoint == "best" and not ckpt.is_file():
            ckpt = run.last
    cfg = load_config(run.config)
    src_tok, tgt_tok, src_vocab, tgt_vocab, normalize = load_prepared(run.root)
    model = build_model(cfg.model, len(src_vocab), len(tgt_vocab))
    state = model_state_from_checkpoint(ckpt)
    check_state_dict(model, state, ckpt)
    model.load_state_dict(state)
    model.to(device).eval()
    return LoadedRun(run, cfg, model, src_tok, tgt_tok, src_vocab, tgt_vocab, normalize)

