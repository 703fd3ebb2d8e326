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
    trained = model.weight.detach().clone()
    ema.update_parameters(model)
    torch.testing.assert_close(ema.module.weight, trained, rtol=0, atol=0)
    torch.testing.assert_close(model.weight, trained, rtol=0, atol=0)  # the model is only read
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        model.weight.mul_(-2.0)
    ema.update_parameters(model)
    d = ema_decay(0.9, 1)
    torch.testing.assert_close(ema.module.weight, d * before + (1 - d) * model.weight)


def test_decay_zero_follows_the_model_and_one_is_refused():
    """decay in [0, 1): 0 is allowed (the 'average' is the model itself after every update),
    1 (weights that never move) and negative decays are refused in one line."""
    import pytest

    from msinv.core.errors import UserInputError

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = ema_model(model, 0.0)
    for _ in range(3):
        with torch.no_grad():
            model.weight.mul_(-1.5)
        ema.update_parameters(model)
        torch.testing.assert_close(ema.module.weight, model.weight, rtol=0, atol=0)
    for bad in (1.0, -0.1):
        with pytest.raises(UserInputError, match=r"EMA decay must be in \[0, 1\)"):
            ema_model(model, bad)
