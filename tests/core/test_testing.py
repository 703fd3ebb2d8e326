"""The library's Taylor test: passes a right gradient, fails a wrong one, cannot pass vacuously."""

import numpy as np
import pytest

from msinv.core import taylor_test


def _quartic(x):
    """f(x) = sum x^4 / 4 + x . a: gradient x^3 + a."""
    a = np.linspace(-1, 1, x.size).reshape(x.shape)
    return float(np.sum(x**4) / 4 + np.sum(x * a)), x**3 + a


def test_right_gradient_passes_with_rate_two(rng):
    x, dx = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    res = taylor_test(_quartic, x, dx, min_rate=1.9, max_rate=2.1)
    assert res.rates.shape == (3,) and np.all(res.first < res.zeroth)


@pytest.mark.parametrize("factor", [-1.0, 0.5, 1.05, 0.0])
def test_wrong_gradient_fails(rng, factor):
    x, dx = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    with pytest.raises(AssertionError, match="Taylor test"):
        taylor_test(lambda z: _quartic(z)[0], x, dx, factor * _quartic(x)[1])


def test_gradient_given_separately_and_bad_arguments(rng):
    x, dx = rng.standard_normal(5), rng.standard_normal(5)
    taylor_test(lambda z: _quartic(z)[0], x, dx, _quartic(x)[1])
    with pytest.raises(ValueError, match="dx has shape"):
        taylor_test(_quartic, x, dx[:3])
    with pytest.raises(ValueError, match="decreasing"):
        taylor_test(_quartic, x, dx, steps=[1e-3, 1e-2])
    # a linear function has no second-order term: the rate is undefined, the test refuses
    with pytest.raises(AssertionError, match="Taylor test"):
        taylor_test(lambda z: (float(z.sum()), np.ones_like(z)), x, dx)
