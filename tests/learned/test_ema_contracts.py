"""The EMA's first update and its decay rule (written from a survivor of the sampled mutation
run, docs/testing.md)."""

import torch
from torch import nn

from msinv.learned.diffusion.ema import ema_decay, ema_model


def test_first_update_copies_then_the_decay_rule_applies():
    """The first update takes the model's current weights whatever they were at construction;
    the next one is a <- d a + (1 - d) c with d = ema_decay(decay, 1)."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = ema_model(model, 0.9)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update_parameters(model)
    torch.testing.assert_close(ema.module.weight, model.weight, rtol=0, atol=0)
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        model.weight.mul_(-2.0)
    ema.update_parameters(model)
    d = ema_decay(0.9, 1)
    torch.testing.assert_close(ema.module.weight, d * before + (1 - d) * model.weight)
