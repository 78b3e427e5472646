"""train.ema_decay: checkpoints and snapshots hold the average computed by hand; training and resume are untouched."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from attnlab.checkpoints import load_checkpoint, model_state
from attnlab.config import ConfigError, load_config
from attnlab.rundir import read_rows
from attnlab.training import run
from attnlab.training.attention_snapshots import AttentionSnapshots
from attnlab.training.run import resume, train

DECAY = 0.9


@pytest.fixture(scope="module")
def tiny_tsv(tatoeba_tsv_of) -> Path:
    return tatoeba_tsv_of(300)


def overrides(tsv: Path, epochs: int, ema: float = DECAY) -> list[str]:
    return ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.1", "data.test_ratio=0.1",
            "model.emb_dim=16", "model.hid_dim=16", f"train.epochs={epochs}", "train.batch_tokens=300",
            "train.logger=csv", "train.val_bleu_sentences=null", "train.num_threads=1", "train.lr=0.01",
            "train.attention_snapshots=0", "train.log_every=2", f"train.ema_decay={ema}"]


class RecordWeights(L.Callback):
    """The trained weights after every optimiser step."""

    def __init__(self):
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.steps.append({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()})


def test_checkpoints_hold_the_moving_average_of_the_trained_weights(tiny_tsv: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    recorder = RecordWeights()
    make_trainer = run._trainer

    def trainer_with_recorder(*args):
        trainer = make_trainer(*args)
        trainer.callbacks.append(recorder)
        return trainer

    drawn: list[dict[str, torch.Tensor]] = []  # the weights each attention snapshot was drawn with
    monkeypatch.setattr(run, "_trainer", trainer_with_recorder)
    monkeypatch.setattr(AttentionSnapshots, "write", lambda self, model, prefix: drawn.append(
        {k: v.detach().clone() for k, v in model.state_dict().items()}))
    cfg = load_config(None, [*overrides(tiny_tsv, epochs=2), "train.attention_snapshots=1"])
    run_dir, _ = train(cfg, tmp_path / "ema")
    average = dict(recorder.steps[0])  # the first update copies the weights
    for weights in recorder.steps[1:]:
        average = {k: DECAY * average[k] + (1 - DECAY) * weights[k] for k in average}
    last = load_checkpoint(run_dir / "checkpoints/last.ckpt")
    saved = model_state(run_dir / "checkpoints/last.ckpt")  # what translate, evaluate and export read
    assert len(recorder.steps) >= 10 and saved.keys() == average.keys()
    for key in average:
        torch.testing.assert_close(saved[key], average[key], rtol=1e-5, atol=1e-6)
        assert torch.equal(last["current_model_state"][f"model.{key}"], recorder.steps[-1][key])
    assert any(not torch.allclose(saved[k], recorder.steps[-1][k]) for k in saved)  # not the trained weights
    assert len(drawn) == 1 + 2 and all(torch.equal(drawn[-1][k], saved[k]) for k in saved)  # init + 2 validations


def test_averaging_leaves_training_unchanged(tiny_tsv: Path, tmp_path: Path) -> None:
    plain, _ = train(load_config(None, overrides(tiny_tsv, epochs=2, ema=0.0)), tmp_path / "plain")
    averaged, _ = train(load_config(None, overrides(tiny_tsv, epochs=2)), tmp_path / "averaged")
    trained = load_checkpoint(averaged / "checkpoints/last.ckpt")["current_model_state"]
    for key, value in load_checkpoint(plain / "checkpoints/last.ckpt")["state_dict"].items():
        assert torch.equal(trained[key], value), key
    def train_losses(run_dir: Path) -> list[tuple[str, str]]:
        rows = read_rows(run_dir / "metrics.csv")
        return [(row["train/loss"], row["train/epoch_loss"]) for row in rows]

    assert train_losses(plain) == train_losses(averaged)


def test_a_resumed_run_keeps_its_average(tiny_tsv: Path, tmp_path: Path) -> None:
    full, _ = train(load_config(None, overrides(tiny_tsv, epochs=3)), tmp_path / "full")
    part, _ = train(load_config(None, overrides(tiny_tsv, epochs=1)), tmp_path / "part")
    resume(part, epochs=3)
    assert (part / "metrics.csv").read_text() == (full / "metrics.csv").read_text()
    expected = model_state(full / "checkpoints/last.ckpt")
    for key, value in model_state(part / "checkpoints/last.ckpt").items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize("value", ["1.0", "-0.1", ".nan"])
def test_a_decay_outside_0_1_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="train.ema_decay"):
        load_config(None, [f"train.ema_decay={value}"])
