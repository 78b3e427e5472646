"""Transformer input embeddings: scaled token vectors plus position information, then dropout.

Following Vaswani et al. (2017), section 3.4, token vectors are multiplied by ``sqrt(d_model)`` so that
they are on the same scale as the positional encodings added to them. Positions are either the fixed
sinusoids of section 3.5 or a learned table (as in BERT and GPT), both limited to ``max_positions``.

Incremental decoding embeds one token at a time, so :meth:`TransformerEmbedding.forward` takes the
position of its first token (``start``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnlab.models.dropout import MaskDropout
from attnlab.models.options import POSITIONALS

__all__ = ["sinusoidal_table", "TransformerEmbedding"]


def sinusoidal_table(max_positions: int, d_model: int) -> torch.Tensor:
    """The fixed encodings of Vaswani et al. (2017): (max_positions, d_model).

    ``PE[pos, 2i] = sin(pos / 10000^(2i / d_model))`` and ``PE[pos, 2i + 1] = cos(...)``.
    """
    position = torch.arange(max_positions, dtype=torch.float32).unsqueeze(1)  # (P, 1)
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    angles = position * inv_freq  # (P, ceil(d_model / 2))
    table = torch.zeros(max_positions, d_model)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])  # odd d_model: one cosine fewer
    return table


class TransformerEmbedding(nn.Module):
    """``dropout(token_embedding(tokens) * sqrt(d_model) + position_encoding(positions))``.

    Args:
        vocab_size: number of token ids.
        d_model: embedding size (the Transformer's model width; ``emb_dim`` in the config is RNN-only).
        positional: ``"sinusoidal"`` (fixed, not a parameter) or ``"learned"`` (a trained table).
        max_positions: the longest sequence that can be embedded.
        dropout: applied to the sum.
        padding_idx: the token id whose vector is kept at zero.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        positional: str = "sinusoidal",
        max_positions: int = 512,
        dropout: float = 0.1,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_positions = max_positions
        self.scale = math.sqrt(d_model)
        self.tokens = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        if positional not in POSITIONALS:
            raise ValueError(f"positional encoding {positional!r} is unknown; expected one of {', '.join(POSITIONALS)}")
        if positional == "sinusoidal":
            # A buffer, not a parameter: rebuilt from the formula, so kept out of checkpoints.
            self.register_buffer("sinusoids", sinusoidal_table(max_positions, d_model), persistent=False)
            self.positions: nn.Embedding | None = None
        else:  # "learned"
            self.sinusoids = None
            self.positions = nn.Embedding(max_positions, d_model)
        self.dropout = MaskDropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # N(0, d_model^-1/2) makes the scaled token vectors roughly unit-variance, like the sinusoids.
        nn.init.normal_(self.tokens.weight, mean=0.0, std=self.d_model**-0.5)
        if self.tokens.padding_idx is not None:
            with torch.no_grad():
                self.tokens.weight[self.tokens.padding_idx].zero_()
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, mean=0.0, std=self.d_model**-0.5)

    def position_encoding(self, start: int, length: int) -> torch.Tensor:
        """Encodings of positions ``start .. start + length - 1``: (length, d_model)."""
        end = start + length
        if end > self.max_positions:
            raise ValueError(
                f"sequence position {end - 1} is beyond model.max_positions={self.max_positions}; "
                "raise model.max_positions or shorten the input (decode.max_len)"
            )
        if self.positions is not None:
            return self.positions.weight[start:end]
        return self.sinusoids[start:end]

    def forward(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Embed ``tokens`` (B, T) whose first token is at position ``start``; returns (B, T, d_model)."""
        x = self.tokens(tokens) * self.scale  # (B, T, D)
        x = x + self.position_encoding(start, tokens.size(1))  # (T, D) broadcasts over the batch
        return self.dropout(x)
