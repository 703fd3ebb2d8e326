"""Full-waveform inversion: multi-frequency data misfit, adjoint-state gradient, continuation.

Notes
-----
For the frequencies ``F`` of a stage the objective is

.. math:: J(\\eta) = \\frac{\\tfrac12 \\sum_{f\\in F} \\|\\Lambda^f(\\eta) - d^f\\|^2}
          {\\sum_{f\\in F} \\|d^f\\|^2} + R(\\eta),

``Lambda^f`` the data of :class:`~msinv.scattering.helmholtz.HelmholtzSolver` (receivers by the
representation formula by default, so the data depend on eta directly as well as through the
field). Its gradient is ``sum_f vjp_f(Lambda^f - d^f) / sum ||d^f||^2 + grad R``: per frequency
and evaluation one LU factorisation of ``A(eta, omega)`` and one of ``A^H``, one forward and
one adjoint block solve, each with ``n_sources`` right-hand sides (see
:data:`~msinv.scattering.helmholtz.ADJOINT_FACTOR_MIN_RHS`). Stages are run
by :func:`msinv.core.continuation.continuation` with L-BFGS-B restarted at each stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from msinv.core.continuation import ContinuationResult, IterationRecord, continuation
from msinv.core.errors import UserInputError
from msinv.core.regularisation import Regulariser
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import HelmholtzSolver
from msinv.scattering.schemes import Scheme
from msinv.scattering.spec import DEFAULT_INVERSION_SCHEME, ForwardSpec, as_spec

#: Default scheme of the inversion: differs from the data's default (``"compact-opt"``), the
#: paper's guard against the inverse crime (the paper inverted with order 4 against order 8);
#: a 3 x 3 stencil, so an FWI gradient costs what a compact forward solve costs.
DEFAULT_SCHEME = DEFAULT_INVERSION_SCHEME

#: Default bounds on eta: keeps 1 + eta > 0 (a positive squared slowness).
DEFAULT_BOUNDS = (-0.9, None)


class Misfit:
    """The normalised multi-frequency FWI objective and its adjoint-state gradient.

    Parameters
    ----------
    geometry : Geometry or ForwardSpec
        Grid and acquisition of the data, or the data's forward model (its receiver reader is
        used; its scheme and precision are not: see ``scheme`` and ``dtype``).
    data : (n_freq, n_receivers, n_sources) complex numpy.ndarray
        Observed data for ``freqs``.
    freqs : sequence of float
        Frequencies of ``data`` (ordinary, > 0).
    use : sequence of float, optional
        The subset of ``freqs`` entering the objective (default: all).
    scheme : str, int or Scheme
        Scheme of the inversion's solver (default :data:`DEFAULT_SCHEME`).
    reg : Regulariser, optional
        Added to the normalised data term.
    dtype : numpy.dtype
        Precision of the solves (complex128 by default: gradients for L-BFGS-B).
    receiver_interpolation : str, optional
        Receiver reader of the solver (must match how ``data`` were read); default the spec's,
        ``"representation"`` for a geometry.

    Attributes
    ----------
    evaluations : int
        Calls so far (each one forward and one adjoint solve per frequency).
    last_relative_misfit : float
        ``||Lambda(eta) - d|| / ||d||`` at the last call; NaN before the first.
    """

    def __init__(
        self,
        geometry: Geometry | ForwardSpec,
        data: np.ndarray,
        freqs: Sequence[float],
        *,
        use: Sequence[float] | None = None,
        scheme: Scheme | str | int = DEFAULT_SCHEME,
        reg: Regulariser | None = None,
        dtype=np.complex128,
        receiver_interpolation: str | None = None,
    ):
        self.spec = as_spec(
            geometry, scheme=scheme, dtype=dtype, receiver_interpolation=receiver_interpolation
        )
        geometry = self.spec.geometry
        freqs = [float(f) for f in freqs]
        data = np.asarray(data)
        expected = (len(freqs), geometry.n_receivers, geometry.n_sources)
        if data.shape != expected:
            raise UserInputError(
                f"data has shape {data.shape}: expected {expected} (n_freq, n_rec, n_src)"
            )
        use = freqs if use is None else [float(f) for f in use]
        missing = [f for f in use if not any(np.isclose(f, g) for g in freqs)]
        if missing:
            raise UserInputError(f"frequencies {missing} are not among the data's {freqs}")
        self.geometry, self.reg = geometry, reg
        self.freqs = use
        self.data = [
            data[int(np.argmin(np.abs(np.array(freqs) - f)))].astype(np.complex128) for f in use
        ]
        self.norm2 = float(sum(np.vdot(d, d).real for d in self.data))
        if self.norm2 == 0:
            raise UserInputError(
                "the data are all zero at the chosen frequencies: nothing to invert"
            )
        self.evaluations = 0
        self.last_relative_misfit = np.nan

    def solver(self, eta: np.ndarray, freq: float) -> HelmholtzSolver:
        """The forward solver (one factorisation) at ``eta`` and ``freq``."""
        return HelmholtzSolver(self.spec, eta, freq)

    def __call__(self, eta: np.ndarray) -> tuple[float, np.ndarray]:
        """Objective and gradient at ``eta`` (n, n); the gradient has shape (n, n)."""
        eta = np.asarray(eta, dtype=float).reshape(self.geometry.n, self.geometry.n)
        value, grad = 0.0, np.zeros_like(eta)
        for f, d in zip(self.freqs, self.data, strict=True):
            s = self.solver(eta, f)
            r = s.data().astype(np.complex128) - d
            value += 0.5 * float(np.vdot(r, r).real)
            grad += s.vjp(r)
        self.evaluations += 1
        self.last_relative_misfit = float(np.sqrt(2 * value / self.norm2))
        value, grad = value / self.norm2, grad / self.norm2
        if self.reg is not None and self.reg.weight > 0:
            rv, rg = self.reg(eta)
            value, grad = value + rv, grad + rg
        return value, grad

    def relative_misfit(self, eta: np.ndarray) -> float:
        """``sqrt(sum ||Lambda(eta) - d||^2 / sum ||d||^2)`` (no regularisation term)."""
        self(eta)
        return self.last_relative_misfit


def default_schedule(freqs: Sequence[float]) -> list[list[float]]:
    """One stage per frequency, low to high."""
    return [[float(f)] for f in sorted(float(f) for f in freqs)]


def fwi(
    data: np.ndarray,
    geometry: Geometry | ForwardSpec,
    freqs: Sequence[float],
    *,
    schedule: Sequence[Sequence[float]] | None = None,
    iterations: int = 100,
    reg: Regulariser | None = None,
    bounds: tuple[float | None, float | None] | None = DEFAULT_BOUNDS,
    eta0: np.ndarray | None = None,
    scheme: Scheme | str | int = DEFAULT_SCHEME,
    callback: Callable[[IterationRecord], bool | None] | None = None,
    dtype=np.complex128,
    receiver_interpolation: str | None = None,
) -> ContinuationResult:
    """FWI with frequency continuation (one L-BFGS-B run of ``iterations`` per stage).

    Parameters
    ----------
    data : (n_freq, n_receivers, n_sources) complex numpy.ndarray
        Observed data for ``freqs``.
    geometry : Geometry or ForwardSpec
    freqs : sequence of float
    schedule : list of lists of float, optional
        Frequency groups, one stage each (default :func:`default_schedule`).
    iterations : int, default 100
        L-BFGS-B iterations per stage.
    reg, bounds, eta0, scheme, callback, dtype, receiver_interpolation
        See :func:`msinv.scattering.inversion.invert` and :class:`Misfit`.

    Returns
    -------
    ContinuationResult
        ``.model`` the (n, n) estimate; ``.stages`` per-stage iterations and misfits.
    """
    from msinv.core.continuation import stages_from_groups

    schedule = default_schedule(freqs) if schedule is None else schedule
    stages = stages_from_groups(
        [[float(f) for f in group] for group in schedule], max_iter=iterations
    )
    spec = as_spec(
        geometry, scheme=scheme, dtype=dtype, receiver_interpolation=receiver_interpolation
    )
    n = spec.geometry.n
    x0 = np.zeros((n, n)) if eta0 is None else np.asarray(eta0, dtype=float)
    if x0.shape != (n, n):
        raise UserInputError(f"eta0 has shape {x0.shape}: expected ({n}, {n})")

    def objective(stage):
        m = Misfit(spec, data, freqs, use=stage.payload, scheme=spec.scheme, reg=reg, dtype=dtype)
        return lambda x: (lambda v, g: (v, g.ravel()))(*m(x))

    return continuation(stages, objective, x0, bounds=bounds, callback=callback)
