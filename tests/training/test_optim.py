"""Optimisers: the fused step computes what the for-loop step does; mixed precision with clipping still trains."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from attnlab.config import load_config
from attnlab.training.optim import build_optimizer
from attnlab.training.run import train


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_the_fused_step_computes_what_the_for_loop_step_does(name: str) -> None:
    cfg = load_config(None, [f"train.optimizer={name}", "train.lr=0.01", "train.weight_decay=0.01"]).train
    torch.manual_seed(0)
    shapes = [(40, 24), (24,), (7, 3, 5)]
    loop_params = [torch.nn.Parameter(torch.randn(shape)) for shape in shapes]
    fused_params = [torch.nn.Parameter(p.detach().clone()) for p in loop_params]
    start = [p.detach().clone() for p in loop_params]
    loop = build_optimizer(loop_params, cfg, fused=False)
    fused = build_optimizer(fused_params, cfg)
    assert fused.defaults["fused"] and not loop.defaults["fused"]
    for _ in range(25):
        for a, b in zip(loop_params, fused_params, strict=True):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        loop.step()
        fused.step()
    for a, b, before in zip(loop_params, fused_params, start, strict=True):
        assert (a - before).abs().max() > 0.01  # the steps moved the weights
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_parameters_off_the_cpu_and_cuda_get_the_for_loop_step() -> None:
    cfg = load_config(None, []).train
    assert not build_optimizer([torch.nn.Parameter(torch.zeros(3, device="meta"))], cfg).defaults["fused"]


def test_mixed_precision_with_gradient_clipping_trains(tatoeba_tsv_of, tmp_path: Path) -> None:
    """Lightning refuses to clip gradients for a fused optimiser under mixed precision: the loop step runs there."""
    cfg = load_config(None, [
        "data.corpus=files", f"data.src_file={tatoeba_tsv_of(200)}", "data.val_ratio=0.1", "data.test_ratio=0.1",
        "model.emb_dim=16", "model.hid_dim=16", "train.epochs=1", "train.batch_tokens=300", "train.clip=1.0",
        "train.precision=bf16-mixed", "train.logger=csv", "train.val_bleu_sentences=null", "train.num_threads=1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 is emulated on a CPU without it, and says so
        _, summary = train(cfg, tmp_path / "run")
    assert summary["precision"] == "bf16-mixed" and summary["steps"] > 0
