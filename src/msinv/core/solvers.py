"""Engine-agnostic solvers: bounded quadratic minimisation, β search, L-curve corner, IRLS.

* :func:`projected_cg` minimises a convex quadratic ``f(x) = ½ xᵀAx − bᵀx`` subject to
  ``lower <= x <= upper`` by projected gradients around conjugate gradients (Calamai & Moré
  1987; Vogel 2002, ch. 9): cells at a bound whose gradient points outward are frozen, CG runs
  on the free cells, and a projected backtracking line search keeps the iterate feasible. The
  result reaches the bounds exactly (``numpy.clip``) and never passes them.
* :func:`beta_search` finds the trade-off parameter β at which a monotone misfit φ_d(β) hits a
  target within a relative tolerance, by bracketing and regula falsi (Illinois) on
  (log β, log φ_d).
* :func:`lcurve_corner` picks the corner of (log φ_d, log φ_m): the point farthest from the chord.
* :func:`irls` runs iteratively re-weighted least squares (sparse ℓp norms, total variation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from msinv.core.errors import UserInputError


@dataclass
class BoundedCGInfo:
    """What :func:`projected_cg` did.

    Attributes
    ----------
    outer : int, default 0
        Projected-gradient (active-set) iterations.
    cg_iterations : int, default 0
        Total CG iterations (one ``A`` product each).
    n_lower, n_upper : int
        Cells exactly at the lower / upper bound at the end.
    converged : bool, default False
        Whether the projected gradient met the tolerance.
    """

    outer: int = 0
    cg_iterations: int = 0
    n_lower: int = 0
    n_upper: int = 0
    converged: bool = False


def projected_cg(
    apply_a: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    x0: np.ndarray,
    lower: np.ndarray | float = -np.inf,
    upper: np.ndarray | float = np.inf,
    *,
    tol: float = 1e-4,
    max_cg: int = 200,
    max_outer: int = 20,
    precondition: Callable[[np.ndarray], np.ndarray] | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, BoundedCGInfo]:
    """Minimise ``½ xᵀAx − bᵀx`` with ``lower <= x <= upper`` (A symmetric positive definite).

    Parameters
    ----------
    apply_a : callable
        ``x -> A x`` on (n,) arrays.
    b : (n,) numpy.ndarray
        Right-hand side.
    x0 : (n,) numpy.ndarray
        Starting point (projected onto the box first).
    lower, upper : (n,) numpy.ndarray or float
        Bounds, ``lower <= upper`` (±inf allowed).
    tol : float, default 0.0001
        Stop when the projected gradient's norm falls to or below ``tol`` times its value at
        the (projected) starting point (with ``tol >= 1`` the start is returned); each CG
        solve also stops at that residual. Relative to the
        start, so a warm start near the answer still improves it by the factor ``tol``.
    max_cg : int, default 200
        CG iterations per active-set iteration.
    max_outer : int, default 20
        Active-set iterations.
    precondition : callable, optional
        ``r -> M⁻¹ r`` with M symmetric positive definite (e.g. a multigrid cycle of the
        regularisation operator); applied on the free cells only (frozen entries zeroed).
    callback : callable, optional
        ``callback(k)`` after each CG iteration with the running total (progress bars).

    Returns
    -------
    x : (n,) numpy.ndarray
        The minimiser found, inside the box.
    info : BoundedCGInfo

    Notes
    -----
    With gradient :math:`g = Ax - b`, cell i is frozen when
    :math:`x_i = l_i, g_i > 0` or :math:`x_i = u_i, g_i < 0`. CG solves
    :math:`A_{FF} d_F = -g_F`; the step is :math:`x \\leftarrow P(x + t d)` with the largest
    :math:`t \\in \\{1, ½, ¼, …\\}` satisfying the Armijo condition
    :math:`f(P(x+td)) \\le f(x) + 10^{-4} g^T(P(x+td) - x)`; when no
    :math:`t \\ge 10^{-8}` does (rounding, or an ``apply_a`` that is not positive definite), the
    first :math:`t` below it, :math:`2^{-27}`, is taken.
    """
    b = np.asarray(b, dtype=np.float64)
    lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), b.shape)
    hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), b.shape)
    if np.any(lo > hi):
        raise UserInputError("lower bound above upper bound")
    x = np.clip(np.asarray(x0, dtype=np.float64), lo, hi)
    info = BoundedCGInfo()
    scale = None
    ax = apply_a(x)
    for _ in range(max_outer):
        g = ax - b
        frozen = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
        free = ~frozen
        if scale is None:
            scale = tol * max(float(np.linalg.norm(g[free])), 1e-300)
        if np.linalg.norm(g[free]) <= scale:
            info.converged = True
            break
        info.outer += 1
        # CG on the free cells: A_FF d_F = -g_F
        d = np.zeros_like(x)
        r = -g * free

        def psolve(v, free=free):
            return v if precondition is None else precondition(v) * free

        z = psolve(r)
        p = z.copy()
        rz = float(r @ z)
        for _k in range(max_cg):
            ap = apply_a(p) * free
            info.cg_iterations += 1
            if callback is not None:
                callback(info.cg_iterations)
            alpha = rz / float(p @ ap)
            d += alpha * p
            r -= alpha * ap
            if np.linalg.norm(r) <= scale:
                break
            z = psolve(r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        # projected line search
        f0 = 0.5 * float(x @ ax) - float(b @ x)
        t = 1.0
        while True:
            x_new = np.clip(x + t * d, lo, hi)
            ax_new = apply_a(x_new)
            f_new = 0.5 * float(x_new @ ax_new) - float(b @ x_new)
            if f_new <= f0 + 1e-4 * float(g @ (x_new - x)) or t < 1e-8:
                break
            t *= 0.5
        x, ax = x_new, ax_new
    info.n_lower = int(np.count_nonzero(x <= lo))
    info.n_upper = int(np.count_nonzero(x >= hi))
    return x, info


@dataclass
class BetaSearchResult:
    """Outcome of :func:`beta_search`: the β found, its misfit and every trial (β, φ_d)."""

    beta: float
    phi_d: float
    converged: bool
    history: list[tuple[float, float]] = field(default_factory=list)


def beta_search(
    misfit: Callable[[float], float],
    target: float,
    beta0: float,
    *,
    rtol: float = 0.02,
    factor: float = 10.0,
    max_iter: int = 30,
    slope: float | None = None,
) -> BetaSearchResult:
    """Find β with ``|φ_d(β) − target| <= rtol·target`` for increasing φ_d(β).

    Parameters
    ----------
    misfit : callable
        ``beta -> φ_d``; it may keep state (warm starts) between calls.
    target : float
        Target misfit (> 0), e.g. chifact·N.
    beta0 : float
        First trial (> 0).
    rtol : float, default 0.02
        Relative tolerance on the misfit (GRAV3D's tolc), >= 0; a misfit exactly
        ``rtol·target`` away is accepted.
    factor : float, default 10.0
        Bracketing step in β (> 1) while only one side of the target has been seen; once two
        points exist, the secant on (log β, log φ_d) predicts the next trial (clamped to
        ``factor**2``).
    max_iter : int, default 30
        Misfit evaluations at most.
    slope : float, optional
        A prior d(log φ_d)/d(log β) > 0 near the target (e.g. measured on a coarser mesh):
        while only the first point is known, the second trial is the Newton step
        ``log β − (log φ_d − log target) / slope`` (clamped to ``factor**2``) instead of a
        bracketing step of ``factor``.

    Returns
    -------
    BetaSearchResult
        The last β evaluated is the one returned, so the caller's state matches it.
    """
    if not target > 0 or not beta0 > 0 or not factor > 1:
        raise UserInputError("target and beta0 must be > 0, factor > 1")
    if slope is not None and not slope > 0:
        raise UserInputError(f"slope must be > 0, got {slope}")
    if not rtol >= 0:
        raise UserInputError(f"rtol must be >= 0, got {rtol}")
    history: list[tuple[float, float]] = []
    lo = hi = None  # (log β, log φ_d - log target) below / above the target
    side_lo = side_hi = 0  # how many times in a row each end has been kept
    beta = beta0
    for _ in range(max_iter):
        phi = float(misfit(beta))
        history.append((beta, phi))
        if abs(phi - target) <= rtol * target:
            return BetaSearchResult(beta, phi, True, history)
        point = (np.log(beta), np.log(max(phi, 1e-300)) - np.log(target))
        if point[1] < 0:
            lo, side_lo, side_hi = point, 0, side_hi + 1
        else:
            hi, side_hi, side_lo = point, 0, side_lo + 1
        if lo is not None and hi is not None:
            # regula falsi with the Illinois modification against a stuck end point
            flo = lo[1] / (2 ** max(side_lo - 1, 0))  # halved while lo is kept
            fhi = hi[1] / (2 ** max(side_hi - 1, 0))
            log_beta = lo[0] - flo * (hi[0] - lo[0]) / (fhi - flo)
        elif len(history) >= 2:
            (b1, p1), (b2, p2) = history[-2], history[-1]
            measured = (np.log(p2) - np.log(p1)) / (np.log(b2) - np.log(b1))
            if measured > 0:  # the secant, clamped to factor**2
                step = float(np.clip(-point[1] / measured, -2 * np.log(factor), 2 * np.log(factor)))
            else:  # phi_d did not grow with beta: no secant, a bracketing step towards the target
                step = np.log(factor) * (1 if point[1] < 0 else -1)
            log_beta = point[0] + step
        elif slope is not None:
            step = float(np.clip(-point[1] / slope, -2 * np.log(factor), 2 * np.log(factor)))
            log_beta = point[0] + step
        else:
            log_beta = point[0] + np.log(factor) * (1 if point[1] < 0 else -1)
        beta = float(np.exp(log_beta))
    return BetaSearchResult(history[-1][0], history[-1][1], False, history)


def lcurve_corner(phi_d, phi_m) -> int:
    """Index of the L-curve corner: the point of (log φ_d, log φ_m) farthest from the chord.

    Parameters
    ----------
    phi_d, phi_m : (n,) array_like
        Misfit (or residual norm) and model norm at n >= 3 trade-off parameters in monotone
        order.

    Returns
    -------
    int
        Index of the point farthest from the straight line joining the curve's two ends; the
        end points (distance 0) are never chosen.

    Notes
    -----
    The distance to the chord is :math:`|(p_i - p_0) \\times (p_{n-1} - p_0)| / |p_{n-1} - p_0|`;
    its arg-max is invariant under affine maps of the plane, so residual norms and squared
    misfits (``log φ = 2 log ||r||``) give the same corner. Unlike a finite-difference
    curvature it is robust to the flat, noisy ends of a sampled L-curve (Hansen's corner as
    the point of "maximum distance to the chord").
    """
    x = np.log(np.maximum(np.asarray(phi_d, dtype=np.float64), 1e-300))
    y = np.log(np.maximum(np.asarray(phi_m, dtype=np.float64), 1e-300))
    if x.size < 3 or x.size != y.size:
        raise UserInputError(
            "the L-curve needs at least three (phi_d, phi_m) pairs of equal length"
        )
    pts = np.stack([x, y], axis=1)
    chord = pts[-1] - pts[0]
    rel = pts - pts[0]
    dist = np.abs(rel[:, 0] * chord[1] - rel[:, 1] * chord[0]) / max(np.linalg.norm(chord), 1e-300)
    return int(np.argmax(dist))


@dataclass
class IRLSResult:
    """What :func:`irls` did.

    Attributes
    ----------
    x : numpy.ndarray
        The last iterate.
    iterations : int
        Re-weighted solves done.
    converged : bool
        Whether the relative model change fell below ``tol``.
    changes : list of float
        ``||x_k - x_{k-1}|| / ||x_k||`` after every solve.
    """

    x: np.ndarray
    iterations: int
    converged: bool
    changes: list[float] = field(default_factory=list)


def irls(
    solve: Callable[[np.ndarray], np.ndarray],
    reweight: Callable[[np.ndarray, int], None],
    x0: np.ndarray,
    *,
    max_iter: int,
    tol: float | None = None,
    callback: Callable[[int, np.ndarray, float], bool | None] | None = None,
) -> IRLSResult:
    """Iteratively re-weighted least squares: re-weight at ``x_k``, solve, repeat.

    Parameters
    ----------
    solve : callable
        ``x_k -> x_{k+1}``: minimise the quadratic surrogate with the current weights (warm
        started from ``x_k``; the engine may re-tune its trade-off parameter here).
    reweight : callable
        ``reweight(x_k, k)`` sets the weights of the surrogate from the current model (e.g.
        :meth:`msinv.core.regularisation.LpNorm.weights` put into a
        :class:`~msinv.core.regularisation.WeightedTerm`) and may cool ε with ``k``.
    x0 : numpy.ndarray
        Starting model (typically the L2 solution).
    max_iter : int
        Re-weighted solves at most (>= 1).
    tol : float, optional
        Stop when the relative model change falls to or below ``tol``; None: run ``max_iter``.
    callback : callable, optional
        ``callback(k, x, change)`` after every solve; returning True stops.

    Returns
    -------
    IRLSResult

    Notes
    -----
    For :math:`\\phi(x) = \\sum_i \\rho(r_i(x))` with :math:`\\rho(r) = (r^2+\\epsilon^2)^{p/2}`, the
    Lawson weights :math:`w_i = (r_i^2 + \\epsilon^2)^{(p-2)/2}` make :math:`\\sum_i w_i r_i^2`
    a majoriser of ``φ`` (up to a constant and a factor ``p/2``) that touches it at
    :math:`x_k`; minimising it never increases ``φ`` for fixed ε (lagged diffusivity for TV).
    """
    if int(max_iter) < 1:
        raise UserInputError(f"irls needs max_iter >= 1, got {max_iter}")
    x = np.asarray(x0)
    result = IRLSResult(x, 0, False)
    for k in range(int(max_iter)):
        reweight(x, k)
        x_new = np.asarray(solve(x))
        change = float(np.linalg.norm(x_new - x) / max(float(np.linalg.norm(x_new)), 1e-300))
        x = x_new
        result.iterations, result.x = k + 1, x
        result.changes.append(change)
        if callback is not None and callback(k, x, change):
            break
        if tol is not None and change <= tol:
            result.converged = True
            break
    return result
