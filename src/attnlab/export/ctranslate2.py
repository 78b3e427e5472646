"""``export_run``: a trained Transformer run as a CTranslate2 export directory.

The directory (:mod:`attnlab.decoding.export_layout`) holds the model converted by
:mod:`attnlab.decoding.ctranslate2_spec` plus everything needed to translate raw text exactly the way
the run does, and a manifest with the run's config, scores and checksums for provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

import attnlab
from attnlab.decoding.ctranslate2_spec import check_exportable, require_ctranslate2, save_model, transformer_spec
from attnlab.decoding.export_layout import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    QUANTIZATIONS,
    RUN_FILES,
    WEIGHTS,
    ExportError,
)
from attnlab.decoding.translator import Translator
from attnlab.rundir import RunDir

__all__ = ["export_run"]

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_or_none(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable (provenance is kept best-effort)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run_scores(root: Path) -> dict[str, Any]:
    """What the run measured: best validation scores (summary.json) and every evaluation (eval/*/scores.json)."""
    summary = _json_or_none(RunDir(root).summary)
    evaluations = {path.parent.name: _json_or_none(path) for path in sorted((root / "eval").glob("*/scores.json"))}
    return {"best_validation": summary.get("best") if isinstance(summary, dict) else None,
            "evaluations": evaluations}


def _manifest(translator: Translator, root: Path, checkpoint: str, quantization: str, directory: Path) -> dict:
    cfg = translator.cfg
    assert cfg is not None  # from_run sets it
    ctranslate2 = require_ctranslate2()
    return {
        "format": FORMAT, "version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"attnlab": attnlab.__version__, "ctranslate2": ctranslate2.__version__,
                     "torch": torch.__version__},
        "source": {"run_dir": str(root.resolve()), "checkpoint": checkpoint,
                   "checkpoint_file": str(translator.checkpoint) if translator.checkpoint else None,
                   "checkpoint_sha256": _sha256(translator.checkpoint) if translator.checkpoint else None},
        "quantization": quantization,
        "direction": {"src_lang": cfg.data.src_lang, "tgt_lang": cfg.data.tgt_lang},
        "text": {"normalize": cfg.data.normalize, "tokenizer": cfg.data.tokenizer,
                 "shared_vocab": translator.src_vocab is translator.tgt_vocab},
        "limits": {"max_src_len": translator.max_src_len, "max_len": translator.max_len,
                   "max_len_ratio": translator.max_len_ratio, "limit_reason": translator.limit_reason},
        "decode": {"beam": cfg.decode.beam, "length_penalty": translator.length_penalty,
                   "length_penalty_form": translator.length_penalty_form},
        "scores": _run_scores(root),
        "files": {path.name: _sha256(path) for path in sorted(directory.iterdir()) if path.is_file()},
    }


def _write_export(translator: Translator, root: Path, checkpoint: str, quantization: str, directory: Path) -> None:
    """Every file of the export into the empty ``directory``; the manifest last, with checksums of the rest."""
    assert translator.cfg is not None
    spec = transformer_spec(translator.model, translator.cfg.model, translator.src_vocab.itos,
                            translator.tgt_vocab.itos)
    save_model(spec, directory, quantization)
    for name in RUN_FILES:
        if (root / name).is_file():
            shutil.copyfile(root / name, directory / name)
    state = {key: value.detach().cpu() for key, value in translator.model.state_dict().items()}
    torch.save(state, directory / WEIGHTS)
    manifest = _manifest(translator, root, checkpoint, quantization, directory)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def export_run(run_dir: str | Path, out: str | Path, quantization: str = "float32",
               checkpoint: str = "best") -> Path:
    """Export a Transformer run (or one of its checkpoints) to the CTranslate2 directory ``out``.

    ``out`` must not exist yet, or be empty. The export is written beside it and renamed into place at
    the end, so an interrupted export leaves no half-written directory.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"--out {out} already exists and is not an empty directory; choose a new one")
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"quantization {quantization!r} is unknown; choose one of {', '.join(QUANTIZATIONS)}")
    require_ctranslate2()
    translator = Translator.from_run(run_dir, checkpoint=checkpoint, device="cpu", backend="torch")
    assert translator.cfg is not None and translator.root is not None  # from_run sets both
    root = translator.root  # the run (also when run_dir is one of its checkpoints)
    check_exportable(translator.cfg.model, f"run {root}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        _write_export(translator, root, checkpoint, quantization, partial)
        os.replace(partial, out)  # an empty ``out`` is replaced too
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out
