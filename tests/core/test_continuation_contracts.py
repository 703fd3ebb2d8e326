"""Stopping rules and bounds of the continuation driver at their boundaries (written from the
survivors of the sampled mutation run, docs/testing.md)."""

import numpy as np
import pytest

from msinv.core.continuation import Stage, continuation, lbfgsb, stages_from_groups
from msinv.core.errors import UserInputError

from .test_continuation import _quadratic


def test_one_iteration_is_a_valid_stage():
    assert Stage("a", max_iter=1).max_iter == 1
    with pytest.raises(UserInputError, match="max_iter must be >= 1"):
        Stage("a", max_iter=0)


def test_a_stage_that_starts_exactly_on_its_target_runs_no_iteration():
    """'a stage that starts at or below it runs no iteration': f0 = 1 = target exactly."""
    res = continuation([Stage("a", target=1.0)], lambda s: _quadratic([1.0, 1.0]), np.zeros(2))
    assert res.stages[0].iterations == 0 and "met at start" in res.stages[0].message
    np.testing.assert_array_equal(res.model, np.zeros(2))


def test_ending_exactly_on_the_target_is_reported_as_reaching_it():
    """The objective 'falls to or below' the target: an end value equal to it counts."""

    def one_step(fun, x, box, stage, on_iterate):
        x = np.array([0.0, 1.0])  # J = 1/2 exactly
        on_iterate(x)
        return x, 1, "one step"

    stage = Stage("a", target=0.5, minimiser=one_step)
    res = continuation([stage], lambda s: _quadratic([1.0, 1.0]), np.zeros(2))
    assert res.stages[0].message.startswith("reached target")


def test_scalar_lower_and_per_cell_upper_bounds():
    """bounds = (scalar, array): the per-cell upper bound holds cell by cell."""
    hi = np.array([0.5, 2.0, 0.25])
    res = continuation(
        [Stage("a", max_iter=200)], lambda s: _quadratic([1.0, 1.0, -1.0]), np.zeros(3),
        bounds=(0.0, hi),
    )  # fmt: skip
    np.testing.assert_allclose(res.model, [0.5, 1.0, 0.0], atol=1e-6)


def test_per_cell_lower_and_scalar_upper_bounds():
    """bounds = (array, scalar): the per-cell lower bound holds cell by cell, the scalar upper
    bound in every cell (a mixed pair is not a list of scalar pairs)."""
    lo = np.array([-0.5, 0.25, -2.0])
    res = continuation(
        [Stage("a", max_iter=200)], lambda s: _quadratic([-1.0, -1.0, 3.0]), np.zeros(3),
        bounds=(lo, 1.0),
    )  # fmt: skip
    np.testing.assert_allclose(res.model, [-0.5, 0.25, 1.0], atol=1e-6)


def test_a_missing_lower_bound_beside_a_per_cell_upper_bound_is_unbounded_below():
    """bounds = (None, array): no lower bound at all (minus infinity), the upper one per cell."""
    hi = np.array([0.5, -1.0, 4.0])
    res = continuation(
        [Stage("a", max_iter=200)], lambda s: _quadratic([-3.0, 2.0, 1.0]), np.zeros(3),
        bounds=(None, hi),
    )  # fmt: skip
    np.testing.assert_allclose(res.model, [-3.0, -1.0, 1.0], atol=1e-6)


def test_stages_from_groups_leaves_unset_rules_at_the_stage_defaults():
    """A schedule built from groups without rules is the schedule of plain Stages: every field
    not given (max_iter, ftol, gtol, target) takes Stage's own default."""
    stages = stages_from_groups([[2.5], [5.0]])
    assert stages == [Stage("2.5", (2.5,)), Stage("5", (5.0,))]
    assert stages_from_groups([[1]], max_iter=7)[0] == Stage("1", (1,), max_iter=7)


def test_the_tracker_keeps_its_own_copy_of_the_evaluated_point():
    """Optimisers update their iterate in place (SciPy's L-BFGS-B does): the tracker that
    serves the callback's f and |g| must compare against a copy of the point it evaluated,
    or it returns the stale values of the old point for the new one."""
    from msinv.core.continuation import _Tracker

    tracker = _Tracker(lambda x: (float(x @ x), 2 * x))
    x = np.ones(3)
    assert tracker(x)[0] == 3.0
    x *= 2.0  # the optimiser's buffer moves on
    f, g = tracker.at(x)
    assert f == 12.0 and np.array_equal(g, 2 * x)


def test_the_tracker_serves_the_point_it_just_evaluated_without_evaluating_again():
    """The callback asks the tracker for f and g at the optimiser's iterate, which the
    optimiser has just evaluated: an FWI objective costs two wave solves per frequency, so
    at() of that point must not call the objective again (only a new point does)."""
    from msinv.core.continuation import _Tracker

    calls = []

    def fun(x):
        calls.append(1)
        return float(x @ x), 2 * x

    tracker = _Tracker(fun)
    x = np.arange(3.0)
    tracker(x)
    f, g = tracker.at(x.copy())
    assert f == 5.0 and np.array_equal(g, 2 * x) and len(calls) == 1
    tracker.at(x + 1.0)
    assert len(calls) == 2


def test_stages_with_array_bounds_compare_by_their_schedule():
    """Stages compare by label, payload and stopping rules; their bounds (per-cell arrays on a
    mesh level) and minimiser are run settings left out of the comparison, so two stages with
    array bounds can be compared at all (NumPy arrays have no single truth value)."""
    a = Stage("fine", max_iter=5, bounds=(np.zeros(4), np.ones(4)))
    b = Stage("fine", max_iter=5, bounds=(np.zeros(4), 2 * np.ones(4)))
    assert a == b
    assert a != Stage("fine", max_iter=6, bounds=(np.zeros(4), np.ones(4)))
    # the minimiser is a run setting too: stages differing only in it are the same schedule
    assert Stage("fine", max_iter=5, minimiser=lbfgsb) == Stage("fine", max_iter=5, minimiser=min)


def test_the_minimiser_is_told_to_stop_when_an_iterate_reaches_the_target_exactly():
    """on_iterate returns True (stop) once f falls *to or below* the target."""
    answers = []

    def two_steps(fun, x, box, stage, on_iterate):
        answers.append(on_iterate(np.array([0.0, 0.5])))  # J = 1/2 + 1/8 > target
        answers.append(on_iterate(np.array([0.0, 1.0])))  # J = 1/2 = target exactly
        return np.array([0.0, 1.0]), 2, "two steps"

    stage = Stage("a", target=0.5, minimiser=two_steps)
    continuation([stage], lambda s: _quadratic([1.0, 1.0]), np.zeros(2))
    assert answers == [False, True]


@pytest.mark.parametrize("rule", [{"ftol": -1e-9}, {"gtol": -1e-9}])
def test_negative_tolerances_are_refused(rule):
    with pytest.raises(UserInputError, match="ftol and gtol must be >= 0"):
        Stage("a", **rule)


def test_box_arrays_of_no_bounds_is_the_whole_real_line():
    """A minimiser told ``bounds=None`` (an unbounded stage) reads it as lo = -inf and
    hi = +inf for every parameter; pairs with None ends and a Bounds object read the same."""
    from scipy.optimize import Bounds

    from msinv.core.continuation import box_arrays

    lo, hi = box_arrays(None, 3)
    np.testing.assert_array_equal(lo, [-np.inf] * 3)
    np.testing.assert_array_equal(hi, [np.inf] * 3)
    for bounds in ([(None, None)] * 3, Bounds(-np.inf, np.inf)):
        again = box_arrays(bounds, 3)
        np.testing.assert_array_equal(again[0], lo)
        np.testing.assert_array_equal(again[1], hi)
    lo, hi = box_arrays([(0.0, None), (None, 1.0), (-1.0, 2.0)], 3)
    np.testing.assert_array_equal(lo, [0.0, -np.inf, -1.0])
    np.testing.assert_array_equal(hi, [np.inf, 1.0, 2.0])


def test_equal_per_cell_bounds_fix_a_cell_and_crossed_ones_are_refused():
    """Per-cell (array) bounds need lower <= upper in every cell: a cell whose two bounds are
    equal is held at that value (the others move freely), and a lower bound above its upper
    bound, by any amount, is refused in one line before any iteration."""
    lo, hi = np.array([-5.0, 0.5, -5.0]), np.array([5.0, 0.5, 5.0])
    res = continuation(
        [Stage("a", max_iter=200)], lambda s: _quadratic([1.0, 2.0, -1.0]), np.zeros(3),
        bounds=(lo, hi),
    )  # fmt: skip
    np.testing.assert_allclose(res.model, [1.0, 0.5, -1.0], atol=1e-6)
    with pytest.raises(UserInputError, match="a lower bound lies above its upper bound"):
        continuation(
            [Stage("a")], lambda s: _quadratic([1.0, 2.0, -1.0]), np.zeros(3),
            bounds=(lo, hi - np.array([0.0, 1e-12, 0.0])),
        )  # fmt: skip


def test_the_drivers_minimiser_runs_every_stage_without_its_own():
    """continuation(minimiser=M) runs M for each stage that names none and the stage's own
    minimiser where it names one; a stage's iterations are the larger of what its minimiser
    reports and the iterates it reported through on_iterate, with the minimiser's message."""
    calls = []

    def make(name, nit, reported):
        def run(fun, x0, bounds, stage, on_iterate):
            calls.append((name, stage.label))
            for _ in range(reported):
                on_iterate(x0)
            return x0 + 1.0, nit, f"{name} done"

        return run

    stages = [Stage("a"), Stage("b", minimiser=make("own", 1, 3)), Stage("c")]
    res = continuation(
        stages, lambda s: _quadratic([9.0, 9.0]), np.zeros(2), minimiser=make("driver", 5, 2)
    )
    assert calls == [("driver", "a"), ("own", "b"), ("driver", "c")]
    assert [(s.iterations, s.message) for s in res.stages] == [
        (5, "driver done"), (3, "own done"), (5, "driver done"),
    ]  # fmt: skip
    np.testing.assert_array_equal(res.model, [3.0, 3.0])


def test_integer_starts_and_minimiser_outputs_become_float_models():
    """An integer start (a list of ints) and a minimiser that hands back integers give float
    models: the objective is first evaluated on the start as floats, the first record holds
    it as floats, and the result (after a stage run and after one stopped at its start) is a
    float array of the start's shape."""
    seen = []

    def objective(stage):
        fun = _quadratic([2.0, 2.0, 2.0, 2.0])
        return lambda x: (seen.append(np.asarray(x).dtype), fun(x))[1]

    def integer_step(fun, x, box, stage, on_iterate):
        return [1, 2, 3, 4], 1, "integers"

    records = []
    start = [[0, 1], [2, 3]]
    res = continuation(
        [Stage("a", minimiser=integer_step)], objective, start, callback=records.append
    )
    assert res.model.dtype == np.float64 and res.model.shape == (2, 2)
    np.testing.assert_array_equal(res.model, [[1.0, 2.0], [3.0, 4.0]])
    assert records[0].model.dtype == np.float64
    assert seen[0] == np.float64
    stopped = continuation([Stage("a")], objective, start, callback=lambda r: True)
    assert stopped.model.dtype == np.float64
    np.testing.assert_array_equal(stopped.model, start)


def test_a_transfer_that_returns_integers_starts_the_next_stage_from_floats():
    """transfer(x, previous, stage) may hand back integers (a list): the next stage starts from
    them as float64, and the objective sees float64 points only."""
    seen = []

    def objective(stage):
        fun = _quadratic([2.0, 2.0])
        return lambda x: (seen.append(np.asarray(x).dtype), fun(x))[1]

    records = []
    continuation(
        [Stage("a", max_iter=2), Stage("b", max_iter=2)], objective, np.zeros(2),
        transfer=lambda x, previous, stage: [1, 3], callback=records.append,
    )  # fmt: skip
    start_b = next(r for r in records if r.stage == 1 and r.iteration == 0)
    assert start_b.model.dtype == np.float64
    np.testing.assert_array_equal(start_b.model, [1.0, 3.0])
    assert set(seen) == {np.dtype(np.float64)}
