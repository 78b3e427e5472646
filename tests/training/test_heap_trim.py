"""train.trim_heap_every: freed heap pages go back to the system, on the right steps, and training is unchanged."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from attnlab.config import ConfigError, load_config
from attnlab.rundir import read_rows
from attnlab.training import heap_trim, run
from attnlab.training.heap_trim import TrimHeap, malloc_trim
from attnlab.training.run import train

glibc_only = pytest.mark.skipif(heap_trim._MALLOC_TRIM is None, reason="the C library has no malloc_trim")


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@glibc_only
def test_malloc_trim_returns_the_pages_of_freed_blocks_in_the_middle_of_the_heap() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block = 64 * 1024  # under glibc's mmap threshold: served from the heap, as a step's small tensors are
    blocks = [libc.malloc(block) for _ in range(2048)]  # 128 MB
    for address in blocks:
        ctypes.memset(address, 1, block)  # touch every page
    keep = libc.malloc(block)  # above the freed blocks: the heap's top cannot shrink past it
    ctypes.memset(keep, 1, block)
    for address in blocks:
        libc.free(address)
    before = resident_mb()
    assert malloc_trim()
    after = resident_mb()
    libc.free(keep)
    assert before - after > 100, f"resident {before:.0f} MB before malloc_trim, {after:.0f} MB after"


def test_trims_in_every_nth_step_after_forward_and_optimiser_and_after_each_validation(monkeypatch) -> None:
    calls: list[tuple[str, int]] = []
    trainer = SimpleNamespace(global_step=0)
    where = [""]
    monkeypatch.setattr(heap_trim, "_MALLOC_TRIM", lambda pad: calls.append((where[0], trainer.global_step)) or 1)
    callback = TrimHeap(3)
    for step in range(1, 8):  # Lightning counts a step after its optimiser step, before on_train_batch_end
        trainer.global_step = step - 1
        where[0] = "forward"
        callback.on_before_backward(trainer, None, None)
        trainer.global_step = step
        where[0] = "step"
        callback.on_train_batch_end(trainer, None, None, None, step - 1)
    where[0] = "validation"
    callback.on_validation_end(trainer, None)
    assert calls == [("forward", 2), ("step", 3), ("forward", 5), ("step", 6), ("validation", 7)]
    assert callback.trims == 5


def test_without_malloc_trim_the_callback_does_nothing(monkeypatch) -> None:
    monkeypatch.setattr(heap_trim, "_MALLOC_TRIM", None)
    callback = TrimHeap(1)
    callback.on_train_batch_end(SimpleNamespace(global_step=1), None, None, None, 0)
    assert not malloc_trim() and callback.trims == 0


@pytest.mark.parametrize("value", ["-1", "2.5"])
def test_config_rejects_a_bad_interval(value: str) -> None:
    with pytest.raises(ConfigError, match="train.trim_heap_every"):
        load_config(None, [f"train.trim_heap_every={value}"])


@glibc_only
def test_trimming_leaves_training_unchanged(tatoeba_tsv_of, tmp_path: Path, monkeypatch) -> None:
    tsv = tatoeba_tsv_of(300)
    base = ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.1", "data.test_ratio=0.1",
            "model.emb_dim=16", "model.hid_dim=16", "train.epochs=2", "train.batch_tokens=300",
            "train.logger=csv", "train.val_bleu_sentences=null", "train.num_threads=1", "train.lr=0.01",
            "train.attention_snapshots=0", "train.log_every=2"]
    made: list[TrimHeap] = []
    make_trainer = run._trainer

    def recording_trainer(*args):
        trainer = make_trainer(*args)
        made.extend(c for c in trainer.callbacks if isinstance(c, TrimHeap))
        return trainer

    monkeypatch.setattr(run, "_trainer", recording_trainer)
    plain, _ = train(load_config(None, base), tmp_path / "plain")
    trimmed, summary = train(load_config(None, [*base, "train.trim_heap_every=1"]), tmp_path / "trimmed")
    assert len(made) == 1 and made[0].trims == 2 * summary["steps"] + 2  # twice a step, and two validations
    assert read_rows(trimmed.metrics) == read_rows(plain.metrics)
