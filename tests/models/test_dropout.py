"""MaskDropout and relu_dropout: dropout's contract with a cheaper mask."""

from __future__ import annotations

import pytest
import torch

from attnlab.models.dropout import MaskDropout, keep_mask, relu_dropout
from attnlab.models.transformer_layers import DecoderLayer, EncoderLayer


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_mask_keeps_one_minus_p_and_is_reproducible(p: float) -> None:
    torch.manual_seed(0)
    keep = keep_mask((1000, 257), p)
    assert keep.dtype == torch.bool and keep.shape == (1000, 257)
    assert abs(keep.float().mean().item() - (1 - p)) < 0.005  # 257,000 draws: 5 standard deviations
    torch.manual_seed(0)
    assert torch.equal(keep, keep_mask((1000, 257), p))
    column_rates = keep.float().mean(0)  # every lane of the 64-bit draws is used alike
    assert (column_rates - (1 - p)).abs().max() < 0.07


def test_dropout_scales_kept_elements_and_is_the_identity_in_eval() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 33, requires_grad=True)
    drop = MaskDropout(0.25)
    y = drop(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    assert drop.eval()(x) is x and MaskDropout(0.0)(x) is x
    assert torch.all(MaskDropout(1.0).train()(x) == 0)


def test_relu_dropout_equals_relu_then_the_same_mask() -> None:
    x = torch.randn(40, 50, requires_grad=True)
    torch.manual_seed(2)
    fused = relu_dropout(x, 0.2, training=True)
    torch.manual_seed(2)
    keep = keep_mask(x.shape, 0.2)
    reference = torch.relu(x) * keep / 0.8
    torch.testing.assert_close(fused, reference)
    g = torch.randn(40, 50)
    (fused_grad,) = torch.autograd.grad(fused, x, g)
    (reference_grad,) = torch.autograd.grad(reference, x, g)
    torch.testing.assert_close(fused_grad, reference_grad)
    torch.testing.assert_close(relu_dropout(x, 0.2, training=False), torch.relu(x))


def test_transformer_layers_take_keywords_only() -> None:
    sizes = dict(d_model=16, heads=2, ffn_dim=32, dropout=0.0, activation="relu", pre_norm=True)
    assert EncoderLayer(**sizes).ffn.linear1.out_features == 32
    assert DecoderLayer(**sizes).cross_attn.heads == 2
    with pytest.raises(TypeError):
        EncoderLayer(16, 2, 32, 0.0, "relu", True)  # type: ignore[misc]
