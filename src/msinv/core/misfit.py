"""The data misfit of a linear(ised) forward operator: one implementation for every engine.

.. math:: \\phi_d(x) = \\| W_d (A x - d) \\|^2, \\qquad W_d = \\mathrm{diag}(1/\\sigma)

Gravity's φ_d (σ the data's standard deviations) and the Born least-squares residual (σ = 1)
are both this object; its normal-equation pieces (:meth:`DataMisfit.normal`,
:meth:`DataMisfit.normal_rhs`) feed the conjugate-gradient solvers of :mod:`msinv.core.solvers`.
"""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator


class DataMisfit:
    """``φ_d(x) = Σ_i |(A x − d)_i|² / σ_i²``.

    Parameters
    ----------
    operator : LinearOperator
        ``A``: model -> data.
    data : numpy.ndarray
        Observed data ``d`` (``operator.shape_out``).
    sigma : numpy.ndarray or float, optional
        Standard deviations (> 0, broadcastable to the data); 1 by default.
    """

    def __init__(self, operator: LinearOperator, data: np.ndarray, sigma=None):
        self.operator = operator
        self.data = np.asarray(data)
        if self.data.shape != tuple(operator.shape_out):
            raise UserInputError(
                f"data have shape {self.data.shape}, the operator gives {tuple(operator.shape_out)}"
            )
        if sigma is None:
            self.wd2: np.ndarray | float = 1.0
        else:
            s = np.asarray(sigma, dtype=np.float64)
            if s.shape not in ((), self.data.shape):
                raise UserInputError(f"sigma must be a number or {self.data.shape[0]} values")
            if np.any(~(s > 0)):
                raise UserInputError("uncertainties must be > 0")
            self.wd2 = 1.0 / s**2

    def residual(self, x: np.ndarray) -> np.ndarray:
        """``A x − d``."""
        return self.operator.forward(x) - self.data

    def __call__(self, x: np.ndarray) -> float:
        """``φ_d(x)``."""
        return self.value_of_residual(self.residual(x))

    def value_of_residual(self, r: np.ndarray) -> float:
        """``Σ |r|² / σ²`` for a residual already computed."""
        return float(np.sum(self.wd2 * np.abs(r) ** 2))

    def residual_norm(self, x: np.ndarray) -> float:
        """``||W_d (A x − d)||`` (the square root of φ_d, computed as a 2-norm)."""
        return float(np.linalg.norm(np.sqrt(self.wd2) * self.residual(x)))

    def normal(self, v: np.ndarray) -> np.ndarray:
        """``A^H W_d² A v`` (half the Hessian)."""
        return self.operator.adjoint(self.wd2 * self.operator.forward(v))

    def normal_rhs(self) -> np.ndarray:
        """``A^H W_d² d``."""
        return self.operator.adjoint(self.wd2 * self.data)
