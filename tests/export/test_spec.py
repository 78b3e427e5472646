"""CTranslate2 runs attnlab's Transformer: every variant, random weights, token for token.

Each variant gets random weights far from initialisation (LayerNorm gains and biases, position
tables and all), and a raised ``<eos>`` bias so that outputs end at varied steps or are cut at the
limit. CTranslate2's greedy search must then give attnlab's tokens, and its teacher-forced
log-probabilities attnlab's to 1e-4; beam search with the same ranking must agree too.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from attnlab.config import ModelConfig
from attnlab.data.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS
from attnlab.decoding.beam import LengthNorm, beam_search
from attnlab.decoding.ctranslate2_backend import CTranslate2Search
from attnlab.decoding.ctranslate2_spec import check_exportable
from attnlab.decoding.export_layout import ExportError
from attnlab.decoding.forced import ForcedBatch
from attnlab.decoding.greedy import greedy_decode
from attnlab.models.transformer import Transformer, build_transformer

MAX_LEN, RATIO = 40, 1.5
VARIANTS = [(norm, positional, activation, tie, shared)
            for norm, positional, activation, tie in itertools.product(
                ("post", "pre"), ("sinusoidal", "learned"), ("relu", "gelu"), ("none", "decoder", "three_way"))
            for shared in ((True,) if tie == "three_way" else (False, True))]


def vocabulary(size: int, prefix: str) -> list[str]:
    return list(SPECIALS) + [f"{prefix}{i}" for i in range(size - len(SPECIALS))]


def random_transformer(norm: str, positional: str, activation: str, tie: str,
                       shared: bool) -> tuple[Transformer, ModelConfig, list[str], list[str]]:
    """A small Transformer whose every parameter (and table) is moved away from its initial value."""
    torch.manual_seed(0)
    src_itos = vocabulary(31, "s")
    tgt_itos = src_itos if shared else vocabulary(23, "t")
    cfg = ModelConfig(arch="transformer", d_model=32, heads=4, enc_layers=2, dec_layers=3, ffn_dim=48, dropout=0.0,
                      norm=norm, positional=positional, activation=activation, tie_embeddings=tie,
                      max_positions=48)
    model = build_transformer(cfg, len(src_itos), len(tgt_itos)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
        # as after training, no mass on tokens never emitted: CTranslate2 takes its softmax without
        # <pad> and <bos>, attnlab with them (then never picks them), so only then do scores agree
        model.generator.bias[[PAD_ID, BOS_ID]] = -30.0
    return model, cfg, src_itos, tgt_itos


@torch.no_grad()
def vary_endings(model: Transformer, sources: list[list[int]]) -> None:
    """Set the generator's ``<eos>`` bias so that a quarter to three quarters of the greedy outputs end by
    themselves and the rest are cut at the limit (random models tend to repeat one token forever)."""
    src, lengths = padded(sources)
    low, high = -4.0, 12.0  # the share of complete outputs grows with the bias: bisect
    for _ in range(12):
        model.generator.bias[EOS_ID] = (low + high) / 2
        done = sum(h.complete for h in greedy_decode(model, src, lengths, RATIO, MAX_LEN)) / len(sources)
        if 0.25 <= done <= 0.75:
            return
        middle = model.generator.bias[EOS_ID].item()
        low, high = (middle, high) if done < 0.25 else (low, middle)
    raise AssertionError("no <eos> bias gives both complete and cut outputs")


def random_sources(count: int, vocab_size: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    return [torch.randint(len(SPECIALS), vocab_size, (int(n),), generator=g).tolist()
            for n in torch.randint(1, 15, (count,), generator=g)]


def padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)  # (B, S)
    for i, row in enumerate(rows):
        src[i, : len(row)] = torch.tensor(row)
    return src, torch.tensor([len(r) for r in rows])


@torch.no_grad()
def teacher_forced_log_probs(model: Transformer, sources: list[list[int]],
                             targets: list[list[int]]) -> list[list[float]]:
    """attnlab's log-probability of each target token and of the <eos> after it."""
    src, lengths = padded(sources)
    tgt_in, _ = padded([[BOS_ID] + t for t in targets])
    log_probs = model(ForcedBatch(src, lengths, tgt_in)).logits.log_softmax(-1)  # (B, T, V)
    return [[float(log_probs[i, j, token]) for j, token in enumerate(t + [EOS_ID])] for i, t in enumerate(targets)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(str(x) for x in v))
def test_greedy_output_and_log_probs_equal_attnlabs(variant: tuple) -> None:
    model, cfg, src_itos, tgt_itos = random_transformer(*variant)
    sources = random_sources(40, len(src_itos))
    vary_endings(model, sources)
    fast = CTranslate2Search.convert(model, cfg, src_itos, tgt_itos, threads=1)
    src, lengths = padded(sources)
    ours = greedy_decode(model, src, lengths, RATIO, MAX_LEN)
    theirs = [h for [h] in fast.search(sources, 1, 1, LengthNorm(), RATIO, MAX_LEN)]
    assert [h.tokens for h in theirs] == [h.tokens for h in ours]
    assert [h.complete for h in theirs] == [h.complete for h in ours]
    assert [h.score for h in theirs] == pytest.approx([h.score for h in ours], abs=1e-4)
    g = torch.Generator().manual_seed(2)  # and outputs no search would pick
    targets = [h.tokens for h in ours] + [torch.randint(4, len(tgt_itos), (n,), generator=g).tolist()
                                          for n in range(len(sources))]
    expected = teacher_forced_log_probs(model, sources * 2, targets)
    for got, want in zip(fast.log_probs(sources * 2, targets), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("form, alpha, n_best", [("gnmt", 0.0, 1), ("power", 0.8, 4)])
def test_beam_search_with_the_same_ranking_equals_attnlabs(form: str, alpha: float, n_best: int) -> None:
    """At alpha 0 the best hypothesis is the same (the n-best lists may differ: the searches stop on different
    rules, both exact for the best one); with the power form both stop once 4 hypotheses have finished."""
    model, cfg, src_itos, tgt_itos = random_transformer("pre", "sinusoidal", "relu", "decoder", True)
    sources = random_sources(40, len(src_itos))
    vary_endings(model, sources)
    fast = CTranslate2Search.convert(model, cfg, src_itos, tgt_itos, threads=1)
    src, lengths = padded(sources)
    ours = beam_search(model, src, lengths, 4, n_best, alpha, RATIO, MAX_LEN, length_penalty_form=form)
    theirs = fast.search(sources, 4, n_best, LengthNorm(alpha, form), RATIO, MAX_LEN)
    assert [[h.tokens for h in n] for n in theirs] == [[h.tokens for h in n] for n in ours]
    assert [[h.complete for h in n] for n in theirs] == [[h.complete for h in n] for n in ours]
    for mine, other in zip(ours, theirs, strict=True):
        assert [h.score for h in other] == pytest.approx([h.score for h in mine], abs=1e-4)
        assert [h.normalized_score for h in other] == pytest.approx([h.normalized_score for h in mine], abs=1e-4)


def test_an_rnn_is_refused_in_one_line() -> None:
    with pytest.raises(ExportError, match="CTranslate2 supports Transformer models only") as error:
        check_exportable(ModelConfig(arch="rnn"), "run runs/quickstart")
    assert "\n" not in str(error.value) and "runs/quickstart" in str(error.value)
