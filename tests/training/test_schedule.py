"""Learning-rate schedules: ``linear`` warms up, then reaches zero exactly at the run's last step;
``linear_budget`` also never exceeds the share of the time budget left."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.callbacks import Timer

from attnlab.config import ConfigError, load_config
from attnlab.rundir import read_rows
from attnlab.training.optim import lr_factor
from attnlab.training.run import train


def test_linear_warms_up_then_falls_straight_to_zero_at_the_last_step() -> None:
    factors = [lr_factor("linear", step, warmup=4, model_size=8, total_steps=14) for step in range(14)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    falls = [factors[i] - factors[i + 1] for i in range(3, 13)]
    assert all(f == pytest.approx(falls[0]) for f in falls) and falls[0] > 0  # a straight line down
    assert factors[13] == pytest.approx(falls[0])  # the last step still learns, one step above zero
    assert lr_factor("linear", 14, 4, 8, 14) == 0.0 == lr_factor("linear", 99, 4, 8, 14)
    with pytest.raises(ValueError, match="total_steps"):
        lr_factor("linear", 5, 4, 8)


def test_a_linear_run_ends_with_its_learning_rate_annealed(tatoeba_tsv_of, tmp_path: Path) -> None:
    cfg = load_config(None, [
        "data.corpus=files", f"data.src_file={tatoeba_tsv_of(300)}", "data.val_ratio=0.1", "data.test_ratio=0.1",
        "model.emb_dim=16", "model.hid_dim=16", "train.epochs=3", "train.batch_tokens=300", "train.logger=csv",
        "train.val_bleu_sentences=null", "train.num_threads=1", "train.log_every=1", "train.attention_snapshots=0",
        "train.lr=0.01", "train.schedule=linear", "train.warmup=3"])
    run_dir, _ = train(cfg, tmp_path / "run")
    logged = [(int(row["step"]), float(row["train/lr"])) for row in read_rows(run_dir / "metrics.csv")
              if row["train/lr"]]
    steps = [step for step, _ in logged]
    total = len(logged)  # one row per step: the run's real step count
    assert steps == list(range(total)) and total >= 12
    lrs = [lr for _, lr in logged]
    assert max(lrs) == pytest.approx(0.01)  # the end of the warm-up
    assert lrs[-1] == pytest.approx(0.01 / (total - 3 + 1))  # one step above zero: the horizon is the real run


def test_linear_budget_is_linear_capped_by_the_share_of_the_budget_left() -> None:
    for step in range(16):
        linear = lr_factor("linear", step, 4, 8, 14)
        assert lr_factor("linear_budget", step, 4, 8, 14, budget_used=0.0) == linear
        assert lr_factor("linear_budget", step, 4, 8, 14, budget_used=0.75) == pytest.approx(min(linear, 0.25))
        assert lr_factor("linear_budget", step, 4, 8, 14, budget_used=1.2) == 0.0  # the budget is spent


def test_linear_budget_needs_a_time_budget() -> None:
    with pytest.raises(ConfigError, match="train.max_minutes"):
        load_config(None, ["train.schedule=linear_budget"])


def test_a_linear_budget_run_follows_the_time_it_has_spent(tatoeba_tsv_of, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's Timer says half the 60-minute budget is gone at every step: the rate never exceeds
    half the peak, and at the end falls as ``linear`` does (the step horizon binds there)."""
    monkeypatch.setattr(Timer, "time_elapsed", lambda self, stage="train": 30 * 60.0)
    cfg = load_config(None, [
        "data.corpus=files", f"data.src_file={tatoeba_tsv_of(300)}", "data.val_ratio=0.1", "data.test_ratio=0.1",
        "model.emb_dim=16", "model.hid_dim=16", "train.epochs=3", "train.batch_tokens=300", "train.logger=csv",
        "train.val_bleu_sentences=null", "train.num_threads=1", "train.log_every=1", "train.attention_snapshots=0",
        "train.lr=0.01", "train.schedule=linear_budget", "train.max_minutes=60", "train.warmup=3"])
    run_dir, _ = train(cfg, tmp_path / "run")
    lrs = [float(row["train/lr"]) for row in read_rows(run_dir / "metrics.csv") if row["train/lr"]]
    total = len(lrs)
    assert total >= 12 and max(lrs) == pytest.approx(0.005)  # capped at 1 - 0.5 of the peak
    assert lrs[-1] == pytest.approx(0.01 / (total - 3 + 1))  # the linear horizon, below the cap at the end
