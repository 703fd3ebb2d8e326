"""Centred finite-difference weights of even order for first and second derivatives."""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np

from msinv.core.errors import UserInputError

#: Stencil orders offered by the solver.
ORDERS = (2, 4, 6, 8)


@cache
def centred_weights(order: int, derivative: int) -> np.ndarray:
    """Weights ``w[j]``, ``j = -m..m`` (``m = order / 2``), of a centred difference.

    Parameters
    ----------
    order : int
        Formal order of accuracy, one of 2, 4, 6, 8.
    derivative : int
        1 or 2.

    Returns
    -------
    (order + 1,) float64 numpy.ndarray
        ``f^(d)(x) ~ h^-d sum_j w[j] f(x + j h)``.

    Notes
    -----
    Solves the moment conditions :math:`\\sum_j w_j j^k = d!\\,\\delta_{kd}`, ``k = 0..2m``, in
    exact rational arithmetic.
    """
    if order not in ORDERS:
        raise UserInputError(f"stencil order {order!r}: expected one of {ORDERS}")
    if derivative not in (1, 2):
        raise UserInputError(f"derivative {derivative!r}: expected 1 or 2")
    m = order // 2
    offsets = range(-m, m + 1)
    size = 2 * m + 1
    a = [[Fraction(j) ** k for j in offsets] for k in range(size)]
    b = [Fraction(0)] * size
    b[derivative] = Fraction(1 if derivative == 1 else 2)
    # Gauss-Jordan elimination on the (exact) Vandermonde system.
    for col in range(size):
        piv = next(r for r in range(col, size) if a[r][col] != 0)
        a[col], a[piv] = a[piv], a[col]
        b[col], b[piv] = b[piv], b[col]
        for r in range(size):
            if r != col and a[r][col] != 0:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
                b[r] -= f * b[col]
    w = np.array([float(b[i] / a[i][i]) for i in range(size)])
    w.setflags(write=False)
    return w
