"""``attnlab sweep`` end to end: a 2-variant suite is trained, killed, resumed and compared."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from attnlab.experiments.sweep import run_state, run_sweep
from attnlab.models.summary import format_count
from attnlab.rundir import RunDir, RunError, RunLock

SUITE = """
description: two tiny variants
base:
  data: {{corpus: files, src_file: {tsv}, val_ratio: 0.15, test_ratio: 0.15}}
  model: {{cell: gru, emb_dim: 24, hid_dim: 24, dropout: 0.1, attention: none}}
  train: {{epochs: 2, batch_tokens: 300, logger: csv, attention_snapshots: 0, log_every: 2,
           val_bleu_sentences: null}}
baseline: plain
variants:
  plain: []
  dot: [model.attention=dot]
"""

# Leaves the folder as a sweep killed while training its second variant: 'plain' trained to its end, then
# 'dot' killed (SIGKILL: no handler runs) in its second epoch, after its first checkpoint.
KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import lightning as L
from attnlab.experiments.suite import load_suite
from attnlab.training import run

class KillInSecondEpoch(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGKILL)

suite, out = load_suite(sys.argv[1]), Path(sys.argv[2])
run.train(suite.variants["plain"].config, out / "plain")
make_trainer = run._trainer
def trainer_with_kill(*args):
    trainer = make_trainer(*args)
    trainer.callbacks.append(KillInSecondEpoch())
    return trainer
run._trainer = trainer_with_kill
run.train(suite.variants["dot"].config, out / "dot")
"""


def files_and_times(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def validation_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [int(float(r["epoch"])) for r in csv.DictReader(handle) if r["val/loss"]]


def test_sweep_survives_a_kill_and_resumes_through_the_cli(tatoeba_tsv: Path, tmp_path: Path) -> None:
    suite, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    suite.write_text(SUITE.format(tsv=tatoeba_tsv), encoding="utf-8")
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(suite), str(out)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert run_state(out / "plain") == "finished" and run_state(out / "dot") == "resume"
    before = files_and_times(out / "plain")

    result = subprocess.run([sys.executable, "-m", "attnlab", "sweep", str(suite), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plain: finished before, kept" in result.stdout and "dot: resumed" in result.stdout
    after = files_and_times(out / "plain")
    assert {name: after[name] for name in before} == before  # not trained again: every file as it was
    added = sorted(re.sub(r"-beam1-[0-9a-f]{10}/", "-beam1/", name) for name in set(after) - set(before))
    assert added == sorted(f"eval/{s}-beam1/{f}" for s in ("val", "test") for f in ("hyps.txt", "scores.json"))
    assert validation_epochs(out / "dot") == [0, 1]  # epoch 0 kept, epoch 1 redone once
    assert not json.loads((out / "dot" / "summary.json").read_text())["interrupted"]

    report = json.loads((out / "report" / "report.json").read_text())
    markdown = (out / "report" / "report.md").read_text()
    assert [v["variant"] for v in report["variants"]] == ["plain", "dot"] and report["baseline"] == "plain"
    for variant in report["variants"]:
        summary = json.loads((out / variant["variant"] / "summary.json").read_text())
        test = json.loads(next((out / variant["variant"] / "eval").glob("test-beam1-*/scores.json")).read_text())
        assert variant["parameters"]["total"] == summary["parameters"]["total"]
        assert variant["test_bleu"] == [test["bleu"]] and variant["test_chrf"] == [test["chrf"]]
        rows = [line for line in markdown.splitlines() if line.startswith(f"| {variant['variant']} |")]
        size_row, scores_row = rows[:2]  # the size table's row, then the scores table's
        assert format_count(summary["parameters"]["total"]) in size_row and f"{test['chrf']:.2f}" in scores_row
    assert report["variants"][1]["differences"] == ["model.attention=dot"]
    assert 0 < report["variants"][1]["p_bleu"][0] <= 1 and (out / "report" / "report.html").is_file()


def test_sigterm_stops_the_sweep_and_the_runs_it_trains(tatoeba_tsv: Path, tmp_path: Path, wait_for_file) -> None:
    """SIGTERM reaches only the sweep's process; it passes it on, so that no run trains on as an orphan
    holding its run directory (a sweep run again would find it 'in use')."""
    suite, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    suite.write_text(SUITE.format(tsv=tatoeba_tsv), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweep = subprocess.Popen([sys.executable, "-m", "attnlab", "sweep", str(suite), "--out", str(out),
                              "--set", "train.epochs=10000", "--set", "train.num_threads=1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                             start_new_session=True)
    try:
        wait_for_file(out / "plain" / "checkpoints" / "last.ckpt", sweep)
        sweep.send_signal(signal.SIGTERM)
        _, stderr = sweep.communicate(timeout=300)
    finally:  # whatever failed, leave no training behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130 and "sweep interrupted" in stderr, stderr[-2000:]
    assert "Traceback" not in stderr
    assert run_state(out / "plain") == "resume" and not (out / "dot").exists()
    with RunLock(RunDir(out / "plain")):
        pass  # free: the run's process ended with the sweep


def test_run_states(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_state(run) == "new"
    run.mkdir()
    assert run_state(run) == "new"
    (run / "config.yaml").write_text("{}")
    assert run_state(run) == "restart"  # started, but no checkpoint yet: train again from scratch
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert run_state(run) == "resume"
    (run / "summary.json").write_text(json.dumps({"interrupted": True}))
    assert run_state(run) == "resume"  # a summary marked interrupted is not a finished run
    (run / "summary.json").write_text(json.dumps({"interrupted": False}))
    assert run_state(run) == "finished"
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="holds files but no run"):
        run_state(stray)


def test_a_changed_suite_is_refused_not_mixed_in(tatoeba_tsv: Path, tmp_path: Path) -> None:
    suite, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    suite.write_text(SUITE.format(tsv=tatoeba_tsv), encoding="utf-8")
    (out / "plain").mkdir(parents=True)
    (out / "plain" / "config.yaml").write_text("model:\n  hid_dim: 99\n", encoding="utf-8")
    with pytest.raises(RunError, match=r"plain holds a run of another config \(data.corpus"):
        run_sweep(suite, out, overrides=["train.epochs=1"])
    with pytest.raises(RunError, match="seeds is 0"):
        run_sweep(suite, out, seeds=0)


def test_a_sweep_trains_its_variants_with_ddp(tatoeba_tsv: Path, tmp_path: Path) -> None:
    """Each variant runs as 2 DDP processes on the CPU (gloo), without the launcher re-running the sweep."""
    suite, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    suite.write_text(SUITE.format(tsv=tatoeba_tsv), encoding="utf-8")
    ddp = ["--set", "train.accelerator=cpu", "--set", "train.devices=2", "--set", "train.strategy=ddp",
           "--set", "train.epochs=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "attnlab", "sweep", str(suite), "--out", str(out), *ddp],
                            capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[1/2] plain: trained" in result.stdout and "[2/2] dot: trained" in result.stdout
    assert result.stderr.count("distributed_backend=gloo") == 2  # one DDP group per variant
    for variant in ("plain", "dot"):
        assert sorted(p.name for p in (out / variant / "checkpoints").iterdir()) == ["best.ckpt", "init.pt",
                                                                                    "last.ckpt"]
        assert validation_epochs(out / variant) == [0]  # one process logs: each validation once
    report = json.loads((out / "report" / "report.json").read_text())
    assert [v["variant"] for v in report["variants"]] == ["plain", "dot"]


def test_a_multi_node_sweep_is_refused_before_training(tatoeba_tsv: Path, tmp_path: Path) -> None:
    suite, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    suite.write_text(SUITE.format(tsv=tatoeba_tsv), encoding="utf-8")
    with pytest.raises(RunError, match=r"variant 'plain' has train.num_nodes: 2; a sweep runs on one machine"):
        run_sweep(suite, out, overrides=["train.num_nodes=2"])
    assert not out.exists()


def test_two_jobs_at_once_and_a_second_suite_reusing_finished_runs(tatoeba_tsv: Path, tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE.format(tsv=tatoeba_tsv), encoding="utf-8")
    sweeps = tmp_path / "sweeps"
    lines: list[str] = []
    run_sweep(suite, sweeps / "first", jobs=2, overrides=["train.num_threads=1"], log=lines.append)
    assert sum("trained;" in line for line in lines) == 2
    assert all(run_state(sweeps / "first" / name) == "finished" for name in ("plain", "dot"))
    # a suite sharing one variant ('plain') with the first: that run is linked, the other trained
    other = tmp_path / "other.yaml"
    other.write_text(SUITE.format(tsv=tatoeba_tsv).replace("  dot: [model.attention=dot]",
                                                            "  general: [model.attention=general]"), encoding="utf-8")
    lines.clear()
    run_sweep(other, sweeps / "second", overrides=["train.num_threads=1"], reuse=sweeps, log=lines.append)
    linked = sweeps / "second" / "plain"
    assert linked.is_symlink() and linked.resolve() == (sweeps / "first" / "plain").resolve()
    assert any("plain: the same config finished in" in line for line in lines)
    assert any("general: trained;" in line for line in lines)
    report = json.loads((sweeps / "second" / "report" / "report.json").read_text())
    assert [v["variant"] for v in report["variants"]] == ["plain", "general"]


def test_a_higher_epoch_cap_trains_capped_runs_on_and_keeps_the_rest(tatoeba_tsv: Path, tmp_path: Path) -> None:
    suite, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    suite.write_text(SUITE.format(tsv=tatoeba_tsv), encoding="utf-8")
    run_sweep(suite, out, overrides=["train.epochs=1", "train.num_threads=1"])
    assert validation_epochs(out / "plain") == [0]
    lines: list[str] = []
    run_sweep(suite, out, overrides=["train.epochs=2", "train.num_threads=1"], log=lines.append)
    assert sum("trained on from its epoch cap (train.epochs raised to 2)" in line for line in lines) == 2
    for name in ("plain", "dot"):
        summary = json.loads(RunDir(out / name).summary.read_text())
        assert summary["epochs"] == 2 and not summary["interrupted"]
        assert validation_epochs(out / name) == [0, 1]  # the first epoch kept, the second added once
        assert "epochs: 2" in RunDir(out / name).config.read_text()
    lines.clear()
    run_sweep(suite, out, overrides=["train.epochs=2", "train.num_threads=1"], log=lines.append)
    assert sum("finished before, kept" in line for line in lines) == 2
    with pytest.raises(RunError, match=r"has train.epochs 2 and the suite now asks for 1"):
        run_sweep(suite, out, overrides=["train.epochs=1", "train.num_threads=1"])


def test_which_runs_a_new_epoch_cap_keeps(tmp_path: Path) -> None:
    from attnlab.config import load_config, save_config
    from attnlab.experiments.sweep import PlannedRun, _check_same_config

    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(None, ["train.epochs=30"]), run / "config.yaml")

    def planned(epochs: int) -> PlannedRun:
        return PlannedRun("v", 42, run, load_config(None, [f"train.epochs={epochs}"]))

    def ended(epochs: int, stopped_early: bool) -> None:
        (run / "summary.json").write_text(json.dumps({"epochs": epochs, "stopped_early": stopped_early,
                                                      "interrupted": False}))

    ended(23, stopped_early=True)
    assert _check_same_config(planned(30), "finished") is False
    assert _check_same_config(planned(60), "finished") is False  # early stopping ended it: the same under 60
    assert _check_same_config(planned(25), "finished") is False  # ... and under any cap it never reached
    with pytest.raises(RunError, match="fewer epochs than it may have trained"):
        _check_same_config(planned(20), "finished")
    ended(30, stopped_early=False)  # at its cap: it may have improved further
    assert _check_same_config(planned(60), "finished") is True
    assert _check_same_config(planned(60), "resume") is True
    with pytest.raises(RunError, match="fewer epochs"):
        _check_same_config(planned(29), "finished")
    with pytest.raises(RunError, match=r"another config \(.*train.lr: 0.001 there, 0.5 now"):
        _check_same_config(PlannedRun("v", 42, run, load_config(None, ["train.epochs=60", "train.lr=0.5"])),
                           "finished")
