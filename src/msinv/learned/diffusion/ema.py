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


class EMA(AveragedModel):
    """``AveragedModel`` with the EMA rule above, applied without a device synchronisation.

    The update count ``n_averaged`` stays a CPU buffer (saved in the state dict, so a resumed
    run continues with the same decays) and the decay is computed on the host: no per-step
    wait for the GPU, unlike ``AveragedModel.update_parameters``.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool) -> None:
        super().__init__(model, use_buffers=True)
        self.decay = decay
        self.warmup = warmup

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        averaged = [*self.module.parameters(), *self.module.buffers()]
        current = [t.detach() for t in (*model.parameters(), *model.buffers())]
        updates = int(self.n_averaged)
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if updates == 0 or not floats:
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)
        else:
            d = ema_decay(self.decay, updates, self.warmup)
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - d)
            for a, c in zip(averaged, current, strict=True):
                if not a.is_floating_point():  # integer buffers (indices) are copied
                    a.copy_(c)
        self.n_averaged += 1


def ema_model(model: nn.Module, decay: float, *, warmup: bool = True) -> EMA:
    """A copy of ``model`` whose ``update_parameters(model)`` applies the EMA rule.

    Parameters
    ----------
    model : nn.Module
        The trained model (not wrapped in DDP).
    decay : float
        EMA decay in [0, 1).
    warmup : bool, default True
        Use the warm-up decay ``min(decay, (1 + k) / (10 + k))`` (default) instead of the
        plain rule.
    """
    if not 0 <= decay < 1:
        raise UserInputError(f"EMA decay must be in [0, 1), got {decay}")
    return EMA(model, decay, warmup)
