"""Exponential moving average of the weights, used for sampling.

Notes
-----
After optimiser step :math:`k` (counting updates from 0),
:math:`\\bar\\theta \\leftarrow d_k\\,\\bar\\theta + (1 - d_k)\\,\\theta` with

.. math::
    d_k = \\min\\left(d, \\frac{1 + k}{10 + k}\\right) \\quad\\text{(warm-up)}, \\qquad
    d_k = d \\quad\\text{(plain rule)},

decay :math:`d` (paper: 0.999); buffers are averaged too; the first update copies the weights.
Under the plain rule the weights of step :math:`j` keep the share :math:`d^{k-j}` after
:math:`k` steps: with :math:`d = 0.999`, 5% of the *random initial* weights is still in the
average after 3,000 steps, which spoils short runs (on a 3,000-step reduced squares run the EMA
denoiser was clearly worse than the raw weights; ``benchmarks/learned_denoiser.py`` compares
them). The warm-up forgets the start at the rate of a running mean, then settles at ``d``;
over the paper's 131,250 steps the two rules give the same average.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from msinv.core.errors import UserInputError


def ema_decay(decay: float, updates: int, warmup: bool = True) -> float:
    """Decay applied at the update that follows ``updates`` earlier ones (>= 1)."""
    return min(decay, (1 + updates) / (10 + updates)) if warmup else decay


def ema_model(model: nn.Module, decay: float, *, warmup: bool = True) -> AveragedModel:
    """A copy of ``model`` whose ``update_parameters(model)`` applies the EMA rule.

    Parameters
    ----------
    model : nn.Module
        The trained model (not wrapped in DDP).
    decay : float
        EMA decay in [0, 1).
    warmup : bool
        Use the warm-up decay ``min(decay, (1 + k) / (10 + k))`` (default) instead of the
        plain rule.

    Notes
    -----
    The update count is torch's ``n_averaged`` buffer, saved in the state dict: a resumed run
    continues with the same decays.
    """
    if not 0 <= decay < 1:
        raise UserInputError(f"EMA decay must be in [0, 1), got {decay}")

    @torch.no_grad()
    def update(averaged: list, current: list, n_averaged) -> None:
        d = ema_decay(decay, int(n_averaged), warmup)
        pairs = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if pairs:
            torch._foreach_lerp_([a for a, _ in pairs], [c for _, c in pairs], 1.0 - d)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():  # integer buffers (indices) are copied
                a.copy_(c)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
