"""Experiment suites: the shipped ones all build, and the format refuses what it cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from attnlab.config import ConfigError, load_config
from attnlab.experiments.suite import load_suite
from attnlab.models.build import build_model

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
SUITES = sorted(EXPERIMENTS.glob("*.yaml"))
EXPECTED = {"baseline", "encoder", "decoder", "attention", "layers", "teacher-forcing", "rnn-vs-transformer", "heads"}


def test_the_eight_suites_are_shipped_and_documented() -> None:
    assert {path.stem for path in SUITES} == EXPECTED
    readme = (EXPERIMENTS / "README.md").read_text(encoding="utf-8")
    for path in SUITES:
        assert f"{path.stem}.yaml" in readme


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_every_variant_loads_and_builds(path: Path) -> None:
    suite = load_suite(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    common = _as_text([f"{k}={v}" for k, v in (raw.get("common") or {}).items()])
    budgets = set()
    for name, variant in suite.variants.items():
        # the very config 'attnlab train BASE --set ...' trains, with the suite's common and own overrides
        expected = load_config(path.parent / raw["base"], [*common, *variant.overrides])
        assert variant.config == expected, name
        vocab = 60 if variant.config.data.shared_vocab else None
        model = build_model(variant.config.model, vocab or 50, vocab or 70)
        assert sum(p.numel() for p in model.parameters()) > 0
        c = variant.config
        budgets.add((c.train.epochs, c.train.patience, c.train.monitor, c.train.batch_size, c.data.corpus,
                     c.data.prefixes, c.data.max_len))
    # one stopping rule and data setting for every variant: converge (early stopping on validation BLEU)
    assert budgets == {(60, 5, "val/bleu", 32, "tatoeba", True, 10)}
    assert suite.baseline in suite.variants


def _as_text(overrides: list[str]) -> list[str]:
    """YAML's True/False/None written back as override text."""
    return [o.replace("=True", "=true").replace("=False", "=false").replace("=None", "=null") for o in overrides]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_list_and_mapping_forms_agree_and_errors_name_the_variant(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, """
base: {model: {hid_dim: 16}}
common: [model.emb_dim=8]
variants:
  a: [model.attention=dot, train.teacher_forcing=0.5]
  b: {model.attention: dot, train.teacher_forcing: 0.5}
"""), overrides=["train.epochs=1"])
    assert suite.baseline == "a" and suite.variants["a"].config == suite.variants["b"].config
    config = suite.variants["a"].config
    assert (config.model.emb_dim, config.model.hid_dim, config.train.epochs) == (8, 16, 1)
    with pytest.raises(ConfigError, match=r"'model.atention' in .*variant 'b'.*did you mean 'model.attention'"):
        load_suite(write(tmp_path, "variants:\n  a: []\n  b: [model.atention=dot]\n"))
    with pytest.raises(ConfigError, match="baseline 'c' is not one of the variants"):
        load_suite(write(tmp_path, "baseline: c\nvariants:\n  a: []\n"))
    for bad in ("report", "x/y", "a-seed3"):
        with pytest.raises(ConfigError, match="cannot name a run directory"):
            load_suite(write(tmp_path, f"variants:\n  {bad}: []\n"))
    with pytest.raises(ConfigError, match="unknown key"):
        load_suite(write(tmp_path, "variant:\n  a: []\n"))
