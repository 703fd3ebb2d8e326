"""Generic regularisers of 2-D images: Tikhonov (identity, gradient) and smoothed total variation.

Each :class:`Regulariser` returns its value and gradient (for quasi-Newton methods such as FWI)
and, for the quadratic kinds, the linear operator ``L`` with ``R(x) = weight/2 ||L x||^2`` (for
stacked least squares such as Born LSQR). Engine-specific regularisation (e.g. the gravity
engine's depth-weighted norms) lives with its engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator

#: Regulariser kinds: ``tikhonov`` (identity), ``gradient`` (first differences), ``tv``.
KINDS = ("tikhonov", "gradient", "tv")


class Gradient2D(LinearOperator):
    """Forward differences of an image, zero across the last row/column (Neumann).

    Maps ``(n0, n1)`` real to ``(2, n0, n1)`` real: ``[x[i+1, j] - x[i, j], x[i, j+1] - x[i, j]]``
    (unit spacing).
    """

    real_model = True

    def __init__(self, shape: tuple[int, int]):
        self.shape_in = tuple(int(s) for s in shape)
        self.shape_out = (2, *self.shape_in)
        self.dtype = np.dtype(np.float64)

    def forward(self, x):
        out = np.zeros(self.shape_out)
        out[0, :-1] = x[1:] - x[:-1]
        out[1, :, :-1] = x[:, 1:] - x[:, :-1]
        return out

    def adjoint(self, y):
        x = np.zeros(self.shape_in)
        x[1:] += y[0, :-1]
        x[:-1] -= y[0, :-1]
        x[:, 1:] += y[1, :, :-1]
        x[:, :-1] -= y[1, :, :-1]
        return x

    @classmethod
    def example(cls, rng):
        return cls((5, 4))


@dataclass(frozen=True)
class Regulariser:
    """``R(x)`` for a 2-D image ``x``.

    Parameters
    ----------
    kind : {"tikhonov", "gradient", "tv"}
        ``tikhonov``: ``weight/2 ||x||^2``; ``gradient``: ``weight/2 ||D x||^2``;
        ``tv``: ``weight sum sqrt(|D x|^2 + eps^2)`` (smoothed total variation).
    weight : float
        Regularisation weight (>= 0).
    eps : float
        Smoothing of TV (> 0), in the units of ``x`` per pixel.

    Notes
    -----
    ``D`` is :class:`Gradient2D` (forward differences, unit spacing). The TV gradient is
    ``weight D^T (D x / sqrt(|D x|^2 + eps^2))``.
    """

    kind: str = "tikhonov"
    weight: float = 0.0
    eps: float = 1e-3

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserInputError(f"regulariser kind {self.kind!r}: expected one of {KINDS}")
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise UserInputError(
                f"regulariser weight {self.weight!r}: expected a finite number >= 0"
            )
        if not self.eps > 0:
            raise UserInputError(f"TV smoothing eps {self.eps!r}: expected > 0")

    @classmethod
    def parse(cls, spec: str | None) -> Regulariser | None:
        """``"tv:1e-3"``, ``"gradient:0.1"``, ``"tikhonov:1e-2"`` (or ``None``/``"none"``)."""
        if spec is None or spec == "none":
            return None
        kind, sep, weight = spec.partition(":")
        try:
            value = float(weight) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if kind not in KINDS or not np.isfinite(value):
            raise UserInputError(
                f"regulariser {spec!r}: expected KIND:WEIGHT with KIND in {KINDS}, e.g. 'tv:1e-3'"
            )
        return cls(kind, value)

    def operator(self, shape: tuple[int, int]) -> LinearOperator | None:
        """``L`` with ``R = weight/2 ||L x||^2`` for the quadratic kinds (``None`` for identity)."""
        if self.kind == "gradient":
            return Gradient2D(shape)
        if self.kind == "tikhonov":
            return None
        raise UserInputError("total variation is not quadratic: it has no single operator L")

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and gradient at ``x`` (n0, n1)."""
        if self.kind == "tikhonov":
            return 0.5 * self.weight * float(np.sum(x * x)), self.weight * x
        d = Gradient2D(x.shape)
        dx = d.forward(x)
        if self.kind == "gradient":
            return 0.5 * self.weight * float(np.sum(dx * dx)), self.weight * d.adjoint(dx)
        mag = np.sqrt(np.sum(dx * dx, axis=0) + self.eps**2)
        return self.weight * float(mag.sum()), self.weight * d.adjoint(dx / mag)

    def irls_weights(self, x: np.ndarray) -> np.ndarray:
        """Lagged-diffusivity weights ``1 / sqrt(|D x|^2 + eps^2)`` (n0, n1) for TV by IRLS."""
        dx = Gradient2D(x.shape).forward(x)
        return 1.0 / np.sqrt(np.sum(dx * dx, axis=0) + self.eps**2)
