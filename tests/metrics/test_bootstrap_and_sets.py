"""bootstrap_ci (the one interval of the evaluation, paper-row and benchmark reports) and
sinkhorn_or_nan (a non-converged Sinkhorn value is NaN with a warning, never silent)."""

import numpy as np
import pytest

from msinv.core.errors import UserInputError
from msinv.metrics import bootstrap_ci, sinkhorn_divergence, sinkhorn_or_nan


def test_bootstrap_ci_is_the_percentile_interval_of_resampled_means():
    values = np.random.default_rng(3).exponential(size=50)
    lo, hi = bootstrap_ci(values, reps=4000, seed=7)
    rng = np.random.default_rng(7)  # written out
    means = values[rng.integers(0, 50, size=(4000, 50))].mean(axis=1)
    assert [lo, hi] == [np.percentile(means, 2.5), np.percentile(means, 97.5)]
    assert lo < values.mean() < hi
    # the interval shrinks like 1/sqrt(m): 4x the data, about half the width
    big = np.random.default_rng(4).exponential(size=200)
    lo2, hi2 = bootstrap_ci(big, reps=4000, seed=7)
    assert 0.35 < (hi2 - lo2) / (hi - lo) < 0.7
    assert bootstrap_ci(np.full(9, 2.5)) == [2.5, 2.5]
    lo99, hi99 = bootstrap_ci(values, reps=4000, seed=7, level=0.99)
    assert lo99 < lo and hi < hi99


@pytest.mark.parametrize("kw", [{"values": []}, {"reps": 0}, {"level": 1.0}, {"level": 0.0}])
def test_bootstrap_ci_refuses_bad_input(kw):
    args = {"values": [1.0, 2.0], **kw}
    with pytest.raises(UserInputError, match="bootstrap_ci"):
        bootstrap_ci(**args)


def test_sinkhorn_or_nan_flattens_and_warns_when_not_converged():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3, 3)), rng.normal(1.0, 1.0, size=(5, 3, 3))
    assert sinkhorn_or_nan(sinkhorn_divergence, x, y) == pytest.approx(
        sinkhorn_divergence(x.reshape(6, -1), y.reshape(5, -1))
    )

    def diverges(a, b):
        raise RuntimeError("Sinkhorn: not converged in 3 iterations")

    with pytest.warns(RuntimeWarning, match="not converged in 3 iterations"):
        assert np.isnan(sinkhorn_or_nan(diverges, x, y))


def test_bootstrap_ci_of_one_resample_is_that_resample_mean():
    """reps = 1 is allowed (the documented bound is reps >= 1): both ends are the one mean."""
    values = np.arange(5.0)
    rng = np.random.default_rng(7)
    mean = values[rng.integers(0, 5, size=(1, 5))].mean()
    assert bootstrap_ci(values, reps=1, seed=7) == [mean, mean]


def test_paper_and_reference_sinkhorn_quantities_have_the_same_settings_as_ours():
    """sinkhorn_divergence_paper is twice sinkhorn_divergence at the same eps, iteration cap
    and tolerance: its defaults are ours, so the two columns of a table are comparable."""
    import inspect

    from msinv.metrics.sinkhorn import sinkhorn_cost_reference, sinkhorn_divergence_paper

    ours = inspect.signature(sinkhorn_divergence).parameters
    paper = inspect.signature(sinkhorn_divergence_paper).parameters
    assert {k: p.default for k, p in paper.items()} == {k: ours[k].default for k in paper}
    # and the reference code's "SD" stops by the same rule
    reference = inspect.signature(sinkhorn_cost_reference).parameters
    for k in ("max_iter", "tol"):
        assert reference[k].default == ours[k].default
    x, y = np.random.default_rng(0).normal(size=(2, 6, 4))
    assert sinkhorn_divergence_paper(x, y) == pytest.approx(2 * sinkhorn_divergence(x, y))


def test_sample_sets_are_checked_before_any_transport():
    """Sets are (m, ...) arrays of samples of one size: a single vector, sets of different
    sample sizes, and (for the reference cost) sets of one repeated point are refused."""
    from msinv.metrics.sinkhorn import sinkhorn_cost_reference

    x = np.random.default_rng(0).normal(size=(4, 3, 3))
    with pytest.raises(UserInputError, match=r"x: expected a set of samples \(m, \.\.\.\)"):
        sinkhorn_divergence(x[0, 0], x)
    with pytest.raises(UserInputError, match="sample sizes differ, 9 vs 4"):
        sinkhorn_cost_reference(x, x[:, :2, :2])
    with pytest.raises(UserInputError, match="all points coincide"):
        sinkhorn_cost_reference(np.ones((3, 4)), np.ones((2, 4)))


def test_rapsd_needs_images():
    from msinv.metrics.spectral import rapsd

    with pytest.raises(UserInputError, match=r"rapsd: expected images \(\.\.\., m, n\)"):
        rapsd(np.ones(8))
