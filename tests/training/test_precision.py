"""``train.precision: auto``: what it picks, and a run trained with it records what it trained in."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from attnlab.config import ConfigError, load_config
from attnlab.training import precision as precision_module
from attnlab.training.precision import auto_precision, cpu_has_bf16, emulated_bf16_warning, resolve_precision
from attnlab.training.run import train


@pytest.mark.parametrize(("on_gpu", "gpu_bf16", "cpu_bf16", "expected"), [
    (True, True, False, "bf16-mixed"),   # Ampere or later
    (True, False, True, "16-mixed"),     # an older GPU: fp16 with loss scaling, whatever the CPU has
    (False, False, True, "bf16-mixed"),  # a CPU with AVX-512 BF16 or AMX
    (False, False, False, "32"),         # any other CPU
])
def test_auto_picks_the_fastest_native_precision(on_gpu: bool, gpu_bf16: bool, cpu_bf16: bool, expected: str) -> None:
    assert auto_precision(on_gpu, gpu_bf16, cpu_bf16) == expected


def test_explicit_precisions_pass_through_and_auto_on_cpu_follows_the_cpu() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 on a CPU without it warns: the next tests check that
        for precision in ("32", "bf16-mixed", "16-mixed", "64-true"):
            assert resolve_precision(precision, "cpu") == precision
    assert resolve_precision("auto", "cpu") == ("bf16-mixed" if cpu_has_bf16() else "32")


@pytest.mark.parametrize(("precision", "on_gpu", "cpu_bf16", "warns"), [
    ("bf16-mixed", False, False, True),   # emulated: the slow case
    ("bf16-true", False, False, True),
    ("bf16-mixed", False, True, False),   # AVX-512 BF16 or AMX
    ("bf16-mixed", True, False, False),   # the GPU computes it
    ("32", False, False, False),
    ("16-mixed", False, False, False),
])
def test_bf16_by_name_on_a_cpu_without_it_is_warned_about(precision: str, on_gpu: bool, cpu_bf16: bool,
                                                         warns: bool) -> None:
    message = emulated_bf16_warning(precision, on_gpu, cpu_bf16)
    assert (message is not None) == warns
    if warns:
        assert f"train.precision={precision}" in message and "train.precision=auto" in message


def test_resolve_warns_once_for_bf16_on_a_cpu_without_it_and_keeps_the_choice(monkeypatch) -> None:
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="emulates bf16") as caught:
        assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("32", "cpu") == "32"
        assert resolve_precision("auto", "cpu") == "32"
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"


def test_auto_is_a_config_value_and_other_words_are_refused() -> None:
    assert load_config(None, ["train.precision=auto"]).train.precision == "auto"
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(None, ["train.precision=fastest"])


def test_a_run_with_auto_records_the_precision_it_trained_in(tatoeba_tsv_of, tmp_path: Path) -> None:
    tsv = tatoeba_tsv_of(300)
    overrides = ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.1", "data.test_ratio=0.1",
                 "model.arch=transformer", "model.d_model=32", "model.heads=2", "model.enc_layers=1",
                 "model.dec_layers=1", "model.ffn_dim=64", "train.epochs=1", "train.batch_tokens=400",
                 "train.logger=csv", "train.val_bleu_sentences=null", "train.num_threads=1",
                 "train.accelerator=cpu", "train.precision=auto"]
    _, summary = train(load_config(None, overrides), tmp_path / "run")
    expected = {"32": "32-true"}.get(resolve_precision("auto", "cpu"), resolve_precision("auto", "cpu"))
    assert summary["precision"] == expected
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["precision"] == expected
    assert summary["steps"] > 0
