"""The bertviz hand-over, checked against a stand-in bertviz module (the real one is optional)."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from attnlab.viz import bertviz_arguments, to_bertviz

SRC, TGT = ["a", "b", "<eos>", "<pad>"], ["<bos>", "x", "y"]


def _layers(n_layers: int, heads: int, q: int, k: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.softmax(torch.randn(2, heads, q, k), dim=-1) for _ in range(n_layers))  # (B, H, q, k)


def test_arguments_are_one_sentence_without_padding():
    cross = _layers(2, 4, 3, 4)
    arguments = bertviz_arguments(SRC, TGT, _layers(2, 4, 4, 4), _layers(2, 4, 3, 3), cross, index=1)
    assert arguments["encoder_tokens"] == ["a", "b", "<eos>"] and arguments["decoder_tokens"] == TGT
    assert [t.shape for t in arguments["encoder_attention"]] == [(1, 4, 3, 3)] * 2
    assert [t.shape for t in arguments["cross_attention"]] == [(1, 4, 3, 3)] * 2
    torch.testing.assert_close(arguments["cross_attention"][1][0], cross[1][1, :, :, :3].float())


def test_to_bertviz_calls_the_chosen_view(monkeypatch):
    calls = {}
    fake = types.ModuleType("bertviz")
    fake.head_view = lambda **kwargs: calls.setdefault("head", kwargs)
    fake.model_view = lambda **kwargs: calls.setdefault("model", kwargs)
    monkeypatch.setitem(sys.modules, "bertviz", fake)
    to_bertviz(SRC, TGT, cross_attentions=_layers(1, 1, 3, 4), index=0, html_action="return")
    assert set(calls["head"]) == {"cross_attention", "encoder_tokens", "decoder_tokens", "html_action"}
    to_bertviz(
        SRC, TGT, encoder_attentions=_layers(1, 2, 4, 4), index=0, view="model", view_options={"display_mode": "light"}
    )
    assert calls["model"]["display_mode"] == "light" and calls["model"]["html_action"] == "view"


def test_missing_bertviz_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "bertviz", None)  # makes "import bertviz" fail
    with pytest.raises(ImportError, match="pip install bertviz"):
        to_bertviz(SRC, TGT, cross_attentions=_layers(1, 1, 3, 4), index=0)


def test_mismatched_layer_counts_are_refused():
    with pytest.raises(ValueError, match="same number of layers and heads"):
        bertviz_arguments(SRC, TGT, _layers(3, 4, 4, 4), None, _layers(2, 4, 3, 4), index=0)
