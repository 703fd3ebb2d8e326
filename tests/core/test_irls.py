"""Weighted terms, Lawson weights and the IRLS driver: sparse recovery, monotone descent."""

import numpy as np
import pytest

from msinv.core.operator import Diagonal
from msinv.core.regularisation import LpNorm, Regulariser, WeightedTerm
from msinv.core.solvers import irls, lcurve_corner


def test_weighted_term_factors_multiply_and_can_be_removed(rng):
    term = WeightedTerm(Diagonal(np.arange(1.0, 5.0)), rhs=np.ones(4))
    x = rng.standard_normal(4)
    r = np.arange(1.0, 5.0) * x - 1
    assert term.value(x) == pytest.approx(np.sum(r**2))
    u, v = rng.uniform(0, 2, 4), rng.uniform(0, 2, 4)
    term.set_weights("user", u)
    term.set_weights("irls", v)
    assert term.value(x) == pytest.approx(np.sum(u * v * r**2))
    np.testing.assert_allclose(term.normal(x), np.arange(1.0, 5.0) ** 2 * u * v * x)
    term.set_weights("irls", None)
    assert term.value(x) == pytest.approx(np.sum(u * r**2))
    with pytest.raises(ValueError, match=">= 0"):
        term.set_weights("user", -u)


def test_lawson_weights_majorise_the_lp_norm(rng):
    # sum w r^2 touches and majorises (2/p) rho at the current point: descent for fixed eps
    norm = LpNorm(0.5, 1e-2)
    r0, r1 = rng.standard_normal(50), rng.standard_normal(50)
    w = norm.weights(r0)
    surrogate = norm(r0) + 0.25 * np.sum(w * (r1**2 - r0**2))  # p/2 * sum w (r1^2 - r0^2)
    assert norm(r1) <= surrogate + 1e-12
    np.testing.assert_allclose(LpNorm(2.0, 0.1).weights(r0), 1.0)
    with pytest.raises(ValueError, match="\\[0, 2\\]"):
        LpNorm(3.0)


def test_irls_recovers_a_sparse_vector_that_least_squares_smears(rng):
    n, m = 60, 25
    a = rng.standard_normal((m, n))
    x_true = np.zeros(n)
    x_true[[5, 30, 47]] = [1.0, -2.0, 1.5]
    d = a @ x_true
    lam = 1e-3
    w = {"u": np.ones(n)}

    def solve(_x):
        return np.linalg.solve(a.T @ a + lam * np.diag(w["u"]), a.T @ d)

    def reweight(x, k):
        w["u"] = LpNorm(1.0, max(1e-1 / 2**k, 1e-4)).weights(x)

    x_l2 = solve(None)
    res = irls(solve, reweight, x_l2, max_iter=40, tol=1e-8)
    assert np.linalg.norm(res.x - x_true) < 1e-2 * np.linalg.norm(x_true)
    assert np.linalg.norm(x_l2 - x_true) > 0.3 * np.linalg.norm(x_true)
    assert res.iterations == len(res.changes) and res.converged
    with pytest.raises(ValueError, match="max_iter"):
        irls(solve, reweight, x_l2, max_iter=0)


def test_lp_regulariser_gradient_and_parse(rng):
    reg = Regulariser.parse("lp:0.3:0.8")
    assert reg == Regulariser("lp", 0.3, p=0.8)
    assert Regulariser.parse("lp:0.3").p == 1.0
    x, dx = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    f0, g0 = reg(x)
    rem = [abs(reg(x + h * dx)[0] - f0 - h * np.sum(g0 * dx)) for h in (1e-2, 5e-3, 2.5e-3)]
    np.testing.assert_allclose(np.array(rem[:-1]) / rem[1:], 4.0, rtol=0.05)
    for bad in ("lp:1:3", "lp:1:x", "lp"):
        with pytest.raises(ValueError, match="KIND:WEIGHT"):
            Regulariser.parse(bad)


def test_one_lcurve_rule_is_affine_invariant():
    t = np.linspace(0, 1, 9)
    phi_d = np.exp(np.where(t < 0.5, 4 * (0.5 - t), 0.1 * (0.5 - t)))
    phi_m = np.exp(np.where(t < 0.5, 0.1 * t, 4 * (t - 0.5)))
    k = lcurve_corner(phi_d, phi_m)
    assert k == 4
    assert lcurve_corner(np.sqrt(phi_d), phi_m**3) == k  # residual norm vs phi_d: same corner


def test_irls_stops_when_the_change_falls_to_tol_exactly():
    """tol is reached when the relative change falls *to or below* it: a first solve from
    (0.5, 0) to (1, 0) changes the model by exactly 0.5 relative, so tol = 0.5 stops there."""
    result = irls(lambda x: np.array([1.0, 0.0]), lambda x, k: None, np.array([0.5, 0.0]),
                  max_iter=5, tol=0.5)  # fmt: skip
    assert result.changes == [0.5]
    assert result.converged and result.iterations == 1
