"""``run_sweep``: train every variant of a suite (several seeds if asked), evaluate them, compare them.

The suite format is described in :mod:`attnlab.experiments.suite`. Every variant trains with its own
full config (same epochs for all, as the suite sets them) on data prepared once per distinct
``data:`` config and shared (cached in ``<out>/prepared/``). Layout of ``out_dir``::

    <variant>/                 the run of the first seed (train.seed as the suite sets it)
    <variant>-seed<S>/         further seeds, S = that seed + k for k = 1 .. seeds-1
    prepared/                  the shared prepared data
    configs/                   the configs of runs trained on several devices (see below)
    report/                    the comparison (see :func:`attnlab.experiments.compare.compare_runs`)

Each run trains in a fresh process, so its peak memory and speed are its own and not the
high-water mark of the runs before it; the process reads the shared data from ``prepared/``. A run
on one device is a ``multiprocessing`` spawn; a run on several devices (``train.devices`` other than
1: DDP) is an ``attnlab train`` command, because Lightning's DDP launcher starts its other processes by
re-running the command that started training (the sweep itself would otherwise be re-run). Its
config is written to ``configs/<run>.yaml`` first. Sweeps run on one machine: for
``train.num_nodes`` > 1, train each variant with ``attnlab train`` under the cluster's launcher and
compare the runs with ``attnlab compare``.

Running the same command again picks up where it stopped: a finished run (``summary.json``, not
interrupted) is left alone; an interrupted one (``checkpoints/last.ckpt`` but no finished summary)
is resumed, ending as if never interrupted; one that never reached its first checkpoint is trained
again from the start. A run folder whose config differs from the suite's is refused rather than
mixed in, with one exception: a higher epoch cap (``train.epochs``). Then a run that ended at its
old cap trains on to the new one (``attnlab train --resume RUN --set train.epochs=N``), and a run
that early stopping ended before either cap is kept, as it would have ended the same. Each run is
evaluated on val and test (beam from its config) as soon as it is trained, in its own process. With
``jobs`` > 1 several runs train at once; with ``reuse``, a run whose exact config already finished in
another sweep (or one that differs only in a cap it never reached) is a symbolic link to that run
instead of a new training (several suites share their baseline).

Ctrl-C reaches the sweep and its runs alike; SIGTERM (``kill PID``, a scheduler's time limit) reaches
only the sweep, which passes it on to the runs in training and stops as on Ctrl-C, so that no run
trains on as an orphan holding its run directory.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

from attnlab.config import Config, load_config, save_config
from attnlab.data.cache import cached_prepare
from attnlab.experiments.compare import compare_runs
from attnlab.experiments.run_results import ends_the_same, ensure_evaluated, flat_config
from attnlab.experiments.suite import Suite, load_suite
from attnlab.rundir import RunDir, RunError, read_json
from attnlab.training.run import resume, train

__all__ = ["run_sweep", "plan_sweep", "PlannedRun", "run_state"]


@dataclass(frozen=True)
class PlannedRun:
    variant: str
    seed: int
    run_dir: Path
    config: Config


def plan_sweep(suite: Suite, out_dir: Path, seeds: int = 1) -> list[PlannedRun]:
    """Every (variant, seed) run of the sweep, in suite order, seeds innermost."""
    if seeds < 1:
        raise RunError(f"seeds is {seeds}; it must be >= 1")
    plan = []
    for name, variant in suite.variants.items():
        for k in range(seeds):
            seed = variant.config.train.seed + k
            config = replace(variant.config, train=replace(variant.config.train, seed=seed))
            folder = name if k == 0 else f"{name}-seed{seed}"
            plan.append(PlannedRun(name, seed, out_dir / folder, config))
    return plan


def run_state(run_dir: Path) -> str:
    """``new``, ``finished``, ``resume`` (interrupted after a checkpoint) or ``restart`` (before one)."""
    run = RunDir(run_dir)
    if run.summary.is_file() and not read_json(run.summary, "run summary").get("interrupted"):
        return "finished"
    if run.config.is_file():
        return "resume" if run.last.is_file() else "restart"
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise RunError(f"{run_dir} exists and holds files but no run (no config.yaml); move it away or choose "
                       "another --out")
    return "new"


def run_sweep(
    suite_path: str | Path,
    out_dir: str | Path | None = None,
    seeds: int = 1,
    overrides: list[str] | None = None,
    log: Callable[[str], None] | None = None,
    jobs: int = 1,
    reuse: str | Path | None = None,
) -> dict[str, Path]:
    """Train, evaluate and compare every variant of the suite; returns the report's paths.

    ``out_dir`` defaults to ``runs/sweeps/<suite name>``; ``overrides`` (``section.key=value``) apply to
    every variant, after its own. ``jobs``: runs trained at the same time (each in its own process;
    give each one thread with ``--set train.num_threads=1``). ``reuse``: a folder of earlier sweeps
    (e.g. ``runs/sweeps``); a planned run whose exact config (seed included) finished there is linked
    instead of trained again. ``log`` receives one line per step (the CLI prints them).
    """
    say = log or (lambda _: None)
    if jobs < 1:
        raise RunError(f"jobs is {jobs}; it must be >= 1")
    suite = load_suite(suite_path, overrides)
    out = Path(out_dir) if out_dir is not None else Path("runs") / "sweeps" / suite.name
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder for the sweep")
    plan = plan_sweep(suite, out, seeds)
    for planned in plan:
        if planned.config.train.num_nodes != 1:
            raise RunError(f"variant '{planned.variant}' has train.num_nodes: {planned.config.train.num_nodes}; a "
                           "sweep runs on one machine. Train each variant with 'attnlab train' under your cluster's "
                           "launcher and compare the runs with 'attnlab compare'")
    finished = _finished_runs(Path(reuse), out) if reuse is not None else {}
    _prepare_all(plan, out, finished)
    with _stop_on_sigterm(), ThreadPoolExecutor(jobs) as pool:  # threads that each start a process, wait for it
        futures = [pool.submit(_train_one, planned, out, finished) for planned in plan]
        try:
            for number, (planned, future) in enumerate(zip(plan, futures, strict=True), start=1):
                say(f"[{number}/{len(plan)}] {planned.run_dir.name}: {future.result()}")
        except BaseException:
            for future in futures:
                future.cancel()  # runs not started yet; started ones stop on their own Ctrl-C
            raise
    say(f"comparing {len(plan)} runs in {out / 'report'}")
    title = f"{suite.name}: {suite.description}" if suite.description else suite.name
    return compare_runs([p.run_dir for p in plan], out / "report", baseline=suite.baseline,
                        names=[p.variant for p in plan], title=title, log=say)


def _finished_runs(folder: Path, out: Path) -> dict[str, list[Path]]:
    """Finished runs in the sweeps under ``folder`` (not ``out`` itself), by their flat config without the epoch
    cap (see :func:`_reusable`)."""
    if not folder.is_dir():
        raise RunError(f"--reuse {folder} is not a folder of sweeps")
    found: dict[str, list[Path]] = {}
    for config in sorted(folder.glob("*/*/config.yaml")):
        run = config.parent
        if run.parent.resolve() == out.resolve() or run.is_symlink() or run_state(run) != "finished":
            continue
        found.setdefault(_config_key(load_config(config)), []).append(run)
    return found


def _config_key(config: Config) -> str:
    """The flat config without ``train.epochs``: runs that differ only in their cap may have ended the same."""
    return json.dumps({k: v for k, v in flat_config(config).items() if k != "train.epochs"}, sort_keys=True)


def _reusable(planned: PlannedRun, finished: dict[str, list[Path]]) -> Path | None:
    """A finished run of the planned config that ended as the planned one would: the same epoch cap, or early
    stopping before the planned cap."""
    for run in finished.get(_config_key(planned.config), []):
        cap = load_config(RunDir(run).config).train.epochs
        if ends_the_same(read_json(RunDir(run).summary, "run summary"), cap, planned.config.train.epochs):
            return run
    return None


def _prepare_all(plan: list[PlannedRun], out: Path, finished: dict[str, list[Path]]) -> None:
    """Prepare each distinct data config once, before any run starts (so data errors are reported plainly)."""
    for planned in plan:
        if run_state(planned.run_dir) in ("new", "restart") and _reusable(planned, finished) is None:
            cached_prepare(planned.config.data, out / "prepared")


def _train_one(planned: PlannedRun, out: Path, finished: dict[str, list[Path]]) -> str:
    """Bring one run to its end, evaluated on val and test; says what was done."""
    state = run_state(planned.run_dir)
    extend = state != "new" and _check_same_config(planned, state)
    if state == "finished" and not extend:
        _evaluate(planned.run_dir)
        return "finished before, kept"
    earlier = _reusable(planned, finished) if state == "new" else None
    if earlier is not None:
        planned.run_dir.parent.mkdir(parents=True, exist_ok=True)
        if planned.run_dir.exists():
            planned.run_dir.rmdir()  # an empty folder (run_state checked): make way for the link
        planned.run_dir.symlink_to(os.path.relpath(earlier.resolve(), planned.run_dir.parent.resolve()))
        _evaluate(planned.run_dir)
        return f"the same config finished in {earlier}; linked"
    summary = _train_in_fresh_process(planned, out / "prepared", state in ("resume", "restart", "finished"))
    if summary.get("interrupted"):
        raise KeyboardInterrupt(f"{planned.run_dir} was interrupted; run the same sweep again to resume it")
    action = {"new": "trained", "resume": "resumed from its last checkpoint",
              "restart": "trained again from the start (it had stopped before its first checkpoint)",
              "finished": "trained on from its epoch cap"}[state]
    if extend:
        action += f" (train.epochs raised to {planned.config.train.epochs})"
    return f"{action}; best val/bleu {summary.get('best', {}).get('val/bleu', float('nan')):.2f}"


def _evaluate(run_dir: Path) -> None:
    for split in ("val", "test"):
        ensure_evaluated(run_dir, split)


def _several_devices(config: Config) -> bool:
    """True when Lightning may start several processes for this run (``devices`` other than 1, e.g. 2 or auto)."""
    return str(config.train.devices) != "1"


_training: set[int] = set()  # the pids of the training processes started and not yet ended


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM to this process is passed on to the runs in training and then raised
    here as a KeyboardInterrupt (only the main thread can handle signals; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        for pid in list(_training):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        raise KeyboardInterrupt("the sweep received SIGTERM")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tracked(pid: int, wait: Callable[[], int | None]) -> Callable[[], int | None]:
    """``wait`` for a training process, listed in ``_training`` until it has ended."""
    _training.add(pid)

    def wait_and_forget() -> int | None:
        try:
            return wait()
        finally:
            _training.discard(pid)

    return wait_and_forget


def _train_in_fresh_process(planned: PlannedRun, prepared_dir: Path, resume_run: bool) -> dict:
    """Train (or resume) ``planned`` in a process of its own and return the summary it wrote."""
    start = _start_command if _several_devices(planned.config) else _start_spawned
    wait = start(planned, prepared_dir, resume_run)
    try:
        exit_code = wait()
    except KeyboardInterrupt:  # Ctrl-C reaches both; Lightning in the child stops and writes its summary
        wait()
        raise
    summary = RunDir(planned.run_dir).summary
    if exit_code == 130:  # how 'attnlab train' says it was interrupted
        raise KeyboardInterrupt(f"{planned.run_dir} was interrupted; run the same sweep again to resume it")
    if exit_code != 0 or not summary.is_file():
        raise RunError(f"training {planned.run_dir} failed (exit code {exit_code}); see the messages above. "
                       "Run the same sweep again to resume or restart it")
    if start is _start_command:  # 'attnlab train' does not evaluate; a spawned process already did
        _evaluate(planned.run_dir)
    return json.loads(summary.read_text(encoding="utf-8"))


def _start_spawned(planned: PlannedRun, prepared_dir: Path, resume_run: bool) -> Callable[[], int | None]:
    """Start training ``planned`` in a spawned process; returns a function that waits for its exit code."""
    process = multiprocessing.get_context("spawn").Process(
        target=_train_process, args=(planned.config, planned.run_dir, prepared_dir, resume_run))
    process.start()

    def wait() -> int | None:
        process.join()
        return process.exitcode

    return _tracked(process.pid, wait)


def _start_command(planned: PlannedRun, prepared_dir: Path, resume_run: bool) -> Callable[[], int | None]:
    """Start ``attnlab train`` for ``planned`` (Lightning's DDP launcher re-runs this very command); returns
    a function that waits for its exit code."""
    command = [sys.executable, "-m", "attnlab", "train"]
    if resume_run:
        command += ["--resume", str(planned.run_dir), "--set", f"train.epochs={planned.config.train.epochs}"]
    else:
        config_file = prepared_dir.parent / "configs" / f"{planned.run_dir.name}.yaml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        save_config(planned.config, config_file)
        command += [str(config_file), "--run-dir", str(planned.run_dir), "--data-cache", str(prepared_dir)]
    env = {key: value for key, value in os.environ.items() if key != "ATTNLAB_RUN_DIR"}
    process = subprocess.Popen(command, env=env)
    return _tracked(process.pid, process.wait)


def _train_process(config: Config, run_dir: Path, prepared_dir: Path, resume_run: bool) -> None:
    """The body of the spawned process: train (or resume), then evaluate on val and test, in this process."""
    try:
        if resume_run:  # with the planned cap: the run's own, or a higher one to train on to
            _, summary = resume(run_dir, config.train.epochs)
        else:
            _, summary = train(config, run_dir, data_cache=prepared_dir)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM passed on by the sweep; the run keeps its last checkpoint
        sys.exit(130)
    if not summary.get("interrupted"):
        _evaluate(run_dir)


def _check_same_config(planned: PlannedRun, state: str) -> bool:
    """Refuse a run folder of another config. The epoch cap alone may differ: True when the run is to train on
    up to the planned cap (it ended at its own, or was interrupted), False when it stays as it is (the same
    cap, or early stopping ended it before the planned one)."""
    run = RunDir(planned.run_dir)
    saved = flat_config(load_config(run.config))
    differ = sorted(key for key, value in flat_config(planned.config).items() if saved.get(key) != value)
    if differ and differ != ["train.epochs"]:
        shown = ", ".join(f"{key}: {saved.get(key)!r} there, {flat_config(planned.config)[key]!r} now"
                          for key in differ[:3])
        raise RunError(f"{planned.run_dir} holds a run of another config ({shown}); to train the suite as it "
                       "is now, choose another --out or move that folder away")
    cap, planned_cap = saved["train.epochs"], planned.config.train.epochs
    if not differ or (state == "finished" and ends_the_same(read_json(run.summary, "run summary"), cap,
                                                            planned_cap)):
        return False
    if planned_cap < cap:
        raise RunError(f"{planned.run_dir} has train.epochs {cap} and the suite now asks for {planned_cap}: fewer "
                       "epochs than it may have trained; choose another --out or move that folder away")
    if planned.run_dir.is_symlink():
        raise RunError(f"{planned.run_dir} is linked to {planned.run_dir.resolve()}, which ended at its cap of {cap} "
                       f"epochs; train that sweep with train.epochs {planned_cap} first")
    return True
