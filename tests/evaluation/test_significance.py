"""Our paired bootstrap gives sacreBLEU's own p-values (its PairedTest and its command line)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from attnlab.evaluation.significance import paired_bootstrap

WORDS = "le chat est sur la table je suis tres fatigue il elle nous sommes ici content".split()


def systems(n: int = 200, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """References and two noisy systems, the second slightly better: p-values well away from 0 and 1."""
    rng = random.Random(seed)
    refs = [" ".join(rng.choices(WORDS, k=rng.randint(3, 9))) + " ." for _ in range(n)]

    def noisy(ref: str, p: float) -> str:
        return " ".join(w if rng.random() > p else rng.choice(WORDS) for w in ref.split())

    return refs, [noisy(r, 0.40) for r in refs], [noisy(r, 0.37) for r in refs]


def test_same_p_values_as_sacrebleu_paired_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)  # sacreBLEU's default seed, 12345, as ours
    refs, base, system = systems()
    ours = paired_bootstrap(system, base, refs)
    _, theirs = PairedTest([("base", base), ("system", system)], {"bleu": BLEU(force=True), "chrf": CHRF()},
                           [refs], test_type="bs")()
    for metric, name in (("bleu", "BLEU"), ("chrf", "chrF2")):
        result = theirs[name][1]
        assert 0.01 < ours[metric].p_value < 0.99  # a case where the resamples decide
        assert abs(ours[metric].p_value - result.p_value) < 1e-9
        assert abs(ours[metric].score - result.score) < 1e-9
        assert abs(ours[metric].mean - result.mean) < 1e-4 and abs(ours[metric].ci - result.ci) < 1e-4
    assert "bs:1000" in ours["bleu"].signature and "seed:12345" in ours["bleu"].signature


def test_same_p_values_as_the_sacrebleu_command_line(tmp_path: Path) -> None:
    refs, base, system = systems(seed=1)
    for name, lines in (("ref", refs), ("base", base), ("system", system)):
        (tmp_path / f"{name}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "SACREBLEU_SEED": "12345"}
    result = subprocess.run([sys.executable, "-m", "sacrebleu", "ref.txt", "-i", "base.txt", "system.txt",
                             "--paired-bs", "-m", "bleu", "chrf", "--format", "text", "--no-color"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = [float(p) for p in re.findall(r"p = ([0-9.]+)", result.stdout)]  # BLEU, then chrF
    ours = paired_bootstrap(system, base, refs)
    assert len(printed) == 2
    assert abs(ours["bleu"].p_value - printed[0]) < 1e-4 and abs(ours["chrf"].p_value - printed[1]) < 1e-4


def test_identical_systems_and_bad_input() -> None:
    refs, base, _ = systems(n=50)
    same = paired_bootstrap(base, base, refs, n_samples=200)
    assert same["bleu"].p_value == 1.0 and same["bleu"].score == same["bleu"].baseline_score
    with pytest.raises(ValueError, match="one line each"):
        paired_bootstrap(base[:-1], base, refs)
