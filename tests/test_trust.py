"""Runs people can share and trust: a hostile user's inputs, one table of cases.

Every case runs the real CLI (in this process, through ``attnlab.cli.main``) and asserts the exit
code, a one-line message naming the file, key or value, no traceback, and that no file was lost or
changed. Cases that need a real process (a kill, a pipe) run ``python -m attnlab``.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from attnlab.checkpoints import CHECKPOINT_FORMAT, FORMAT_KEY, atomic_torch_save, load_checkpoint
from attnlab.cli import main
from attnlab.config import load_config
from attnlab.rundir import RunDir, RunLock, read_rows
from attnlab.training.run import resume, train

TINY = ["data.corpus=files", "data.val_ratio=0.15", "data.test_ratio=0.15", "model.cell=gru", "model.emb_dim=24",
        "model.hid_dim=24", "model.dropout=0.1", "model.attention=general", "train.epochs=2",
        "train.batch_tokens=300", "train.logger=csv", "train.attention_snapshots=0", "train.num_threads=1",
        "train.val_bleu_sentences=null"]


def tiny(tsv: Path, *extra: str) -> list[str]:
    return [*TINY, f"data.src_file={tsv}", *extra]


@pytest.fixture(scope="module")
def tsv(tatoeba_tsv_of) -> Path:
    return tatoeba_tsv_of(300)


@pytest.fixture(scope="module")
def run(tsv: Path, tmp_path_factory) -> Path:
    root, _ = train(load_config(None, tiny(tsv)), tmp_path_factory.mktemp("trust") / "run")
    return root.root


@pytest.fixture
def copy(run: Path, tmp_path: Path):
    """A fresh copy of the trained run, to damage."""
    def make(name: str = "run") -> Path:
        return Path(shutil.copytree(run, tmp_path / name))
    return make


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".lock" not in p.name}


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def one_line_error(code: int, err: str, *needles: str, exit_code: int = 2) -> None:
    lines = [line for line in err.splitlines() if line.startswith("attnlab: error:")]
    assert code == exit_code and len(lines) == 1 and "Traceback" not in err, (code, err)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


class Payload:
    """A pickle that runs a command when unpickled: what a hostile checkpoint or cache would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path, protocol: int = 2) -> None:
    path.write_bytes(pickle.dumps({"state_dict": Payload(marker), "epoch": 0}, protocol=protocol))


# ------------------------------------------------------------------------------- no code from files
@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("target,command", [
    ("best.ckpt", ["translate", "{run}", "--input", "{text}"]),
    ("best.ckpt", ["evaluate", "{run}", "--split", "test"]),
    ("last.ckpt", ["evaluate", "{run}", "--checkpoint", "last"]),
    ("best.ckpt", ["translate", "{run}/checkpoints/best.ckpt", "--input", "{text}"]),
    ("init.pt", ["attention", "{run}", "--text", "i am cold .", "--compare-init", "--out", "{tmp}/a"]),
    ("best.ckpt", ["compare", "{run}", "--out", "{tmp}/c"]),
    ("last.ckpt", ["train", "--resume", "{run}"]),
    ("best.ckpt", ["export", "{run}", "--out", "{tmp}/e"]),
    ("best.ckpt", ["translate", "{run}", "--checkpoint", "{run}/checkpoints/best.ckpt", "--input", "{text}"]),
    ("last.ckpt", ["evaluate", "{run}", "--checkpoint", "{run}/checkpoints/last.ckpt", "--split", "val"]),
])
def test_a_planted_pickle_is_refused_and_never_runs(copy, tmp_path: Path, capsys, target: str, command: list[str],
                                                     protocol: int) -> None:
    folder = copy()
    marker = tmp_path / "pwned"
    plant(folder / "checkpoints" / target, marker, protocol)
    if command[0] == "train":  # resume goes back to the last completed validation: make last.ckpt that
        shutil.rmtree(folder / "eval", ignore_errors=True)
        (folder / "summary.json").unlink()
    text = tmp_path / "in.txt"
    text.write_text("i am cold .\n", encoding="utf-8")
    args = [a.format(run=folder, text=text, tmp=tmp_path) for a in command]
    before = digest(folder)
    code, err = cli(capsys, *args)
    one_line_error(code, err, target, "refused")
    assert not marker.exists() and digest(folder) == before  # refused before anything was written


# ----------------------------------------------------------------------------------- nothing lost
def test_translate_refuses_to_overwrite_its_input(run: Path, tmp_path: Path, capsys) -> None:
    text = tmp_path / "in.txt"
    text.write_text("i am cold .\nhe is tall .\n", encoding="utf-8")
    before = text.read_bytes()
    code, err = cli(capsys, "translate", run, "--input", text, "--output", text)
    one_line_error(code, err, "--output", "is the --input file")
    assert text.read_bytes() == before
    code, err = cli(capsys, "translate", run, "--input", text, "--output", tmp_path)
    one_line_error(code, err, "is a directory")


def test_translate_output_appears_whole_or_not_at_all(run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from attnlab.decoding.translator import Translator

    text, out = tmp_path / "in.txt", tmp_path / "out.txt"
    text.write_text("i am cold .\n" * 3, encoding="utf-8")
    out.write_text("an earlier translation\n", encoding="utf-8")

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(Translator, "translate", fail)
    code, err = cli(capsys, "translate", run, "--input", text, "--output", out)
    one_line_error(code, err, "No space left on device", str(out), exit_code=1)
    assert out.read_text() == "an earlier translation\n" and not list(tmp_path.glob(".out.txt*"))


def test_atomic_save_writes_beside_the_target(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "ckpt" / "last.ckpt"
    target.parent.mkdir()
    atomic_torch_save({"epoch": 1}, target)
    moves = []
    real_replace = os.replace

    def replace(src, dst):  # as on a tmpfs /tmp: a rename across file systems fails (EXDEV), and a
        moves.append((Path(src).parent, Path(dst).parent))  # library's fallback copy truncates the target first
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "elsewhere"))  # a tmpfs /tmp must not matter
    atomic_torch_save({"epoch": 2}, target)
    assert moves == [(target.parent, target.parent)] and load_checkpoint(target)["epoch"] == 2


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1, "w": torch.ones(3)}, target)

    def full(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="No space left"):
        atomic_torch_save({"epoch": 2}, target)
    monkeypatch.undo()
    assert load_checkpoint(target)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


KILL_DURING_SAVE = """
import os, signal, sys, torch
from attnlab.checkpoints import atomic_torch_save
real_save = torch.save
def save_and_die(obj, handle, *a, **k):
    handle.write(b"the first bytes of a checkpoint")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = save_and_die
atomic_torch_save({"epoch": 2}, sys.argv[1])
"""


def test_a_kill_during_the_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, target)
    result = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(target)], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert load_checkpoint(target)["epoch"] == 1  # the old file, whole; a stray temporary file at most


KILL_IN_EPOCH_3 = """
import os, signal, sys
import lightning as L
from attnlab.config import load_config
from attnlab.training import run
class Kill(L.Callback):
    def on_train_batch_start(self, trainer, *args):
        if trainer.current_epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)
make = run._trainer
run._trainer = lambda *a: (lambda t: (t.callbacks.append(Kill()), t)[1])(make(*a))
run.train(load_config(None, sys.argv[2:]), sys.argv[1])
"""


def _best_state(path: Path) -> dict:
    return next(v for k, v in load_checkpoint(path)["callbacks"].items() if k.startswith("RunCheckpoints"))


def test_last_checkpoint_is_the_last_validation_and_a_moved_run_keeps_its_best(tsv: Path, tmp_path: Path) -> None:
    overrides = tiny(tsv, "train.epochs=4", "train.monitor=val/bleu", "train.lr=0.05")
    first, summary = train(load_config(None, overrides), tmp_path / "a")
    assert summary["best"]["epoch"] == 1  # the premise: epochs 2 and 3 do not improve on epoch 1's BLEU
    assert load_checkpoint(first.last)["epoch"] == 3  # every validation rewrites last.ckpt, improved or not
    assert _best_state(first.best)["best_epoch"] == summary["best"]["epoch"]
    # killed in its third epoch, moved to another folder, resumed there: the best is still the best
    killed = tmp_path / "killed"
    result = subprocess.run([sys.executable, "-c", KILL_IN_EPOCH_3, str(killed), *overrides], capture_output=True,
                            timeout=300)
    assert result.returncode == -signal.SIGKILL and load_checkpoint(RunDir(killed).last)["epoch"] == 1
    moved = Path(shutil.move(killed, tmp_path / "moved"))
    _, resumed = resume(moved)
    scores = [float(r["val/bleu"]) for r in read_rows(RunDir(moved).metrics) if r["val/bleu"]]
    state = _best_state(RunDir(moved).best)
    assert len(scores) == 4 and state["best_score"] == pytest.approx(max(scores))
    assert state["best_epoch"] == resumed["best"]["epoch"] == summary["best"]["epoch"]
    assert resumed["best"]["val/bleu"] == pytest.approx(summary["best"]["val/bleu"])


def test_a_second_training_of_the_same_folder_is_refused(run: Path, tsv: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    with RunLock(RunDir(folder)):
        code, err = cli(capsys, "train", "--run-dir", folder, *[x for o in tiny(tsv) for x in ("--set", o)],
                        _config(tmp_path))
        one_line_error(code, err, str(folder), "in use by another training")
    code, err = cli(capsys, "train", "--resume", run)  # a finished run is not locked: resuming it is allowed,
    assert code == 0, err  # and ends at once


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("{}\n", encoding="utf-8")
    return path


KILL_AT_FIRST_STEP = """
import os, signal, sys
import lightning as L
from attnlab.config import load_config
from attnlab.training import run
class Kill(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        os.kill(os.getpid(), signal.SIGKILL)
make = run._trainer
run._trainer = lambda *a: (lambda t: (t.callbacks.append(Kill()), t)[1])(make(*a))
run.train(load_config(None, sys.argv[2:]), sys.argv[1])
"""


def test_a_run_killed_before_its_first_checkpoint_starts_again(tsv: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "early"
    result = subprocess.run([sys.executable, "-c", KILL_AT_FIRST_STEP, str(folder), *tiny(tsv)], capture_output=True,
                            timeout=300)
    assert result.returncode == -signal.SIGKILL and not RunDir(folder).last.exists()
    code, err = cli(capsys, "train", _config(tmp_path), "--run-dir", folder)
    one_line_error(code, err, "already holds a run", f"attnlab train --resume {folder}")
    _, summary = resume(folder)
    assert summary["restarted"] and summary["epochs"] == 2 and RunDir(folder).best.is_file()


# -------------------------------------------------------------------------- reports cannot lie
def test_stored_evaluations_are_keyed_by_what_produced_them(copy, tmp_path: Path, capsys) -> None:
    from attnlab.experiments.run_results import ensure_evaluated

    folder = copy()
    shutil.rmtree(folder / "eval", ignore_errors=True)
    best = ensure_evaluated(folder, "test")
    assert cli(capsys, "evaluate", folder, "--split", "test", "--checkpoint", "init")[0] == 0
    named_test = tmp_path / "test"  # a source file named like the split
    sources, references = tmp_path / "test", tmp_path / "refs"
    sources.write_text("i am cold .\n\nhe is tall .\n", encoding="utf-8")  # a blank line in the middle
    references.write_text("j ai froid .\n\nil est grand .\n", encoding="utf-8")
    assert cli(capsys, "evaluate", folder, "--src", named_test, "--ref", references)[0] == 0
    again = ensure_evaluated(folder, "test")
    assert again["bleu"] == best["bleu"] and again["key"]["checkpoint"] == "best"
    assert again["output_dir"] == best["output_dir"] and len(list((folder / "eval").iterdir())) == 3
    file_eval = next((folder / "eval").glob("file-test-*"))
    assert (file_eval / "hyps.txt").read_text().split("\n")[1] == ""  # line-aligned with the input


def test_a_name_cannot_write_outside_the_output_folder(run: Path, tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "attention", run, "--text", "i am cold .", "--out", tmp_path / "out", "--name",
                    "../../escaped")
    one_line_error(code, err, "--name")
    assert not (tmp_path.parent / "escaped-cross.png").exists() and not (tmp_path / "out").exists()


# ----------------------------------------------------------------- mistakes caught before anything runs
@pytest.mark.parametrize("override,needle", [
    ("model.hid_dim=0", "model.hid_dim"), ("train.lr=-1", "train.lr"), ("train.lr=0", "train.lr"),
    ("train.batch_tokens=0", "train.batch_tokens"), ("train.epochs=0", "train.epochs"),
    ("train.label_smoothing=1", "train.label_smoothing"), ("model.dropout=1.0", "model.dropout"),
    ("train.precision=fp8", "train.precision"), ("train.accelerator=tpu", "train.accelerator"),
    ("decode.beam=0", "decode.beam"), ("data.max_len=0", "data.max_len"), ("decode.max_len=0", "decode.max_len"),
    ("train.monitor=val/accuracy", "train.monitor"), ("train.devices=0", "train.devices"),
    ("model.heads=3", "model.heads"), ("data.vocab_size=2", "data.vocab_size"),
    ("train.label_smoothing=-0.1", "train.label_smoothing"), ("model.dropout=-0.1", "model.dropout"),
    ("train.batch_size=0", "train.batch_size"), ("train.batch_size=-3", "train.batch_size"),
    ("model.emb_dim=-1", "model.emb_dim"), ("train.clip=-1", "train.clip"), ("train.patience=-1", "train.patience"),
    ("train.teacher_forcing=1.5", "train.teacher_forcing"), ("data.val_ratio=1.2", "data.val_ratio"),
    ("train.max_minutes=0", "train.max_minutes"), ("train.seed=-1", "train.seed"),
    ("train.seed=4294967296", "train.seed"), ("train.lr=.nan", "train.lr"),
    ("train.max_minutes=.inf", "train.max_minutes"), ("train.weight_decay=.nan", "train.weight_decay"),
    ("model.dropout=.nan", "model.dropout"),
])
def test_bad_values_are_refused_before_anything_is_made(tsv: Path, tmp_path: Path, capsys, override: str,
                                                          needle: str) -> None:
    folder = tmp_path / "never"
    args = [x for o in tiny(tsv, override) for x in ("--set", o)]
    if override == "model.heads=3":
        args += ["--set", "model.arch=transformer"]
    code, err = cli(capsys, "train", _config(tmp_path), *args, "--run-dir", folder)
    one_line_error(code, err, f"'{needle}'")
    assert not folder.exists()


def test_a_gpu_that_is_not_there_and_positions_the_data_exceeds(tsv: Path, tmp_path: Path, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = [x for o in tiny(tsv, "train.accelerator=gpu") for x in ("--set", o)]
    code, err = cli(capsys, "train", _config(tmp_path), *args, "--run-dir", tmp_path / "g")
    one_line_error(code, err, "'train.accelerator'", "no CUDA GPU")
    args = [x for o in tiny(tsv, "model.arch=transformer", "model.max_positions=6", "data.max_len=null",
                            "model.d_model=16", "model.heads=2") for x in ("--set", o)]
    code, err = cli(capsys, "train", _config(tmp_path), *args, "--run-dir", tmp_path / "p")
    one_line_error(code, err, "'model.max_positions'", "positions")
    assert not (tmp_path / "g").exists() and not (tmp_path / "p").exists()


def test_yaml_numbers_and_duplicate_keys(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  lr: 5e-4\n", encoding="utf-8")
    assert load_config(config).train.lr == 5e-4
    config.write_text("train:\n  lr: 1e-3\n  epochs: 3\n  lr: 5e-4\n", encoding="utf-8")
    code, err = cli(capsys, "train", config)
    one_line_error(code, err, str(config), "line 4", "'lr' appears twice")


# --------------------------------------------------------------------- one-line errors for the rest
def test_damaged_corpus_files(tmp_path: Path, multi30k_dir: Path, capsys) -> None:
    plain = tmp_path / "fake.gz"
    plain.write_text("hello\tsalut\n", encoding="utf-8")
    one_line_error(*cli(capsys, "data", "stats", "--src", plain), str(plain), "not gzip-compressed")
    local = tmp_path / "m30k"
    shutil.copytree(multi30k_dir, local)
    (local / "val.fr.gz").write_bytes((multi30k_dir / "val.fr.gz").read_bytes()[:3000])  # a cut download
    one_line_error(*cli(capsys, "data", "stats", "--corpus", "multi30k", "--data-dir", local), "val.fr.gz",
                   "damaged gzip")
    (local / "val.fr.gz").write_text("une phrase\n", encoding="utf-8")  # plain text under a .gz name
    one_line_error(*cli(capsys, "data", "stats", "--corpus", "multi30k", "--data-dir", local), "val.fr.gz",
                   "not gzip-compressed")
    cut = tmp_path / "cut.tsv.gz"  # a cut download given as a file of pairs
    lines = "".join(f"sentence {i} .\tphrase {i * 7} .\n" for i in range(5000)).encode()
    cut.write_bytes(gzip.compress(lines)[:2000])
    one_line_error(*cli(capsys, "data", "stats", "--src", cut), str(cut), "damaged gzip")
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    one_line_error(*cli(capsys, "data", "stats", "--src", empty), str(empty), "is empty")
    one_line_error(*cli(capsys, "data", "stats", "--src", tmp_path), str(tmp_path), "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.tsv.gz", "empty.tsv", "fake.gz", "m30k"]


def test_arguments_that_would_do_nothing(tmp_path: Path, capsys) -> None:
    one_line_error(*cli(capsys, "data", "stats", "--corpus", "tatoeba", "--src", tmp_path / "x"), "--src")
    one_line_error(*cli(capsys, "data", "stats", "--tgt", tmp_path / "x"), "--tgt needs --src")
    one_line_error(*cli(capsys, "data", "stats", "--corpus", "multi30k", "--data-dir", tmp_path / "nowhere"),
                   "nowhere", "does not exist")
    one_line_error(*cli(capsys, "data", "stats", "--set", "data.data_dir=/tmp"), "'data.data_dir'", "multi30k")
    assert not any(tmp_path.iterdir())  # nothing was made


def test_evaluate_refuses_a_data_dir_that_would_do_nothing(run: Path, tmp_path: Path, capsys) -> None:
    before = digest(run)  # the run trained on files: a Multi30k folder would be ignored
    one_line_error(*cli(capsys, "evaluate", run, "--split", "test", "--data-dir", tmp_path / "nowhere"),
                   "--data-dir applies to Multi30k runs", "'files'")
    assert digest(run) == before
    from attnlab.data.errors import DataError
    from attnlab.evaluation.evaluate import _with_data_dir

    with pytest.raises(DataError, match="--data-dir .*nowhere does not exist"):  # and for a Multi30k run
        _with_data_dir(load_config(None, ["data.corpus=multi30k"]), str(tmp_path / "nowhere"))


GARBAGE = b"\x00\xff{{ not what it should be"


@pytest.mark.parametrize("name,content", [
    ("data.json", GARBAGE), ("summary.json", GARBAGE), ("metrics.csv", GARBAGE), ("src_vocab.json", GARBAGE),
    ("data.json", b'"a string"'), ("summary.json", b"[]"),  # valid JSON, but not an object
    ("metrics.csv", b"epoch,step,val/bleu\r\n0,10,3.5\r\nlast,20,4.0\r\n"),  # text where a count belongs
])
def test_corrupt_run_files_are_named(copy, tmp_path: Path, capsys, name: str, content: bytes) -> None:
    folder = copy()
    (folder / name).write_bytes(content)
    text = tmp_path / "in.txt"
    text.write_text("i am cold .\n", encoding="utf-8")
    command = ["compare", folder, "--out", tmp_path / "c"] if name in ("summary.json", "metrics.csv") else \
        ["translate", folder, "--input", text]
    before = digest(folder)
    code, err = cli(capsys, *command)
    one_line_error(code, err, name)
    assert digest(folder) == before
    if name in ("summary.json", "metrics.csv"):  # resuming reads both: a named error, nothing changed
        one_line_error(*cli(capsys, "train", "--resume", folder, "--set", "train.epochs=999"), name)
        assert digest(folder) == before


def test_a_damaged_prepared_file_is_named_in_one_line(copy, capsys) -> None:
    folder = copy()
    ids = folder / "prepared" / "train.src.ids"
    ids.write_bytes(ids.read_bytes()[:-8])  # a truncated copy
    before = digest(folder)
    one_line_error(*cli(capsys, "evaluate", folder, "--split", "test"), "train.src.ids", "damaged")
    assert digest(folder) == before


def test_a_checkpoint_from_a_newer_attnlab_is_refused(copy, tmp_path: Path, capsys) -> None:
    folder = copy()
    best = folder / "checkpoints" / "best.ckpt"
    checkpoint = load_checkpoint(best)
    assert checkpoint[FORMAT_KEY] == CHECKPOINT_FORMAT  # training writes the format into every checkpoint
    atomic_torch_save({**checkpoint, FORMAT_KEY: CHECKPOINT_FORMAT + 1}, best)
    text = tmp_path / "in.txt"
    text.write_text("i am cold .\n", encoding="utf-8")
    one_line_error(*cli(capsys, "translate", folder, "--input", text), "best.ckpt", f"format {CHECKPOINT_FORMAT + 1}",
                   "upgrade attnlab")
    del checkpoint[FORMAT_KEY]  # written before the key existed: format 1, read as before
    atomic_torch_save(checkpoint, best)
    assert cli(capsys, "translate", folder, "--input", text)[0] == 0


def test_outputs_inputs_and_paths(run: Path, tmp_path: Path, capsys) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    one_line_error(*cli(capsys, "attention", run, "--text", "i am cold .", "--out", afile), "is a file")
    one_line_error(*cli(capsys, "compare", run, "--out", afile), "is a file")
    for dpi in ("0", "100000"):
        one_line_error(*cli(capsys, "attention", run, "--text", "i am cold .", "--out", tmp_path / "o", "--dpi", dpi),
                       "--dpi")
    one_line_error(*cli(capsys, "evaluate", run, "--split", "tset"), "'tset'", "train, val or test")
    one_line_error(*cli(capsys, "translate", tmp_path / "no-such-run"), "no-such-run", "does not exist")
    one_line_error(*cli(capsys, "translate", afile), "a-file", "is a file")
    one_line_error(*cli(capsys, "translate", run, "--input", tmp_path / "missing.txt"), "missing.txt")


def test_an_empty_test_split(tsv: Path, tmp_path: Path, capsys) -> None:
    folder, _ = train(load_config(None, tiny(tsv, "data.test_ratio=0", "train.epochs=1")), tmp_path / "r")
    before = digest(folder.root)
    one_line_error(*cli(capsys, "evaluate", folder.root, "--split", "test"), "test split", "empty")
    assert digest(folder.root) == before and not list(folder.evaluations.glob("test-*"))


def test_a_read_only_folder(run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from attnlab.evaluation import evaluate

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(run / "eval"))

    monkeypatch.setattr(evaluate.Path, "mkdir", read_only)
    code, err = cli(capsys, "evaluate", run, "--split", "val")
    one_line_error(code, err, "Read-only file system", "eval", exit_code=1)


def test_a_closed_pipe_is_not_an_error(run: Path, tmp_path: Path) -> None:
    text = tmp_path / "in.txt"
    text.write_text("i am cold .\n" * 2000, encoding="utf-8")
    pipeline = f"{sys.executable} -m attnlab translate {run} --beam 1 --input {text} | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1, result.stderr[-2000:]
    assert "Error" not in result.stderr and "Traceback" not in result.stderr


def test_gzip_bom_and_line_endings_read_as_text(tmp_path: Path, capsys) -> None:
    src, tgt = tmp_path / "a.en.gz", tmp_path / "a.fr"
    with gzip.open(src, "wb") as handle:
        handle.write("\ufeffhello there\rgood bye\r".encode())
    tgt.write_bytes("\ufeffsalut\r\nau revoir\r\n".encode())
    code = main(["data", "stats", "--src", str(src), "--tgt", str(tgt), "--set", "data.val_ratio=0",
                 "--set", "data.test_ratio=0", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and '"pairs_read": 2' in out
