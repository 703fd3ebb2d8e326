"""Generic regularisers: gradients by Taylor test, parsing, the difference operator."""

import numpy as np
import pytest

from msinv.core import taylor_test
from msinv.core.regularisation import Regulariser


@pytest.mark.parametrize("kind", ["tikhonov", "gradient", "tv"])
def test_regulariser_gradient_taylor(kind, rng):
    reg = Regulariser(kind, 0.7, eps=0.1)
    x, dx = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    taylor_test(reg, x, dx, steps=[1e-2, 5e-3, 2.5e-3], min_rate=1.93, max_rate=2.07)


def test_parse_and_validation():
    assert Regulariser.parse("tv:1e-3") == Regulariser("tv", 1e-3)
    assert Regulariser.parse(None) is None and Regulariser.parse("none") is None
    for bad in ("tv", "tv:x", "l1:1", "tv:nan"):
        with pytest.raises(ValueError, match="KIND:WEIGHT"):
            Regulariser.parse(bad)
    with pytest.raises(ValueError, match=">= 0"):
        Regulariser("tv", -1.0)
    assert Regulariser("tikhonov", 1.0).operator((3, 3)) is None
    with pytest.raises(ValueError, match="not quadratic"):
        Regulariser("tv", 1.0).operator((3, 3))


def test_tv_of_a_step_is_its_jump_length():
    x = np.zeros((8, 8))
    x[:, 4:] = 2.0
    value, _ = Regulariser("tv", 1.0, eps=1e-9)(x)
    assert value == pytest.approx(2.0 * 8, rel=1e-6)


def test_difference_operator_is_adjoint(rng):
    from msinv.core.operator import dottest
    from msinv.core.regularisation import Gradient2D

    dottest(Gradient2D.example(rng), rng)
