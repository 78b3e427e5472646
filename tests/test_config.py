"""Config: YAML + dotted overrides, typed; unknown keys and wrong types name key, file and a suggestion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attnlab.config import ConfigError, load_config, save_config
from attnlab.models.build import build_model


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  attention: dot\ntrain:\n  lr: 0.01\n")
    cfg = load_config(path, ["model.attention=general", "train.epochs=3", "train.clip=null", "train.lr=1"])
    assert cfg.model.attention == "general" and cfg.train.epochs == 3 and cfg.train.clip is None
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    with pytest.raises(AttributeError):
        cfg.model.attention = "dot"  # type: ignore[misc]


def test_unknown_key_names_file_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  atention: dot\n")
    expected = r"'model\.atention' in .*c\.yaml is unknown; did you mean 'model\.attention'"
    with pytest.raises(ConfigError, match=expected):
        load_config(path)
    with pytest.raises(ConfigError, match="section 'modle'.*did you mean 'model'"):
        load_config(write(tmp_path, "modle:\n  cell: gru\n"))


def test_wrong_type_and_choice(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'train\.epochs' .* is 'ten' \(str\); expected int"):
        load_config(write(tmp_path, "train:\n  epochs: ten\n"))
    with pytest.raises(ConfigError, match=r"'model\.cell'.*'lstmm'.*did you mean 'lstm'"):
        load_config(None, ["model.cell=lstmm"])
    with pytest.raises(ConfigError, match=r"'model\.bidirectional'.*expected bool"):
        load_config(None, ["model.bidirectional=3"])


def test_invalid_combinations() -> None:
    with pytest.raises(ConfigError, match="three_way.*data.shared_vocab"):
        load_config(None, ["model.tie_embeddings=three_way"])
    with pytest.raises(ConfigError, match="attention_heads.*does not divide"):
        load_config(None, ["model.attention=multihead", "model.attention_heads=3"])


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "model: [\n"))


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["model.arch=transformer", "data.max_len=null"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def test_every_config_the_readme_names_is_shipped() -> None:
    named = set(re.findall(r"configs/([\w.-]+\.yaml)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert named and named <= {p.name for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_configs_load_and_build(path: Path) -> None:
    cfg = load_config(path)
    model = build_model(cfg.model, 60, 60)
    assert sum(p.numel() for p in model.parameters()) > 0
