"""Bounded CG, β search and L-curve corner on problems with known answers."""

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from msinv.core.solvers import beta_search, lcurve_corner, projected_cg


def _problem(rng, n=30, m=40):
    a = rng.standard_normal((m, n))
    d = rng.standard_normal(m) * 3
    return a, d


def test_unbounded_equals_the_linear_solve(rng):
    a, d = _problem(rng)
    h = a.T @ a + 0.1 * np.eye(a.shape[1])
    x, info = projected_cg(lambda v: h @ v, a.T @ d, np.zeros(a.shape[1]), tol=1e-12)
    np.testing.assert_allclose(x, np.linalg.solve(h, a.T @ d), rtol=1e-8, atol=1e-10)
    assert info.converged and info.n_lower == info.n_upper == 0


@pytest.mark.parametrize("jacobi", [False, True])
def test_bounds_reached_never_passed_and_kkt_optimal(rng, jacobi):
    a, d = _problem(rng)
    a = a * rng.uniform(0.1, 10, a.shape[1])  # badly scaled columns
    h = a.T @ a + 0.01 * np.eye(a.shape[1])
    lo, hi = -0.2, 0.3
    seen = []
    pre = (lambda r: r / np.diag(h)) if jacobi else None
    x, info = projected_cg(
        lambda v: h @ v,
        a.T @ d,
        np.zeros(a.shape[1]),
        lo,
        hi,
        tol=1e-12,
        max_outer=100,
        precondition=pre,
        callback=seen.append,
    )
    assert x.min() >= lo and x.max() <= hi  # never passed
    assert info.n_lower > 0 and info.n_upper > 0  # reached, exactly
    assert np.count_nonzero(x == lo) == info.n_lower and np.count_nonzero(x == hi) == info.n_upper
    # same minimiser as SciPy's bounded least squares on the stacked system
    stacked = np.vstack([a, np.sqrt(0.01) * np.eye(a.shape[1])])
    rhs = np.concatenate([d, np.zeros(a.shape[1])])
    ref = lsq_linear(stacked, rhs, bounds=(lo, hi), tol=1e-14).x
    np.testing.assert_allclose(x, ref, atol=1e-7)
    assert seen == list(range(1, info.cg_iterations + 1))
    with pytest.raises(ValueError, match="lower bound above"):
        projected_cg(lambda v: v, np.ones(2), np.zeros(2), 1.0, 0.0)


@pytest.mark.parametrize("beta0", [1e-6, 1.0, 1e6])
def test_beta_search_hits_the_target(beta0):
    # phi_d(beta) = c * beta^0.7 / (1 + beta^0.7): increasing, saturating
    def phi(beta):
        return 1000 * beta**0.7 / (1 + beta**0.7)

    res = beta_search(phi, 300.0, beta0, rtol=0.01)
    assert res.converged and abs(res.phi_d - 300) <= 3
    assert res.phi_d == phi(res.beta) and len(res.history) <= 15


def test_beta_search_prior_slope_takes_the_newton_step():
    # phi_d = 100 beta^0.5 exactly: with the true slope the second trial lands on the target
    def phi(beta):
        return 100 * beta**0.5

    res = beta_search(phi, 300.0, 1.0, rtol=1e-6, slope=0.5)
    assert res.converged and len(res.history) == 2
    assert res.beta == pytest.approx(9.0)
    without = beta_search(phi, 300.0, 1.0, rtol=1e-6)
    assert len(without.history) > 2  # a bracketing step of 10 first
    wrong = beta_search(phi, 300.0, 1.0, rtol=0.01, slope=5.0)  # a poor prior still converges
    assert wrong.converged
    with pytest.raises(ValueError, match="slope"):
        beta_search(phi, 300.0, 1.0, slope=0.0)


def test_beta_search_reports_failure_when_target_unreachable():
    res = beta_search(lambda b: 10 + 0 * b, 5.0, 1.0, max_iter=5)
    assert not res.converged and len(res.history) == 5


def test_lcurve_corner_of_a_right_angle():
    x = np.array([1e3, 1e2, 1e1, 1.0, 1.0 * 0.9, 0.8, 0.7])
    y = np.array([1.0, 1.1, 1.2, 1.3, 1e1, 1e2, 1e3])
    assert lcurve_corner(x, y) == 3
    with pytest.raises(ValueError, match="three"):
        lcurve_corner([1, 2], [1, 2])
