"""``attnlab attention`` and ``attention_report`` on tiny trained runs, and the per-validation snapshots."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnlab.cli import main
from attnlab.config import load_config
from attnlab.decoding.translator import Translator
from attnlab.evaluation.attention import attention_report, collect_attention, sentence_slug
from attnlab.training.run import train

TEXT, REFERENCE = "I am cold.", "J'ai froid."
KINDS = ("encoder", "decoder", "cross")


@pytest.fixture(scope="module")
def tiny_tsv(tatoeba_tsv_of) -> Path:
    return tatoeba_tsv_of(300)


def _overrides(tsv: Path) -> list[str]:
    return ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.1", "data.test_ratio=0.1",
            "train.batch_tokens=300", "train.logger=csv", "train.val_bleu_sentences=null"]


@pytest.fixture(scope="module")
def transformer_run(tiny_tsv: Path, tmp_path_factory) -> Path:
    """2 encoder and 2 decoder layers, 2 heads, 2 epochs (with the default 2 attention snapshots)."""
    cfg = load_config(None, _overrides(tiny_tsv) + [
        "model.arch=transformer", "model.d_model=32", "model.heads=2", "model.ffn_dim=64", "model.enc_layers=2",
        "model.dec_layers=2", "train.epochs=2"])
    run, _ = train(cfg, tmp_path_factory.mktemp("runs") / "transformer")
    return run.root


@pytest.fixture(scope="module")
def rnn_run(tiny_tsv: Path, tmp_path_factory) -> Path:
    cfg = load_config(None, _overrides(tiny_tsv) + [
        "model.arch=rnn", "model.emb_dim=16", "model.hid_dim=16", "train.epochs=1", "train.attention_snapshots=0"])
    run, _ = train(cfg, tmp_path_factory.mktemp("runs") / "rnn")
    return run.root


def _panel_titles(svg: Path) -> list[str]:
    """Matplotlib writes each text of an SVG as a comment; panel titles read 'layer L · head H ...'."""
    return re.findall(r"<!-- (layer \d+ · head \d+[^<]*?) -->", svg.read_text(encoding="utf-8"))


def test_cli_writes_every_kind_and_format_with_initial_weights(transformer_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "attnlab", "attention", str(transformer_run), "--text", TEXT, "--reference",
         REFERENCE, "--compare-init", "--format", "png,svg,html", "--dpi", "50", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    stem = out / sentence_slug(TEXT)
    names = ["cross"] + [f"{kind}-{figure}" for kind in KINDS for figure in ("grid", "before-after")]
    for name in names:
        for fmt in ("png", "svg"):
            path = Path(f"{stem}-{name}.{fmt}")
            assert path.is_file() and str(path) in result.stdout, path
    for kind in KINDS:  # layers x heads panels
        assert len(_panel_titles(Path(f"{stem}-{kind}-grid.svg"))) == 2 * 2
        pairs = _panel_titles(Path(f"{stem}-{kind}-before-after.svg"))
        assert sum("initial" in t for t in pairs) == sum("trained" in t for t in pairs) == 2 * 2
    assert _panel_titles(Path(f"{stem}-cross.svg")) == ["layer 1 · head 0", "layer 1 · head 1"]  # the last layer
    page = Path(f"{stem}.html").read_text(encoding="utf-8")
    assert '"init_attentions": {' in page and "<script src" not in page  # self-contained, with the initial model
    with open(f"{stem}-stats.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 2 * 2 and all(row["init_entropy"] for row in rows)
    assert "| kind | layer | head |" in result.stdout and "init_entropy" in result.stdout
    assert Path(f"{stem}-stats.md").read_text(encoding="utf-8") in result.stdout


def test_forced_reference_gives_one_row_per_reference_token(transformer_run: Path, tmp_path: Path) -> None:
    report = attention_report(transformer_run, TEXT, reference=REFERENCE, formats=("png",), out_dir=tmp_path, dpi=50)
    record = report.record
    assert report.forced and record.src_tokens == ["i", "am", "cold", "."]
    assert record.tgt_tokens == ["j", "ai", "froid", ".", "<eos>"]  # rows labelled by what they predict
    for layer in record.layers("cross"):
        assert layer.shape == (2, 5, 4)
        np.testing.assert_allclose(layer.sum(-1), 1.0, atol=1e-3)
    assert [x.shape for x in record.layers("encoder")] == [(2, 4, 4)] * 2
    assert [x.shape for x in record.layers("decoder")] == [(2, 5, 5)] * 2
    assert record.init_attentions is None and "init_entropy" not in report.stats[0]
    assert {p.suffix for p in report.files} == {".png", ".csv", ".md"}  # html only when asked
    assert all(p.is_file() for p in report.files)


def test_decoded_attention_is_the_search_attention(transformer_run: Path) -> None:
    record, target = collect_attention(transformer_run, TEXT, kind="cross")
    [result] = Translator.from_run(transformer_run).translate([TEXT], beam=1, return_attention=True)
    assert target == result.text and record.tgt_tokens == result.tgt_tokens
    for forced, searched in zip(record.layers("cross"), result.cross_attentions, strict=True):
        np.testing.assert_allclose(forced, searched.double().numpy(), atol=1e-4)  # the record rounds to 4 places
    beam_record, _ = collect_attention(transformer_run, TEXT, kind="decoder", beam=3)
    assert list(beam_record.attentions) == ["decoder"]


def test_compare_init_runs_the_same_tokens_through_the_initial_weights(transformer_run: Path) -> None:
    record, _ = collect_attention(transformer_run, TEXT, reference=REFERENCE, compare_init=True)
    assert set(record.init_attentions) == set(KINDS)
    for kind in KINDS:
        trained, initial = record.layers(kind), record.layers(kind, init=True)
        assert [x.shape for x in trained] == [x.shape for x in initial]
        assert not all(np.allclose(a, b) for a, b in zip(trained, initial, strict=True))
    init_only, _ = collect_attention(transformer_run, TEXT, reference=REFERENCE, checkpoint="init")
    for kind in KINDS:  # the run's own checkpoints/init.pt, not a fresh initialisation
        for a, b in zip(init_only.layers(kind), record.layers(kind, init=True), strict=True):
            np.testing.assert_allclose(a, b)


def test_training_writes_attention_snapshots_after_each_validation(transformer_run: Path) -> None:
    written = sorted(p.name for p in (transformer_run / "attention").glob("*.png"))
    assert written == [f"{prefix}-sent{i}.png" for prefix in ("epoch000", "epoch001", "init") for i in (0, 1)]


def test_rnn_run_gives_a_single_panel(rnn_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["attention", str(rnn_run), "--text", TEXT, "--format", "svg", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    stem = tmp_path / sentence_slug(TEXT)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem.name}-{suffix}" for suffix in ("cross.svg", "cross-grid.svg", "stats.csv", "stats.md"))
    assert len(_panel_titles(Path(f"{stem}-cross-grid.svg"))) == 1
    assert printed.count("| cross | 0 | 0 |") == 1 and "translation:" in printed
    assert not (rnn_run / "attention").exists()  # train.attention_snapshots=0


def test_user_errors_exit_2_with_a_message(rnn_run: Path, tmp_path: Path, capsys) -> None:
    cases = [
        (["--kind", "encoder"], "has no encoder self-attention; it has: cross"),
        (["--format", "png,gif"], "--format 'png,gif'"),
        (["--beam", "0"], "--beam is 0"),
    ]
    for extra, message in cases:
        assert main(["attention", str(rnn_run), "--text", TEXT, "--out", str(tmp_path), *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["attention", str(rnn_run), "--text", "   ", "--out", str(tmp_path)]) == 2
    assert "is empty after normalisation" in capsys.readouterr().err
    assert main(["attention", str(tmp_path), "--text", TEXT, "--out", str(tmp_path)]) == 2
    assert "not an attnlab run directory" in capsys.readouterr().err
