"""``evaluate_run``: translate a split (or a source file) with a trained run and score it with sacreBLEU.

Hypotheses are detokenised the way the run's tokenizer requires (SentencePiece decode, or joining
words). References get the run's own normalisation, so that a ``tutorial`` run, which writes lower
case ASCII, is scored against references in the same form; with ``normalize: none`` they are kept
as they are. Splits of Tatoeba and of the user's own files are scored against every reference of
each source sentence, with the single-reference score beside it (:mod:`.references`).

Every evaluation is stored under ``RUN/eval/<what>-beam<N>-<key>/`` (``hyps.txt``, ``scores.json``)
and keyed by everything that produced it: the checkpoint's content (a hash of the file), the split
or the source and reference files' content, the beam size, the length penalty and its form, and the
backend. ``scores.json`` records that key, so a stored result is only ever reused for the very
same question, and a report can say truthfully which checkpoint it shows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from attnlab.checkpoints import atomic_write_text
from attnlab.config import Config
from attnlab.data.corpora import RawCorpus, iter_lines, iter_pairs
from attnlab.data.errors import DataError
from attnlab.data.normalize import get_normalizer
from attnlab.data.prepare import read_splits
from attnlab.data.store import open_prepared, read_text_lines
from attnlab.decoding.translator import Translator
from attnlab.evaluation.references import GroupedReferences
from attnlab.rundir import RunDir, read_json

__all__ = ["evaluate_run", "split_texts", "evaluation_key", "file_digest", "EVAL_SPLITS"]

EVAL_SPLITS = ("train", "val", "test")


def file_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's sha256: its identity in evaluation keys."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def split_texts(cfg: Config, split: str, run: RunDir | None = None) -> tuple[list[str], list[str]]:
    """Sources and references of ``split``: train/val/test as training prepared them (read from the run's
    prepared data when it is still there), or any other Multi30k split by name (e.g.
    ``test_2017_flickr``), normalised but never filtered."""
    if split in EVAL_SPLITS:
        stored = _stored_split(run, split) if run is not None else None
        pairs = stored if stored is not None else read_splits(cfg.data)[0][split]
    elif cfg.data.corpus == "multi30k":
        normalize = get_normalizer(cfg.data.normalize)
        counts = RawCorpus()
        raw = iter_pairs("multi30k", counts, src_lang=cfg.data.src_lang, tgt_lang=cfg.data.tgt_lang, split=split,
                         data_dir=cfg.data.data_dir)
        pairs = [(normalize(s), normalize(t)) for s, t in raw]
    else:
        raise DataError(f"split {split!r} is unknown for corpus {cfg.data.corpus!r}; choose train, val or test "
                        "(other names exist for Multi30k only)")
    return [s for s, _ in pairs], [t for _, t in pairs]


def _stored_split(run: RunDir, split: str) -> list[tuple[str, str]] | None:
    """The split's normalised pairs from the prepared data the run trained on, if that is still there."""
    meta = read_json(run.data_json, "data file")
    stored = meta.get("prepared") if isinstance(meta, dict) else None
    folder = run.root / stored if isinstance(stored, str) else run.prepared
    if not (folder / "index.json").is_file():
        return None
    data = open_prepared(folder)
    if data.key and data.key != meta.get("key"):
        return None
    return [tuple(line.split("\t", 1)) for line in read_text_lines(folder / f"{split}.txt")]  # type: ignore[misc]


def _file_pairs(src_file: str | Path, ref_file: str | Path, normalize: str) -> tuple[list[str], list[str]]:
    """Every line of a source file and its reference file, blank lines included (a blank source gives a blank
    translation, so the output stays line-aligned with the input)."""
    lines = []
    for path in (Path(src_file), Path(ref_file)):
        if not path.is_file():
            raise DataError(f"{path} {'is a directory, not a file' if path.is_dir() else 'does not exist'}")
        with open(path, "rb") as handle:
            lines.append([text for _, text in iter_lines(handle, str(path))])
    sources, references = lines
    if len(sources) != len(references):
        raise DataError(f"{src_file} has {len(sources)} lines but {ref_file} has {len(references)}; give one "
                        "reference per source line")
    if not sources:
        raise DataError(f"{src_file} is empty")
    norm = get_normalizer(normalize)
    return sources, [norm(r) for r in references]


def evaluation_key(checkpoint: str, checkpoint_file: Path | None, data: dict[str, Any], beam: int,
                   length_penalty: float, length_penalty_form: str, backend: str) -> dict[str, Any]:
    """Everything that produced an evaluation; two evaluations with equal keys give the same numbers."""
    return {"checkpoint": checkpoint, "checkpoint_sha256": file_digest(checkpoint_file) if checkpoint_file else None,
            "data": data, "beam": beam, "length_penalty": length_penalty,
            "length_penalty_form": length_penalty_form, "backend": backend}


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def _with_data_dir(cfg: Config, data_dir: str | None) -> Config:
    """The run's config reading Multi30k from ``data_dir`` (``--data-dir``), if given."""
    if not data_dir:
        return cfg
    if cfg.data.corpus != "multi30k":
        raise DataError(f"--data-dir applies to Multi30k runs; this run trained on {cfg.data.corpus!r}")
    if not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} does not exist")
    return replace(cfg, data=replace(cfg.data, data_dir=data_dir))


def evaluate_run(run_dir: str | Path, split: str | None = "test", src_file: str | Path | None = None,
                 ref_file: str | Path | None = None, beam: int | None = None, checkpoint: str = "best",
                 batch_size: int = 64, data_dir: str | None = None, backend: str | None = None,
                 length_penalty: float | None = None, length_penalty_form: str | None = None) -> dict:
    """Translate and score; writes ``hyps.txt`` and ``scores.json`` under ``RUN/eval/<what>-beam<N>-<key>/``.

    ``run_dir`` may also be a checkpoint file of a run, or an export directory (``attnlab export``);
    ``backend``, ``length_penalty`` and ``length_penalty_form`` default to the run's (see
    :meth:`Translator.from_run`).
    """
    translator = Translator.from_run(run_dir, checkpoint=checkpoint, backend=backend)
    if length_penalty is not None:
        translator.length_penalty = length_penalty
    if length_penalty_form is not None:
        translator.length_penalty_form = length_penalty_form
    cfg, root = _with_data_dir(translator.cfg, data_dir), translator.root or Path(run_dir)  # an export has no run
    beam = beam or cfg.decode.beam
    if src_file is not None:
        if ref_file is None:
            raise DataError("--src needs --ref (one reference per source line)")
        sources, references = _file_pairs(src_file, ref_file, cfg.data.normalize)
        name, data = f"file-{Path(src_file).stem}", {"src_sha256": file_digest(src_file),
                                                        "ref_sha256": file_digest(ref_file)}
        grouped = GroupedReferences.from_pairs(list(zip(sources, references, strict=True)), by_source=False,
                                               lang=cfg.data.tgt_lang)
    else:
        sources, references = split_texts(cfg, split, translator.run)
        if not sources:
            raise DataError(f"the {split} split of this run is empty; nothing to evaluate")
        name, data = split, {"split": split, "corpus": cfg.data.corpus}
        pairs = list(zip(sources, references, strict=True))
        grouped = GroupedReferences.from_pairs(pairs, by_source=cfg.data.corpus != "multi30k", lang=cfg.data.tgt_lang)
    unique = [sources[i] for i in grouped.first_pairs]
    translations = [t.text for t in translator.translate(unique, beam=beam, batch_size=batch_size)]
    hypotheses = [translations[g] for g in grouped.group_of]
    key = evaluation_key(checkpoint if translator.checkpoint is None else translator.checkpoint_name,
                         translator.checkpoint, data, beam, translator.length_penalty,
                         translator.length_penalty_form, translator.backend)
    scores = {"split": name, "beam": beam, "checkpoint": key["checkpoint"], "backend": translator.backend,
              "length_penalty": translator.length_penalty, "length_penalty_form": translator.length_penalty_form,
              **grouped.score(translations), "key": key}
    out = root / "eval" / f"{name}-beam{beam}-{key_digest(key)}"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "hyps.txt", "".join(h + "\n" for h in hypotheses))
    atomic_write_text(out / "scores.json", json.dumps(scores, indent=2))  # last: a kill leaves no scores
    scores["output_dir"] = str(out)
    return scores
