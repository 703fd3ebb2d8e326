"""The continuation driver: order of stages, warm starts, restarts, stopping rules, callbacks."""

import numpy as np
import pytest

from msinv.core.continuation import Stage, continuation, stages_from_groups


def _quadratic(centre):
    """J(x) = 1/2 |x - centre|^2 with its gradient."""
    centre = np.asarray(centre, dtype=float).ravel()

    def fun(x):
        r = x - centre
        return 0.5 * float(r @ r), r

    return fun


def _rosenbrock(x):
    from scipy.optimize import rosen, rosen_der

    return float(rosen(x)), rosen_der(x)


def test_stages_run_in_order_and_warm_start_each_other():
    seen = []

    def objective(stage):
        seen.append(stage.label)
        return _quadratic(np.full(4, stage.payload))

    starts = {}

    def callback(rec):
        if rec.iteration == 0:
            starts[rec.label] = rec.model.copy()

    stages = [Stage("a", 1.0, max_iter=50), Stage("b", 2.0, max_iter=50), Stage("c", 3.0)]
    res = continuation(stages, objective, np.zeros((2, 2)), callback=callback)
    assert seen == ["a", "b", "c"]
    # each stage starts where the previous one ended (its minimiser)
    np.testing.assert_allclose(starts["b"], 1.0, atol=1e-6)
    np.testing.assert_allclose(starts["c"], 2.0, atol=1e-6)
    np.testing.assert_allclose(res.model, 3.0, atol=1e-6)
    assert res.model.shape == (2, 2)
    assert [s.label for s in res.stages] == ["a", "b", "c"]


def test_optimiser_restarts_each_stage_and_obeys_max_iter():
    # Rosenbrock needs many iterations: max_iter caps each stage separately.
    rosen = _rosenbrock

    stages = [Stage("s1", max_iter=3), Stage("s2", max_iter=5)]
    its = []
    res = continuation(
        stages,
        lambda s: rosen,
        np.array([-1.2, 1.0]),
        callback=lambda r: its.append((r.stage, r.iteration)) and None,
    )
    assert [s.iterations for s in res.stages] == [3, 5]
    assert max(i for s, i in its if s == 0) == 3
    assert max(i for s, i in its if s == 1) == 5
    assert res.iterations == 8


def test_target_rule_and_callback_stop():
    fun = _quadratic(np.ones(10) * 5)
    res = continuation(
        [Stage("t", target=10.0, max_iter=100, ftol=0, gtol=0)], lambda s: fun, np.zeros(10)
    )
    assert res.stages[0].misfit_end <= 10.0
    assert res.stages[0].misfit_start == pytest.approx(125.0)
    assert "target" in res.stages[0].message
    # a second stage that starts below its target runs no iteration
    two = [Stage("t", target=10.0, ftol=0, gtol=0), Stage("u", target=20.0)]
    res = continuation(two, lambda s: fun, np.zeros(10))
    assert res.stages[1].iterations == 0 and "met at start" in res.stages[1].message

    records = []

    def stop_after_two(rec):
        records.append(rec)
        return rec.iteration >= 2

    rosen = _rosenbrock

    res = continuation(
        [Stage("a", max_iter=50), Stage("b", max_iter=50)],
        lambda s: rosen,
        np.array([-1.2, 1.0]),
        callback=stop_after_two,
    )
    assert [s.iterations for s in res.stages] == [2, 2]
    rec = records[-1]
    assert rec.stage == 1 and rec.label == "b"
    assert rec.grad_norm == pytest.approx(np.linalg.norm(rosen(rec.model)[1]))
    assert rec.misfit == pytest.approx(rosen(rec.model)[0])


def test_bounds_and_transfer():
    fun = _quadratic(np.array([2.0, -2.0, 0.5]))
    res = continuation([Stage("b")], lambda s: fun, np.zeros(3), bounds=(0.0, 1.0))
    np.testing.assert_allclose(res.model, [1.0, 0.0, 0.5], atol=1e-8)

    # transfer: a "mesh level" stage that doubles the model size (prolongation)
    def transfer(x, prev, stage):
        return x if prev is None else np.repeat(x, 2)

    def objective(stage):
        return _quadratic(np.arange(stage.payload, dtype=float))

    res = continuation(
        [Stage("coarse", 2), Stage("fine", 4)], objective, np.zeros(2), transfer=transfer
    )
    np.testing.assert_allclose(res.model, [0, 1, 2, 3], atol=1e-6)


def test_stages_from_groups_cumulative_and_validation():
    st = stages_from_groups([[2.5], [5.0], [10.0]], keep_earlier=True, max_iter=7, gtol=1e-3)
    assert [s.payload for s in st] == [(2.5,), (2.5, 5.0), (2.5, 5.0, 10.0)]
    assert [s.label for s in st] == ["2.5", "2.5+5", "2.5+5+10"]
    assert all(s.max_iter == 7 and s.gtol == 1e-3 for s in st)
    assert [s.payload for s in stages_from_groups([[2.5, 5.0], [10.0]])] == [(2.5, 5.0), (10.0,)]
    with pytest.raises(ValueError, match="max_iter"):
        Stage("x", max_iter=0)
    with pytest.raises(ValueError, match="empty"):
        stages_from_groups([[1.0], []])
    with pytest.raises(ValueError, match="at least one"):
        continuation([], lambda s: None, np.zeros(1))


def test_per_stage_array_bounds_and_minimiser():
    from msinv.core.continuation import box_arrays

    calls = []

    def clipped(fun, x0, bounds, stage, on_iterate):
        lo, hi = box_arrays(bounds, x0.size)
        calls.append((stage.label, lo.copy(), hi.copy()))
        return np.clip(np.full(x0.size, 5.0), lo, hi), 1, "clipped"

    lo2 = np.array([0.0, 1.0, 2.0])
    stages = [
        Stage("a", max_iter=20),
        Stage("b", bounds=(lo2, lo2 + 0.5), minimiser=clipped),
        Stage("c", bounds=(None, 2.5), minimiser=clipped),
    ]
    res = continuation(stages, lambda s: _quadratic(np.full(3, 3.0)), np.zeros(3), bounds=(0, 1))
    np.testing.assert_allclose(res.stages[0].misfit_end, 0.5 * 3 * 4.0, rtol=1e-6)  # x = 1
    assert [c[0] for c in calls] == ["b", "c"]
    np.testing.assert_allclose(calls[0][1], lo2)
    np.testing.assert_allclose(calls[1][1], -np.inf)
    np.testing.assert_allclose(res.model, 2.5)
    with pytest.raises(ValueError, match="above"):
        continuation(
            [Stage("x", bounds=(np.ones(3), np.zeros(3)))], lambda s: _quadratic(0), np.zeros(3)
        )
