"""Input contracts shared by every metric (written from the survivors of the sampled mutation
run, docs/testing.md)."""

import numpy as np
import pytest

from msinv.core.errors import UserInputError
from msinv.metrics import crps, data_misfit, rrmse, sinkhorn_divergence


@pytest.mark.parametrize("bad", [np.array([["a", "b"], ["c", "d"]]), np.array([[None, 1.0]] * 2)])
def test_metrics_refuse_non_numeric_arrays_in_one_line(bad):
    """A string or object array is refused with a UserInputError naming the argument, not a
    TypeError from deep inside NumPy."""
    good = np.ones((2, 2))
    with pytest.raises(UserInputError, match="expected a numeric array"):
        rrmse(bad, good)
    with pytest.raises(UserInputError, match="expected a numeric array"):
        crps(np.stack([good, good]), bad)


def test_data_misfit_refuses_only_an_all_zero_datum():
    """The relative misfit is undefined for a zero datum (refused) and plain ||p - d|| for a
    datum of norm 1."""
    d = np.zeros((2, 1, 3, 4), complex)
    d[0, 0, 1, 2] = 1.0  # norm 1
    d[1, 0, 0, 0] = 3.0j
    p = d + 0.5
    expected = [np.sqrt(12 * 0.25), np.sqrt(12 * 0.25) / 3]
    np.testing.assert_allclose(data_misfit(p, d), expected, rtol=1e-12)
    d[1] = 0.0
    with pytest.raises(UserInputError, match="identically zero"):
        data_misfit(p, d)


def test_rrmse_needs_images_on_both_sides():
    """rrmse compares images (..., n, n), a single (n, n) image included; a 1-D prediction or
    a 1-D target is refused even when the other side is an image."""
    img = np.ones((3, 3))
    assert rrmse(2 * img, img) == pytest.approx(1.0)  # one (n, n) image on each side
    with pytest.raises(UserInputError, match="expected images"):
        rrmse(np.ones(3), img)
    with pytest.raises(UserInputError, match="expected images"):
        rrmse(img, np.ones(3))


def test_rrmse_of_complex_images_is_the_ratio_of_frobenius_norms(rng):
    """Complex images (e.g. wavefields) are measured with |z|², as numpy.linalg.norm does."""
    t = rng.standard_normal((2, 4, 4)) + 1j * rng.standard_normal((2, 4, 4))
    p = t + 0.1 * (rng.standard_normal((2, 4, 4)) - 1j * rng.standard_normal((2, 4, 4)))
    expected = [np.linalg.norm(p[k] - t[k]) / np.linalg.norm(t[k]) for k in range(2)]
    np.testing.assert_allclose(rrmse(p, t), expected, rtol=1e-12)
    np.testing.assert_allclose(rrmse(2j * t.real, 1j * t.real), [1.0, 1.0], rtol=1e-12)


def test_rrmse_refuses_a_batch_with_one_zero_target_image():
    """The relative error of an all-zero target is undefined: one such image in a batch is
    refused, not only a batch of them (it would give inf or NaN among finite values)."""
    t = np.ones((3, 4, 4))
    t[1] = 0.0
    with pytest.raises(UserInputError, match="identically zero"):
        rrmse(np.ones((3, 4, 4)), t)


def test_data_misfit_with_one_axis_per_datum():
    """ndim=1 (one axis per datum, e.g. per-frequency vectors) is allowed: one value per row."""
    d = np.array([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(data_misfit(d + 1.0, d, ndim=1), [np.sqrt(2), np.sqrt(2) / 2])
    with pytest.raises(UserInputError, match="axes per datum"):
        data_misfit(d, d, ndim=0)


def test_sinkhorn_that_does_not_converge_says_so(rng):
    """An iteration budget too small for the tolerance raises, instead of returning the value
    of an unconverged plan."""
    x, y = rng.standard_normal((6, 3, 3)), rng.standard_normal((5, 3, 3)) + 1.0
    assert np.isfinite(sinkhorn_divergence(x, y, eps=20.0))
    with pytest.raises(RuntimeError, match="not converged"):
        sinkhorn_divergence(x, y, eps=20.0, max_iter=1, tol=1e-14)


def test_crps_of_scalar_draws_and_misfit_of_a_single_datum():
    """The smallest valid shapes: draws (b, k) of scalars against targets (b,); one datum of
    exactly ``ndim`` axes."""
    draws = np.array([[0.0, 1.0], [2.0, 2.0]])
    np.testing.assert_allclose(crps(draws, np.array([0.0, 2.0])), [0.5 - 0.25, 0.0])
    d = np.ones((2, 3, 4), complex)
    assert data_misfit(2 * d, d) == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [0.05, 1.0, 20.0])
def test_sinkhorn_stops_on_the_marginal_violation_of_its_plan(rng, scale):
    """The documented stopping rule: the plan returned violates its marginals by at most
    ``tol`` in L1 (twice that for the averaged last update), at small and large ``eps``
    (images scaled by 0.05 and 20: eps = 0.05 x the mean cost from ~1e-3 to ~1e3)."""
    from msinv.metrics.sinkhorn import _entropic

    x = scale * rng.standard_normal((7, 9))
    y = scale * (rng.standard_normal((5, 9)) + 0.5)
    eps = 0.05 * float(np.mean(((x[:, None] - y[None]) ** 2).sum(-1)))
    tol = 1e-6
    plan, _, a, b = _entropic(x, y, "sqeuclidean", eps, 100_000, tol)
    violation = max(np.abs(plan.sum(1) - a).sum(), np.abs(plan.sum(0) - b).sum())
    assert violation <= 2 * tol, f"eps {eps:.3g}: marginals violated by {violation:.2e}"


def test_sinkhorn_stops_on_both_marginals_of_a_lopsided_pair():
    """Three points against forty, in both orders, at a loose tol = 1e-2: the stopping rule
    looks at the L1 violation of each marginal (every row's and every column's |error|), so
    the returned plan violates neither by more than 2 tol (the averaged last update); a rule
    that let errors of opposite signs cancel, or weighed one side wrongly, stops at ~3 tol."""
    from msinv.metrics.sinkhorn import _entropic

    tol = 1e-2
    for seed in range(8):
        rng = np.random.default_rng(seed)
        few, many = rng.standard_normal((3, 3)), 2.0 * rng.standard_normal((40, 3)) + 1.0
        for x, y in ((few, many), (many, few)):
            eps = 0.05 * float(np.mean(((x[:, None] - y[None]) ** 2).sum(-1)))
            plan, _, a, b = _entropic(x, y, "sqeuclidean", eps, 10_000, tol)
            rows, cols = np.abs(plan.sum(1) - a).sum(), np.abs(plan.sum(0) - b).sum()
            assert max(rows, cols) <= 2 * tol, f"seed {seed}: {rows:.3g}, {cols:.3g}"


def test_sinkhorn_with_zero_eps_is_refused(rng):
    """eps = 0 is unregularised transport (log-domain Sinkhorn divides by eps): refused in one
    line, as is a negative one."""
    x, y = rng.standard_normal((4, 3, 3)), rng.standard_normal((4, 3, 3))
    for eps in (0.0, -1.0):
        with pytest.raises(UserInputError, match=r"eps=.*expected > 0"):
            sinkhorn_divergence(x, y, eps=eps)


def test_one_draw_is_enough_for_the_papers_crps_and_two_for_the_fair_one():
    """k >= 1 for the paper's estimator: one draw has no spread term and its CRPS is the mean
    absolute error; the fair estimator divides by k(k - 1), so k = 1 is refused in one line
    (a UserInputError, as every other bad input of the metrics) and k = 2 is accepted."""
    draws, target = np.array([[[1.0, -2.0]], [[0.5, 0.5]]]), np.array([[0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(crps(draws, target), [1.5, 0.5], rtol=1e-15)
    with pytest.raises(UserInputError, match="the fair estimator needs >= 2 draws, got 1"):
        crps(draws, target, fair=True)
    two = np.concatenate([draws, draws], axis=1)  # two equal draws: no spread either way
    np.testing.assert_allclose(crps(two, target, fair=True), [1.5, 0.5], rtol=1e-15)
