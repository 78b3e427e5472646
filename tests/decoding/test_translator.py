"""The Translator and ``attnlab translate``: raw text in, aligned translations out."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.config import load_config
from attnlab.data.vocab import EOS, UNK_ID
from attnlab.decoding.translator import Translator, TruncationWarning
from attnlab.training.run import train

TOY_RUN = ["data.corpus=tatoeba", "data.prefixes=true", "data.max_train_pairs=1500", "model.emb_dim=32",
           "model.hid_dim=64", "train.epochs=10", "train.batch_tokens=1000", "train.lr=0.005", "train.logger=csv",
           "train.val_bleu_sentences=50", "model.dropout=0", "train.num_threads=1"]
WORDS = "i am he is she you are we they re not very tired happy cold tall sure here . ! ?".split()


@pytest.fixture(scope="session")
def rnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy RNN run trained on the tutorial's Tatoeba subset (about 8 s): BLEU ~7, outputs vary with the input."""
    run, _ = train(load_config(None, TOY_RUN), tmp_path_factory.mktemp("decoding") / "rnn")
    return run.root


@pytest.fixture(scope="session")
def transformer_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A barely trained Transformer with learned positions and a short position table (12)."""
    overrides = [*TOY_RUN, "model.arch=transformer", "model.d_model=32", "model.ffn_dim=64", "model.heads=2",
                 "model.positional=learned", "model.max_positions=12", "train.max_steps=3", "train.epochs=1"]
    run, _ = train(load_config(None, overrides), tmp_path_factory.mktemp("decoding") / "transformer")
    return run.root


@pytest.fixture(scope="session")
def translator(rnn_run: Path) -> Translator:
    return Translator.from_run(rnn_run, device="cpu")


def random_lines(n: int, seed: int) -> list[str]:
    """Sentences of 0-12 words (about one in six empty), in the raw casing a user would type."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.choice([0, 1, 3, 5, 8, 12]))).capitalize()
            for _ in range(n)]


# ---------------------------------------------------------------------------------- the API
def test_batching_and_sorting_do_not_change_translations(translator: Translator) -> None:
    lines = random_lines(40, seed=0)
    for beam in (1, 4):
        batched = translator.translate(lines, beam=beam, n_best=beam, batch_size=7)
        for line, result in zip(lines, batched, strict=True):
            [alone] = translator.translate([line], beam=beam, n_best=beam, batch_size=1)
            assert result.source == line
            assert [c.tokens for c in result.n_best] == [c.tokens for c in alone.n_best]
            assert result.score == pytest.approx(alone.score, abs=1e-4)


def test_empty_input_gives_an_empty_translation(translator: Translator) -> None:
    results = translator.translate(["", "   ", "i am cold ."], beam=3)
    assert [r.text for r in results[:2]] == ["", ""]
    assert results[0].src_tokens == [] and results[0].n_best[0].tokens == []
    assert results[2].src_tokens == ["i", "am", "cold", "."]


def test_input_gets_the_runs_normalisation_and_unknown_words_become_unk(translator: Translator) -> None:
    [result] = translator.translate(["I'm   ZZQXWORD cold!"], beam=2)
    assert result.src_tokens == ["i", "m", "zzqxword", "cold", "!"]  # the tutorial normalisation
    assert result.src_ids[2] == UNK_ID
    assert [i == UNK_ID for i in result.src_ids] == [t not in translator.src_vocab for t in result.src_tokens]
    assert isinstance(result.text, str) and result.text == " ".join(result.tokens)


def test_n_best_and_attention(translator: Translator) -> None:
    [result] = translator.translate(["He is very tired."], beam=4, n_best=3, return_attention=True)
    assert len(result.n_best) == 3
    assert len({tuple(c.tokens) for c in result.n_best}) == 3
    for candidate in result.n_best:
        [weights] = candidate.cross_attentions  # the RNN has one layer
        assert weights.shape == (1, len(candidate.tgt_tokens), len(result.src_tokens))
        torch.testing.assert_close(weights.sum(-1), torch.ones(1, len(candidate.tgt_tokens)))
        if candidate.complete:
            assert candidate.tgt_tokens[-1] == EOS
    assert result.best is result.n_best[0]


def test_a_long_sentence_is_truncated_with_a_warning_naming_its_line(transformer_run: Path) -> None:
    translator = Translator.from_run(transformer_run, checkpoint="last", device="cpu")
    assert translator.max_src_len == 12 and translator.max_len == 12  # model.max_positions
    assert translator.cfg.model.max_positions == 12
    long_line = " ".join(["i am very happy ."] * 6)  # 30 tokens
    with pytest.warns(TruncationWarning, match=r"line 12: .*30 tokens.*model\.max_positions=12") as caught:
        results = translator.translate(["i am cold .", long_line], beam=3, return_attention=True, first_line=11)
    assert len(caught) == 1
    assert not results[0].truncated and results[1].truncated
    assert len(results[1].src_tokens) == 12
    assert len(results[1].tokens) <= 12
    assert results[1].cross_attentions[0].shape[-1] == 12


# ----------------------------------------------------------------------------------- the CLI
def test_cli_keeps_line_alignment_over_a_large_input(rnn_run: Path, tmp_path: Path,
                                                     translator: Translator, capsys) -> None:
    lines = random_lines(500, seed=1)
    assert 50 < lines.count("") < 150
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    code = main(["translate", str(rnn_run), "--input", str(source), "--output", str(target),
                 "--batch-size", "7", "--beam", "3"])
    assert code == 0, capsys.readouterr().err
    written = target.read_text(encoding="utf-8").split("\n")
    assert written[-1] == "" and len(written) == 501
    expected = [r.text for r in translator.translate(lines, beam=3)]
    assert written[:-1] == expected
    assert len(set(expected)) > 10  # the outputs differ, so a shuffled order would show
    assert all(out == "" for line, out in zip(lines, written, strict=False) if not line)


def test_cli_n_best_writes_k_lines_per_input_from_stdin(rnn_run: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"I am cold.\n\r\nHe is tall.\r\n")))
    assert main(["translate", str(rnn_run), "--beam", "3", "--n-best", "2", "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 3 * 2 + 1
    fields = [line.split("\t") for line in out[:-1]]
    assert all(len(f) == 3 for f in fields)
    assert fields[2] == ["", "0.0000", "0.0000"] and fields[3] == ["", "-inf", "-inf"]  # the empty line
    assert float(fields[0][2]) >= float(fields[1][2])  # ranked by the normalised score


def test_cli_reports_invalid_utf8_with_its_line_number(rnn_run: Path, tmp_path: Path, capsys) -> None:
    source = tmp_path / "bad.txt"
    source.write_bytes(b"i am cold .\nhe is tall .\nshe is \xff\xfe here\n")
    assert main(["translate", str(rnn_run), "--input", str(source), "--beam", "1"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "UTF-8" in err and str(source) in err


def test_cli_rejects_a_directory_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert main(["translate", str(tmp_path)]) == 2
    assert "not an attnlab run directory" in capsys.readouterr().err


def test_cli_warns_about_truncation_on_stderr(transformer_run: Path, tmp_path: Path, capsys) -> None:
    source = tmp_path / "long.txt"
    source.write_text("i am cold .\n\n" + " ".join(["he is tall ."] * 5) + "\n", encoding="utf-8")
    assert main(["translate", str(transformer_run), "--input", str(source), "--checkpoint", "last"]) == 0
    captured = capsys.readouterr()
    assert "attnlab: warning: line 3:" in captured.err
    assert len(captured.out.split("\n")) == 4
