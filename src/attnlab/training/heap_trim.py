"""Give the C heap's freed pages back to the system during training (``train.trim_heap_every``).

Token-budget batches have new shapes at every step, so the tensors of one step rarely fit the holes
the previous step's tensors left in glibc's heap: the heap keeps the holes (several hundred MB on the
Multi30k Transformer, docs/speed.md, "Memory") and they stay resident. glibc's ``malloc_trim(0)`` returns
the pages of every free block to the system (``madvise``) without moving anything; what is touched
again is faulted in and zeroed by the kernel. Trimming after the forward pass (the forward's
temporaries are gone, what backward needs is kept) and after the optimiser step of every N-th step,
and after each validation, bounds the resident set by what one pass touches, for the cost of those
page faults (docs/speed.md, "Memory": 14% of the speed on the Multi30k Transformer at every step). Other C
libraries (musl, macOS) have no ``malloc_trim``; there this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import lightning as L

__all__ = ["TrimHeap", "malloc_trim"]


def _find_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):  # no C library found, or one without malloc_trim
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_MALLOC_TRIM = _find_malloc_trim()


def malloc_trim() -> bool:
    """Return the heap's free pages to the system; False where the C library has no ``malloc_trim``."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class TrimHeap(L.Callback):
    """Calls :func:`malloc_trim` after the forward pass and the optimiser step of every ``every``-th
    training step (counted from 1), and after each validation."""

    def __init__(self, every: int):
        if every < 1:
            raise ValueError(f"TrimHeap needs every >= 1, got {every}")
        self.every = every
        self.trims = 0

    def _trim(self) -> None:
        if malloc_trim():
            self.trims += 1

    def on_before_backward(self, trainer: L.Trainer, pl_module, loss) -> None:
        if (trainer.global_step + 1) % self.every == 0:  # the step under way has not been counted yet
            self._trim()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step % self.every == 0:  # Lightning has counted the step by now
            self._trim()

    def on_validation_end(self, trainer: L.Trainer, pl_module) -> None:
        self._trim()
