"""Training end to end on a tiny real corpus: run directory, determinism, resume, bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from attnlab.checkpoints import model_state
from attnlab.cli import main
from attnlab.config import ConfigError, load_config
from attnlab.rundir import RunDir, RunError, RunLock, read_rows
from attnlab.training.run import resume, train

RUN_FILES = ["config.yaml", "data.json", "src_vocab.json", "tgt_vocab.json", "metrics.csv", "perf.csv",
             "summary.json", "samples.txt", "checkpoints/init.pt", "checkpoints/best.ckpt", "checkpoints/last.ckpt"]


@pytest.fixture(scope="module")
def tiny_tsv(tatoeba_tsv_of) -> Path:
    """600 short Tatoeba pairs in the tutorial's setting, as a TSV."""
    return tatoeba_tsv_of(600)


def tiny_overrides(tsv: Path, epochs: int = 2) -> list[str]:
    return ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.1", "data.test_ratio=0.1",
            "model.emb_dim=32", "model.hid_dim=32", "model.dropout=0.1", f"train.epochs={epochs}",
            "train.batch_tokens=300", "train.logger=csv", "train.val_bleu_sentences=null", "train.log_every=5",
            "train.num_threads=1"]


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnlab", *args], capture_output=True, text=True, timeout=600,
                          **kwargs)


def test_cli_training_writes_every_run_file(tiny_tsv: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    sets = [arg for o in tiny_overrides(tiny_tsv) for arg in ("--set", o)]
    result = cli("train", *sets, "--run-dir", str(run_dir), "--set", "train.logger=tensorboard")
    assert result.returncode == 2 and "give a CONFIG file" in result.stderr
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  logger: tensorboard\n", encoding="utf-8")
    result = cli("train", str(config), *sets, "--set", "train.logger=tensorboard", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents*"))
    assert "best val:" in result.stdout and "validation samples" in result.stdout
    init, best = model_state(run_dir / "checkpoints/init.pt"), model_state(run_dir / "checkpoints/best.ckpt")
    key = next(iter(init))
    assert not torch.equal(init[key], best[key])  # training moved the weights


def test_two_seeded_runs_give_identical_metrics(tiny_tsv: Path, tmp_path: Path) -> None:
    cfg = load_config(None, tiny_overrides(tiny_tsv))
    a, summary = train(cfg, tmp_path / "a")
    b, _ = train(cfg, tmp_path / "b")
    metrics = (a / "metrics.csv").read_text()
    assert metrics == (b / "metrics.csv").read_text()
    assert "val/bleu" in metrics and "train/loss" in metrics and "val/ppl" in metrics
    assert summary["parameters"]["total"] > 0 and summary["best"]["val/loss"] > 0


KILL_SCRIPT = """
import os, signal, sys
import lightning as L
from attnlab.config import load_config
from attnlab.training import run

class KillAt(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)  # as hard as a power cut: no handler runs

make_trainer = run._trainer
def trainer_with_kill(*args):
    trainer = make_trainer(*args)
    trainer.callbacks.append(KillAt())
    return trainer
run._trainer = trainer_with_kill
run.train(load_config(None, sys.argv[3:]), sys.argv[2])
"""


def test_resume_after_kill_matches_uninterrupted_run(tiny_tsv: Path, tmp_path: Path) -> None:
    overrides = tiny_overrides(tiny_tsv, epochs=4)
    full, _ = train(load_config(None, overrides), tmp_path / "full")
    steps_per_epoch = int(load_metrics_steps(full / "metrics.csv"))
    kill_step = steps_per_epoch * 2 + steps_per_epoch // 2  # the middle of the third epoch
    run_dir = tmp_path / "killed"
    result = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(kill_step), str(run_dir), *overrides],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert not (run_dir / "summary.json").exists()
    _, summary = resume(run_dir)
    assert summary["epochs"] == 4 and not summary["interrupted"]
    assert (run_dir / "metrics.csv").read_text() == (full / "metrics.csv").read_text()
    assert len((run_dir / "perf.csv").read_text().splitlines()) == 1 + 4  # header + one row per epoch


def test_sigterm_stops_training_with_its_checkpoint_and_a_resume_hint(tiny_tsv: Path, tmp_path: Path,
                                                                      wait_for_file) -> None:
    """'kill PID' (or a scheduler's time limit) stops training as Ctrl-C does: exit 130, the last
    checkpoint kept, the lock released, the command to continue printed; never a silent exit 0."""
    run_dir, config = tmp_path / "run", tmp_path / "long.yaml"
    config.write_text("train:\n  epochs: 10000\n", encoding="utf-8")
    sets = [arg for o in tiny_overrides(tiny_tsv, epochs=10_000) for arg in ("--set", o)]
    command = [sys.executable, "-m", "attnlab", "train", str(config), *sets, "--run-dir", str(run_dir)]
    training = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_file(run_dir / "checkpoints" / "last.ckpt", training)
        training.send_signal(signal.SIGTERM)
        _, stderr = training.communicate(timeout=300)
    finally:  # whatever failed, leave no training behind
        training.kill()
    assert training.returncode == 130, stderr[-2000:]
    assert f"attnlab train --resume {run_dir}" in stderr and "Traceback" not in stderr
    assert not (run_dir / "summary.json").exists() and (run_dir / "checkpoints" / "last.ckpt").stat().st_size > 0
    with RunLock(RunDir(run_dir)):
        pass  # free: no process trains on


def load_metrics_steps(path: Path) -> float:
    """Optimiser steps in the first epoch, from its validation row."""
    import csv

    with open(path, newline="") as handle:
        first_val = next(r for r in csv.DictReader(handle) if r["val/loss"])
    return float(first_val["step"]) + 1


def test_bad_input_is_refused_before_training(tiny_tsv: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train.epocs.*did you mean 'train.epochs'"):
        load_config(None, ["train.epocs=3"])
    with pytest.raises(Exception, match="missing.tsv does not exist"):
        train(load_config(None, ["data.corpus=files", f"data.src_file={tmp_path / 'missing.tsv'}"]), tmp_path / "x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file instead
        locked = tiny_tsv / "run"
    with pytest.raises(RunError, match="not writable"):
        train(load_config(None, tiny_overrides(tiny_tsv)), locked / "run")
    with pytest.raises(RunError, match="not an attnlab run directory"):
        resume(tmp_path)
    result = cli("train", "--resume", str(tmp_path))
    assert result.returncode == 2 and "not an attnlab run directory" in result.stderr


def test_checkpoint_from_another_model_is_refused(tiny_tsv: Path, tmp_path: Path) -> None:
    run, _ = train(load_config(None, tiny_overrides(tiny_tsv, epochs=1)), tmp_path / "run")
    other, _ = train(load_config(None, tiny_overrides(tiny_tsv, epochs=1) + ["model.hid_dim=48"]), tmp_path / "o")
    (run / "checkpoints" / "last.ckpt").write_bytes((other / "checkpoints" / "last.ckpt").read_bytes())
    with pytest.raises(RunError, match="does not fit this model"):
        resume(run)


def test_ddp_two_processes_on_cpu(tiny_tsv: Path, tmp_path: Path) -> None:
    """A short 2-process DDP run (gloo on the CPU) finishes and writes one best and one last checkpoint."""
    config = tmp_path / "ddp.yaml"
    config.write_text("train:\n  accelerator: cpu\n  devices: 2\n  strategy: ddp\n", encoding="utf-8")
    sets = [arg for o in tiny_overrides(tiny_tsv, epochs=1) for arg in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ATTNLAB_RUN_DIR", None)
    result = cli("train", str(config), *sets, "--run-dir", str(tmp_path / "run"), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gloo" in result.stderr or "distributed_backend=gloo" in result.stdout + result.stderr
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["best.ckpt", "init.pt", "last.ckpt"]
    assert (tmp_path / "run" / "summary.json").is_file()


def _ctrl_c_as_in_a_terminal() -> None:
    # A shell starts background jobs with SIGINT ignored, and children inherit that; Python then never
    # raises KeyboardInterrupt. Training is interrupted here as from a terminal, wherever pytest runs.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_leaves_a_resumable_run(tiny_tsv: Path, tmp_path: Path, wait_for_file) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("{}\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    sets = [arg for o in tiny_overrides(tiny_tsv, epochs=30) for arg in ("--set", o)]
    process = subprocess.Popen([sys.executable, "-m", "attnlab", "train", str(config), *sets, "--run-dir",
                                str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_ctrl_c_as_in_a_terminal)
    wait_for_file(run_dir / "checkpoints" / "last.ckpt", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert f"attnlab train --resume {run_dir}" in stderr and "Traceback" not in stderr
    _, summary = resume(run_dir)
    assert summary["epochs"] == 30 and not summary["interrupted"]


def test_early_stopping_stops_at_the_right_epoch(tiny_tsv: Path, tmp_path: Path, monkeypatch) -> None:
    """Validation BLEU scripted as 10, 20, 15, 25, 24, 23, 30: with patience 2 training stops after epoch 5,
    the two epochs after the last improvement (epoch 3), which best.ckpt holds."""
    from attnlab.checkpoints import load_checkpoint
    from attnlab.evaluation.references import GroupedReferences

    script = iter([10.0, 20.0, 15.0, 25.0, 24.0, 23.0, 30.0, 31.0])

    def scripted(self, hypotheses):
        bleu = next(script)
        return {"bleu": bleu, "chrf": bleu, "bleu_1ref": bleu, "chrf_1ref": bleu}

    monkeypatch.setattr(GroupedReferences, "score", scripted)
    cfg = load_config(None, tiny_overrides(tiny_tsv, epochs=8) + ["train.monitor=val/bleu", "train.patience=2"])
    run, summary = train(cfg, tmp_path / "run")
    assert summary["epochs"] == 6 and summary["stopped_early"]  # epochs 0 .. 5
    assert summary["best"]["epoch"] == 3 and summary["best"]["val/bleu"] == 25.0
    assert load_checkpoint(run.best)["epoch"] == 3 and load_checkpoint(run.last)["epoch"] == 5


def test_a_run_at_its_epoch_cap_trains_on_with_a_higher_one(tiny_tsv: Path, tmp_path: Path, capsys) -> None:
    run, first = train(load_config(None, tiny_overrides(tiny_tsv, epochs=1) + ["train.max_minutes=600"]),
                       tmp_path / "run")
    assert first["epochs"] == 1 and not first["stopped_early"] and not first["stopped_by_budget"]
    with pytest.raises(RunError, match=r"ended after 1 of its 1 epochs \(epoch cap\): raise train.epochs"):
        resume(run.root, max_minutes=900)
    for args, message in ((["--set", "model.hid_dim=8"], "the keys it takes are --set train.epochs=N"),
                          (["--set", "train.epochs=two"], "a whole number"),
                          (["--set", "train.epochs=0"], "it must be >= 1"),
                          (["--set", "train.max_minutes=soon"], "give a number of minutes, or null"),
                          (["--set", "train.max_minutes=-5"], "a positive number of minutes"),
                          (["--set", "train.max_minutes=30"], "the run has a budget of 600")):
        assert main(["train", "--resume", str(run.root), *args]) == 2
        assert message in capsys.readouterr().err
    _, summary = resume(run.root, epochs=2)  # what 'attnlab train --resume RUN --set train.epochs=2' calls
    assert summary["epochs"] == 2 and load_config(run.config).train.epochs == 2
    rows = [r for r in read_rows(run.metrics) if r.get("val/loss")]
    assert [int(float(r["epoch"])) for r in rows] == [0, 1]  # the first epoch's validation kept, once
    with pytest.raises(RunError, match="below the run's own 2"):
        resume(run.root, epochs=1)
    run.summary.write_text(json.dumps({**summary, "stopped_early": True}), encoding="utf-8")
    with pytest.raises(RunError, match=r"2 of its 2 epochs \(early stopping\): more epochs or time would change"):
        resume(run.root, epochs=5)
    assert load_config(run.config).train.epochs == 2 and run.summary.is_file()  # refused: nothing changed


def test_a_run_its_time_budget_stopped_trains_on_with_a_longer_one(tiny_tsv: Path, tmp_path: Path, capsys,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's Timer is driven by a clock that moves 10 s per step: a 2-minute budget stops the run
    at its 12th step, in its second epoch; no budget then trains it on to its cap, from the third epoch."""
    from lightning.pytorch.callbacks import Timer

    clock = {"s": 0.0}
    on_batch_end = Timer.on_train_batch_end

    def tick(self, *args, **kwargs):
        clock["s"] += 10.0
        on_batch_end(self, *args, **kwargs)

    monkeypatch.setattr(Timer, "time_elapsed", lambda self, stage="train": clock["s"])
    monkeypatch.setattr(Timer, "on_train_batch_end", tick)
    config = tmp_path / "budget.yaml"
    config.write_text("train:\n  max_minutes: 2\n", encoding="utf-8")
    sets = [arg for override in tiny_overrides(tiny_tsv, epochs=3) for arg in ("--set", override)]
    assert main(["train", str(config), *sets, "--run-dir", str(tmp_path / "run")]) == 0
    assert f"attnlab train --resume {tmp_path / 'run'} --set train.max_minutes=null" in capsys.readouterr().err
    run, first = RunDir(tmp_path / "run"), json.loads((tmp_path / "run" / "summary.json").read_text())
    per_epoch = int(float(read_rows(run.perf)[0]["step"]))
    assert 6 < per_epoch < 12  # so the budget runs out inside the second epoch
    assert first["steps"] == 12 and first["epochs"] == 2 and first["stopped_by_budget"]
    with pytest.raises(RunError, match=r"ended after 2 of its 3 epochs \(time budget\): raise train.max_minutes"):
        resume(run.root, epochs=5)
    with pytest.raises(RunError, match="train.max_minutes 1: the run has a budget of 2; a resumed run can only"):
        resume(run.root, max_minutes=1)
    assert load_config(run.config).train.max_minutes == 2 and run.summary.is_file()  # refused: nothing changed
    own_config = run.config.read_text(encoding="utf-8")
    run.config.write_text(own_config.replace("schedule: constant", "schedule: linear_budget"), encoding="utf-8")
    with pytest.raises(ConfigError, match="linear_budget"):  # that schedule needs a budget
        resume(run.root, max_minutes=math.inf)
    assert run.summary.is_file() and "max_minutes: 2" in run.config.read_text(encoding="utf-8")
    run.config.write_text(own_config, encoding="utf-8")
    _, summary = resume(run.root, max_minutes=math.inf)  # 'attnlab train --resume RUN --set train.max_minutes=null'
    assert load_config(run.config).train.max_minutes is None
    assert summary["epochs"] == 3 and not summary["stopped_by_budget"]
    assert summary["steps"] == 12 + per_epoch  # the third epoch whole; the rest of the cut second one skipped
    validated = [int(float(r["epoch"])) for r in read_rows(run.metrics) if r.get("val/loss")]
    assert validated == [0, 1, 2]
    with pytest.raises(RunError, match="train.max_minutes 60: the run has no time budget"):
        resume(run.root, max_minutes=60)


def test_training_on_from_a_cap_ends_as_training_to_the_higher_cap(tiny_tsv: Path, tmp_path: Path) -> None:
    """Bit for bit: batches come from (seed, epoch), dropout and teacher-forcing coins from (seed, step)."""
    straight, _ = train(load_config(None, tiny_overrides(tiny_tsv, epochs=2)), tmp_path / "straight")
    capped, _ = train(load_config(None, tiny_overrides(tiny_tsv, epochs=1)), tmp_path / "capped")
    resume(capped.root, epochs=2)

    def numbers(run: RunDir) -> list[dict[str, str]]:
        return [{k: v for k, v in row.items() if k.startswith(("train/", "val/")) or k in ("epoch", "step")}
                for row in read_rows(run.metrics)]

    assert numbers(capped) == numbers(straight)
    ours, theirs = model_state(capped.last), model_state(straight.last)
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
