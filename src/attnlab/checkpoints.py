"""Reading and writing checkpoints: nothing in a file is ever executed, and no write leaves half a file.

Reading uses ``torch.load(..., weights_only=True)``: torch's restricted unpickler, which builds only
tensors, containers and plain values, and refuses anything that would import or call code. A
checkpoint made by someone else (a classmate's run, a downloaded sweep) is therefore safe to open.

Writing goes to a temporary file *beside* the target, which is flushed and synced, then renamed over
it; the folder is synced too. A rename within one folder is atomic on POSIX file systems, so a reader
(or a power cut) sees the old file or the new one, never a truncated mix, even when ``/tmp`` is on
another file system. A failed write (a full disk) removes its temporary file and leaves the old
checkpoint as it was.

Every checkpoint attnlab's training writes carries its format number (``attnlab_format``). It goes up
when what a checkpoint holds, or what its weights mean, changes in a way that older code would
misread; a checkpoint from a newer format is refused with a message instead of being misread.
Checkpoints without the key were written before it existed and are format 1.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from attnlab.rundir import RunError

__all__ = ["CHECKPOINT_FORMAT", "FORMAT_KEY", "atomic_write", "atomic_write_text", "atomic_torch_save",
           "load_checkpoint", "model_state", "check_state_dict"]

CHECKPOINT_FORMAT = 1
FORMAT_KEY = "attnlab_format"


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, then put it in place atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """``path`` holds ``text`` (UTF-8) afterwards, or its previous content if the write fails or is killed."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: object, path: str | Path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint (Lightning's or a plain state dict) as a dict, loaded without running code from it."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise RunError(f"checkpoint {path} is a directory, not a file")
    if path.stat().st_size == 0:
        raise RunError(f"checkpoint {path} is empty (0 bytes)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise RunError(f"checkpoint {path} was refused: it is not a plain weights file (it is damaged, or holds "
                       "objects other than tensors, which could run code when loaded)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise RunError(f"checkpoint {path} is unreadable (truncated or not a checkpoint): {reason}") from None
    if not isinstance(checkpoint, dict):
        raise RunError(f"checkpoint {path} holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    found = checkpoint.get(FORMAT_KEY, 1)
    if type(found) is not int or not 1 <= found <= CHECKPOINT_FORMAT:
        raise RunError(f"checkpoint {path} has format {found!r}; this attnlab reads formats 1 to {CHECKPOINT_FORMAT} "
                       "(a checkpoint from a newer attnlab: upgrade attnlab to open it)")
    return checkpoint


def model_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``nn.Module`` weights of a Lightning checkpoint (``model.`` prefix removed) or of a plain state dict."""
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(f"checkpoint {path} holds no model weights")
    return {str(k).removeprefix("model."): v for k, v in state.items()}


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
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
