"""The β search on misfits whose answer is known (written from the survivors of the sampled
mutation run, docs/testing.md)."""

import itertools

import pytest

from msinv.core.solvers import beta_search


@pytest.mark.parametrize(("start", "slope"), [(0.2, 1.0), (0.2, 0.6), (5.0, 1.0), (5.0, 1.7)])
def test_power_law_misfit_is_solved_by_the_first_bracketing_secant(start, slope):
    """phi(beta) = target (beta / beta*)^s is a line in (log beta, log phi): once the target is
    bracketed (second trial, a factor 10 away), the secant lands on beta* exactly, so the
    search converges at its third evaluation, from either side."""
    target, best = 50.0, 3.7

    def phi(beta):
        return target * (beta / best) ** slope

    res = beta_search(phi, target, start * best, rtol=1e-6, factor=10.0)
    assert res.converged
    assert len(res.history) == 3
    assert res.beta == pytest.approx(best, rel=1e-9)


def test_unbracketed_secant_steps_are_clamped_to_factor_squared():
    """Before the target is bracketed, a secant that predicts a huge step is clamped to
    factor**2 in beta (documented): an almost flat misfit below the target moves beta by
    exactly factor**2 at its third trial, never more."""
    target, factor = 10.0, 10.0

    def phi(beta):
        return 0.5 * target * beta**0.01  # below the target for every beta tried here

    res = beta_search(phi, target, 1.0, factor=factor, max_iter=4)
    betas = [b for b, _ in res.history]
    assert not res.converged
    ratios = [b1 / b0 for b0, b1 in itertools.pairwise(betas)]
    assert ratios[0] == pytest.approx(factor, rel=1e-12)
    assert ratios[1] == pytest.approx(factor**2, rel=1e-12)
    assert max(ratios) <= factor**2 * (1 + 1e-12)
