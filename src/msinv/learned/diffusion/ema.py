"""Exponential moving average of the weights, used for sampling.

Notes
-----
After every optimiser step, :math:`\\bar\\theta \\leftarrow d\\,\\bar\\theta + (1 - d)\\,\\theta`
with decay :math:`d` (paper: 0.999); buffers are averaged too. This is torch's
:class:`torch.optim.swa_utils.AveragedModel` with an EMA rule; its first update copies the
weights.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_model(model: nn.Module, decay: float) -> AveragedModel:
    """A copy of ``model`` whose ``update_parameters(model)`` applies the EMA rule.

    Parameters
    ----------
    model : nn.Module
        The trained model (not wrapped in DDP).
    decay : float
        EMA decay in [0, 1).
    """
    if not 0 <= decay < 1:
        raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
