"""The CLI end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnlab", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_subcommands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "data" in result.stdout


def test_data_stats_tatoeba_offline_json() -> None:
    result = run("data", "stats", "--corpus", "tatoeba", "--src-lang", "en", "--tgt-lang", "fr", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["report"]["pairs_read"] == 167_130
    assert set(stats["splits"]) == {"train", "val", "test"}


def test_data_stats_files_and_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "a.en").write_text("hello there\nbye\n", encoding="utf-8")
    (tmp_path / "a.fr").write_text("salut\nau revoir\n", encoding="utf-8")
    result = run("data", "stats", "--corpus", "files", "--src", str(tmp_path / "a.en"),
                 "--tgt", str(tmp_path / "a.fr"), "--set", "data.val_ratio=0", "--set", "data.test_ratio=0")
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout
    (tmp_path / "b.fr").write_text("salut\n", encoding="utf-8")
    bad = run("data", "stats", "--src", str(tmp_path / "a.en"), "--tgt", str(tmp_path / "b.fr"))
    assert bad.returncode == 2 and "misaligned" in bad.stderr and "Traceback" not in bad.stderr
    typo = run("data", "stats", "--set", "data.corpuss=tatoeba")
    assert typo.returncode == 2 and "did you mean 'data.corpus'" in typo.stderr
