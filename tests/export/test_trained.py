"""CTranslate2 against attnlab's own search on a small trained Transformer (trained here, about a minute).

float32: greedy and beam search with the same ranking (the power form) give the same translations,
and the fast backend's attention maps are the torch backend's. int8: at least 90% of the sentences
are translated identically and corpus BLEU moves by less than a point.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.config import load_config
from attnlab.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attnlab.decoding.forced import ForcedBatch
from attnlab.decoding.translator import Translation, Translator
from attnlab.evaluation.scores import score_corpus
from attnlab.export.ctranslate2 import export_run
from attnlab.training.run import train

pytestmark = pytest.mark.slow

TRAIN_PAIRS, HELD_OUT = 6000, 400
OVERRIDES = ["data.corpus=files", "data.val_ratio=0.05", "data.test_ratio=0.05", "model.arch=transformer",
             "model.d_model=64", "model.heads=4", "model.ffn_dim=128", "model.enc_layers=2", "model.dec_layers=2",
             "model.norm=pre", "model.tie_embeddings=decoder", "model.dropout=0.1", "train.epochs=8",
             "train.batch_tokens=1500", "train.lr=0.002", "train.logger=csv", "train.val_bleu_sentences=null",
             "train.num_threads=1"]


@pytest.fixture(scope="module")
def trained_run(tatoeba_tsv_of, tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = [*OVERRIDES, f"data.src_file={tatoeba_tsv_of(TRAIN_PAIRS)}"]
    run, _ = train(load_config(None, overrides), tmp_path_factory.mktemp("trained") / "run")
    return run.root


@pytest.fixture(scope="module")
def held_out(tatoeba_tsv_of) -> tuple[list[str], list[str]]:
    """Sentence pairs after the training corpus: never seen in training."""
    lines = tatoeba_tsv_of(TRAIN_PAIRS + HELD_OUT).read_text(encoding="utf-8").splitlines()[TRAIN_PAIRS:]
    pairs = [line.split("\t") for line in lines]
    return [s for s, _ in pairs], [t for _, t in pairs]


@pytest.fixture(scope="module")
def translators(trained_run: Path) -> dict[str, Translator]:
    return {"torch": Translator.from_run(trained_run, device="cpu"),
            "float32": Translator.from_run(trained_run, device="cpu", backend="ctranslate2")}


@torch.no_grad()
def scores_without(translator: Translator, results: list[Translation], excluded: list[int]) -> list[float]:
    """Each best output's summed log-probability (``<eos>`` included when complete) by a teacher-forced pass
    whose softmax leaves out the token ids ``excluded``."""
    scores = []
    for result in results:
        ids = translator.tgt_vocab.encode(result.best.tokens)
        targets = ids + [EOS_ID] if result.best.complete else ids
        batch = ForcedBatch(torch.tensor([result.src_ids]), torch.tensor([len(result.src_ids)]),
                            torch.tensor([[BOS_ID] + targets[:-1]]))
        logits = translator.model(batch).logits[0]  # (T, V)
        logits[:, excluded] = float("-inf")
        log_probs = logits.log_softmax(-1)[torch.arange(len(targets)), torch.tensor(targets)]  # (T,)
        scores.append(float(log_probs.sum()))
    return scores


def with_ranking(translator: Translator, alpha: float, form: str) -> Translator:
    translator.length_penalty, translator.length_penalty_form = alpha, form
    return translator


@pytest.mark.parametrize("beam, alpha, form", [(1, 0.0, "gnmt"), (5, 0.0, "gnmt"), (5, 0.6, "power"),
                                               (5, 1.0, "power")])
def test_float32_output_is_attnlabs(translators: dict[str, Translator], held_out: tuple, beam: int,
                                    alpha: float, form: str) -> None:
    sources, _ = held_out
    expected = with_ranking(translators["torch"], alpha, form).translate(sources, beam=beam)
    got = with_ranking(translators["float32"], alpha, form).translate(sources, beam=beam)
    assert [r.tokens for r in got] == [r.tokens for r in expected]
    assert len({r.text for r in expected}) > HELD_OUT // 4  # a model that translates, not one that repeats
    # CTranslate2's scores are log-probabilities renormalised without <pad> and <bos>; attnlab's are not
    if beam == 1:
        pytorch = translators["torch"]
        assert [r.score for r in got] == pytest.approx(scores_without(pytorch, got, [PAD_ID, BOS_ID]), abs=1e-3)
        assert [r.score for r in expected] == pytest.approx(scores_without(pytorch, expected, []), abs=1e-3)


def test_gnmt_ranking_on_ctranslate2_is_close_to_attnlabs(translators: dict[str, Translator],
                                                          held_out: tuple) -> None:
    """CTranslate2 has no GNMT penalty: its unpenalised beam's hypotheses are re-ranked by GNMT (close, not equal)."""
    sources, _ = held_out
    expected = with_ranking(translators["torch"], 0.6, "gnmt").translate(sources, beam=5)
    got = with_ranking(translators["float32"], 0.6, "gnmt").translate(sources, beam=5)
    assert sum(a.tokens == b.tokens for a, b in zip(expected, got, strict=True)) >= 0.9 * len(sources)


def test_beam_attention_from_the_fast_backend_is_the_torch_backends(translators: dict[str, Translator],
                                                                    held_out: tuple) -> None:
    sources = held_out[0][:40]
    expected = with_ranking(translators["torch"], 1.0, "power").translate(sources, beam=5, n_best=2,
                                                                          return_attention=True)
    got = with_ranking(translators["float32"], 1.0, "power").translate(sources, beam=5, n_best=2,
                                                                       return_attention=True)
    for mine, theirs in zip(expected, got, strict=True):
        for a, b in zip(mine.n_best, theirs.n_best, strict=True):
            assert a.tokens == b.tokens
            for layer_a, layer_b in zip(a.cross_attentions, b.cross_attentions, strict=True):
                torch.testing.assert_close(layer_b, layer_a, atol=1e-5, rtol=1e-4)


def test_int8_agrees_on_most_sentences_and_keeps_bleu(trained_run: Path, translators: dict[str, Translator],
                                                      held_out: tuple, tmp_path: Path,
                                                      int8_products_exact: bool) -> None:
    sources, references = held_out
    # Without VNNI (conftest.int8_products_exact) this small model's int8 output drifts further: seen on a Zen 3
    # EPYC, greedy, 170 of 400 sentences identical and BLEU 9.35 against 10.55 (the Multi30k Transformer's int8
    # export: 48.07 against 48.43 greedy, 49.30 against 49.35 with beam 5; README). Another model agrees on none.
    agree, bleu_gap = (0.9, 1.0) if int8_products_exact else (0.3, 2.0)
    int8 = Translator.from_run(export_run(trained_run, tmp_path / "int8", quantization="int8"))
    assert int8.fast_search is not None and int8.fast_search.compute_type.startswith("int8")
    for beam in (1, 5):
        expected = with_ranking(translators["float32"], 0.6, "power").translate(sources, beam=beam)
        got = with_ranking(int8, 0.6, "power").translate(sources, beam=beam)
        same = sum(a.tokens == b.tokens for a, b in zip(expected, got, strict=True))
        assert same >= agree * len(sources), f"beam {beam}: {same}/{len(sources)} identical"
        normalised = [int8.normalize(r) for r in references]  # the run's own: lower case ASCII
        bleu = [score_corpus([r.text for r in results], normalised)["bleu"] for results in (expected, got)]
        assert bleu[0] > 5  # a model that translates (about 9 greedy, 15 beam 5)
        assert abs(bleu[0] - bleu[1]) < bleu_gap, f"beam {beam}: BLEU {bleu}"
