"""The chunked generator loss equals the loss over full logits, in value and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.training.generator_loss import chunked_generator_loss
from attnlab.training.losses import sequence_loss


def case(seed: int = 0, vocab: int = 53, bias: bool = True):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    generator = nn.Linear(16, vocab, bias=bias)
    hidden = torch.randn(5, 7, 16, generator=g, requires_grad=True)
    targets = torch.randint(1, vocab, (5, 7), generator=g)
    targets[0, 3:] = 0  # padding rows get no loss and no gradient
    targets[4, 1:] = 0
    return hidden, generator, targets


def gradients(loss: torch.Tensor, hidden: torch.Tensor, generator: nn.Linear) -> list[torch.Tensor]:
    params = [hidden, generator.weight] + ([generator.bias] if generator.bias is not None else [])
    return list(torch.autograd.grad(loss, params))


@pytest.mark.parametrize(("smoothing", "chunk", "bias"),
                         [(0.0, 53 * 4, True), (0.1, 53 * 3, True), (0.1, 10**6, False)])
def test_equals_the_loss_over_full_logits(smoothing: float, chunk: int, bias: bool) -> None:
    hidden, generator, targets = case(bias=bias)
    ours = chunked_generator_loss(hidden, generator, targets, smoothing, chunk_elements=chunk)
    reference = sequence_loss(generator(hidden), targets, smoothing)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-6)
    for a, b in zip(gradients(2.5 * ours, hidden, generator), gradients(2.5 * reference, hidden, generator),
                    strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_padding_rows_get_zero_gradient_and_no_grad_gives_the_loss_alone() -> None:
    hidden, generator, targets = case(1)
    [grad_hidden, *_] = gradients(chunked_generator_loss(hidden, generator, targets, 0.1), hidden, generator)
    assert torch.all(grad_hidden[targets == 0] == 0) and torch.all(grad_hidden[targets != 0].abs().sum(-1) > 0)
    with torch.no_grad():
        value = chunked_generator_loss(hidden, generator, targets, 0.1)
    torch.testing.assert_close(value, sequence_loss(generator(hidden), targets, 0.1), atol=1e-4, rtol=1e-6)


def test_follows_autocast_like_the_full_logits() -> None:
    hidden, generator, targets = case(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = chunked_generator_loss(hidden, generator, targets, 0.1)
        reference = sequence_loss(generator(hidden), targets, 0.1)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, reference, atol=0.05, rtol=1e-3)
    for a, b in zip(gradients(ours, hidden, generator), gradients(reference, hidden, generator), strict=True):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, atol=2e-2, rtol=2e-2)


def test_refuses_mismatched_shapes() -> None:
    hidden, generator, targets = case()
    with pytest.raises(ValueError, match="disagree"):
        chunked_generator_loss(hidden, generator, targets[:, :-1])
