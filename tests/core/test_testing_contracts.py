"""The Taylor test's step contract at its boundaries (written from a survivor of the sampled
mutation run, docs/testing.md)."""

import numpy as np
import pytest

from msinv.core import taylor_test
from msinv.core.errors import UserInputError


def _cubic(x):
    return float(np.sum(x**3)), 3 * x**2


def test_two_steps_are_enough_and_one_is_refused(rng):
    """'steps must be >= 2 decreasing positive values': two steps give one rate, one is refused."""
    x, dx = rng.uniform(1, 2, 4), rng.standard_normal(4)
    res = taylor_test(_cubic, x, dx, steps=[1e-2, 5e-3])
    assert res.rates.shape == (1,)
    with pytest.raises(UserInputError, match=">= 2 decreasing"):
        taylor_test(_cubic, x, dx, steps=[1e-2])
    with pytest.raises(UserInputError, match=">= 2 decreasing"):
        taylor_test(_cubic, x, dx, steps=[1e-2, 0.0])


def test_taylor_steps_must_strictly_decrease():
    """Two equal steps give no convergence rate: refused like increasing ones."""
    x = np.array([1.0, 2.0])

    def fun(z):
        return float(z @ z), 2 * z

    with pytest.raises(UserInputError, match="steps must be >= 2 decreasing positive values"):
        taylor_test(fun, x, np.ones(2), steps=[1e-2, 1e-2, 1e-3])


def test_the_last_step_must_be_positive(rng):
    """Steps that decrease to zero or below are refused, whatever their number."""
    x, dx = rng.uniform(1, 2, 4), rng.standard_normal(4)
    for steps in ([1e-2, 5e-3, 0.0], [1e-2, 5e-3, 1e-3, -1e-3]):
        with pytest.raises(UserInputError, match=">= 2 decreasing positive"):
            taylor_test(_cubic, x, dx, steps=steps)


def test_default_steps_are_a_hundredth_halved_three_times(rng):
    """Without ``steps`` the test uses h = 1e-2 * 2**-k, k = 0..3 (documented): the points it
    evaluates are x + h dx for exactly those h."""
    x, dx = rng.standard_normal(5), rng.standard_normal(5)
    seen = []

    def fun(z):
        seen.append(z.copy())
        return _cubic(z)

    res = taylor_test(fun, x, dx)
    np.testing.assert_array_equal(res.steps, 1e-2 * 0.5 ** np.arange(4))
    hs = sorted({round(float(np.dot(z - x, dx) / np.dot(dx, dx)), 12) for z in seen})
    np.testing.assert_allclose(hs, [0.0, *sorted(1e-2 * 0.5 ** np.arange(4))], atol=1e-12)


@pytest.mark.parametrize("given", [True, False])
def test_a_gradient_of_another_shape_than_x_is_refused(rng, given):
    """The gradient (given, or returned by ``fun``) has the shape of x: a flattened or
    truncated one is refused in one line, not broadcast into a wrong slope."""
    x, dx = rng.uniform(1, 2, (2, 3)), rng.standard_normal((2, 3))
    grad = 3 * x.ravel() ** 2  # the right values, the wrong shape

    def fun(z):
        return (float(np.sum(z**3)), grad) if not given else float(np.sum(z**3))

    with pytest.raises(UserInputError, match=r"gradient has shape \(6,\), expected \(2, 3\)"):
        taylor_test(fun, x, dx, grad=grad if given else None)
    assert taylor_test(_cubic, x, dx).rates.min() > 1.8  # the same test with its own shape


def test_the_zeroth_order_remainder_is_the_change_of_f_and_decays_at_first_order(rng):
    """r0(h) = |f(x + h dx) − f(x)|, whatever the value of f itself: for a smooth f with a
    non-zero gradient it shrinks like h (an offset of f must not enter it)."""

    def shifted(x):
        return 1e3 + float(np.sum(x**3)), 3 * x**2

    x, dx = rng.standard_normal(5) + 2.0, rng.standard_normal(5)
    res = taylor_test(shifted, x, dx)
    exact = [abs(shifted(x + h * dx)[0] - shifted(x)[0]) for h in res.steps]
    np.testing.assert_allclose(res.zeroth, exact, rtol=1e-12)
    np.testing.assert_allclose(np.log2(res.zeroth[:-1] / res.zeroth[1:]), 1.0, atol=0.05)


def test_a_taylor_test_at_a_stationary_point_is_refused_whatever_the_offset_of_f(rng):
    """At a stationary point (gradient 0) the first-order remainder equals the zeroth-order
    one: the gradient term does not matter and the test could not fail, so it is refused,
    also when f carries a large constant."""

    def bowl(x):
        return 5.0 + float(x @ x), 2 * x

    with pytest.raises(AssertionError, match="the gradient term does not matter"):
        taylor_test(bowl, np.zeros(4), rng.standard_normal(4))


def test_the_accepted_rates_form_a_closed_interval():
    """A rate exactly at min_rate or max_rate passes ([min_rate, max_rate], ends included):
    f = |x|^2 with power-of-two steps has first-order remainders h^2 exactly, so every rate
    is exactly 2; min_rate = max_rate = 2 accepts it and an interval just beside 2 does not."""
    steps = 2.0 ** -np.arange(4, 8)

    def f(x):
        return float(x @ x), 2 * x

    x, dx = np.array([1.0]), np.array([1.0])
    result = taylor_test(f, x, dx, steps=steps, min_rate=2.0, max_rate=2.0)
    assert list(result.rates) == [2.0, 2.0, 2.0]
    np.testing.assert_array_equal(result.first, steps**2)
    for low, high in [(2.0 + 1e-12, 3.0), (1.0, 2.0 - 1e-12)]:
        with pytest.raises(AssertionError, match="first-order remainder rates"):
            taylor_test(f, x, dx, steps=steps, min_rate=low, max_rate=high)


def test_a_first_order_remainder_of_exactly_half_the_zeroth_is_refused():
    """The test refuses to pass vacuously when the first-order remainder at the smallest step
    is not below half the zeroth-order one (documented): exactly half is refused. At
    x = h_min / 2 for f = |x|^2 (exact in binary) the remainders are h_min^2 and 2 h_min^2."""
    steps = 2.0 ** -np.arange(4, 8)
    h = steps[-1]

    def f(x):
        return float(x @ x), 2 * x

    with pytest.raises(AssertionError, match="the gradient term does not matter") as info:
        taylor_test(f, np.array([h / 2]), np.array([1.0]), steps=steps)
    assert f"{h**2:.3e} vs zeroth-order {2 * h**2:.3e}" in str(info.value)
    taylor_test(f, np.array([h]), np.array([1.0]), steps=steps)  # 1/3 of it: accepted


@pytest.mark.parametrize("which", ["x", "dx"])
def test_a_complex_point_or_direction_is_refused(which):
    """taylor_test works on a real space: a complex x or dx would lose its imaginary part in
    the cast to float (a NumPy warning, a test of another direction), so it is refused."""
    x, dx = np.ones(3), np.full(3, 0.5)
    args = {"x": x, "dx": dx, which: np.ones(3) * (1 + 1j)}
    with pytest.raises(UserInputError, match="must be real"):
        taylor_test(lambda z: (float(z @ z), 2 * z), args["x"], args["dx"])


def test_a_taylor_test_at_a_maximum_is_refused_too():
    """At a maximum (f = -|x|^2 at 0, gradient 0) the first-order remainder is the whole,
    negative change of f: its size, not its sign, is compared with the zeroth-order one, so
    the test is refused as at a minimum."""
    with pytest.raises(AssertionError, match="the gradient term does not matter"):
        taylor_test(lambda z: (-float(z @ z), -2 * z), np.zeros(3), np.ones(3))


def test_the_function_is_called_on_float_points():
    """An integer x (a list of ints) is taken as the float point: fun never sees integers."""
    seen = []

    def fun(z):
        seen.append(np.asarray(z).dtype)
        return float(z @ z), 2 * z

    taylor_test(fun, [1, 2, 3], np.ones(3))
    assert seen and set(seen) == {np.dtype(np.float64)}
