"""``train(cfg)``: from a config to a complete, scored run directory; ``resume(run_dir)`` continues one.

Everything that can be checked is checked before the first step: the config, the data files, the
run directory, and (on resume) that the checkpoint fits the model and vocabulary.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from attnlab.config import Config, load_config, save_config
from attnlab.data.batching import make_batches, padding_share
from attnlab.data.prepare import PreparedData, load_prepared, prepare_data
from attnlab.models.build import build_model
from attnlab.models.summary import model_summary
from attnlab.rundir import RunDir, RunError, check_state_dict, create_run, model_state_from_checkpoint, open_run
from attnlab.training.attention_snapshots import AttentionSnapshots
from attnlab.training.callbacks import PerfMonitor, SamplesWriter, SaveInitialState
from attnlab.training.datamodule import TranslationDataModule
from attnlab.training.loggers import build_loggers, read_metrics, truncate_metrics
from attnlab.training.system import TranslationSystem, monitor_mode

__all__ = ["train", "resume", "default_run_dir"]


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


def _open_or_create_run(run_dir: str | Path | None) -> RunDir:
    if _is_launcher_child():
        run = RunDir(Path(os.environ.get("ATTNLAB_RUN_DIR") or run_dir or "."))
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        return run
    run = create_run(run_dir or default_run_dir(None))
    os.environ["ATTNLAB_RUN_DIR"] = str(run.root.resolve())
    return run


def _model_size(cfg: Config) -> int:
    return cfg.model.d_model if cfg.model.arch == "transformer" else cfg.model.hid_dim


def _detokenizer(data: PreparedData):
    vocab, tokenizer = data.tgt_vocab, data.tgt_tokenizer

    def detokenize(ids: list[int]) -> str:
        return tokenizer.decode(vocab.decode(ids))

    return detokenize


def _trainer(cfg: Config, run: RunDir, data: PreparedData) -> L.Trainer:
    t = cfg.train
    mode = monitor_mode(t.monitor)
    val = data.texts["val"]
    callbacks: list[L.Callback] = [
        ModelCheckpoint(dirpath=run.checkpoints, filename="best", monitor=t.monitor, mode=mode, save_top_k=1,
                        save_last=True, enable_version_counter=False, auto_insert_metric_name=False),
        SaveInitialState(run.init),
        PerfMonitor(run / "perf.csv"),
        SamplesWriter(run / "samples.txt", [s for s, _ in val], [r for _, r in val], t.num_samples,
                      len(val) if t.val_bleu_sentences is None else min(t.val_bleu_sentences, len(val))),
    ]
    if t.attention_snapshots > 0:
        callbacks.append(AttentionSnapshots(run / "attention", data.encoded["val"], data.src_vocab, data.tgt_vocab,
                                            t.attention_snapshots))
    if t.patience is not None:
        callbacks.append(EarlyStopping(monitor=t.monitor, mode=mode, patience=t.patience))
    return L.Trainer(
        max_epochs=t.epochs, max_steps=t.max_steps, max_time=_max_time(t.max_minutes),
        accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision, gradient_clip_val=t.clip,
        logger=build_loggers(t, run.root), callbacks=callbacks, default_root_dir=str(run.root),
        log_every_n_steps=t.log_every, num_sanity_val_steps=0, val_check_interval=t.val_check_interval,
        use_distributed_sampler=False, deterministic="warn", enable_model_summary=False,
    )


def _max_time(minutes: float | None) -> dict | None:
    return None if minutes is None else {"seconds": int(minutes * 60)}


def _fit(cfg: Config, run: RunDir, data: PreparedData, ckpt_path: Path | None) -> dict:
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab))
    if ckpt_path is not None:
        check_state_dict(model, model_state_from_checkpoint(ckpt_path), ckpt_path)
    system = TranslationSystem(model, cfg.train, cfg.decode, _model_size(cfg), _detokenizer(data),
                               [ref for _, ref in data.texts["val"]])
    datamodule = TranslationDataModule(data, cfg.train.batch_tokens, cfg.train.batch_size, cfg.train.seed)
    trainer = _trainer(cfg, run, data)
    with warnings.catch_warnings():
        # Advice that does not apply: batches are built in the main process on purpose (they are cheap
        # and deterministic), and short epochs are expected on small corpora.
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*deterministic.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
        trainer.fit(system, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    if not trainer.is_global_zero:
        return {}
    return _write_summary(cfg, run, data, model, trainer)


def _write_summary(cfg: Config, run: RunDir, data: PreparedData, model, trainer: L.Trainer) -> dict:
    perf = [dict(r) for r in _read_csv(run / "perf.csv")]
    metrics = [r for r in read_metrics(run / "metrics.csv") if r.get("val/loss")]
    mode = monitor_mode(cfg.train.monitor)
    best = (min if mode == "min" else max)(metrics, key=lambda r: float(r[cfg.train.monitor]), default=None)
    batches = make_batches(data.encoded["train"], cfg.train.batch_tokens, cfg.train.batch_size, seed=cfg.train.seed)
    summary = {
        "parameters": model_summary(model),
        "epochs": int(trainer.current_epoch),
        "steps": int(trainer.global_step),
        "interrupted": bool(trainer.interrupted),
        "train_time_s": sum(float(r["perf/train_time_s"]) for r in perf),
        "tokens_per_sec": (sum(float(r["perf/tokens_per_sec"]) for r in perf) / len(perf)) if perf else None,
        "peak_memory_mb": max((float(r["perf/peak_memory_mb"]) for r in perf), default=None),
        "padding_share": padding_share(data.encoded["train"], batches),
        "best": {k: float(v) for k, v in (best or {}).items() if k.startswith("val/") and v} | (
            {"epoch": int(float(best["epoch"])), "step": int(float(best["step"]))} if best else {}),
        "data": data.report.split_pairs,
    }
    (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _read_csv(path: Path) -> list[dict]:
    return read_metrics(path) if path.is_file() else []


def train(cfg: Config, run_dir: str | Path | None = None, data: PreparedData | None = None) -> tuple[RunDir, dict]:
    """Prepare the data, build the model, train it and write the run directory. Returns its summary.

    ``data``: the result of ``prepare_data(cfg.data)`` when the caller already has it (a sweep
    shares one preparation between its variants); it must come from this very data config.
    """
    run = _open_or_create_run(run_dir)
    started = time.perf_counter()
    data = prepare_data(cfg.data) if data is None else data
    if not _is_launcher_child():
        save_config(cfg, run.config)
        data.save(run.root)
    summary = _fit(cfg, run, data, ckpt_path=None)
    summary["wall_time_s"] = time.perf_counter() - started
    return run, summary


def resume(run_dir: str | Path) -> tuple[RunDir, dict]:
    """Continue an interrupted run from its last checkpoint, with the run's own config and data."""
    run = open_run(run_dir)
    if not run.last.is_file():
        raise RunError(f"{run.root} has no checkpoints/last.ckpt to resume from (interrupted before the first "
                       "validation?); start it again with 'attnlab train'")
    cfg = load_config(run.config)
    data = prepare_data(cfg.data)
    _check_same_vocab(run, data)
    checkpoint = torch.load(run.last, map_location="cpu", weights_only=False)
    truncate_metrics(run / "metrics.csv", int(checkpoint["epoch"]))
    truncate_metrics(run / "perf.csv", int(checkpoint["epoch"]))
    summary = _fit(cfg, run, data, ckpt_path=run.last)
    return run, summary


def _check_same_vocab(run: RunDir, data: PreparedData) -> None:
    _, _, src_vocab, tgt_vocab, _ = load_prepared(run.root)
    if src_vocab.itos != data.src_vocab.itos or tgt_vocab.itos != data.tgt_vocab.itos:
        raise RunError(f"the data prepared from {run.config} no longer gives the run's vocabulary "
                       f"({run.root}/src_vocab.json); was the corpus changed?")
