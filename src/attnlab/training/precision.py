"""``train.precision: auto``: mixed precision where the hardware runs it natively, fp32 elsewhere.

- a CUDA GPU (``train.accelerator`` auto, gpu or cuda, and one is visible): ``bf16-mixed`` where
  the GPU computes in bf16 (Ampere and later), ``16-mixed`` (with loss scaling) on older ones;
- a CPU with AVX-512 BF16 or AMX tiles: ``bf16-mixed`` (the Multi30k Transformer steps about 1.7x
  faster than in fp32 on this project's machine, ``benchmarks/train_throughput.py``);
- anything else (a CPU without bf16 instructions, Apple's MPS): ``32``.

The config keeps ``auto``; the precision a run actually trained in is written to its
``summary.json``. ``32`` stays the default, so that seeded runs give the same numbers on every
machine. Asking for bf16 by name on a CPU without bf16 arithmetic trains, but torch emulates it
there, far slower than fp32: that gets a warning.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["resolve_precision", "auto_precision", "cpu_has_bf16", "emulated_bf16_warning"]


def auto_precision(on_gpu: bool, gpu_bf16: bool, cpu_bf16: bool) -> str:
    """What ``auto`` means for a machine described by these three facts."""
    if on_gpu:
        return "bf16-mixed" if gpu_bf16 else "16-mixed"
    return "bf16-mixed" if cpu_bf16 else "32"


def cpu_has_bf16() -> bool:
    """True when this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX), as torch's kernels use it."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own probes (private)
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def emulated_bf16_warning(precision: str, on_gpu: bool, cpu_bf16: bool) -> str | None:
    """The warning for ``precision`` on a machine described by these two facts, or None."""
    if on_gpu or cpu_bf16 or not precision.startswith("bf16"):
        return None
    return (f"train.precision={precision} on a CPU without AVX-512 BF16 or AMX: torch emulates bf16 here, "
            "many times slower than fp32; train.precision=auto picks fp32 on this CPU")


def resolve_precision(precision: str, accelerator: str) -> str:
    """``precision`` itself, or for ``auto`` the choice above for this machine and ``accelerator``."""
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if precision != "auto":
        message = emulated_bf16_warning(precision, on_gpu, cpu_has_bf16())
        if message:
            warnings.warn(message, stacklevel=2)
        return precision
    return auto_precision(on_gpu, on_gpu and torch.cuda.is_bf16_supported(), cpu_has_bf16())
