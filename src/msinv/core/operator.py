"""Linear operators with adjoints, in the PyLops/deepinv tradition.

Every linear(ised) forward model of msinv subclasses :class:`LinearOperator`: it declares the
shape and dtype of its model (``shape_in``) and data (``shape_out``) arrays and implements
``forward`` and ``adjoint``. A subclass that defines the class method ``example(rng)`` (a small
instance for tests) joins a registry that one generic dot-product test walks over.

Operators compose as in PyLops: ``A + B`` and ``A - B`` (same shapes), ``A @ B`` (``B`` first),
``c * A`` (a scalar), ``A.H`` (the adjoint); ``A @ x`` on an array applies ``A``. ``A.norm()``
estimates the spectral norm by :func:`power_iteration` on ``A^H A``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from msinv.core.errors import UserInputError

_REGISTRY: dict[str, type[LinearOperator]] = {}


class LinearOperator(ABC):
    """A linear map ``A: shape_in -> shape_out`` with its adjoint ``A^H``.

    Attributes
    ----------
    shape_in : tuple of int
        Shape of the model array ``x``.
    shape_out : tuple of int
        Shape of the data array ``y = A x``.
    dtype : numpy.dtype
        Working dtype; complex operators take and return complex arrays.

    Notes
    -----
    The adjoint is defined by the Euclidean inner product :math:`\\langle A x, y \\rangle =
    \\langle x, A^H y \\rangle` with :math:`\\langle a, b \\rangle = \\sum \\bar a b`; for a real
    model space the real part of that identity holds. :func:`dottest` checks it.
    """

    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]
    dtype: np.dtype
    #: True when the model space is real (e.g. a density or contrast image).
    real_model: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "example" in cls.__dict__:
            _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the operator: ``(*shape_in) -> (*shape_out)``."""

    @abstractmethod
    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """Apply the adjoint: ``(*shape_out) -> (*shape_in)``."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    @property
    def H(self) -> LinearOperator:
        """The adjoint operator as an object."""
        return _Adjoint(self)

    def __matmul__(self, other):
        if isinstance(other, LinearOperator):
            return _Product(self, other)
        return self.forward(other)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        return _Sum(self, other, 1.0)

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        return _Sum(self, other, -1.0)

    def __mul__(self, scalar) -> LinearOperator:
        if not np.isscalar(scalar):
            raise TypeError("an operator multiplies a scalar; use @ for a product of operators")
        return _Scaled(self, scalar)

    __rmul__ = __mul__

    def norm(self, iterations: int = 30, rng: np.random.Generator | None = None) -> float:
        """Spectral norm ``||A||_2`` by :func:`power_iteration` on ``A^H A``.

        Parameters
        ----------
        iterations : int, default 30
            Power iterations (each one ``forward`` and one ``adjoint``).
        rng : numpy.random.Generator, optional
            Source of the random start (seed 0 by default: the estimate is reproducible).

        Returns
        -------
        float
            A lower bound of the norm, converging to it geometrically at the rate
            :math:`(\\sigma_2/\\sigma_1)^2` per iteration.
        """
        rng = np.random.default_rng(0) if rng is None else rng
        v0 = _random(self.shape_in, self.dtype, rng, self.real_model)
        lam, _ = power_iteration(lambda v: self.adjoint(self.forward(v)), v0, iterations)
        return float(np.sqrt(lam))

    def as_scipy(self):
        """A :class:`scipy.sparse.linalg.LinearOperator` on flattened arrays (for LSQR, CG...)."""
        from scipy.sparse.linalg import LinearOperator as _SciPyOp

        n_in, n_out = int(np.prod(self.shape_in)), int(np.prod(self.shape_out))
        return _SciPyOp(
            (n_out, n_in),
            matvec=lambda v: self.forward(v.reshape(self.shape_in)).ravel(),
            rmatvec=lambda v: self.adjoint(v.reshape(self.shape_out)).ravel(),
            dtype=self.dtype,
        )


class _Adjoint(LinearOperator):
    def __init__(self, op: LinearOperator):
        self.op = op
        self.shape_in, self.shape_out, self.dtype = op.shape_out, op.shape_in, op.dtype

    def forward(self, x):
        return self.op.adjoint(x)

    def adjoint(self, y):
        return self.op.forward(y)

    @property
    def H(self):
        return self.op


def _check_shapes(a: LinearOperator, b: LinearOperator, what: str, ok: bool) -> None:
    if not ok:
        raise UserInputError(
            f"cannot {what} operators of shapes {a.shape_in}->{a.shape_out} and "
            f"{b.shape_in}->{b.shape_out}"
        )


class _Sum(LinearOperator):
    """``A + sign B`` (same model and data shapes)."""

    def __init__(self, a: LinearOperator, b: LinearOperator, sign: float):
        _check_shapes(a, b, "add", a.shape_in == b.shape_in and a.shape_out == b.shape_out)
        self.a, self.b, self.sign = a, b, sign
        self.shape_in, self.shape_out = a.shape_in, a.shape_out
        self.dtype = np.result_type(a.dtype, b.dtype)
        self.real_model = a.real_model and b.real_model

    def forward(self, x):
        return self.a.forward(x) + self.sign * self.b.forward(x)

    def adjoint(self, y):
        return self.a.adjoint(y) + self.sign * self.b.adjoint(y)


class _Product(LinearOperator):
    """``A B``: apply ``B`` first (``B.shape_out == A.shape_in``)."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        _check_shapes(a, b, "compose", tuple(b.shape_out) == tuple(a.shape_in))
        self.a, self.b = a, b
        self.shape_in, self.shape_out = b.shape_in, a.shape_out
        self.dtype = np.result_type(a.dtype, b.dtype)
        self.real_model = b.real_model

    def forward(self, x):
        return self.a.forward(self.b.forward(x))

    def adjoint(self, y):
        return self.b.adjoint(self.a.adjoint(y))


class _Scaled(LinearOperator):
    """``c A`` for a scalar ``c``; the adjoint applies ``A^H`` to ``conj(c) y``.

    ``A^H (conj(c) y) = conj(c) A^H y`` by linearity, and applied in this order it stays right
    for a real-model ``A`` whose adjoint returns ``Re(A^H y)`` (the Born operator): there
    ``conj(c) Re(A^H y)`` would lose ``Im(A^H y)``, which ``Re(conj(c) A^H y)`` needs for a
    complex ``c``.
    """

    def __init__(self, op: LinearOperator, scalar):
        self.op, self.scalar = op, scalar
        self.shape_in, self.shape_out = op.shape_in, op.shape_out
        self.dtype = np.result_type(op.dtype, np.asarray(scalar).dtype)
        self.real_model = op.real_model

    def forward(self, x):
        return self.scalar * self.op.forward(x)

    def adjoint(self, y):
        return self.op.adjoint(np.conj(self.scalar) * y)


class Diagonal(LinearOperator):
    """``diag(d)``: elementwise multiplication by a fixed array (weights, scalings).

    Parameters
    ----------
    d : numpy.ndarray
        The diagonal, any shape (the operator's model and data shape).
    """

    def __init__(self, d: np.ndarray):
        self.d = np.asarray(d)
        self.shape_in = self.shape_out = self.d.shape
        self.dtype = np.result_type(self.d.dtype, np.float64)
        self.real_model = self.d.dtype.kind != "c"

    def forward(self, x):
        return self.d * x

    def adjoint(self, y):
        return np.conj(self.d) * y

    @classmethod
    def example(cls, rng):
        return cls(rng.standard_normal((3, 4)))


def power_iteration(
    apply: Callable[[np.ndarray], np.ndarray], v0: np.ndarray, iterations: int
) -> tuple[float, np.ndarray]:
    """Largest eigenvalue of a symmetric positive semi-definite map by power iteration.

    Parameters
    ----------
    apply : callable
        ``v -> M v`` (M symmetric PSD, e.g. ``A^H A``), any array shape.
    v0 : numpy.ndarray
        Starting vector (not orthogonal to the dominant eigenvector); it is not normalised
        first, so the first estimate is ``||M v0||``.
    iterations : int
        Number of products (>= 1).

    Returns
    -------
    lam : float
        ``||M v_{k-1}||`` after the last product, with ``v_k = M v_{k-1} / ||M v_{k-1}||``.
    v : numpy.ndarray
        The last normalised iterate (an approximate dominant eigenvector).

    Notes
    -----
    The estimate converges to :math:`\\lambda_1` at the rate :math:`\\lambda_2/\\lambda_1` per
    iteration from below (for a unit starting vector).
    """
    if iterations < 1:
        raise UserInputError(f"power iteration needs iterations >= 1, got {iterations}")
    v, lam = v0, 0.0
    for _ in range(iterations):
        v = apply(v)
        lam = float(np.linalg.norm(v))
        v /= lam
    return lam, v


def registered_operators() -> dict[str, type[LinearOperator]]:
    """Operator classes that provide ``example(rng)``, keyed by qualified name."""
    return dict(_REGISTRY)


def _random(shape, dtype, rng: np.random.Generator, real: bool) -> np.ndarray:
    dtype = np.dtype(dtype)
    x = rng.standard_normal(shape)
    if real or dtype.kind != "c":
        return x.astype(np.finfo(dtype).dtype)
    return (x + 1j * rng.standard_normal(shape)).astype(dtype)


def dottest(op: LinearOperator, rng: np.random.Generator, *, rtol: float | None = None) -> float:
    """Dot-product test :math:`\\langle A x, y \\rangle = \\langle x, A^H y \\rangle`.

    Parameters
    ----------
    op : LinearOperator
        Operator under test.
    rng : numpy.random.Generator
        Source of the random ``x`` and ``y``.
    rtol : float, optional
        Tolerance on the relative mismatch; defaults to 1e-4 for single and 1e-10 for double
        precision.

    Returns
    -------
    float
        The relative mismatch ``|<Ax, y> - <x, A^H y>| / (|<Ax, y>| + tiny)``.

    Raises
    ------
    AssertionError
        When the mismatch exceeds ``rtol`` or the operator returns the wrong shape.
    """
    x = _random(op.shape_in, op.dtype, rng, op.real_model)
    y = _random(op.shape_out, op.dtype, rng, False)
    ax, ahy = np.asarray(op.forward(x)), np.asarray(op.adjoint(y))
    assert ax.shape == tuple(op.shape_out), f"forward gave {ax.shape}, expected {op.shape_out}"
    assert ahy.shape == tuple(op.shape_in), f"adjoint gave {ahy.shape}, expected {op.shape_in}"
    lhs = np.vdot(ax.astype(np.complex128), y.astype(np.complex128))
    rhs = np.vdot(x.astype(np.complex128), ahy.astype(np.complex128))
    if op.real_model:
        lhs, rhs = lhs.real, rhs.real
    err = float(abs(lhs - rhs) / (abs(lhs) + 1e-300))
    if rtol is None:
        single = np.dtype(op.dtype) in (np.dtype(np.float32), np.dtype(np.complex64))
        rtol = 1e-4 if single else 1e-10
    assert err <= rtol, f"{type(op).__name__}: dot-product test mismatch {err:.2e} > {rtol:.0e}"
    return err
