"""``train(cfg)``: from a config to a complete, scored run directory; ``resume(run_dir)`` continues one.

Everything that can be checked is checked before the first step: the config (when it was loaded),
the machine (a GPU asked for and absent), the data files, the data against the model (positions),
the run directory (free, writable, not in use), and on resume that the checkpoint fits the model and
vocabulary. A run that fails before training starts leaves no folder behind. While a process trains,
the run directory is locked (:class:`attnlab.rundir.RunLock`). Ctrl-C and SIGTERM both stop training
with a ``KeyboardInterrupt`` (Lightning exits on the first and raises its own exception on the
second), and the run keeps its last checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, Timer
from lightning.pytorch.utilities.exceptions import SIGTERMException

from attnlab.checkpoints import atomic_write_text, check_state_dict, load_checkpoint, model_state
from attnlab.config import Config, ConfigError, config_yaml, load_config, monitor_mode, save_config
from attnlab.config_checks import validate
from attnlab.data.batching import make_batches, padding_share
from attnlab.data.cache import cached_prepare, data_key
from attnlab.data.errors import DataError
from attnlab.data.prepare import prepare_data
from attnlab.data.store import PreparedData, load_run_tokenizers, open_prepared
from attnlab.evaluation.references import GroupedReferences
from attnlab.models.build import build_model
from attnlab.models.summary import model_summary
from attnlab.rundir import RunDir, RunError, RunLock, create_run, open_run, read_json, read_rows
from attnlab.training.attention_snapshots import AttentionSnapshots
from attnlab.training.callbacks import PerfMonitor, SamplesWriter, SaveInitialState
from attnlab.training.checkpointing import RunCheckpoints, SafeCheckpointIO
from attnlab.training.datamodule import TranslationDataModule
from attnlab.training.heap_trim import TrimHeap
from attnlab.training.loggers import build_loggers, truncate_metrics
from attnlab.training.precision import resolve_precision
from attnlab.training.system import TranslationSystem
from attnlab.training.weight_average import AveragedWeights

__all__ = ["train", "resume", "default_run_dir", "check_machine"]


def default_run_dir(config_path: str | Path | None) -> Path:
    stem = Path(config_path).stem if config_path else "run"
    return Path("runs") / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _is_launcher_child() -> bool:
    """True in the processes Lightning's DDP launcher starts (local rank > 0) and on nodes other than 0.

    They re-run the user's command; the run directory is the one the first process made, passed on in
    ``ATTNLAB_RUN_DIR`` (the launcher copies the environment). On several machines, give ``--run-dir``
    on a shared file system.
    """
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def check_machine(cfg: Config) -> None:
    """Refuse what this machine cannot do before anything is created: a GPU that is not there."""
    accelerator = cfg.train.accelerator
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config key 'train.accelerator' is {accelerator!r}, but this machine has no CUDA GPU that "
                          "torch can use; set train.accelerator=cpu (or auto)")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("config key 'train.accelerator' is 'mps', but Apple's MPS is not available here")


def _model_size(cfg: Config) -> int:
    return cfg.model.d_model if cfg.model.arch == "transformer" else cfg.model.hid_dim


def _check_data_fits(cfg: Config, data: PreparedData) -> None:
    """What only the prepared data can tell: a validation split to score, sentences within the model's positions."""
    if len(data.encoded["val"]) == 0:
        raise DataError(f"the validation split of {data.report.source} is empty; raise data.val_ratio (or give a "
                        "Multi30k val split with pairs)")
    if cfg.model.arch == "transformer":
        longest = max(int(s.src_lengths.max(initial=0)) for s in data.encoded.values())
        longest = max(longest, max(int(s.tgt_lengths.max(initial=0)) + 1 for s in data.encoded.values()))
        if longest > cfg.model.max_positions:
            raise ConfigError(f"config key 'model.max_positions' is {cfg.model.max_positions}, but the prepared "
                              f"data holds a sentence of {longest} positions (with <bos>/<eos>); raise "
                              "model.max_positions or set data.max_len")


def _val_references(cfg: Config, data: PreparedData) -> GroupedReferences:
    return GroupedReferences.from_pairs(data.texts["val"], by_source=cfg.data.corpus != "multi30k",
                                        limit=cfg.train.val_bleu_sentences)


def _trainer(cfg: Config, run: RunDir, data: PreparedData, references: GroupedReferences) -> L.Trainer:
    t = cfg.train
    mode = monitor_mode(t.monitor)
    val = data.texts["val"]
    scored = len([g for g in references.group_of if g >= 0])
    callbacks: list[L.Callback] = [
        RunCheckpoints(run, t.monitor, mode),
        SaveInitialState(run.init),
        PerfMonitor(run.perf),
        SamplesWriter(run.samples, [s for s, _ in val], [r for _, r in val], t.num_samples, scored),
    ]
    if t.attention_snapshots > 0:
        callbacks.append(AttentionSnapshots(run.attention, data.encoded["val"], data.src_vocab, data.tgt_vocab,
                                            t.attention_snapshots))
    if t.ema_decay > 0:  # after AttentionSnapshots: the trained weights come back after the snapshots
        callbacks.append(AveragedWeights(t.ema_decay))
    if t.trim_heap_every > 0:
        callbacks.append(TrimHeap(t.trim_heap_every))
    if t.patience is not None:
        callbacks.append(EarlyStopping(monitor=t.monitor, mode=mode, patience=t.patience))
    return L.Trainer(
        max_epochs=t.epochs, max_steps=t.max_steps, max_time=_max_time(t.max_minutes),
        accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, precision=resolve_precision(t.precision, t.accelerator),
        gradient_clip_val=t.clip,
        logger=build_loggers(t, run.root), callbacks=callbacks, default_root_dir=str(run.root),
        log_every_n_steps=t.log_every, num_sanity_val_steps=0, val_check_interval=t.val_check_interval,
        use_distributed_sampler=False, deterministic="warn", enable_model_summary=False,
        plugins=[SafeCheckpointIO()],
    )


def _max_time(minutes: float | None) -> dict | None:
    return None if minutes is None else {"seconds": int(minutes * 60)}


def _fit(cfg: Config, run: RunDir, data: PreparedData, ckpt_path: Path | None) -> dict:
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab))
    if ckpt_path is not None:
        check_state_dict(model, model_state(ckpt_path), ckpt_path)
    references = _val_references(cfg, data)
    vocab, tokenizer = data.tgt_vocab, data.tgt_tokenizer
    system = TranslationSystem(model, cfg.train, cfg.decode, _model_size(cfg),
                               lambda ids: tokenizer.decode(vocab.decode(ids)), references)
    datamodule = TranslationDataModule(data, cfg.train.batch_tokens, cfg.train.batch_size, cfg.train.seed)
    trainer = _trainer(cfg, run, data, references)
    with warnings.catch_warnings():
        # Advice that does not apply: batches are built in the main process on purpose (they are cheap
        # and deterministic), and short epochs are expected on small corpora.
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*deterministic.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
        # Resuming with train.max_minutes raised to null: the checkpoint's Timer has nothing left to time.
        warnings.filterwarnings("ignore", r".*callbacks used to create the checkpoint.*\['Timer'\]")
        try:
            trainer.fit(system, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None,
                        weights_only=True if ckpt_path else None)
        except SIGTERMException as stop:  # 'kill PID', a scheduler's time limit: Lightning stopped as on Ctrl-C
            raise KeyboardInterrupt("training received SIGTERM") from stop
    if not trainer.is_global_zero:
        return {}
    return _write_summary(cfg, run, data, model, trainer)


def _write_summary(cfg: Config, run: RunDir, data: PreparedData, model, trainer: L.Trainer) -> dict:
    perf = read_rows(run.perf, "perf file")
    checkpoints = next(c for c in trainer.callbacks if isinstance(c, RunCheckpoints))
    rows = [r for r in read_rows(run.metrics) if r.get("val/loss")]
    candidates = [r for r in rows if int(float(r["epoch"])) == checkpoints.best_epoch and r.get(cfg.train.monitor)]
    best = min(candidates, key=lambda r: abs(float(r[cfg.train.monitor]) - (checkpoints.best_score or 0.0)),
               default=None)  # the validation best.ckpt holds (several per epoch with val_check_interval < 1)
    batches = make_batches(data.encoded["train"], cfg.train.batch_tokens, cfg.train.batch_size, seed=cfg.train.seed)
    summary = {
        "parameters": model_summary(model),
        "epochs": int(trainer.current_epoch),
        "steps": int(trainer.global_step),
        "interrupted": bool(trainer.interrupted),
        "stopped_early": any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks),
        "stopped_by_budget": not trainer.interrupted and _budget_spent(trainer),
        "train_time_s": sum(float(r["perf/train_time_s"]) for r in perf),
        "tokens_per_sec": (sum(float(r["perf/tokens_per_sec"]) for r in perf) / len(perf)) if perf else None,
        "peak_memory_mb": max((float(r["perf/peak_memory_mb"]) for r in perf), default=None),
        "padding_share": padding_share(data.encoded["train"], batches),
        "precision": str(trainer.precision),
        "best": {k: float(v) for k, v in (best or {}).items() if k.startswith("val/") and v} | (
            {"epoch": checkpoints.best_epoch, "step": checkpoints.best_step} if best else {}),
        "data": data.report.split_pairs,
    }
    atomic_write_text(run.summary, json.dumps(summary, indent=2))
    return summary


def _budget_spent(trainer: L.Trainer) -> bool:
    """Whether the time budget (``train.max_minutes``, Lightning's Timer) ran out."""
    timers = [c for c in trainer.callbacks if isinstance(c, Timer)]
    return any((left := timer.time_remaining()) is not None and left <= 0 for timer in timers)


def _prepared(cfg: Config, run: RunDir, data_cache: str | Path | None) -> PreparedData:
    """The run's data: in a shared cache, in the run's own ``prepared/`` (made by the first process), or new."""
    if data_cache is not None:
        return cached_prepare(cfg.data, data_cache)
    if run.prepared.exists():
        return open_prepared(run.prepared)
    return prepare_data(cfg.data, run.prepared, key=data_key(cfg.data))


def train(cfg: Config, run_dir: str | Path | None = None, data: PreparedData | None = None,
          data_cache: str | Path | None = None) -> tuple[RunDir, dict]:
    """Prepare the data, build the model, train it and write the run directory. Returns its summary.

    ``data``: the result of ``prepare_data(cfg.data)`` when the caller already has it; it must come
    from this very data config. ``data_cache``: a folder of prepared data shared between runs
    (``attnlab train --data-cache``, a sweep's ``prepared/``); by default the run keeps its own.
    """
    check_machine(cfg)
    if _is_launcher_child():
        run = RunDir(Path(os.environ.get("ATTNLAB_RUN_DIR") or run_dir or "."))
        summary = _fit(cfg, run, data or _prepared(cfg, run, data_cache), ckpt_path=None)
        return run, summary
    root = Path(run_dir or default_run_dir(None))
    existed = root.exists()
    run, lock = create_run(root)
    os.environ["ATTNLAB_RUN_DIR"] = str(run.root.resolve())
    with lock:
        started = time.perf_counter()
        try:
            data = data or _prepared(cfg, run, data_cache)
            _check_data_fits(cfg, data)
            save_config(cfg, run.config)
            data.save(run.root)
        except BaseException:
            _discard(run, existed)
            raise
        summary = _fit(cfg, run, data, ckpt_path=None)
        summary["wall_time_s"] = time.perf_counter() - started
    return run, summary


def _discard(run: RunDir, existed: bool) -> None:
    """Remove what a failed start made: the whole folder if it was new, else only the run's own entries."""
    if not existed:
        shutil.rmtree(run.root, ignore_errors=True)
        return
    for path in (run.prepared, run.checkpoints, run.config, run.data_json, run.lock_file):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def resume(run_dir: str | Path, epochs: int | None = None, max_minutes: float | None = None) -> tuple[RunDir, dict]:
    """Continue an interrupted run from its last completed validation, with the run's own config and data.

    A run stopped before its first validation has nothing to continue from: it starts again from
    the beginning, keeping its config (``restarted`` is then True in the summary).

    ``epochs`` and ``max_minutes`` raise the run's epoch cap (``train.epochs``) and time budget
    (``train.max_minutes``; ``math.inf``: no budget) first, the two keys a run may change. A run that
    ended at its cap trains on from its last epoch, with its early-stopping count, best score and
    optimiser state, up to the new cap; the schedules attnlab has depend on the step, not on the cap,
    so it ends as one trained with the higher cap from the start. A run its time budget stopped trains
    on from the epoch after the one the budget cut short (that epoch's remaining batches are skipped:
    its checkpoint was written at the validation that closed it), its Timer counting on from where it
    stopped. Raising what did not stop a run (more epochs for early stopping or a spent budget) is
    refused: it would change nothing.
    """
    run = RunDir(Path(run_dir))
    if epochs is not None or max_minutes is not None:
        open_run(run_dir)
        with RunLock(run):
            _raise_caps(run, epochs, max_minutes)
    if not run.config.is_file() or not run.data_json.is_file():
        if not run.config.is_file():
            open_run(run_dir)  # says what is wrong: missing, a file, or not a run
        return _restart_without_data(run)
    with RunLock(run):
        cfg = load_config(run.config)
        check_machine(cfg)
        data = _resume_data(cfg, run)
        _check_same_vocab(run, data)
        os.environ["ATTNLAB_RUN_DIR"] = str(run.root.resolve())
        if not run.last.is_file():
            _clear_progress(run)
            summary = _fit(cfg, run, data, ckpt_path=None)
            summary["restarted"] = True
            return run, summary
        epoch = load_checkpoint(run.last).get("epoch")
        if not isinstance(epoch, int):
            raise RunError(f"checkpoint {run.last} holds no epoch; it was not written by 'attnlab train'")
        truncate_metrics(run.metrics, epoch)
        truncate_metrics(run.perf, epoch)
        return run, _fit(cfg, run, data, ckpt_path=run.last)


def _raise_caps(run: RunDir, epochs: int | None, max_minutes: float | None) -> None:
    """Write the run's config with a higher epoch cap and/or time budget, or refuse saying why."""
    cfg = load_config(run.config)
    for rows in (run.metrics, run.perf):  # a damaged file the resume reads is refused before anything changes
        read_rows(rows)
    t = cfg.train
    new_epochs = t.epochs if epochs is None else epochs
    if new_epochs < t.epochs:
        raise RunError(f"train.epochs {epochs} is below the run's own {t.epochs}; a resumed run can only train "
                       "longer")
    new_budget = t.max_minutes if max_minutes is None else None if math.isinf(max_minutes) else max_minutes
    if max_minutes is not None and new_budget is not None and (t.max_minutes is None or new_budget < t.max_minutes):
        own = "no time budget" if t.max_minutes is None else f"a budget of {t.max_minutes:g}"
        raise RunError(f"train.max_minutes {new_budget:g}: the run has {own}; a resumed run can only train longer")
    if new_epochs == t.epochs and new_budget == t.max_minutes:
        return
    raised_cfg = replace(cfg, train=replace(t, epochs=new_epochs, max_minutes=new_budget))
    validate(raised_cfg, str(run.config))  # e.g. the schedule linear_budget needs a budget
    if run.summary.is_file():
        summary = read_json(run.summary, "run summary")
        ended = what_ended(summary, cfg)
        moved = {"epoch cap": new_epochs > t.epochs, "time budget": new_budget != t.max_minutes}
        if ended is not None and not moved.get(ended):
            advice = {"epoch cap": "raise train.epochs", "time budget": "raise train.max_minutes (or set it to null)"}
            raise RunError(f"{run.root} ended after {summary.get('epochs')} of its {t.epochs} epochs ({ended}): "
                           f"{advice.get(ended, 'more epochs or time would change nothing')}")
        run.summary.unlink()  # unfinished again: interrupted from here on, it resumes with the new caps
    atomic_write_text(run.config, config_yaml(raised_cfg))


def what_ended(summary: dict, cfg: Config) -> str | None:
    """What stopped a finished run: its epoch cap, its time budget, its step cap or early stopping (None: it
    was interrupted, and resumes as it is)."""
    t = cfg.train
    if summary.get("interrupted"):
        return None
    if summary.get("stopped_early"):
        return "early stopping"
    steps, trained = summary.get("steps"), summary.get("epochs")
    if t.max_steps != -1 and isinstance(steps, int) and steps >= t.max_steps:
        return "step cap"
    budget_spent = summary.get("stopped_by_budget")  # absent in runs written before it was recorded
    if budget_spent or (budget_spent is None and t.max_minutes is not None and trained != t.epochs):
        return "time budget"
    return "epoch cap"


def _restart_without_data(run: RunDir) -> tuple[RunDir, dict]:
    """A run killed before it had saved its data: prepare it and train from the start, keeping the config."""
    with RunLock(run):
        cfg = load_config(run.config)
        check_machine(cfg)
        shutil.rmtree(run.prepared, ignore_errors=True)
        data = prepare_data(cfg.data, run.prepared, key=data_key(cfg.data))
        _check_data_fits(cfg, data)
        data.save(run.root)
        _clear_progress(run)
        os.environ["ATTNLAB_RUN_DIR"] = str(run.root.resolve())
        summary = _fit(cfg, run, data, ckpt_path=None)
    summary["restarted"] = True
    return run, summary


def _resume_data(cfg: Config, run: RunDir) -> PreparedData:
    """The prepared data the run trained on if it is still there and current, else prepared again."""
    meta = read_json(run.data_json, "data file")
    stored = meta.get("prepared") if isinstance(meta, dict) else None
    key = data_key(cfg.data)
    for folder in ([run.root / stored] if isinstance(stored, str) else []) + [run.prepared]:
        if folder.is_dir() and (folder / "index.json").is_file():
            data = open_prepared(folder)
            if data.key in ("", key):
                return data
    shutil.rmtree(run.prepared, ignore_errors=True)
    return prepare_data(cfg.data, run.prepared, key=key)


def _clear_progress(run: RunDir) -> None:
    """Forget a run's partial progress (it stopped before its first checkpoint), keeping config and data."""
    for path in (run.metrics, run.perf, run.samples, run.summary, run.init):
        path.unlink(missing_ok=True)
    for folder in (run.attention, run.root / "tensorboard"):
        shutil.rmtree(folder, ignore_errors=True)


def _check_same_vocab(run: RunDir, data: PreparedData) -> None:
    _, _, src_vocab, tgt_vocab, _ = load_run_tokenizers(run.root)
    if src_vocab.itos != data.src_vocab.itos or tgt_vocab.itos != data.tgt_vocab.itos:
        raise RunError(f"the data prepared from {run.config} no longer gives the run's vocabulary "
                       f"({run.src_vocab}); was the corpus changed?")
