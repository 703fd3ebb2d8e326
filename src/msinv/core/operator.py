"""Linear operators with adjoints, in the PyLops/deepinv tradition.

Every linear(ised) forward model of msinv subclasses :class:`LinearOperator`: it declares the
shape and dtype of its model (``shape_in``) and data (``shape_out``) arrays and implements
``forward`` and ``adjoint``. A subclass that defines the class method ``example(rng)`` (a small
instance for tests) joins a registry that one generic dot-product test walks over.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

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
