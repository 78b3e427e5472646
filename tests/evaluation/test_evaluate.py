"""``evaluate`` reproduces what training logged, and reports both BLEU conventions with signatures."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from attnlab.config import load_config
from attnlab.evaluation.evaluate import evaluate_run
from attnlab.evaluation.scores import score_corpus
from attnlab.training.run import train


def test_scores_carry_signatures_and_both_conventions() -> None:
    scores = score_corpus(["The cat sat on the mat ."], ["the cat sat on the mat ."])
    assert scores["bleu"] < 100 and abs(scores["bleu_lc_tok"] - 100) < 1e-9
    assert "case:mixed" in scores["bleu_signature"] and "case:lc" in scores["bleu_lc_tok_signature"]
    assert "nc:6" in scores["chrf_signature"]


def test_evaluate_reproduces_validation_bleu(tmp_path: Path, tatoeba_tsv_of) -> None:
    tsv = tatoeba_tsv_of(500)
    cfg = load_config(None, ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.15",
                             "model.emb_dim=48", "model.hid_dim=48", "train.epochs=4", "train.batch_tokens=300",
                             "train.lr=0.005", "train.logger=csv", "train.val_bleu_sentences=null",
                             "train.monitor=val/bleu"])
    run, summary = train(cfg, tmp_path / "run")
    scores = evaluate_run(run.root, split="val", beam=1)
    assert abs(scores["bleu"] - summary["best"]["val/bleu"]) < 1e-4
    assert abs(scores["chrf"] - summary["best"]["val/chrf"]) < 1e-4
    out = Path(scores["output_dir"])
    assert len((out / "hyps.txt").read_text().splitlines()) == scores["pairs"] > scores["sentences"]
    stored = json.loads((out / "scores.json").read_text())
    assert stored["bleu_signature"].startswith("nrefs:var") and stored["bleu_signature_1ref"].startswith("nrefs:1")
    assert stored["bleu"] > stored["bleu_1ref"]  # a translation matching any reference counts
    with open(run / "metrics.csv", newline="") as handle:
        logged = [float(r["val/bleu"]) for r in csv.DictReader(handle) if r["val/bleu"]]
    assert max(logged) == summary["best"]["val/bleu"]
    result = subprocess.run([sys.executable, "-m", "attnlab", "evaluate", str(run.root), "--split", "test",
                             "--beam", "3"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "lower-cased 13a" in result.stdout and "Moses-tokenised" in result.stdout
    assert len(list((run.root / "eval").glob("test-beam3-*/hyps.txt"))) == 1
