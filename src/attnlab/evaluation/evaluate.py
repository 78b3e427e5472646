"""``evaluate_run``: translate a split (or a source file) with a trained run and score it with sacreBLEU.

Hypotheses are detokenised the way the run's tokenizer requires (SentencePiece decode, or joining
words). References get the run's own normalisation, so that a ``tutorial`` run, which writes lower
case ASCII, is scored against references in the same form; with ``normalize: none`` they are kept
as they are.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from attnlab.config import Config, load_config
from attnlab.data.corpora import read_multi30k, read_parallel_files
from attnlab.data.normalize import get_normalizer
from attnlab.data.prepare import read_splits
from attnlab.decoding.translator import Translator
from attnlab.evaluation.scores import score_corpus
from attnlab.rundir import open_run

__all__ = ["evaluate_run", "split_texts"]


def split_texts(cfg: Config, split: str) -> tuple[list[str], list[str]]:
    """Sources and references of ``split``: train/val/test as training prepared them, or any other
    Multi30k split by name (e.g. ``test_2017_flickr``), normalised but never filtered."""
    if split in ("train", "val", "test"):
        pairs = read_splits(cfg.data)[0][split]
    elif cfg.data.corpus == "multi30k":
        normalize = get_normalizer(cfg.data.normalize)
        raw = read_multi30k(split, cfg.data.src_lang, cfg.data.tgt_lang, cfg.data.data_dir)
        pairs = [(normalize(s), normalize(t)) for s, t in raw.pairs]
    else:
        raise ValueError(f"split {split!r}: choose train, val or test (other names exist for Multi30k only)")
    return [s for s, _ in pairs], [t for _, t in pairs]


def evaluate_run(run_dir: str | Path, split: str | None = "test", src_file: str | Path | None = None,
                 ref_file: str | Path | None = None, beam: int | None = None, checkpoint: str = "best",
                 batch_size: int = 64, data_dir: str | None = None) -> dict:
    """Translate and score; writes ``hyps.txt`` and ``scores.json`` under ``<run>/eval/<name>-beam<N>/``."""
    root = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent.parent  # a run, or its checkpoint
    cfg = load_config(open_run(root).config)
    translator = Translator.from_run(run_dir, checkpoint=checkpoint)
    if data_dir:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=data_dir))
    beam = beam or cfg.decode.beam
    if src_file is not None:
        if ref_file is None:
            raise ValueError("--src needs --ref (one reference per source line)")
        raw = read_parallel_files(src_file, ref_file)
        normalize = get_normalizer(cfg.data.normalize)
        sources, references = [s for s, _ in raw.pairs], [normalize(r) for _, r in raw.pairs]
        name = Path(src_file).name
    else:
        sources, references = split_texts(cfg, split)
        name = split
    hypotheses = [t.text for t in translator.translate(sources, beam=beam, batch_size=batch_size)]
    scores = {"split": name, "beam": beam, "checkpoint": checkpoint, **score_corpus(hypotheses, references)}
    out = root / "eval" / f"{name}-beam{beam}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hyps.txt").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    (out / "scores.json").write_text(json.dumps(scores, indent=2), encoding="utf-8")
    scores["output_dir"] = str(out)
    return scores
