"""Beam search's second ranking, CTranslate2's ``log P / steps ** alpha`` (``length_penalty_form="power"``).

That it finds CTranslate2's translations is checked against CTranslate2 itself in ``tests/export``;
here, the invariants it must keep on its own: beam 1 is still greedy, the normalised score is what
it claims, the n-best list is ranked by it, and an unknown form is refused.
"""

from __future__ import annotations

import pytest
import torch

from attnlab.config import ModelConfig
from attnlab.data.vocab import EOS_ID, PAD_ID
from attnlab.decoding.beam import LengthNorm, beam_search, gnmt_length_penalty, power_length_penalty
from attnlab.decoding.greedy import greedy_decode
from attnlab.models.transformer import Transformer, build_transformer

LENGTHS = [5, 1, 8, 3, 6, 2]


def random_transformer(seed: int, eos_bias: float) -> Transformer:
    """A random Transformer whose ``<eos>`` logit is raised by ``eos_bias`` (outputs end at varied steps)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="transformer", d_model=32, heads=2, enc_layers=1, dec_layers=2, ffn_dim=48, dropout=0.0)
    model = build_transformer(cfg, 17, 19).eval()
    with torch.no_grad():
        model.generator.bias[EOS_ID] += eos_bias
    return model


def random_sources(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) random ids padded with 0, and their (B,) lengths."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 17, (len(LENGTHS), max(LENGTHS)), generator=g)
    for row, n in enumerate(LENGTHS):
        src[row, n:] = PAD_ID
    return src, torch.tensor(LENGTHS)


def test_the_two_divisors() -> None:
    assert power_length_penalty(11, 0.6) == pytest.approx(11**0.6)
    assert power_length_penalty(7, 0.0) == 1.0 == gnmt_length_penalty(7, 0.0)
    assert LengthNorm(0.6, "power").divisor(11) == pytest.approx(4.2154, abs=1e-4)
    assert LengthNorm(0.6, "gnmt").divisor(11) == pytest.approx(1.8013, abs=1e-4)
    assert LengthNorm(0.6, "power").stops_at_k_finished and not LengthNorm(0.0, "power").stops_at_k_finished
    assert LengthNorm(0.6, "gnmt").complete_first and not LengthNorm(0.6, "power").complete_first


def test_beam_of_one_is_greedy_with_the_power_form() -> None:
    for seed, eos_bias in [(0, 0.0), (1, 2.0), (2, 3.5)]:
        model = random_transformer(seed, eos_bias)
        src, lengths = random_sources(seed)
        greedy = greedy_decode(model, src, lengths, max_len_ratio=1.5, max_len=12)
        beams = beam_search(model, src, lengths, beam_size=1, length_penalty=0.8, max_len_ratio=1.5, max_len=12,
                            length_penalty_form="power")
        assert [h.tokens for h in greedy] == [b[0].tokens for b in beams]
        assert [b[0].score for b in beams] == pytest.approx([h.score for h in greedy], abs=1e-5)


def test_power_form_scores_and_ranking() -> None:
    model = random_transformer(seed=5, eos_bias=2.5)
    src, lengths = random_sources(5)
    for n_best in beam_search(model, src, lengths, beam_size=4, n_best=4, length_penalty=0.8, max_len=12,
                              length_penalty_form="power"):
        for h in n_best:
            steps = len(h.tokens) + (1 if h.complete else 0)  # CTranslate2 counts the <eos>
            assert h.normalized_score == pytest.approx(h.score / steps**0.8, abs=1e-5)
        normalized = [h.normalized_score for h in n_best]
        assert normalized == sorted(normalized, reverse=True)  # complete and cut ranked together


def test_an_unknown_form_is_refused() -> None:
    model = random_transformer(seed=0, eos_bias=0.0)
    src, lengths = random_sources(0)
    with pytest.raises(ValueError, match="length penalty form 'fairseq' is unknown"):
        beam_search(model, src, lengths, length_penalty_form="fairseq")
