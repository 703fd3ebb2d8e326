"""Born least squares: linearised multi-frequency inversion by LSQR with regularisation.

Notes
-----
About a fixed background :math:`\\eta_b` (zero: the Born approximation) the data are linearised
as :math:`\\Lambda^f(\\eta_b + \\delta) \\approx \\Lambda^f(\\eta_b) + J^f \\delta`, and

.. math:: \\min_\\delta \\tfrac12 \\sum_f \\|J^f \\delta - (d^f - \\Lambda^f(\\eta_b))\\|^2
          + \\tfrac{w}{2} \\|L \\delta\\|^2

is solved by LSQR on the stacked real system ``[J; sqrt(w) L] delta = [r; 0]`` (``L`` the
identity or the gradient; smoothed TV by iteratively reweighted least squares, i.e. lagged
diffusivity, and a sparse ℓp model norm by IRLS with Lawson weights, both through
:func:`msinv.core.solvers.irls`). ``J^f`` is the solver's Jacobian (``jvp``/``vjp``), which for the representation
reader at :math:`\\eta_b = 0` is exactly ``M (delta * u_in)``, no factorisation needed. The
weight ``w`` is chosen by the discrepancy principle (known noise level) or the L-curve (the
corner of ``(log ||residual||, log R(delta))``, taken as the point farthest from the chord
between the curve's ends) over a geometric grid. LSQR's first
iterate is the optimally scaled back-projection ``alpha J^H d``: the zero-iteration estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.sparse.linalg import LinearOperator as SciPyOperator
from scipy.sparse.linalg import lsqr

from msinv.core.continuation import IterationRecord
from msinv.core.errors import UserInputError
from msinv.core.misfit import DataMisfit
from msinv.core.operator import LinearOperator, power_iteration
from msinv.core.regularisation import Gradient2D, Regulariser
from msinv.core.solvers import irls, lcurve_corner
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import HelmholtzSolver
from msinv.scattering.schemes import Scheme
from msinv.scattering.spec import DEFAULT_INVERSION_SCHEME, ForwardSpec, as_spec

#: Discrepancy-principle safety factor: accept ``||residual|| <= TAU * noise``.
TAU = 1.1


class LinearisedData(LinearOperator):
    """Jacobian of multi-frequency data at a background, as a real operator.

    Maps a real perturbation ``(n, n)`` to ``(n_freq, n_receivers, n_sources, 2)`` float64,
    the last axis holding real and imaginary parts of ``J^f delta`` (so that LSQR works in
    real arithmetic and returns a real model). At ``background = 0`` this is the Born operator
    of the solver's discretisation.

    Parameters
    ----------
    geometry : Geometry or ForwardSpec
        Grid and acquisition, or a forward model (its reader is used; the solves are
        complex128 with ``scheme``).
    freqs : sequence of float
    background : (n, n) float numpy.ndarray, optional
        Linearisation point (default zero).
    scheme : str, int or Scheme
        Scheme of the solver (default :data:`~msinv.scattering.spec.DEFAULT_INVERSION_SCHEME`).
    receiver_interpolation : str, optional
        Receiver reader (default: the spec's, ``"representation"`` for a geometry).
    """

    real_model = True

    def __init__(
        self,
        geometry: Geometry | ForwardSpec,
        freqs: Sequence[float],
        *,
        background: np.ndarray | None = None,
        scheme: Scheme | str | int = DEFAULT_INVERSION_SCHEME,
        receiver_interpolation: str | None = None,
    ):
        spec = as_spec(
            geometry,
            scheme=scheme,
            dtype=np.complex128,
            receiver_interpolation=receiver_interpolation,
        )
        geometry = spec.geometry
        n = geometry.n
        eta_b = np.zeros((n, n)) if background is None else np.asarray(background, dtype=float)
        self.solvers = [HelmholtzSolver(spec, eta_b, f) for f in freqs]
        self.shape_in = (n, n)
        self.shape_out = (len(self.solvers), geometry.n_receivers, geometry.n_sources, 2)
        self.dtype = np.dtype(np.float64)

    def forward(self, x):
        out = np.empty(self.shape_out)
        for k, s in enumerate(self.solvers):
            d = s.jvp(np.asarray(x, dtype=float))
            out[k, ..., 0], out[k, ..., 1] = d.real, d.imag
        return out

    def adjoint(self, y):
        y = np.asarray(y)
        return sum(s.vjp(y[k, ..., 0] + 1j * y[k, ..., 1]) for k, s in enumerate(self.solvers))

    def background_data(self) -> np.ndarray:
        """``(n_freq, n_receivers, n_sources)`` complex data at the background."""
        return np.stack([s.data() for s in self.solvers]).astype(np.complex128)

    @classmethod
    def example(cls, rng):
        g = Geometry(n=16, pml_width=4, n_sources=3, n_receivers=5)
        return cls(g, [1.0, 2.0], background=0.1 * rng.random((16, 16)))


def _stacked(a: LinearOperator, l_op: LinearOperator | None, scale: np.ndarray | float):
    """SciPy operator ``[A; scale * L]`` on flattened real vectors (``L`` = identity if None)."""
    n_in = int(np.prod(a.shape_in))
    n_a = int(np.prod(a.shape_out))
    n_l = n_in if l_op is None else int(np.prod(l_op.shape_out))

    def mv(v):
        x = v.reshape(a.shape_in)
        lx = x if l_op is None else l_op.forward(x)
        return np.concatenate([a.forward(x).ravel(), (scale * lx).ravel()])

    def rmv(w):
        y, z = w[:n_a].reshape(a.shape_out), w[n_a:]
        z = z.reshape(a.shape_in if l_op is None else l_op.shape_out) * scale
        return (a.adjoint(y) + (z if l_op is None else l_op.adjoint(z))).ravel()

    return SciPyOperator((n_a + n_l, n_in), matvec=mv, rmatvec=rmv, dtype=np.float64), n_l


def _solve(a, rhs, reg: Regulariser | None, weight: float, iterations: int, x0=None):
    """One regularised LSQR solve (TV and ℓp by 5 re-weightings with :func:`irls`)."""
    if reg is None or weight == 0:
        return lsqr(a.as_scipy(), rhs.ravel(), iter_lim=iterations, x0=x0)[0].reshape(a.shape_in)
    if reg.kind == "tikhonov":
        x = lsqr(a.as_scipy(), rhs.ravel(), damp=np.sqrt(weight), iter_lim=iterations)[0]
        return x.reshape(a.shape_in)
    l_op = None if reg.kind == "lp" else Gradient2D(a.shape_in)
    x = np.zeros(a.shape_in) if x0 is None else np.asarray(x0).reshape(a.shape_in)
    scale = {"w": 1.0}

    def reweight(x, _k):
        if reg.kind == "tv":
            scale["w"] = reg.irls_weights(x)[None]
        elif reg.kind == "lp":
            scale["w"] = reg.irls_weights(x)

    def solve(x):
        op, n_l = _stacked(a, l_op, np.sqrt(weight * scale["w"]))
        b = np.concatenate([rhs.ravel(), np.zeros(n_l)])
        return lsqr(op, b, iter_lim=iterations, x0=x.ravel())[0].reshape(a.shape_in)

    return irls(solve, reweight, x, max_iter=1 if reg.kind == "gradient" else 5).x


def born_ls(
    data: np.ndarray,
    geometry: Geometry | ForwardSpec,
    freqs: Sequence[float],
    *,
    iterations: int = 100,
    reg: Regulariser | None = None,
    weight_rule: str = "fixed",
    noise: float | None = None,
    n_weights: int = 12,
    background: np.ndarray | None = None,
    scheme: Scheme | str | int = DEFAULT_INVERSION_SCHEME,
    callback: Callable[[IterationRecord], bool | None] | None = None,
    receiver_interpolation: str | None = None,
) -> np.ndarray:
    """Born (linearised) least-squares inversion of multi-frequency data.

    Parameters
    ----------
    data : (n_freq, n_receivers, n_sources) complex numpy.ndarray
        Observed data for ``freqs``.
    geometry : Geometry or ForwardSpec
        Grid and acquisition, or the data's forward model (see :class:`LinearisedData`).
    freqs : sequence of float
    iterations : int, default 100
        LSQR iteration limit per solve.
    reg : Regulariser, optional
        ``tikhonov``, ``gradient``, ``tv`` or ``lp`` (``reg="lp:WEIGHT:P"`` on the CLI); its ``weight`` is used with ``weight_rule="fixed"``
        and, for the other rules, scales nothing (the rule picks the weight).
    weight_rule : {"fixed", "discrepancy", "lcurve"}, default 'fixed'
        How the weight is chosen; the automatic rules scan ``n_weights`` weights geometrically
        spaced from ``sigma_max^2`` down by 1e-7 (``sigma_max`` by power iteration).
    noise : float, optional
        Relative noise level ``||e|| / ||d||`` (needed by ``"discrepancy"``).
    background : (n, n) float numpy.ndarray, optional
        Linearisation point (default 0: Born).
    scheme : str, int or Scheme
        Scheme of the inversion.
    callback : callable, optional
        Receives an :class:`~msinv.core.continuation.IterationRecord` per tried weight
        (``label="w=..."``, ``misfit`` the relative data residual).

    Returns
    -------
    (n, n) float64 numpy.ndarray
        ``background + delta``.
    """
    a = LinearisedData(
        geometry,
        freqs,
        background=background,
        scheme=scheme,
        receiver_interpolation=receiver_interpolation,
    )
    n = a.shape_in[0]
    if weight_rule not in ("fixed", "discrepancy", "lcurve"):
        raise UserInputError(
            f"weight_rule={weight_rule!r}: expected 'fixed', 'discrepancy' or 'lcurve'"
        )
    if weight_rule == "discrepancy" and not (noise is not None and noise > 0):
        raise UserInputError("the discrepancy principle needs the relative noise level noise > 0")
    if weight_rule != "fixed" and reg is None:
        reg = Regulariser("tikhonov", 0.0)
    d = np.asarray(data, dtype=np.complex128)
    if d.shape != a.shape_out[:3]:
        raise UserInputError(f"data has shape {d.shape}: expected {a.shape_out[:3]}")
    r = d - a.background_data() if background is not None else d
    rhs = np.stack([r.real, r.imag], axis=-1)
    scale = float(np.linalg.norm(rhs))
    if scale == 0:
        raise UserInputError("the data are all zero: nothing to invert")
    rhs = rhs / scale
    eta_b = np.zeros((n, n)) if background is None else np.asarray(background, dtype=float)

    def report(k, label, x, res):
        if callback is not None:
            callback(IterationRecord(k, label, iterations, res, np.nan, eta_b + scale * x))

    residual = DataMisfit(a, rhs).residual_norm

    if weight_rule == "fixed":
        weight = 0.0 if reg is None else reg.weight
        x = _solve(a, rhs, reg, weight, iterations)
        report(0, f"w={weight:.3g}", x, residual(x))
        return eta_b + scale * x

    sigma2, _ = power_iteration(lambda v: a.adjoint(a.forward(v)), np.ones((n, n)) / n, 15)
    weights = sigma2 * np.logspace(0, -7, n_weights)
    sols, res, reg_norm = [], [], []
    for k, w in enumerate(weights):
        x = _solve(a, rhs, reg, w, iterations)
        sols.append(x)
        res.append(residual(x))
        rv, _ = Regulariser(reg.kind, 1.0, reg.eps, reg.p)(x)
        reg_norm.append(max(rv, 1e-300))
        report(k, f"w={w:.3g}", x, res[-1])
        if weight_rule == "discrepancy" and res[-1] <= TAU * noise:
            return eta_b + scale * x
    if weight_rule == "discrepancy":
        return eta_b + scale * sols[-1]
    return eta_b + scale * sols[lcurve_corner(res, reg_norm)]


def filtered_backprojection(
    data: np.ndarray,
    geometry: Geometry,
    freqs: Sequence[float],
    *,
    eps: float = 1e-2,
    iterations: int = 50,
) -> np.ndarray:
    """Filtered back-projection from far-field data: the zero-iteration Born estimate.

    Parameters
    ----------
    data : (n_freq, n_receivers, n_sources) complex numpy.ndarray
        Near-field data on the receiver circle, as returned by ``simulate``.
    geometry : Geometry
    freqs : sequence of float
    eps : float, default 0.01
        Tikhonov filter relative to the largest eigenvalue of :math:`\\sum_\\omega F^*F`.
    iterations : int, default 50
        Conjugate-gradient iterations on the normal equations.

    Returns
    -------
    (n, n) numpy.ndarray
        :math:`\\eta^* = (\\sum_\\omega \\mathrm{Re}\\,F_\\omega^* F_\\omega + \\epsilon I)^{-1}
        \\sum_\\omega \\mathrm{Re}\\,F_\\omega^* \\Lambda^\\infty_\\omega`.

    Notes
    -----
    The data are mapped to the far field by :func:`msinv.scattering.born.near_to_far`;
    :math:`F_\\omega` is the asymptotic far-field Born map
    :math:`(F\\eta)(r, s) \\propto \\int e^{i\\omega(s - r)\\cdot y}\\eta(y)\\,dy` of
    :class:`msinv.scattering.born.BackProjection` (whose ``forward`` is :math:`F^*`).
    :math:`F^*F` is a convolution (translation-equivariant), so the filter resolves the
    low-passed contrast; it is the starting point that Born least squares refines.
    """
    from scipy.sparse.linalg import cg

    from msinv.scattering.born import BackProjection, near_to_far

    freqs = [float(f) for f in freqs]
    bp = BackProjection(geometry, freqs, far_field_input=True)
    far = np.stack([near_to_far(d, geometry, f) for d, f in zip(data, freqs, strict=True)])
    n = geometry.n

    def normal(v):
        alpha = bp.forward(bp.far_field_born(v.reshape(n, n)))
        return alpha.real.sum(axis=0).ravel()

    # largest eigenvalue of the normal operator (it is symmetric, PSD)
    lam, _ = power_iteration(normal, np.ones(n * n) / n, 10)
    op = SciPyOperator((n * n, n * n), matvec=lambda x: normal(x) + eps * lam * x, dtype=float)
    rhs = bp.forward(far).real.sum(axis=0).ravel()
    eta, _ = cg(op, rhs, maxiter=iterations)
    return eta.reshape(n, n)
