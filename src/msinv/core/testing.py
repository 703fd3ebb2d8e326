"""Derivative checks that ship with the library: the Taylor test and the dot-product test.

Users who write their own objective or operator call these exactly as msinv's own tests do
(SimPEG's ``check_derivative`` and ``assert_isadjoint`` in spirit). :func:`dottest` lives with
:class:`~msinv.core.operator.LinearOperator` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.operator import dottest

__all__ = ["TaylorResult", "dottest", "taylor_test"]


@dataclass(frozen=True)
class TaylorResult:
    """Remainders of a Taylor test, one per step.

    Attributes
    ----------
    steps : (k,) numpy.ndarray
        The step lengths h.
    zeroth : (k,) numpy.ndarray
        ``|f(x + h dx) - f(x)|``, O(h) for a non-zero slope.
    first : (k,) numpy.ndarray
        ``|f(x + h dx) - f(x) - h <g, dx>|``, O(h^2) when ``g`` is the gradient.
    rates : (k - 1,) numpy.ndarray
        ``log(first[i] / first[i+1]) / log(steps[i] / steps[i+1])``, about 2 for a right
        gradient and about 1 for a wrong one.
    """

    steps: np.ndarray
    zeroth: np.ndarray
    first: np.ndarray
    rates: np.ndarray


def taylor_test(
    fun: Callable[[np.ndarray], float | tuple[float, np.ndarray]],
    x: np.ndarray,
    dx: np.ndarray,
    grad: np.ndarray | None = None,
    *,
    steps: Sequence[float] | None = None,
    min_rate: float = 1.8,
    max_rate: float | None = None,
) -> TaylorResult:
    """Taylor test of a gradient: the first-order remainder must decay quadratically.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (value, gradient)``, or ``fun(x) -> value`` when ``grad`` is given. The
        value is a real scalar; the gradient has the shape of ``x``.
    x : numpy.ndarray
        Point of the test (real; a complex one is refused).
    dx : numpy.ndarray
        Direction, real, same shape as ``x``.
    grad : numpy.ndarray, optional
        Gradient at ``x``; taken from ``fun(x)`` when omitted.
    steps : sequence of float, optional
        Decreasing step lengths h (default ``1e-2 * 2**-k``, k = 0..3).
    min_rate : float, default 1.8
        Smallest accepted convergence rate of the first-order remainder.
    max_rate : float, optional
        Largest accepted rate (e.g. 2.1 to insist on exactly second order).

    Returns
    -------
    TaylorResult
        The remainders and rates.

    Raises
    ------
    AssertionError
        When a rate of the first-order remainder is outside ``[min_rate, max_rate]``, or when
        the gradient term does not matter (the first-order remainder at the smallest step is
        not below half the zeroth-order one, so that the test could not fail).

    Notes
    -----
    With :math:`r_0(h) = |f(x + h\\,dx) - f(x)|` and :math:`r_1(h) = |f(x + h\\,dx) - f(x) -
    h \\langle g, dx \\rangle|`, a right gradient gives :math:`r_1 = O(h^2)` while
    :math:`r_0 = O(h)`; a gradient that is wrong by any factor or sign leaves
    :math:`r_1 = O(h)`. The inner product is :math:`\\operatorname{Re} \\sum \\bar g\\, dx`.
    """
    if np.iscomplexobj(x) or np.iscomplexobj(dx):
        raise UserInputError("taylor_test: x and dx must be real (a complex one would be cut)")
    x = np.asarray(x, dtype=float)
    dx = np.asarray(dx, dtype=float)
    if dx.shape != x.shape:
        raise UserInputError(f"dx has shape {dx.shape}, expected the shape of x {x.shape}")
    steps = np.asarray(1e-2 * 0.5 ** np.arange(4) if steps is None else steps, dtype=float)
    if steps.size < 2 or np.any(np.diff(steps) >= 0) or steps[-1] <= 0:
        raise UserInputError(f"steps must be >= 2 decreasing positive values, got {steps}")

    def value(z):
        out = fun(z)
        return float(out[0] if isinstance(out, tuple) else out)

    if grad is None:
        f0, grad = fun(x)
        f0 = float(f0)
    else:
        f0 = value(x)
    grad = np.asarray(grad)
    if grad.shape != x.shape:
        raise UserInputError(f"gradient has shape {grad.shape}, expected {x.shape}")
    slope = float(np.real(np.vdot(grad, dx)))
    f1 = np.array([value(x + h * dx) for h in steps])
    zeroth = np.abs(f1 - f0)
    first = np.abs(f1 - f0 - steps * slope)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero remainder gives NaN: fails
        rates = np.log(first[:-1] / first[1:]) / np.log(steps[:-1] / steps[1:])
    result = TaylorResult(steps, zeroth, first, rates)
    high = np.inf if max_rate is None else max_rate
    assert np.all((rates >= min_rate) & (rates <= high)), (
        f"Taylor test: first-order remainder rates {np.round(rates, 3)}, expected in "
        f"[{min_rate}, {high}] (remainders {first})"
    )
    assert first[-1] < 0.5 * zeroth[-1], (
        f"Taylor test: the gradient term does not matter (first-order remainder {first[-1]:.3e}"
        f" vs zeroth-order {zeroth[-1]:.3e}); choose larger steps or another direction"
    )
    return result
