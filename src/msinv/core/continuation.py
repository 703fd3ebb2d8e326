"""Continuation: solve a sequence of ever finer problems, each warm-started from the last.

The seeds' lesson is coarse-to-fine. A *schedule* is a list of :class:`Stage` objects (for
waves, groups of frequencies, each optionally keeping the earlier ones; for gravity, mesh
levels). :func:`continuation` walks it: for every stage it asks the engine for an objective,
carries the model over (optionally through a ``transfer`` map, e.g. prolongation between
meshes), restarts the optimiser, stops the stage by its own rules, and reports every iterate
through a callback. It knows nothing of physics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from msinv.core.errors import UserInputError

#: ``f(x) -> (value, gradient)`` on a flat float64 model vector.
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Stage:
    """One stage of a continuation schedule.

    Parameters
    ----------
    label : str
        Human-readable name, used in logs ("f=2.5", "level 2").
    payload : object
        What the engine needs to build this stage's problem (a tuple of frequencies, a mesh
        level); the driver only passes it on.
    max_iter : int, default 100
        Largest number of optimiser iterations in the stage (>= 1).
    ftol : float, default 1e-10
        Stop when the relative decrease of the objective in one iteration is below this (>= 0).
    gtol : float, default 1e-10
        Stop when the largest gradient component (projected on the bounds) is below this (>= 0).
    target : float or None
        Stop when the objective falls to or below this value (the discrepancy principle: stop
        at the noise level); a stage that starts at or below it runs no iteration. ``None``
        disables the rule.
    bounds : (lo, hi), optional
        This stage's box bounds, each a float, ``None`` (no bound) or an array of the stage's
        model size (e.g. per-cell bounds on a mesh level); overrides the driver's ``bounds``.
    minimiser : Minimiser, optional
        This stage's optimiser; overrides the driver's ``minimiser``.
    """

    label: str
    payload: Any = None
    max_iter: int = 100
    ftol: float = 1e-10
    gtol: float = 1e-10
    target: float | None = None
    bounds: tuple[Any, Any] | None = field(default=None, compare=False)
    minimiser: Minimiser | None = field(default=None, compare=False)

    def __post_init__(self):
        if int(self.max_iter) < 1:
            raise UserInputError(
                f"Stage {self.label!r}: max_iter must be >= 1, got {self.max_iter}"
            )
        if self.ftol < 0 or self.gtol < 0:
            raise UserInputError(f"Stage {self.label!r}: ftol and gtol must be >= 0")


@dataclass(frozen=True)
class IterationRecord:
    """What the callback receives after every iteration of every stage.

    Attributes
    ----------
    stage : int
        Index of the stage in the schedule (0-based).
    label : str
        The stage's label.
    iteration : int
        Iteration within the stage (1-based; 0 is the starting point of the stage).
    misfit : float
        Objective value at ``model``.
    grad_norm : float
        Euclidean norm of the objective's gradient at ``model``.
    model : numpy.ndarray
        The current model, in the shape given to :func:`continuation` (a copy).
    """

    stage: int
    label: str
    iteration: int
    misfit: float
    grad_norm: float
    model: np.ndarray


@dataclass
class StageResult:
    """Outcome of one stage: iterations used, why it stopped, objective at start and end."""

    label: str
    iterations: int
    message: str
    misfit_start: float
    misfit_end: float


@dataclass
class ContinuationResult:
    """The final model and one :class:`StageResult` per stage that ran."""

    model: np.ndarray
    stages: list[StageResult] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        """Total number of optimiser iterations over all stages."""
        return sum(s.iterations for s in self.stages)


class Minimiser(Protocol):
    """A local optimiser for one stage, started afresh (no memory) at every stage.

    Called as ``minimiser(fun, x0, bounds, stage, on_iterate)`` with ``fun(x) -> (f, g)``,
    ``x0`` flat float64, ``bounds`` a list of ``(lo, hi)`` pairs (scalar bounds) or a
    :class:`scipy.optimize.Bounds` (array bounds) or ``None`` (:func:`box_arrays` turns either
    into two arrays), and
    ``on_iterate(x)`` to be called after every iteration, which returns True to stop. Returns
    ``(x, iterations, message)``.
    """

    def __call__(
        self,
        fun: Objective,
        x0: np.ndarray,
        bounds: list[tuple[float | None, float | None]] | None,
        stage: Stage,
        on_iterate: Callable[[np.ndarray], bool],
    ) -> tuple[np.ndarray, int, str]: ...


def box_arrays(bounds, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` arrays of length ``n`` from what a :class:`Minimiser` receives (±inf: none)."""
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    if hasattr(bounds, "lb"):
        lo, hi = bounds.lb, bounds.ub
    else:
        pairs = np.asarray(
            [(-np.inf if a is None else a, np.inf if b is None else b) for a, b in bounds], float
        )
        lo, hi = pairs[:, 0], pairs[:, 1]
    return (
        np.broadcast_to(np.asarray(lo, float), (n,)).copy(),
        np.broadcast_to(np.asarray(hi, float), (n,)).copy(),
    )


def _box(bounds, n: int):
    """Scalar bounds as a list of pairs (as always); array bounds as ``scipy.optimize.Bounds``."""
    if bounds is None:
        return None
    lo, hi = bounds
    if np.ndim(lo) == 0 and np.ndim(hi) == 0:
        return [tuple(bounds)] * n
    from scipy.optimize import Bounds

    arrays = []
    for value, inf in ((lo, -np.inf), (hi, np.inf)):
        a = np.broadcast_to(np.asarray(inf if value is None else value, dtype=float), (n,))
        arrays.append(a)
    if np.any(arrays[0] > arrays[1]):
        raise UserInputError("continuation bounds: a lower bound lies above its upper bound")
    return Bounds(arrays[0], arrays[1])


def lbfgsb(fun, x0, bounds, stage, on_iterate):
    """The default :class:`Minimiser`: SciPy's L-BFGS-B with the stage's stopping rules."""
    from scipy.optimize import minimize

    def _callback(intermediate_result):
        if on_iterate(intermediate_result.x):
            raise StopIteration

    res = minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        callback=_callback,
        options={"maxiter": int(stage.max_iter), "ftol": stage.ftol, "gtol": stage.gtol},
    )
    return res.x, int(res.nit), str(res.message)


class _Tracker:
    """Wraps an objective: remembers the last evaluation so the callback sees f and |g|."""

    def __init__(self, fun: Objective):
        self.fun = fun
        self.x: np.ndarray | None = None
        self.f = np.inf
        self.g: np.ndarray | None = None

    def __call__(self, x):
        f, g = self.fun(x)
        self.x, self.f, self.g = np.array(x, copy=True), float(f), np.asarray(g, dtype=float)
        return self.f, self.g

    def at(self, x) -> tuple[float, np.ndarray]:
        if self.x is None or not np.array_equal(self.x, x):
            self(x)
        return self.f, self.g


def stages_from_groups(
    groups: Sequence[Sequence[Any]],
    *,
    keep_earlier: bool = False,
    max_iter: int = 100,
    label: Callable[[tuple], str] | None = None,
    **rules: Any,
) -> list[Stage]:
    """Build a schedule from groups of parameters (e.g. frequency bands), low to high.

    Parameters
    ----------
    groups : sequence of sequences
        ``[[2.5], [5.0], [10.0]]``: one stage per group.
    keep_earlier : bool, default False
        If True, stage ``k`` carries the union of groups ``0..k`` (cumulative bands).
    max_iter : int, default 100
        Iterations per stage.
    label : callable, optional
        ``payload -> str``; default ``"a+b+c"``.
    **rules
        Further :class:`Stage` fields (``ftol``, ``gtol``, ``target``).

    Returns
    -------
    list of Stage
        Payloads are tuples of the group's (or groups') items, duplicates removed in order.
    """
    if not groups or any(len(g) == 0 for g in groups):
        raise UserInputError("a schedule needs at least one stage and no empty group")
    stages, seen = [], []
    for group in groups:
        items = [*seen, *group] if keep_earlier else list(group)
        payload = tuple(dict.fromkeys(items))
        seen = list(payload)
        name = (
            label(payload)
            if label
            else "+".join(f"{p:g}" if isinstance(p, float) else str(p) for p in payload)
        )
        stages.append(Stage(name, payload, max_iter=max_iter, **rules))
    return stages


def continuation(
    stages: Sequence[Stage],
    objective: Callable[[Stage], Objective],
    x0: np.ndarray,
    *,
    bounds: tuple[Any, Any] | None = None,
    transfer: Callable[[np.ndarray, Stage | None, Stage], np.ndarray] | None = None,
    callback: Callable[[IterationRecord], bool | None] | None = None,
    minimiser: Minimiser = lbfgsb,
) -> ContinuationResult:
    """Run a continuation schedule with warm starts and per-stage optimiser restarts.

    Parameters
    ----------
    stages : sequence of Stage
        The schedule, coarse to fine.
    objective : callable
        ``objective(stage) -> fun`` with ``fun(x) -> (value, gradient)``; ``x`` and the
        gradient have the model's shape flattened (float64).
    x0 : numpy.ndarray
        Starting model, any shape (float).
    bounds : (lo, hi), optional
        Box bounds of every stage without its own :attr:`Stage.bounds`: floats (applied to
        every model entry), arrays of the model's size, or ``None`` on a side for no bound.
    transfer : callable, optional
        ``transfer(x, previous_stage, stage) -> x`` maps the model into the next stage's
        space (e.g. prolongation to a finer mesh); default: unchanged. Called for the first
        stage too, with ``previous_stage=None``.
    callback : callable, optional
        Receives an :class:`IterationRecord` at the start of each stage (iteration 0) and
        after every iteration; returning True ends the current stage early.
    minimiser : Minimiser
        The optimiser of every stage without its own :attr:`Stage.minimiser` (default
        :func:`lbfgsb`); restarted at every stage.

    Returns
    -------
    ContinuationResult
        Final model (shape of the last stage's model) and per-stage outcomes.

    Notes
    -----
    Stage :math:`k` solves :math:`\\min_x J_k(x)` from :math:`x^{(k-1)}`, the solution of
    stage :math:`k-1` (mapped by ``transfer``). The quasi-Newton memory is discarded between
    stages because the curvature of :math:`J_k` differs from that of :math:`J_{k-1}`.
    """
    if len(stages) == 0:
        raise UserInputError("continuation needs at least one stage")
    x = np.asarray(x0, dtype=float)
    result = ContinuationResult(model=x)
    previous = None
    for k, stage in enumerate(stages):
        if transfer is not None:
            x = np.asarray(transfer(x, previous, stage), dtype=float)
        shape = x.shape
        tracker = _Tracker(objective(stage))
        box = _box(stage.bounds if stage.bounds is not None else bounds, x.size)
        f0, g0 = tracker.at(x.ravel())
        count = 0

        def report(xi, it, f, g, *, _k=k, _stage=stage, _shape=shape):
            record = IterationRecord(
                _k, _stage.label, it, f, float(np.linalg.norm(g)), xi.reshape(_shape).copy()
            )
            return bool(callback(record)) if callback is not None else False

        early = "stopped by callback" if report(x.ravel(), 0, f0, g0) else None
        if early is None and stage.target is not None and f0 <= stage.target:
            early = f"target {stage.target:.3g} met at start"
        if early is not None:
            result.stages.append(StageResult(stage.label, 0, early, f0, f0))
            previous = stage
            continue

        def on_iterate(xi, *, _stage=stage, _tracker=tracker, _report=report):
            nonlocal count
            count += 1
            f, g = _tracker.at(xi)
            if _report(xi, count, f, g):
                return True
            return _stage.target is not None and f <= _stage.target

        run = stage.minimiser if stage.minimiser is not None else minimiser
        x_flat, nit, message = run(tracker, x.ravel().copy(), box, stage, on_iterate)
        f_end, _ = tracker.at(x_flat)
        if stage.target is not None and f_end <= stage.target:
            message = f"reached target {stage.target:.3g}"
        x = np.asarray(x_flat, dtype=float).reshape(shape)
        result.stages.append(StageResult(stage.label, max(nit, count), message, f0, f_end))
        previous = stage
    result.model = x
    return result
