"""``compare_runs``: the table, seeds as mean ± std, p-values as sacreBLEU's, and a self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from attnlab.cli import main
from attnlab.config import load_config
from attnlab.evaluation.evaluate import split_texts
from attnlab.evaluation.references import GroupedReferences
from attnlab.evaluation.scores import reference_streams
from attnlab.experiments.compare import _partners, _significance, compare_runs, group_name, shared_embedding_note
from attnlab.experiments.run_results import read_run_files, with_scores
from attnlab.experiments.tables import equal_time_table, scores_table
from attnlab.training.run import train


def tiny(tsv: Path, *extra: str) -> list[str]:
    return ["data.corpus=files", f"data.src_file={tsv}", "data.val_ratio=0.15", "data.test_ratio=0.15",
            "model.cell=gru", "model.emb_dim=24", "model.hid_dim=24", "model.dropout=0.1", "model.attention=none",
            "train.epochs=2", "train.batch_tokens=300", "train.logger=csv", "train.attention_snapshots=0",
            "train.log_every=2", "train.val_bleu_sentences=null", *extra]


@pytest.fixture(scope="module")
def runs(tatoeba_tsv: Path, tmp_path_factory) -> list[Path]:
    """Two seeds of 'plain' and one run of 'dot' (dot attention), trained for 2 tiny epochs."""
    root = tmp_path_factory.mktemp("runs")
    settings = [("plain", []), ("plain-seed43", ["train.seed=43"]), ("dot", ["model.attention=dot"])]
    return [train(load_config(None, tiny(tatoeba_tsv, *extra)), root / name)[0].root for name, extra in settings]


def test_report_table_seeds_and_p_values(runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    messages: list[str] = []
    paths = compare_runs(runs, tmp_path / "report", log=messages.append)
    evaluations = [m for m in messages if m.startswith("evaluating ")]  # each announced, none stored before
    assert evaluations == [f"evaluating {r} on {split} with its best checkpoint, beam 1 (not stored yet)"
                           for r in runs for split in ("val", "test")]
    assert sum(m.startswith("evaluated ") for m in messages) == 6
    messages.clear()
    for run in runs:  # stored now, and reused without a word
        with_scores(read_run_files(run), messages.append)
    assert messages == []
    report = json.loads(paths["json"].read_text())
    plain, dot = report["variants"]
    assert [group_name(r) for r in runs] == ["plain", "plain", "dot"] and report["baseline"] == "plain"
    assert plain["baseline"] and len(plain["runs"]) == 2 and len(plain["test_bleu"]) == 2
    assert dot["differences"] == ["model.attention=dot"] and len(dot["p_bleu"]) == 1
    summary = json.loads((runs[2] / "summary.json").read_text())
    assert dot["parameters"] == {"encoder": summary["parameters"]["encoder_side"],
                                 "decoder": summary["parameters"]["decoder_side"],
                                 "total": summary["parameters"]["total"]}
    markdown = paths["markdown"].read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| plain |"))
    assert row.count("±") >= 4  # mean ± std over the two seeds
    assert "|bs:1000|seed:12345" in markdown and "case:mixed" in markdown

    # the p-value is sacreBLEU's own, for the files the runs wrote, with every reference of each source
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    sources, references = split_texts(load_config(runs[0] / "config.yaml"), "test")
    grouped = GroupedReferences.from_pairs(list(zip(sources, references, strict=True)))
    assert len(grouped.sources) < len(sources)  # Tatoeba: several references for some sources
    hyps = [next((r / "eval").glob("test-beam1-*/hyps.txt")).read_text().split("\n")[:-1] for r in (runs[0], runs[2])]
    hyps = [[h[i] for i in grouped.first_pairs] for h in hyps]
    _, theirs = PairedTest([("plain", hyps[0]), ("dot", hyps[1])], {"bleu": BLEU(force=True), "chrf": CHRF()},
                           reference_streams(grouped.references), test_type="bs")()
    assert abs(dot["p_bleu"][0] - theirs["BLEU"][1].p_value) < 1e-9
    assert abs(dot["p_chrf"][0] - theirs["chrF2"][1].p_value) < 1e-9

    for name in ("curves-epoch.png", "curves-time.png", "attention/dot-cross.png"):
        assert (tmp_path / "report" / name).is_file(), name
    assert "plain-seed42: no cross-attention map" in markdown  # an RNN without attention has none to draw
    equal_time = markdown.split("At equal training time")[1].split("## ")[0]
    assert sum(line.startswith(("| plain |", "| dot |")) for line in equal_time.splitlines()) == 2
    translations = markdown.split("## Translations")[1].split("## Cross-attention")[0]
    assert translations.count("| reference |") == 5  # five test sentences, each translated by every run
    for name in ("plain-seed42", "plain-seed43", "dot"):
        assert translations.count(f"| {name} |") == 5


def test_seeds_pair_by_seed_not_by_order(runs: list[Path], tmp_path: Path) -> None:
    in_order = json.loads(compare_runs(runs, tmp_path / "a")["json"].read_text())["variants"][1]
    reversed_baseline = [runs[1], runs[0], runs[2]]  # plain's seed 43 first: dot (seed 42) still meets seed 42
    shuffled = json.loads(compare_runs(reversed_baseline, tmp_path / "b")["json"].read_text())["variants"][1]
    assert shuffled["variant"] == "dot" and shuffled["p_bleu"] == in_order["p_bleu"]
    assert shuffled["p_chrf"] == in_order["p_chrf"]


def test_partners_by_seed_then_by_position() -> None:
    def run(seed: int) -> SimpleNamespace:
        return SimpleNamespace(config=SimpleNamespace(train=SimpleNamespace(seed=seed)))
    base = [run(42), run(7)]
    variant = [run(42), run(2), run(7)]
    assert _partners(variant, base) == [base[0], None, base[1]]
    assert _partners([run(1)], [run(42)]) == [run(42)]  # two single runs of different seeds: still a pair
    assert _partners([run(1), run(2), run(3)], base) == base  # no seed shared: the k-th of each, as far as both go


def test_more_seeds_than_the_baseline_and_none_shared_pair_as_far_as_both_go() -> None:
    def run(seed: int, root: str) -> SimpleNamespace:
        return SimpleNamespace(config=SimpleNamespace(train=SimpleNamespace(seed=seed)), root=root)
    runs, base = [run(1, "v1"), run(2, "v2"), run(3, "v3")], [run(42, "b1"), run(7, "b2")]
    texts = {root: (["a source"], [root]) for root in ("v1", "v2", "v3", "b1", "b2")}  # test sets differ: no p
    assert _significance(runs, base, texts, n_samples=10) == [None, None]


def test_html_is_self_contained(runs: list[Path], tmp_path: Path) -> None:
    page = compare_runs(runs, tmp_path / "report", baseline="dot")["html"].read_text()
    assert not re.search(r"https?://", page) and "<script" not in page and "<link" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)  # 2 curves + 1 map
    assert "<td>(baseline)</td>" in page and "model.attention=none" in page


def test_cli(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    assert main(["compare", *map(str, runs), "--out", str(out), "--names", "a,a,b", "--baseline", "b"]) == 0
    assert "report.html" in capsys.readouterr().out
    variants = json.loads((out / "report.json").read_text())["variants"]
    assert [(v["variant"], len(v["runs"]), v["baseline"]) for v in variants] == [("a", 2, False), ("b", 1, True)]
    p_bleu = variants[0]["p_bleu"]  # a-seed42 against b (seed 42); b has no seed 43 to pair with
    assert len(p_bleu) == 2 and p_bleu[0] is not None and p_bleu[1] is None
    assert main(["compare", str(runs[0]), "--out", str(out), "--baseline", "c"]) == 2
    assert "baseline 'c' is not one of the compared variants ['plain']" in capsys.readouterr().err
    assert main(["compare", str(runs[0]), str(runs[2]), "--out", str(out), "--names", "x,x"]) == 2
    assert "differ in ['model.attention']" in capsys.readouterr().err


def test_equal_time_table_compares_variants_at_the_same_training_time() -> None:
    curves = {"rnn": [[(100.0, 10.0), (200.0, 20.0), (300.0, 25.0), (400.0, 24.0)],
                      [(120.0, 12.0), (240.0, 22.0), (360.0, 26.0)]],
              "transformer": [[(50.0, 5.0), (100.0, 30.0), (150.0, 40.0), (400.0, 45.0)],
                              [(90.0, 1.0), (180.0, 35.0)]]}
    table = equal_time_table(curves)
    assert table.header == ["variant", "45 s", "90 s", "135 s", "180 s"]  # quarters of the shortest run (180 s)
    rnn, transformer = table.rows
    assert rnn == ["rnn", "–", "–", "11.00 ± 1.41", "11.00 ± 1.41"]  # at 90 s neither seed has validated
    assert transformer == ["transformer", "–", "3.00 ± 2.83", "15.50 ± 20.51", "37.50 ± 3.54"]
    assert equal_time_table({"rnn": [[]]}) is None


def test_seconds_per_epoch_leaves_out_an_epoch_the_budget_cut_short() -> None:
    from attnlab.experiments.run_results import RunResults

    perf = [{"epoch": str(i), "perf/epoch_time_s": str(t)} for i, t in enumerate((100.0, 104.0, 30.0))]
    config = load_config(None, [])

    def seconds(**summary: bool) -> float | None:
        return RunResults("r", None, config, summary, [], perf, {}, {}, []).seconds_per_epoch

    assert seconds(stopped_by_budget=False) == pytest.approx(78.0)  # every epoch whole: all three count
    assert seconds(stopped_by_budget=True) == pytest.approx(102.0)
    assert seconds(interrupted=True) == pytest.approx(78.0)  # an interrupted epoch writes no row
    cut_first = RunResults("r", None, config, {"stopped_by_budget": True}, [], perf[:1], {}, {}, [])
    assert cut_first.seconds_per_epoch is None


def test_seeds_of_a_variant_may_differ_in_a_cap_only_where_it_changed_nothing() -> None:
    from types import SimpleNamespace

    from attnlab.experiments.compare import _check_epoch_caps
    from attnlab.rundir import RunError

    def run(cap: int, epochs: int, stopped_early: bool) -> SimpleNamespace:
        return SimpleNamespace(root=Path(f"run-{cap}-{epochs}"), config=load_config(None, [f"train.epochs={cap}"]),
                               summary={"epochs": epochs, "stopped_early": stopped_early})

    _check_epoch_caps("v", [run(30, 23, True), run(60, 41, True), run(60, 60, False)])  # 23 < 60: the same
    with pytest.raises(RunError, match=r"run-30-30 of 'v' ended at its cap of 30 epochs.*--set train.epochs=60"):
        _check_epoch_caps("v", [run(30, 30, False), run(60, 41, True)])


def test_a_cap_that_changed_nothing_is_no_difference_from_the_baseline() -> None:
    from types import SimpleNamespace

    from attnlab.experiments.tables import config_differences

    def run(cap: int, epochs: int, stopped_early: bool, *extra: str) -> SimpleNamespace:
        return SimpleNamespace(config=load_config(None, [f"train.epochs={cap}", *extra]),
                               summary={"epochs": epochs, "stopped_early": stopped_early})

    baseline = run(30, 22, True)
    assert config_differences(run(60, 21, True, "train.teacher_forcing=0.5"), baseline) == ["train.teacher_forcing=0.5"]
    assert config_differences(run(60, 41, True), baseline) == ["train.epochs=60"]  # it trained past 30
    assert config_differences(run(60, 21, True), run(30, 30, False)) == ["train.epochs=60"]  # the baseline hit 30


def test_scores_table_shows_val_and_test_with_every_reference_and_with_one() -> None:
    keys = [f"{split}_{metric}{suffix}" for split in ("val", "test") for metric in ("bleu", "chrf")
            for suffix in ("", "_1ref")]  # val_bleu 0, val_bleu_1ref 1, val_chrf 2, val_chrf_1ref 3, test_bleu 4, ...
    scores = {key: [number - 1.0, number + 1.0] for number, key in enumerate(keys)}  # two seeds: mean number
    row = {"variant": "dot", "baseline": False, **scores, "p_bleu": [0.01, 0.02], "p_chrf": [0.2, 0.01]}
    table = scores_table([row])
    assert table.header == ["variant", "val BLEU", "val chrF", "test BLEU", "test chrF", "test BLEU 1-ref",
                            "test chrF 1-ref", "val BLEU 1-ref", "val chrF 1-ref", "p BLEU", "p chrF"]
    cells = dict(zip(table.header, table.rows[0], strict=True))
    assert cells["val chrF 1-ref"] == "3.00 ± 1.41" and cells["val BLEU 1-ref"] == "1.00 ± 1.41"
    assert cells["test chrF 1-ref"] == "7.00 ± 1.41" and cells["p BLEU"] == "0.010 / 0.020*"


def test_size_table_says_where_a_three_way_tied_embedding_is_counted() -> None:
    tied = load_config(None, ["model.arch=transformer", "data.shared_vocab=true", "model.tie_embeddings=three_way"])
    untied = load_config(None, ["model.arch=transformer"])
    assert shared_embedding_note([untied]) == ""
    assert "counted once, on the encoder side" in shared_embedding_note([untied, tied])
