"""Beam search lets a sentence's beams share its encoder memory: same search, no per-beam copies."""

from __future__ import annotations

import pytest
import torch

from attnlab.config import load_config
from attnlab.decoding.beam import beam_search
from attnlab.models.build import build_model

LENGTHS = [5, 1, 8, 3, 6, 2]


def transformer(seed: int, norm: str):
    torch.manual_seed(seed)
    cfg = load_config(None, ["model.arch=transformer", "model.d_model=32", "model.heads=4", "model.ffn_dim=64",
                             "model.enc_layers=2", "model.dec_layers=2", f"model.norm={norm}", "model.dropout=0"])
    return build_model(cfg.model, 17, 19).eval()


def sources(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 17, (len(LENGTHS), max(LENGTHS)), generator=g)
    for row, n in enumerate(LENGTHS):
        src[row, n:] = 0
    return src, torch.tensor(LENGTHS)


@pytest.mark.parametrize(("norm", "alpha"), [("post", 0.0), ("pre", 0.6)])
def test_shared_memory_finds_what_copied_memory_finds(norm: str, alpha: float) -> None:
    model = transformer(0, norm)
    src, lengths = sources(1)
    kwargs = dict(beam_size=4, n_best=4, length_penalty=alpha, max_len=12, return_attention=True)
    shared = beam_search(model, src, lengths, share_memory=True, **kwargs)
    copied = beam_search(model, src, lengths, share_memory=False, **kwargs)
    for ours, theirs in zip(shared, copied, strict=True):
        assert [h.tokens for h in ours] == [h.tokens for h in theirs]
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)
        for a, b in zip(ours, theirs, strict=True):
            for x, y in zip(a.cross_attentions, b.cross_attentions, strict=True):
                torch.testing.assert_close(x, y, atol=1e-5, rtol=0)


def test_expanded_state_keeps_one_memory_row_per_source() -> None:
    model = transformer(2, "pre")
    src, lengths = sources(3)
    with torch.no_grad():
        state = model.encode(src, lengths).expand(3)
        assert state.memory.shape[0] == 6 and state.cross_kv[0][0].shape[0] == 6
        step = model.decode_step(torch.full((18,), 1), state)
        assert step.logits.shape == (18, 19) and step.state.self_kv[0][0].shape[0] == 18
        # rows 3..5 (source 1) come back in another order; sources 0 and 2 are dropped
        kept = step.state.reorder(torch.tensor([5, 3, 3]))
        assert kept.memory.shape[0] == 1 and torch.equal(kept.memory[0], state.memory[1])
        with pytest.raises(ValueError, match="mixes sources"):
            step.state.reorder(torch.tensor([0, 1, 3]))
        with pytest.raises(ValueError, match="expand it once"):
            state.expand(2)


def test_shared_step_equals_copied_step() -> None:
    model = transformer(4, "post")
    src, lengths = sources(5)
    tokens = torch.randint(3, 19, (18,))
    with torch.no_grad():
        encoded = model.encode(src, lengths)
        shared = model.decode_step(tokens, encoded.expand(3), return_attention=True)
        copied = model.decode_step(tokens, encoded.reorder(torch.arange(6).repeat_interleave(3)),
                                   return_attention=True)
    torch.testing.assert_close(shared.logits, copied.logits, atol=1e-5, rtol=0)
    for a, b in zip(shared.cross_attentions, copied.cross_attentions, strict=True):
        assert a.shape == b.shape == (18, 4, 1, 8)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
