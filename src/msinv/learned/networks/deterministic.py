"""Deterministic heads: a small DenseNet CNN mapping alpha to eta, trained with plain MSE.

Notes
-----
``rounds`` rounds of [conv3x3 -> k, ReLU] concatenated DenseNet-style, then conv3x3 -> 1
(spec, "Deterministic baselines": 9 to 16 rounds of 6 channels). Circular padding, so the
head is translation-equivariant like the score network.
"""

from __future__ import annotations

import torch
from torch import nn

from msinv.core.errors import UserInputError
from msinv.learned.networks.cnn import conv3


class DenseHead(nn.Module):
    """alpha (b, C, n, n) -> eta (b, 1, n, n).

    Parameters
    ----------
    in_channels : int
        Channels C of alpha.
    rounds : int, default 12
        Dense rounds (spec: 9 to 16).
    growth : int, default 6
        Channels added per round (spec: 6).
    """

    def __init__(self, in_channels: int, rounds: int = 12, growth: int = 6) -> None:
        super().__init__()
        if rounds < 1 or growth < 1:
            raise UserInputError(f"rounds and growth must be >= 1, got {rounds}, {growth}")
        self.rounds = nn.ModuleList(
            nn.Sequential(conv3(in_channels + k * growth, growth), nn.ReLU()) for k in range(rounds)
        )
        self.out = conv3(in_channels + rounds * growth, 1)

    def forward(self, alpha: torch.Tensor) -> torch.Tensor:
        feats = [alpha]
        for layer in self.rounds:
            feats.append(layer(torch.cat(feats, dim=1)))
        return self.out(torch.cat(feats, dim=1))
