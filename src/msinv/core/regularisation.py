"""Regularisation: weighted least-squares terms, ℓp norms by IRLS, and generic image regularisers.

* :class:`WeightedTerm` is one term ``φ(x) = Σ_i w_i |(L x − b)_i|²`` whose weights are a product
  of named factors that can be set and updated after construction (a user's weights file,
  the IRLS weights of a sparse norm). Engines build their model objectives from such terms
  (the gravity engine's smallness and smoothness terms).
* :class:`LpNorm` gives the Lawson (IRLS) weights of a smoothed ℓp norm; the re-weighting loop is
  :func:`msinv.core.solvers.irls`.
* :class:`Regulariser` regularises 2-D images (Tikhonov, gradient, smoothed TV, ℓp): value and
  gradient for quasi-Newton methods such as FWI and, for the quadratic kinds, the operator
  ``L`` with ``R(x) = weight/2 ||L x||^2`` for stacked least squares such as Born LSQR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator

#: Regulariser kinds: ``tikhonov`` (identity), ``gradient`` (first differences), ``tv``, ``lp``.
KINDS = ("tikhonov", "gradient", "tv", "lp")


class WeightedTerm:
    """One weighted least-squares term ``φ(x) = Σ_i w_i |(L x − b)_i|²``.

    Parameters
    ----------
    operator : LinearOperator
        ``L``: model -> residual space.
    rhs : numpy.ndarray, optional
        ``b`` (``operator.shape_out``); zero by default.

    Notes
    -----
    The weights ``w = Π_k w^{(k)}`` are the product of named factors set by
    :meth:`set_weights` (e.g. ``"user"`` from a weights file, ``"irls"`` from
    :class:`LpNorm`); with none set, ``w = 1``. Half the gradient is
    :math:`L^H W (L x - b)`, half the Hessian :math:`L^H W L` (:meth:`normal`).
    """

    def __init__(self, operator: LinearOperator, rhs: np.ndarray | None = None):
        self.operator = operator
        shape = tuple(operator.shape_out)
        self.rhs = np.zeros(shape) if rhs is None else np.asarray(rhs)
        if self.rhs.shape != shape:
            raise UserInputError(f"rhs has shape {self.rhs.shape}, the operator gives {shape}")
        self.factors: dict[str, np.ndarray] = {}
        self._weights: np.ndarray | float = 1.0

    @property
    def weights(self) -> np.ndarray | float:
        """The product of all weight factors (the float 1.0 when none is set)."""
        return self._weights

    def set_weights(self, name: str, weights: np.ndarray | None) -> None:
        """Set (or with ``None`` remove) the weight factor ``name``: >= 0, ``operator.shape_out``."""
        if weights is None:
            self.factors.pop(name, None)
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != tuple(self.operator.shape_out) or not np.all(w >= 0):
                raise UserInputError(
                    f"weights {name!r}: expected {tuple(self.operator.shape_out)} values >= 0, "
                    f"got shape {w.shape}"
                )
            self.factors[name] = w
        prod: np.ndarray | float = 1.0
        for w in self.factors.values():
            prod = prod * w
        self._weights = prod

    def residual(self, x: np.ndarray) -> np.ndarray:
        """``L x − b``."""
        return self.operator.forward(x) - self.rhs

    def value(self, x: np.ndarray) -> float:
        """``Σ w |L x − b|²``."""
        r = self.residual(x)
        return float(np.sum(self._weights * np.abs(r) ** 2))

    def normal(self, v: np.ndarray) -> np.ndarray:
        """``L^H W L v`` (half the Hessian applied to ``v``)."""
        return self.operator.adjoint(self._weights * self.operator.forward(v))

    def normal_rhs(self) -> np.ndarray:
        """``L^H W b`` (minus half the gradient at ``x = 0``)."""
        return self.operator.adjoint(self._weights * self.rhs)

    def normal_matrix(self):
        """``L^T W L`` as a SciPy sparse matrix when ``L`` has a sparse ``matrix``, else None."""
        import scipy.sparse as sp

        a = getattr(self.operator, "matrix", None)
        if a is None or not sp.issparse(a):
            return None
        w = np.broadcast_to(self._weights, (a.shape[0],))
        return (a.T @ (sp.diags_array(w) @ a)).tocsr()


@dataclass(frozen=True)
class LpNorm:
    """Smoothed ℓp norm ``ρ(r) = (r² + ε²)^{p/2}`` and its Lawson (IRLS) weights.

    Parameters
    ----------
    p : float or numpy.ndarray, default 1.0
        Exponent(s) in [0, 2] (an array: one per residual entry, GRAV3D's per-cell norms).
    eps : float, default 0.001
        Smoothing ε (> 0), in the units of the residual; below it the norm is quadratic.

    Notes
    -----
    IRLS minimises :math:`\\sum_i w_i r_i^2` with :math:`w_i = (r_i^2 + \\epsilon^2)^{(p-2)/2}`
    at the current residual (Lawson 1961; Last & Kubik 1983 for p = 0). With ``p = 2`` the
    weights are 1 (least squares).
    """

    p: float | np.ndarray = 1.0
    eps: float = 1e-3

    def __post_init__(self):
        p = np.asarray(self.p, dtype=np.float64)
        if not (np.all(p >= 0) and np.all(p <= 2)):
            raise UserInputError(f"lp norm: exponents must be in [0, 2], got {self.p}")
        if not (np.isfinite(self.eps) and self.eps > 0):
            raise UserInputError(f"lp norm: eps must be > 0, got {self.eps}")

    def weights(self, r: np.ndarray) -> np.ndarray:
        """Lawson weights ``(|r|² + ε²)^{(p−2)/2}`` of a residual (same shape)."""
        return (np.abs(r) ** 2 + self.eps**2) ** ((np.asarray(self.p) - 2.0) / 2.0)

    def __call__(self, r: np.ndarray) -> float:
        """``Σ (|r|² + ε²)^{p/2}``."""
        return float(np.sum((np.abs(r) ** 2 + self.eps**2) ** (np.asarray(self.p) / 2.0)))


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
    kind : {"tikhonov", "gradient", "tv", "lp"}, default 'tikhonov'
        ``tikhonov``: ``weight/2 ||x||^2``; ``gradient``: ``weight/2 ||D x||^2``;
        ``tv``: ``weight sum sqrt(|D x|^2 + eps^2)`` (smoothed total variation);
        ``lp``: ``weight/p sum (x^2 + eps^2)^{p/2}`` (a sparse model for p <= 1, by IRLS in
        least-squares solvers; :class:`LpNorm`).
    weight : float, default 0.0
        Regularisation weight (>= 0).
    eps : float, default 0.001
        Smoothing of TV and ℓp (> 0), in the units of ``x`` (per pixel for TV).
    p : float, default 1.0
        Exponent of ``lp`` in (0, 2].

    Notes
    -----
    ``D`` is :class:`Gradient2D` (forward differences, unit spacing). The TV gradient is
    ``weight D^T (D x / sqrt(|D x|^2 + eps^2))``.
    """

    kind: str = "tikhonov"
    weight: float = 0.0
    eps: float = 1e-3
    p: float = 1.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserInputError(f"regulariser kind {self.kind!r}: expected one of {KINDS}")
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise UserInputError(
                f"regulariser weight {self.weight!r}: expected a finite number >= 0"
            )
        if not self.eps > 0:
            raise UserInputError(f"TV smoothing eps {self.eps!r}: expected > 0")
        if not 0 < self.p <= 2:
            raise UserInputError(f"lp exponent p {self.p!r}: expected 0 < p <= 2")

    @classmethod
    def parse(cls, spec: str | None) -> Regulariser | None:
        """``"tv:1e-3"``, ``"gradient:0.1"``, ``"tikhonov:1e-2"``, ``"lp:1e-2"`` (p = 1) or
        ``"lp:1e-2:0.5"`` (``lp:WEIGHT:P``), or ``None``/``"none"``."""
        if spec is None or spec == "none":
            return None
        kind, sep, rest = spec.partition(":")
        weight, _, p = rest.partition(":") if kind == "lp" else (rest, "", "")
        try:
            value = float(weight) if sep else float("nan")
            exponent = float(p) if p else 1.0
        except ValueError:
            value = exponent = float("nan")
        if kind not in KINDS or not np.isfinite(value) or not 0 < exponent <= 2:
            raise UserInputError(
                f"regulariser {spec!r}: expected KIND:WEIGHT with KIND in {KINDS}, e.g. "
                "'tv:1e-3', or lp:WEIGHT:P with 0 < P <= 2"
            )
        return cls(kind, value, p=exponent)

    def operator(self, shape: tuple[int, int]) -> LinearOperator | None:
        """``L`` with ``R = weight/2 ||L x||^2`` for the quadratic kinds (``None`` for identity)."""
        if self.kind == "gradient":
            return Gradient2D(shape)
        if self.kind == "tikhonov":
            return None
        raise UserInputError(f"{self.kind} is not quadratic: it has no single operator L")

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and gradient at ``x`` (n0, n1)."""
        if self.kind == "tikhonov":
            return 0.5 * self.weight * float(np.sum(x * x)), self.weight * x
        if self.kind == "lp":
            norm = LpNorm(self.p, self.eps)
            return self.weight / self.p * norm(x), self.weight * norm.weights(x) * x
        d = Gradient2D(x.shape)
        dx = d.forward(x)
        if self.kind == "gradient":
            return 0.5 * self.weight * float(np.sum(dx * dx)), self.weight * d.adjoint(dx)
        mag = np.sqrt(np.sum(dx * dx, axis=0) + self.eps**2)
        return self.weight * float(mag.sum()), self.weight * d.adjoint(dx / mag)

    def irls_weights(self, x: np.ndarray) -> np.ndarray:
        """IRLS weights (n0, n1) of the quadratic surrogate ``weight/2 Σ w |L x|²``.

        TV: lagged diffusivity ``1 / sqrt(|D x|^2 + eps^2)`` on the gradient magnitude
        (``L = D``); ``lp``: Lawson weights ``(x^2 + eps^2)^{(p-2)/2}`` (``L = I``).
        """
        if self.kind == "lp":
            return LpNorm(self.p, self.eps).weights(x)
        if self.kind != "tv":
            raise UserInputError(f"{self.kind} is quadratic: it needs no IRLS weights")
        dx = Gradient2D(x.shape).forward(x)
        return 1.0 / np.sqrt(np.sum(dx * dx, axis=0) + self.eps**2)
