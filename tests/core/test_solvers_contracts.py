"""The β search and the bounded minimiser on problems whose answer is known (written from the
survivors of the sampled mutation run, docs/testing.md)."""

import itertools

import numpy as np
import pytest

from msinv.core.errors import UserInputError
from msinv.core.solvers import beta_search, lcurve_corner, projected_cg


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


@pytest.mark.parametrize("side", [1.0, -1.0], ids=["below", "above"])
def test_unbracketed_secant_steps_are_clamped_to_factor_squared(side):
    """Before the target is bracketed, a secant that predicts a huge step is clamped to
    factor**2 in beta (documented), up and down: an almost flat misfit below (above) the target
    moves beta by exactly factor (1 / factor), then factor**2 (1 / factor**2), never more."""
    target, factor = 10.0, 10.0

    def phi(beta):
        return (0.5 if side > 0 else 2.0) * target * beta**0.01  # one side for every beta

    res = beta_search(phi, target, 1.0, factor=factor, max_iter=4)
    betas = [b for b, _ in res.history]
    assert not res.converged
    steps = [np.log(b1 / b0) / np.log(factor) * side for b0, b1 in itertools.pairwise(betas)]
    assert steps[0] == pytest.approx(1.0, rel=1e-12)
    assert steps[1] == pytest.approx(2.0, rel=1e-12)
    assert max(steps) <= 2.0 * (1 + 1e-12)


def test_default_tolerance_is_two_percent():
    """``rtol`` defaults to 0.02 (GRAV3D's tolc): a first trial 3% above the target is not
    accepted, the search goes on until the misfit is within 2% of it."""
    target = 50.0

    def phi(beta):
        return 1.03 * target * beta  # beta0 = 1 gives 1.03 target

    res = beta_search(phi, target, 1.0)
    assert len(res.history) > 1
    assert res.converged and abs(res.phi_d - target) <= 0.02 * target


def test_search_is_symmetric_under_mirroring_the_misfit():
    """The Illinois rule halves whichever end is kept twice, the same for both ends: the
    search on psi(beta) = target^2 / phi(1 / beta) (below and above the target swapped) visits
    exactly 1 / beta_k of the search on phi. phi is curved in (log beta, log phi), so regula
    falsi keeps one end several times in a row and the halving takes part."""
    target, best = 50.0, 3.7

    def phi(beta):
        return target * np.exp(np.expm1(np.log(beta / best)))

    def psi(beta):
        return target**2 / phi(1.0 / beta)

    for start in (0.05, 0.2, 30.0):
        res = beta_search(phi, target, start * best, rtol=1e-6)
        mirror = beta_search(psi, target, 1.0 / (start * best), rtol=1e-6)
        assert res.converged and mirror.converged
        np.testing.assert_allclose(
            [np.log(b) for b, _ in res.history],
            [-np.log(b) for b, _ in mirror.history],
            rtol=0,
            atol=1e-9,
        )


def test_bounded_minimiser_is_scale_equivariant():
    """min 1/2 x'Ax - s b'x over x >= 0 is solved by s x*(b), with the same active set and
    the same iterations, whatever the scale s: the freeze rule 'at the bound with an outward
    gradient' is about the gradient's sign, not its size (gradients of 1e-3 here)."""
    rng = np.random.default_rng(3)
    n = 12
    m = rng.standard_normal((n, n))
    a = m @ m.T + n * np.eye(n)
    b = n * rng.standard_normal(n)
    runs = [
        projected_cg(lambda v: a @ v, s * b, np.zeros(n), 0.0, np.inf, tol=1e-10)
        for s in (1e3, 1e-3)
    ]
    (x_big, info_big), (x_small, info_small) = runs
    assert info_big.converged and info_small.converged
    assert 0 < info_big.n_lower < n
    assert (info_small.outer, info_small.n_lower) == (info_big.outer, info_big.n_lower)
    np.testing.assert_allclose(x_small / 1e-3, x_big / 1e3, rtol=1e-9, atol=1e-12)
    g = a @ x_small - 1e-3 * b  # KKT: zero gradient on the free cells, >= 0 at the bound
    assert np.all(g[x_small == 0] > 0)
    np.testing.assert_allclose(g[x_small > 0], 0, atol=1e-9 * np.linalg.norm(1e-3 * b))


@pytest.mark.parametrize("target", [1e-4, 50.0, 1e4])
def test_tolerance_is_relative_to_the_target(target):
    """|phi - target| <= rtol target, whatever the target's size: a first trial 0.9 rtol off
    is accepted at once, one 1.1 rtol off is not."""
    for off, accepted in [(0.9, True), (1.1, False)]:
        res = beta_search(lambda b, off=off: target * (1 + off * 0.05) * b, target, 1.0, rtol=0.05)
        assert (len(res.history) == 1) is accepted, (target, off)


def test_without_active_bounds_projected_cg_is_one_cg_solve():
    """No bound active: one active-set iteration (a CG solve to the tolerance and a full step)
    reaches the minimiser; started on the minimiser, no iteration at all."""
    rng = np.random.default_rng(8)
    m = rng.standard_normal((10, 10))
    a = m @ m.T + 10 * np.eye(10)
    b = rng.standard_normal(10)
    x, info = projected_cg(lambda v: a @ v, b, np.zeros(10), tol=1e-8)
    assert (info.outer, info.converged, info.n_lower, info.n_upper) == (1, True, 0, 0)
    assert 0 < info.cg_iterations <= 10
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-6)
    _, info = projected_cg(lambda v: a @ v, a @ x, x, tol=1e-8)
    assert (info.outer, info.cg_iterations, info.converged) == (0, 0, True)


def test_unconverged_search_returns_its_last_trial():
    """'The last beta evaluated is the one returned': also when the search gives up."""
    res = beta_search(lambda b: 0.5 * b**0.01, 10.0, 1.0, max_iter=3)
    assert not res.converged
    assert (res.beta, res.phi_d) == res.history[-1]


def _l_curve(n=9):
    """(phi_d, phi_m) of Tikhonov on a diagonal problem at n betas: an L-curve."""
    s = np.logspace(0, -4, 12)
    betas = np.logspace(-6, 0, n)
    filt = s**2 / (s[None] ** 2 + betas[:, None])
    phi_d = np.sum(((1 - filt) * 1.0) ** 2, axis=1)
    phi_m = np.sum((filt / s) ** 2, axis=1)
    return phi_d, phi_m


def test_lcurve_corner_of_single_precision_values_with_zero_ends():
    """φ_m = 0 (the reference model itself, at the largest β) and φ_d = 0 (an exact fit, at the
    smallest) are floored at 1e-300 in double precision whatever the input's dtype: float32
    values give the float64 corner, an interior point (a float32 floor underflows to 0, log 0 =
    -inf, and every distance to the chord is NaN)."""
    phi_d, phi_m = _l_curve()
    phi_d, phi_m = phi_d.copy(), phi_m.copy()
    phi_d[0], phi_m[-1] = 0.0, 0.0
    k = lcurve_corner(phi_d, phi_m)
    assert 0 < k < phi_d.size - 1
    assert lcurve_corner(phi_d.astype(np.float32), phi_m) == k
    assert lcurve_corner(phi_d, phi_m.astype(np.float32)) == k


def test_lcurve_corner_is_the_same_point_read_either_way():
    """The chord joins the curve's two ends, so listing the points in reverse order picks the
    same point, an end point is never chosen, and three points (the fewest) give the middle."""
    phi_d, phi_m = _l_curve()
    k = lcurve_corner(phi_d, phi_m)
    assert 0 < k < phi_d.size - 1
    assert lcurve_corner(phi_d[::-1], phi_m[::-1]) == phi_d.size - 1 - k
    for cut in range(3, phi_d.size):
        for d, m in [(phi_d[:cut], phi_m[:cut]), (phi_d[-cut:], phi_m[-cut:])]:
            assert 0 < lcurve_corner(d, m) < cut - 1
    assert lcurve_corner([1.0, 0.1, 0.01], [0.01, 0.1, 10.0]) == 1
    with pytest.raises(UserInputError, match="at least three"):
        lcurve_corner([1.0, 0.1], [0.1, 1.0])


def test_bounded_minimiser_is_symmetric_under_negation():
    """y = -x solves min 1/2 y'Ay + b'y over -hi <= y <= -lo: the lower and upper bounds play
    mirrored roles, also for a cell that starts on a bound with a zero gradient (free on
    either side), so both runs take the same steps and counts."""
    rng = np.random.default_rng(11)
    n = 10
    m = rng.standard_normal((n, n))
    a = m @ m.T + n * np.eye(n)
    lo, hi = np.full(n, -0.5), np.full(n, 0.4)
    x0 = rng.uniform(-0.5, 0.4, n)
    x0[2], x0[6] = lo[2], hi[6]
    b = 3 * rng.standard_normal(n)
    ax0 = a @ x0
    b[2], b[6] = ax0[2], ax0[6]  # zero gradient at x0 on the two cells at a bound
    x, info = projected_cg(lambda v: a @ v, b, x0, lo, hi, tol=1e-6)
    y, mirror = projected_cg(lambda v: a @ v, -b, -x0, -hi, -lo, tol=1e-6)
    np.testing.assert_allclose(y, -x, rtol=0, atol=1e-14)
    assert (mirror.outer, mirror.cg_iterations) == (info.outer, info.cg_iterations)
    assert (mirror.n_lower, mirror.n_upper) == (info.n_upper, info.n_lower)
    assert info.n_lower + info.n_upper > 0


@pytest.mark.parametrize(
    ("target", "beta0", "factor"),
    [
        (0.0, 1.0, 10.0),
        (1.0, -1.0, 10.0),
        (1.0, 0.0, 10.0),
        (1.0, 1.0, 1.0),
        (float("nan"), 1.0, 10.0),
    ],
)
def test_beta_search_refuses_each_bad_setting_alone(target, beta0, factor):
    """A non-positive target, a non-positive first β or a factor <= 1 is refused by itself
    (one bad value among good ones), before any misfit is evaluated."""

    def phi(beta):
        raise AssertionError("misfit evaluated")

    with pytest.raises(UserInputError, match="factor > 1"):
        beta_search(phi, target, beta0, factor=factor)


@pytest.mark.parametrize("side", ["above", "below"])
def test_a_misfit_that_does_not_grow_with_beta_gets_a_bracketing_step_towards_the_target(side):
    """phi_d must grow with beta; where two trials on one side of the target measure a slope
    <= 0 (noise, a non-monotone misfit) the secant has no meaning and the third trial is the
    bracketing step of ``factor`` towards the target: down while above it, up while below it
    (never a step away from the target)."""
    target, factor = 10.0, 10.0
    level = 10.0 if side == "above" else 0.5

    def phi(beta):
        return level * target * beta**-0.5  # decreasing: both first trials on one side

    res = beta_search(phi, target, 1.0, factor=factor, max_iter=3)
    betas = [b for b, _ in res.history]
    direction = -1 if side == "above" else 1
    assert betas[1] == pytest.approx(factor**direction, rel=1e-12)
    assert betas[2] == pytest.approx(betas[1] * factor**direction, rel=1e-12)


def test_irls_stops_when_the_callback_says_so():
    """irls calls callback(k, x, change) after every solve and stops at once when it returns
    True: the iteration count is the first k + 1 at which it did, with tol=None."""
    from msinv.core.solvers import irls

    seen = []

    def callback(k, x, change):
        seen.append(k)
        return k == 2

    res = irls(lambda x: 0.5 * x, lambda x, k: None, np.ones(3), max_iter=10, callback=callback)
    assert seen == [0, 1, 2] and res.iterations == 3
    np.testing.assert_allclose(res.x, 0.125 * np.ones(3))


def test_projected_cg_stops_at_its_iteration_limits_unconverged():
    """max_cg bounds the CG iterations of each active-set iteration and max_outer the
    active-set iterations: on a system CG cannot solve in 3 steps, 2 outer iterations of 3
    give exactly 6 CG iterations, converged False, and a point inside the box whose objective
    fell."""
    diag = np.logspace(0, 4, 40)
    b = np.ones(40)

    def objective(x):
        return 0.5 * float(x @ (diag * x)) - float(b @ x)

    x, info = projected_cg(
        lambda v: diag * v, b, np.zeros(40), 0.0, 0.5, tol=1e-12, max_cg=3, max_outer=2
    )
    assert (info.outer, info.cg_iterations, info.converged) == (2, 6, False)
    assert np.all((x >= 0.0) & (x <= 0.5)) and objective(x) < objective(np.zeros(40))


def test_irls_that_never_settles_runs_max_iter_and_is_not_converged():
    """Without the model change falling to tol, irls runs max_iter re-weighted solves and
    reports converged False, returning the last solve's model."""
    from msinv.core.solvers import irls

    res = irls(lambda x: 0.5 * x, lambda x, k: None, np.ones(3), max_iter=4, tol=1e-3)
    assert (res.iterations, res.converged) == (4, False)
    assert res.changes == pytest.approx([1.0] * 4)
    np.testing.assert_allclose(res.x, 0.5**4 * np.ones(3))


def test_projected_cg_starts_from_its_start_projected_onto_the_box():
    """x0 outside [lower, upper] is projected first: one truncated iteration (1 CG step)
    from x0 gives what it gives from clip(x0), a point inside the box."""
    rng = np.random.default_rng(11)
    m = rng.standard_normal((8, 8))
    a, b = m @ m.T + 8 * np.eye(8), rng.standard_normal(8)
    lo, hi = -0.2 * np.ones(8), 0.3 * np.ones(8)
    x0 = np.array([2.0, -3.0, 0.1, 0.5, -0.5, 0.0, 0.25, -0.1])
    runs = [
        projected_cg(lambda v: a @ v, b, start, lo, hi, max_cg=1, max_outer=1)[0]
        for start in (x0, np.clip(x0, lo, hi))
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.all((runs[0] >= lo) & (runs[0] <= hi))


def test_equal_bounds_fix_a_cell_and_crossed_bounds_are_refused():
    """lower <= upper per cell (documented): a cell whose bounds are equal is fixed at that
    value and counted at both bounds; a lower bound above its upper bound, by any amount, is
    refused in one line."""
    a = np.diag([1.0, 2.0, 3.0])
    b = np.array([1.0, 1.0, 1.0])
    lo, hi = np.array([-1.0, 0.7, -1.0]), np.array([1.0, 0.7, 1.0])
    x, info = projected_cg(lambda v: a @ v, b, np.zeros(3), lo, hi, tol=1e-12)
    np.testing.assert_allclose(x, [1.0, 0.7, 1 / 3], rtol=1e-10)
    assert (info.n_lower, info.n_upper) == (1, 2)  # cell 1 at both bounds, cell 0 at 1.0
    with pytest.raises(UserInputError, match="lower bound above upper bound"):
        projected_cg(lambda v: a @ v, b, np.zeros(3), lo, hi - np.array([0, 1e-12, 0]))


def test_the_projected_line_search_demands_sufficient_decrease():
    """Armijo: a step is taken only if f(x_new) <= f(x) + 1e-4 gᵀ(x_new − x) (a strict decrease
    along a descent direction). Built case: strongly coupled A, the Newton step d = (20, −20)
    and an upper bound on x₀ placed (by root finding) where the full projected step
    (h, −20) leaves f exactly unchanged: that step must be refused and halved."""
    from scipy.optimize import brentq

    a = np.array([[1.0, 0.95], [0.95, 1.0]])
    b = np.array([1.0, -1.0])
    d = np.linalg.solve(a, b)

    def f(x):
        return 0.5 * x @ a @ x - b @ x

    h = brentq(lambda h: f(np.array([h, d[1]])), 1e-6, d[0])
    x, info = projected_cg(
        lambda v: a @ v, b, np.zeros(2), upper=np.array([h, np.inf]), max_outer=1, max_cg=10
    )
    assert info.outer == 1
    assert f(x) <= f(np.zeros(2)) + 1e-4 * (-b) @ x  # the Armijo condition of the step taken
    np.testing.assert_allclose(x, d / 2)  # t = 1/2 (inside the box)


def test_irls_runs_at_least_one_reweighted_solve():
    """max_iter >= 1: one re-weighted solve (reweight at x0, then solve) is a valid request;
    0 is refused in one line before anything is re-weighted."""
    from msinv.core.solvers import irls

    seen = []
    res = irls(lambda x: x / 2, lambda x, k: seen.append(k), np.ones(3), max_iter=1)
    assert (res.iterations, seen, res.converged) == (1, [0], False)
    np.testing.assert_array_equal(res.x, 0.5 * np.ones(3))
    assert res.changes == [pytest.approx(1.0)]  # |x1 - x0| / |x1| = 0.5 / 0.5
    with pytest.raises(UserInputError, match="irls needs max_iter >= 1, got 0"):
        irls(lambda x: x, lambda x, k: seen.append("reweighted"), np.ones(3), max_iter=0)
    assert seen == [0]


def test_a_misfit_exactly_at_the_tolerance_is_accepted_and_rtol_is_not_negative():
    """|phi - target| <= rtol target (documented, the end included): a first trial exactly
    rtol target away (exact in binary: target 4, rtol 1/4, phi 5 or 3) ends the search; with
    rtol = 0 only the target itself does; a negative rtol (no misfit could ever satisfy it)
    is refused in one line."""
    for phi in (5.0, 3.0):
        res = beta_search(lambda b, phi=phi: phi * b, 4.0, 1.0, rtol=0.25)
        assert (res.converged, len(res.history), res.phi_d) == (True, 1, phi)
    res = beta_search(lambda b: 4.0 * b, 4.0, 1.0, rtol=0.0)
    assert (res.converged, res.beta) == (True, 1.0)
    with pytest.raises(UserInputError, match=r"rtol must be >= 0, got -0\.01"):
        beta_search(lambda b: b, 4.0, 1.0, rtol=-0.01)


def test_a_relative_tolerance_of_one_returns_the_projected_start():
    """tol is met when the projected gradient falls to or below tol times its starting value
    (documented): with tol = 1 the (projected) start itself meets it, so no iteration runs."""
    a, b = np.diag([1.0, 2.0]), np.array([1.0, 1.0])
    x, info = projected_cg(lambda v: a @ v, b, np.array([5.0, 0.1]), 0.0, 1.0, tol=1.0)
    np.testing.assert_array_equal(x, [1.0, 0.1])
    assert (info.outer, info.cg_iterations, info.converged) == (0, 0, True)


def test_a_line_search_that_never_decreases_enough_stops_at_its_floor():
    """The step halves from t = 1 while the Armijo test fails and stops at the first t below
    1e-8 (documented): 2**-27, not 2**-26. A = -I (not positive definite, so CG's step
    d = -1 raises f = -x.x/2 - b.x along the whole line) never passes the test."""
    x, info = projected_cg(lambda v: -v, np.ones(3), np.zeros(3), max_cg=1, max_outer=1)
    assert info.outer == 1
    np.testing.assert_array_equal(x, np.full(3, -(2.0**-27)))


@pytest.mark.parametrize("factor", [1.5, 2.0])
def test_any_bracketing_factor_above_one_is_accepted(factor):
    """factor > 1 (documented), so 1.5 and 2 (the factor of the gravity engine's re-weighted
    searches) are valid: the second trial of a first miss below the target is beta * factor."""
    res = beta_search(lambda b: 0.5 * b, 10.0, 1.0, factor=factor, max_iter=2)
    assert [b for b, _ in res.history] == [1.0, pytest.approx(factor, rel=1e-12)]


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_a_given_slope_predicts_the_first_step_clamped_to_factor_squared(direction):
    """With slope given, the second trial is log β0 - (log φ_d - log target) / slope, clamped
    to factor**2 either way: a target 10**6 times away (above or below the misfit) moves β by
    exactly factor**2 (up or down), a near one by the prediction itself."""
    factor, slope = 10.0, 1.0

    def phi(beta):
        return beta  # log φ_d = log β: the given slope is the true one

    target = 10.0 ** (6 * direction)
    res = beta_search(phi, target, 1.0, factor=factor, slope=slope, max_iter=2)
    assert res.history[1][0] == pytest.approx(factor ** (2 * direction), rel=1e-12)
    near = beta_search(phi, 3.0, 1.0, factor=factor, slope=slope, max_iter=2)
    assert near.history[1][0] == pytest.approx(3.0, rel=1e-12) and near.converged


def test_a_zero_misfit_counts_as_1e_300_in_the_search():
    """A trial with φ_d = 0 (an exact fit) enters the regula falsi at log 1e-300: the next β is
    the interpolation between (log β1, log 1e-300 - log t) and (log β2, log φ2 - log t)."""
    target = 1.0

    def phi(beta):
        return 0.0 if beta < 5.0 else 100.0

    res = beta_search(phi, target, 10.0, factor=10.0, max_iter=3)
    (b1, p1), (b2, p2) = res.history[:2]
    assert p1 == 100.0 and p2 == 0.0
    lo = (np.log(b2), np.log(1e-300) - np.log(target))
    hi = (np.log(b1), np.log(p1) - np.log(target))
    expected = np.exp(lo[0] - lo[1] * (hi[0] - lo[0]) / (hi[1] - lo[1]))
    assert res.history[2][0] == pytest.approx(expected, rel=1e-12)


def test_a_misfit_above_the_target_by_less_than_its_logarithm_resolves_is_above_it():
    """rtol = 0 accepts only the target itself. A misfit one ulp above the target has the same
    logarithm (log 1e10 = 23.03, whose ulp is 16 times that of a relative 2**-52), yet it is
    above the target: beta goes down (second trial beta0 / factor), and that end is the
    upper one, so a misfit that stays above the target at the second trial (not growing with
    beta) gets a further step down (third trial beta0 / factor**2), not a regula falsi back
    to beta0."""
    target = 1e10
    above = np.nextafter(target, np.inf)
    assert np.log(above) == np.log(target)  # the premise

    def phi(beta):
        return above if beta == 1.0 else 2.0 * target

    res = beta_search(phi, target, 1.0, rtol=0.0, factor=10.0, max_iter=3)
    betas = [b for b, _ in res.history]
    assert betas == [1.0, pytest.approx(0.1, rel=1e-12), pytest.approx(0.01, rel=1e-12)]


def test_a_step_whose_decrease_is_below_the_rounding_of_f_is_taken():
    """The Armijo test accepts equality (f_new <= f + 1e-4 gᵀ(x_new − x), documented): from a
    start 2**-30 off the minimiser b = 1000 of ½x² − bx, the decrease (2**-61) is below the
    rounding of f = −5e5, so f_new equals the right-hand side exactly. The full step t = 1 is
    still taken: one outer iteration lands exactly on b and converges (a refused step would
    halve t to 2**-27, leave x where it was and never converge)."""
    b = np.array([1e3])
    x0 = b + 2.0**-30
    g = x0 - b
    f0 = 0.5 * float(x0 @ x0) - float(b @ x0)
    f_b = 0.5 * float(b @ b) - float(b @ b)
    assert f_b == f0 + 1e-4 * float(g @ (b - x0)) == f0  # the premise: an equality
    x, info = projected_cg(lambda v: v, b, x0, max_outer=3)
    np.testing.assert_array_equal(x, b)
    assert (info.outer, info.converged) == (1, True)


def test_projected_cg_runs_at_most_two_hundred_cg_iterations_by_default():
    """max_cg defaults to 200 per active-set iteration: an ill-conditioned diagonal A with 400
    distinct eigenvalues and a tolerance it cannot reach stops after exactly 200 CG products
    in its one outer iteration, unconverged."""
    a = np.logspace(0, 8, 400)
    _x, info = projected_cg(lambda v: a * v, np.ones(400), np.zeros(400), tol=1e-15, max_outer=1)
    assert (info.outer, info.cg_iterations, info.converged) == (1, 200, False)


def test_a_zero_model_norm_counts_as_1e_300_on_the_l_curve():
    """log 0 is -inf, so a zero phi_m (the reference model at a huge beta) is floored at
    1e-300 before the logarithm. Built case: the last point has phi_m = 0, which sets the
    chord; interior points 1 and 2 are then 0.001 apart in distance to it (recomputed here
    from the cross product), point 2 the farther. Any other floor tilts the chord and (at
    2e-300 already) makes point 1 the farther."""
    phi_d = np.array([1.0, 10.0, 100.0, 1e3])
    phi_m = np.array([1.0, 1e-10, 1.1e-110, 0.0])

    def distances(floor):
        p = np.stack([np.log(phi_d), np.log(np.maximum(phi_m, floor))], axis=1)
        chord, rel = p[-1] - p[0], p - p[0]
        return np.abs(rel[:, 0] * chord[1] - rel[:, 1] * chord[0]) / np.linalg.norm(chord)

    assert np.argmax(distances(1e-300)) == 2 and np.argmax(distances(2e-300)) == 1  # premise
    assert lcurve_corner(phi_d, phi_m) == 2
