"""Sinkhorn divergence (debiased) against POT, and the paper's reference variant by hand."""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
from scipy.special import logsumexp

from msinv.metrics import sinkhorn_cost_reference, sinkhorn_divergence


def test_debiased_divergence_matches_pot(rng):
    x = rng.standard_normal((12, 3, 3))
    y = rng.standard_normal((9, 3, 3)) + 0.5
    xs, ys = x.reshape(12, -1), y.reshape(9, -1)
    eps = 0.5 * ot.dist(xs, ys).mean()  # large enough for POT's plain Sinkhorn to converge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # POT's own convergence chatter
        ref = ot.bregman.empirical_sinkhorn_divergence(xs, ys, eps, stopThr=1e-12)
    assert sinkhorn_divergence(x, y, eps=eps, tol=1e-10) == pytest.approx(float(ref), rel=1e-6)
    assert sinkhorn_divergence(x, y, eps=2 * eps) != pytest.approx(float(ref), rel=1e-3)


def test_default_tolerance_converges_on_nearly_diagonal_plans(rng):
    """Reconstructions against their own truths: the plan is nearly diagonal and the potentials
    converge very slowly; the marginal criterion stops early and the value still matches POT."""
    y = (rng.random((20, 16, 16)) < 0.2).astype(float)
    x = y + 0.05 * rng.standard_normal(y.shape)
    xs, ys = x.reshape(20, -1), y.reshape(20, -1)
    eps = 0.05 * ot.dist(xs, ys).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = ot.bregman.empirical_sinkhorn_divergence(
            xs, ys, eps, numIterMax=100_000, stopThr=1e-12
        )
    assert sinkhorn_divergence(x, y) == pytest.approx(float(ref), rel=1e-5)


def test_default_eps_is_five_percent_of_the_mean_squared_distance(rng):
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((5, 4)) + 1.0
    eps = 0.05 * ot.dist(x, y).mean()
    assert sinkhorn_divergence(x, y) == pytest.approx(sinkhorn_divergence(x, y, eps=eps), rel=1e-12)


def test_divergence_vanishes_on_identical_sets_and_grows_with_a_shift(rng):
    x = rng.standard_normal((10, 4))
    assert sinkhorn_divergence(x, x) == pytest.approx(0.0, abs=1e-9)
    assert sinkhorn_divergence(x, x + 1.0) < sinkhorn_divergence(x, x + 2.0)
    assert sinkhorn_divergence.lower_is_better


def _dual_cost(x, y, eps, iters=5000):
    """Independent log-domain Sinkhorn: the dual objective <f, a> + <g, b> at convergence."""
    c = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    la, lb = np.full(len(x), -np.log(len(x))), np.full(len(y), -np.log(len(y)))
    f, g = np.zeros(len(x)), np.zeros(len(y))
    for _ in range(iters):
        f = -eps * logsumexp((g[None, :] - c) / eps + lb[None, :], axis=1)
        g = -eps * logsumexp((f[:, None] - c) / eps + la[:, None], axis=0)
    return f.mean() + g.mean()


def test_reference_variant_is_the_entropic_cost_with_euclidean_distance(rng):
    x = rng.standard_normal((8, 5))
    y = rng.standard_normal((6, 5)) + 0.3
    eps = 0.05 * np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1)).mean()
    assert sinkhorn_cost_reference(x, y, tol=1e-10) == pytest.approx(
        _dual_cost(x, y, eps), rel=1e-6
    )
    # not debiased: positive on identical sets
    assert sinkhorn_cost_reference(x, x) > 0.01


def test_sample_size_mismatch_is_a_clear_error(rng):
    with pytest.raises(ValueError, match="sample sizes differ"):
        sinkhorn_divergence(rng.standard_normal((4, 3)), rng.standard_normal((4, 5)))


def test_paper_formula_is_two_w_xy_minus_w_xx_minus_w_yy_from_pot_plans(rng):
    """Appendix E: 2 W(mu, nu) - W(mu, mu) - W(nu, nu), W = <P_eps, C> with POT's plans."""
    from msinv.metrics import sinkhorn_divergence_paper

    x, y = rng.standard_normal((10, 5)), rng.standard_normal((8, 5)) + 0.7
    eps = 0.5 * ot.dist(x, y).mean()

    def w(p, q):
        a, b = np.full(len(p), 1 / len(p)), np.full(len(q), 1 / len(q))
        cost = ot.dist(p, q)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            plan = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log", stopThr=1e-13)
        return float(np.sum(plan * cost))

    expected = 2 * w(x, y) - w(x, x) - w(y, y)
    assert sinkhorn_divergence_paper(x, y, eps=eps, tol=1e-11) == pytest.approx(expected, rel=1e-6)
    assert sinkhorn_divergence_paper(x, y, eps=eps) == pytest.approx(
        2 * sinkhorn_divergence(x, y, eps=eps), rel=1e-12
    )


def test_reference_variant_is_finite_where_the_plan_underflows_to_zero():
    """Two sets with one far point each (100 away from 99 close ones): eps = 0.05 x the mean
    cost is ~1/500 of the far costs, so those entries of the plan underflow to exactly 0;
    their KL terms are 0 (0 log 0 = 0), and the value is still the dual objective."""
    from msinv.metrics.sinkhorn import _entropic

    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 4)) * 0.01
    y = rng.standard_normal((100, 4)) * 0.01
    x[0] += 100.0
    y[0] += 100.0
    eps = 0.05 * np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1)).mean()
    plan = _entropic(x, y, "euclidean", eps, 10_000, 1e-10)[0]
    assert (plan == 0).sum() > 0  # the premise
    value = sinkhorn_cost_reference(x, y, tol=1e-10)
    assert np.isfinite(value)
    assert value == pytest.approx(_dual_cost(x, y, eps, iters=300), rel=1e-6)


def test_epsilon_scaling_halves_from_the_largest_cost_in_stages_of_ten_updates(monkeypatch):
    """Two points 1 apart (largest squared cost 1) and eps = 1/8: the schedule is 1, 1/2, 1/4
    (three stages of ten averaged updates, two log-sum-exps each), then the updates at eps,
    of which one suffices with an infinite tolerance: 62 log-sum-exps, a finite count (a
    schedule that never reaches eps would loop for ever; counted, not timed)."""
    import scipy.special

    from msinv.metrics.sinkhorn import _entropic

    calls = []
    real = scipy.special.logsumexp

    def counted(*args, **kwargs):
        calls.append(kwargs.get("axis"))
        if len(calls) > 1000:
            raise AssertionError("the epsilon-scaling schedule does not end")
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.special, "logsumexp", counted)
    pts = np.array([[0.0], [1.0]])
    _entropic(pts, pts, "sqeuclidean", 0.125, 10, np.inf)
    assert len(calls) == 2 * (3 * 10 + 1)
