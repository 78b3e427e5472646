"""The generator and the label-smoothed cross-entropy in one pass over chunks of target tokens.

``sequence_loss(generator(hidden), targets)`` materialises the logits of every target position,
(tokens, vocab): for a batch of 4,096 tokens and an 8,000-token vocabulary that is 130 MB per tensor,
and the backward pass makes several more of that size (log-softmax, its gradient from the two terms
of the smoothed loss, their sum). Each is too large for the allocator to keep, so it is mapped fresh,
page-faulted and zeroed by the kernel, and unmapped again at every step. Here the logits of a few
hundred rows exist at a time: each chunk's loss and its gradients (with respect to the hidden states,
the generator weight and bias) are computed in the forward pass, and backward only scales them by
the incoming gradient. Padding rows are dropped before the generator runs.

Same FLOPs for the matrix products, the same loss as ``sequence_loss`` to float rounding (the tests
compare both, and their gradients). When no gradient is needed (validation), only the loss is computed.

With label smoothing ``eps`` over ``V`` classes, as ``F.cross_entropy`` defines it, the loss of a row
with logits ``z`` and target ``y`` is ``(1 - eps) * (lse - z_y) + eps * (lse - mean(z))`` with
``lse = logsumexp(z)``, and its gradient with respect to ``z`` is ``softmax(z) - (1 - eps) * onehot(y)
- eps / V``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.data.vocab import PAD_ID

__all__ = ["chunked_generator_loss", "CHUNK_ELEMENTS"]

CHUNK_ELEMENTS = 1 << 21  # logits per chunk (8 MB in fp32): below the 32 MB up to which glibc reuses freed blocks


def _compute_dtype(hidden: Tensor) -> torch.dtype:
    """The dtype matrix products run in: autocast's when it is on (bf16-mixed), else the input's."""
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return hidden.dtype


class _ChunkedGeneratorLoss(torch.autograd.Function):
    """Summed smoothed cross-entropy of ``hidden @ weight.T + bias``; gradients computed in forward."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, smoothing: float,
                chunk_rows: int, compute_dtype: torch.dtype) -> Tensor:
        """``hidden`` (N, D) real-token rows, ``weight`` (V, D), ``bias`` (V,) or None, ``targets`` (N,)."""
        needs_grad = any(ctx.needs_input_grad[:3])
        V = weight.size(0)
        h, w = hidden.to(compute_dtype), weight.to(compute_dtype)
        b = bias.to(compute_dtype) if bias is not None else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if needs_grad else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if needs_grad else None
        grad_b = torch.zeros(V, dtype=torch.float32, device=weight.device) if needs_grad and bias is not None else None
        for start in range(0, h.size(0), chunk_rows):
            hc, yc = h[start : start + chunk_rows], targets[start : start + chunk_rows]  # (C, D), (C,)
            z = (torch.addmm(b, hc, w.t()) if b is not None else hc @ w.t()).float()  # (C, V) logits
            target_logit = z.gather(1, yc.unsqueeze(1)).squeeze(1)  # (C,)
            mean_logit = z.mean(dim=1)  # (C,)
            peak = z.amax(dim=1, keepdim=True)  # (C, 1)
            z.sub_(peak).exp_()  # (C, V) exp(z - max): softmax up to each row's sum
            row_sum = z.sum(dim=1)  # (C,)
            lse = peak.squeeze(1) + row_sum.log()  # (C,)
            total += ((1 - smoothing) * (lse - target_logit) + smoothing * (lse - mean_logit)).sum()
            if not needs_grad:
                continue
            g = z.div_(row_sum.unsqueeze(1)).sub_(smoothing / V)  # (C, V) softmax - eps / V
            g[torch.arange(g.size(0), device=g.device), yc] -= 1 - smoothing
            if bias is not None:
                grad_b += g.sum(dim=0)
            gc = g.to(compute_dtype)
            grad_h[start : start + chunk_rows] = gc @ w  # (C, D)
            if gc.dtype == grad_w.dtype:
                grad_w.addmm_(gc.t(), hc)  # (V, D), accumulated in place
            else:
                grad_w += gc.t() @ hc  # bf16 product, fp32 sum
        if needs_grad:
            grad_b = grad_b.to(bias.dtype) if grad_b is not None else None
            ctx.save_for_backward(grad_h, grad_w.to(weight.dtype), grad_b)
        return total

    @staticmethod
    def backward(ctx, grad_total: Tensor) -> tuple[Tensor | None, ...]:
        grad_h, grad_w, grad_b = ctx.saved_tensors
        scale = grad_total.to(grad_h.dtype)
        return (grad_h * scale, grad_w * scale, grad_b * scale if grad_b is not None else None,
                None, None, None, None)


def chunked_generator_loss(hidden: Tensor, generator: nn.Linear, targets: Tensor, label_smoothing: float = 0.0,
                           chunk_elements: int = CHUNK_ELEMENTS) -> Tensor:
    """Summed cross-entropy of ``generator(hidden)`` against ``targets`` over real target tokens.

    ``hidden``: (B, T, D) decoder outputs; ``targets``: (B, T) with ``<pad>`` where there is no token.
    Equals ``sequence_loss(generator(hidden), targets, label_smoothing)`` without its (B, T, V) logits.
    """
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and targets {tuple(targets.shape)} disagree on (B, T)")
    real = targets.reshape(-1) != PAD_ID  # (B * T,)
    rows = hidden.reshape(-1, hidden.size(-1))[real]  # (N, D): padding never reaches the generator
    chunk_rows = max(1, chunk_elements // generator.out_features)
    compute_dtype = _compute_dtype(hidden)
    with torch.autocast(hidden.device.type, enabled=False):  # dtypes are chosen explicitly inside
        return _ChunkedGeneratorLoss.apply(rows, generator.weight, generator.bias, targets.reshape(-1)[real],
                                           float(label_smoothing), chunk_rows, compute_dtype)
