"""Finite-difference Helmholtz solver with a PML: fields, data, Jacobian and its adjoint.

Notes
-----
Governing equation (time convention :math:`e^{-i\\omega t}`, wave speed 1 outside the medium)
for the scattered field of the plane wave :math:`u_{in} = e^{i\\omega s\\cdot x}`:

.. math:: \\Delta_{PML} u_{sc} + \\omega^2 (1 + \\eta) u_{sc} = -\\omega^2 \\eta\\, u_{in},

with :math:`\\Delta_{PML} = \\sum_{a\\in\\{x,y\\}} s_a^{-1}\\partial_a (s_a^{-1} \\partial_a)
= s_a^{-2}\\partial_a^2 - s_a' s_a^{-3} \\partial_a`, :math:`s_a = 1 + i\\sigma(a)/\\omega`
(complex stretching that damps outgoing waves :math:`e^{i\\omega |x|}`), ``sigma`` quadratic
across the layer and zero on the contrast grid. Both derivatives are centred differences of
order 2, 4, 6 or 8; values beyond the outer edge of the PML are zero (Dirichlet). The matrix
``A(eta, omega)`` differs between samples only on the diagonal of the contrast grid, so its
eta-independent part is assembled once per (geometry, omega, order) and cached.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from threadpoolctl import threadpool_limits

from msinv.core.errors import UserInputError
from msinv.scattering.geometry import Geometry
from msinv.scattering.receivers import check_reader, interpolation_matrix, representation_matrix
from msinv.scattering.stencils import ORDERS, centred_weights

#: Stencil order chosen by ``order="auto"`` from the points per wavelength ``1 / (f h)``:
#: the lowest order whose disk-oracle error stays within the acceptance budget (see
#: benchmarks/scatter_generate.py and docs/scattering.md).
AUTO_ORDER = ((24.0, 4), (12.0, 6), (0.0, 8))

#: SuperLU settings. The matrix is structurally symmetric: it is permuted symmetrically by a
#: METIS nested dissection of its graph (computed once per grid and stencil, see
#: :func:`_ordering`), then factorised in that order with symmetric mode and a small diagonal
#: pivot threshold. Measured fill at 80 x 80 + 10-node PML, order 8: 3.3 M non-zeros in L + U
#: against 4.4 M (MMD on A^T + A) and 5.2 M (COLAMD); see benchmarks/scatter_generate.py.
SUPERLU_OPTIONS = {
    "permc_spec": "NATURAL",
    "diag_pivot_thresh": 0.001,
    "options": {"SymmetricMode": True},
}


def resolve_order(order: int | str, freq: float, geometry: Geometry) -> int:
    """The stencil order used at ``freq``: ``order`` itself, or the ``"auto"`` choice."""
    if order == "auto":
        ppw = 1.0 / (freq * geometry.h)
        return next(o for limit, o in AUTO_ORDER if ppw >= limit)
    if isinstance(order, bool) or order not in ORDERS:
        raise UserInputError(f"order={order!r}: expected one of {ORDERS} or 'auto'")
    return int(order)


def _check_freq(freq) -> float:
    f = float(freq)
    if not (math.isfinite(f) and f > 0):
        raise UserInputError(f"frequency {freq!r}: expected a finite number > 0")
    return f


def check_eta(eta, geometry: Geometry, *, batch: bool = True) -> np.ndarray:
    """Validate a contrast image or batch and return it as float64 ``(b, n, n)``.

    Raises
    ------
    ValueError
        On a wrong dimension or shape, a complex dtype, NaN/inf, or ``1 + eta <= 0``.
    """
    if not isinstance(geometry, Geometry):
        raise UserInputError(f"geometry is a {type(geometry).__name__}: expected a msinv Geometry")
    eta = np.asarray(eta)
    n = geometry.n
    allowed = "(n, n) or (b, n, n)" if batch else "(n, n)"
    if eta.ndim not in ((2, 3) if batch else (2,)) or eta.shape[-2:] != (n, n):
        raise UserInputError(
            f"eta has shape {eta.shape}: expected {allowed} with n = {n} (geometry.n)"
        )
    if eta.dtype.kind not in "fiu":
        raise UserInputError(f"eta has dtype {eta.dtype}: expected a real (float) array")
    eta = eta.astype(np.float64).reshape(-1, n, n)
    if not np.isfinite(eta).all():
        raise UserInputError("eta contains NaN or inf: expected finite values")
    if (1.0 + eta).min() <= 0:
        raise UserInputError(
            f"eta has min {eta.min():.4g}: expected 1 + eta > 0 (a positive squared slowness)"
        )
    return eta


def _pml_1d(geometry: Geometry, omega: float) -> tuple[np.ndarray, np.ndarray]:
    """Stretching ``s`` and its derivative ``s'`` at the computational-grid nodes of one axis."""
    g = geometry
    xt = g.x_total
    thickness = g.pml_width * g.h
    lo, hi = g.extent
    depth = np.maximum(lo - xt, 0) + np.maximum(xt - hi, 0)
    side = np.where(xt < lo, -1.0, np.where(xt > hi, 1.0, 0.0))
    t = depth / thickness
    sigma = g.pml_strength * t**2
    dsigma = side * 2 * g.pml_strength * t / thickness
    return 1 + 1j * sigma / omega, 1j * dsigma / omega


def _laplacian(geometry: Geometry, omega: float, order: int) -> sp.csr_matrix:
    """``Delta_PML + omega^2 I`` on the computational grid (natural order ``iy * n_total + ix``)."""
    g = geometry
    nt = g.n_total
    s, ds = _pml_1d(g, omega)
    d1 = centred_weights(order, 1) / g.h
    d2 = centred_weights(order, 2) / g.h**2
    m = order // 2
    offsets = list(range(-m, m + 1))
    dx1 = sp.diags([np.full(nt - abs(k), w) for k, w in zip(offsets, d1, strict=True)], offsets)
    dx2 = sp.diags([np.full(nt - abs(k), w) for k, w in zip(offsets, d2, strict=True)], offsets)
    lap1 = sp.diags(1 / s**2) @ dx2 - sp.diags(ds / s**3) @ dx1
    eye = sp.identity(nt, format="csr")
    return (sp.kron(eye, lap1) + sp.kron(lap1, eye) + omega**2 * sp.identity(nt * nt)).tocsr()


@lru_cache(maxsize=16)
def _ordering(geometry: Geometry, order: int) -> np.ndarray:
    """METIS nested-dissection permutation of the (eta- and omega-independent) matrix graph."""
    import pymetis

    graph = _laplacian(geometry, 1.0, order)
    graph = (abs(graph) + abs(graph.T)).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    perm = pymetis.nested_dissection(
        pymetis.CSRAdjacency(adj_starts=graph.indptr, adjacent=graph.indices)
    )[0]
    return np.asarray(perm, dtype=np.int64)


@lru_cache(maxsize=32)
def _background(geometry: Geometry, omega: float, order: int):
    """Cached eta-independent pieces of ``A(eta, omega)``.

    Returns
    -------
    a0 : scipy.sparse.csc_matrix
        ``Delta_PML + omega^2 I`` permuted symmetrically by ``perm`` (rows and columns).
    diag_pos : (n * n,) int numpy.ndarray
        Position in ``a0.data`` of the diagonal entry of contrast-grid node ``j``
        (flattened ``iy * n + ix``), where ``omega^2 eta`` is added.
    nodes : (n * n,) int numpy.ndarray
        Natural computational-grid index of contrast-grid node ``j``.
    perm : (n_total**2,) int numpy.ndarray
        Elimination order: row ``i`` of ``a0`` is natural row ``perm[i]``.
    """
    g = geometry
    nt = g.n_total
    perm = _ordering(g, order)
    a0 = _laplacian(g, omega, order)[perm][:, perm].tocsc()
    a0.sort_indices()
    w = g.pml_width
    iy, ix = np.meshgrid(np.arange(w, w + g.n), np.arange(w, w + g.n), indexing="ij")
    nodes = (iy * nt + ix).ravel()
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    cols = inverse[nodes]
    diag_pos = np.empty(nodes.size, dtype=np.int64)
    for k, j in enumerate(cols):
        start, stop = a0.indptr[j], a0.indptr[j + 1]
        diag_pos[k] = start + np.searchsorted(a0.indices[start:stop], j)
    a0.data.setflags(write=False)
    return a0, diag_pos, nodes, perm


@lru_cache(maxsize=32)
def incident_fields(geometry: Geometry, omega: float) -> np.ndarray:
    """Plane waves ``exp(i omega s . x)`` on the contrast grid, ``(n_sources, n, n)`` complex128."""
    s = geometry.source_directions
    phase = (
        s[:, 0, None, None] * geometry.x[None, None, :]
        + s[:, 1, None, None] * geometry.y[None, :, None]
    )
    u = np.exp(1j * omega * phase)
    u.setflags(write=False)
    return u


@lru_cache(maxsize=32)
def _representation_matrix_as(geometry: Geometry, omega: float, dtype: np.dtype) -> np.ndarray:
    """The receiver representation matrix in the solver's precision (cached)."""
    return representation_matrix(geometry, omega).astype(dtype)


class HelmholtzSolver:
    """One factorisation of ``A(eta, omega)``, many solves: fields, data, ``jvp`` and ``vjp``.

    Parameters
    ----------
    geometry : Geometry
        Grid, PML and acquisition.
    eta : (n, n) float numpy.ndarray
        Contrast ``eta[iy, ix]`` on the nodes of ``geometry`` (``1 + eta > 0``).
    freq : float
        Ordinary frequency ``f`` (> 0); ``omega = 2 pi f`` is the background wavenumber.
    order : {2, 4, 6, 8, "auto"}
        Stencil order (``"auto"``: see :data:`AUTO_ORDER`).
    dtype : {numpy.complex128, numpy.complex64}
        Precision of the factorisation and of the solves.
    receiver_interpolation : {"representation", "cubic", "bilinear"}
        How the data are read at the receivers (see :mod:`msinv.scattering.receivers`).

    Notes
    -----
    The data are ``Lambda[r, s] = (P u_sc_s)[r] + (M (eta * u_s))[r]`` where ``P`` is the
    interpolation matrix (zero for the representation reader) and ``M`` the representation
    matrix (zero for interpolating readers), ``u_s = u_in,s + u_sc,s`` the total field. With
    ``A delta_u = -omega^2 delta_eta * u``, the Jacobian is
    ``J delta_eta = P delta_u + M(delta_eta * u + eta * delta_u)`` and its adjoint (real part,
    real model) ``J^H r = Re sum_s conj(u_s) * (q_s - omega^2 lambda_s)`` with ``q_s = M^H r_s``
    and ``A^H lambda_s = P^H r_s + eta * q_s``. The adjoint solve reuses the LU factors
    (``trans="H"``).
    """

    def __init__(
        self,
        geometry: Geometry,
        eta: np.ndarray,
        freq: float,
        *,
        order: int | str = 8,
        dtype=np.complex128,
        receiver_interpolation: str = "representation",
    ):
        self.geometry = geometry
        self.eta = check_eta(eta, geometry, batch=False)[0]
        self.freq = _check_freq(freq)
        self.omega = 2 * np.pi * self.freq
        self.order = resolve_order(order, self.freq, geometry)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.complex64), np.dtype(np.complex128)):
            raise UserInputError(f"dtype={dtype!r}: expected numpy.complex64 or numpy.complex128")
        self.receiver_interpolation = check_reader(receiver_interpolation)
        self._lu = None
        self._u_sc = None

    # -- linear algebra ------------------------------------------------------------------
    @property
    def matrix(self) -> sp.csc_matrix:
        """``A(eta, omega)`` on the computational grid, ``(n_total**2, n_total**2)`` CSC,
        natural order ``iy * n_total + ix``."""
        perm = _background(self.geometry, self.omega, self.order)[3]
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size)
        return self._permuted_matrix()[inverse][:, inverse].tocsc()

    def _permuted_matrix(self) -> sp.csc_matrix:
        a0, diag_pos, _, _ = _background(self.geometry, self.omega, self.order)
        a = a0.copy()
        a.data = a.data.copy()
        a.data[diag_pos] += self.omega**2 * self.eta.ravel()
        return a.astype(self.dtype)

    @property
    def lu(self):
        """SuperLU factors of :attr:`matrix` in the nested-dissection order, computed on first use."""
        if self._lu is None:
            # One BLAS thread: parallelism comes from workers; threaded BLAS inside SuperLU's
            # small supernodes only oversubscribes the cores (10x slower on a loaded machine).
            with threadpool_limits(limits=1, user_api="blas"):
                self._lu = splu(self._permuted_matrix(), **SUPERLU_OPTIONS)
        return self._lu

    def _solve_total(self, rhs: np.ndarray, trans: str = "N") -> np.ndarray:
        """Solve with right-hand sides ``(n_total**2, k)`` on the computational grid."""
        lu = self.lu
        perm = _background(self.geometry, self.omega, self.order)[3]
        out = np.empty(rhs.shape, dtype=self.dtype, order="F")
        with threadpool_limits(limits=1, user_api="blas"):
            out[perm] = lu.solve(np.asarray(rhs[perm], dtype=self.dtype, order="F"), trans=trans)
        return out

    def _embed(self, f: np.ndarray) -> np.ndarray:
        """``(k, n, n)`` contrast-grid arrays -> ``(n_total**2, k)`` computational-grid columns."""
        nodes = _background(self.geometry, self.omega, self.order)[2]
        k = f.shape[0]
        out = np.zeros((self.geometry.n_total**2, k), dtype=self.dtype, order="F")
        out[nodes] = f.reshape(k, -1).T
        return out

    def _restrict(self, u: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`_embed` (drops the PML): ``(n_total**2, k) -> (k, n, n)``."""
        nodes = _background(self.geometry, self.omega, self.order)[2]
        n = self.geometry.n
        return np.ascontiguousarray(u[nodes].T).reshape(-1, n, n)

    def _rhs_array(self, f, name: str) -> np.ndarray:
        f = np.asarray(f)
        n = self.geometry.n
        if f.ndim != 3 or f.shape[1:] != (n, n):
            raise UserInputError(f"{name} has shape {f.shape}: expected (k, {n}, {n})")
        return f

    def solve(self, f: np.ndarray) -> np.ndarray:
        """Solve ``A u = f`` for ``f`` (k, n, n) on the contrast grid (zero in the PML).

        Returns
        -------
        (k, n, n) complex numpy.ndarray
            ``u`` restricted to the contrast grid.
        """
        f = self._rhs_array(f, "f")
        return self._restrict(self._solve_total(self._embed(f)))

    def solve_adjoint(self, g: np.ndarray) -> np.ndarray:
        """Solve ``A^H lambda = g`` with the same factors; ``(k, n, n) -> (k, n, n)``."""
        g = self._rhs_array(g, "g")
        return self._restrict(self._solve_total(self._embed(g), trans="H"))

    # -- fields and data -----------------------------------------------------------------
    def incident_fields(self) -> np.ndarray:
        """``(n_sources, n, n)`` incident plane waves on the contrast grid."""
        return incident_fields(self.geometry, self.omega).astype(self.dtype)

    def _scattered_total_grid(self) -> np.ndarray:
        if self._u_sc is None:
            u_in = incident_fields(self.geometry, self.omega)
            rhs = self._embed(-(self.omega**2) * self.eta[None] * u_in)
            if np.any(self.eta):
                self._u_sc = self._solve_total(rhs)
            else:
                self._u_sc = np.zeros_like(rhs)
        return self._u_sc

    def scattered_fields(self) -> np.ndarray:
        """``(n_sources, n, n)`` scattered fields on the contrast grid (cached)."""
        return self._restrict(self._scattered_total_grid())

    def total_fields(self) -> np.ndarray:
        """``(n_sources, n, n)`` total fields ``u_in + u_sc`` on the contrast grid."""
        return self.incident_fields() + self.scattered_fields()

    def _read(self, u_sc_total: np.ndarray, eta_u: np.ndarray | None) -> np.ndarray:
        """Receiver reading: ``P u_sc`` or ``M (eta u)`` -> ``(n_receivers, k)``."""
        if self.receiver_interpolation == "representation":
            m = _representation_matrix_as(self.geometry, self.omega, self.dtype)
            return m @ eta_u.reshape(eta_u.shape[0], -1).T.astype(self.dtype)
        p = interpolation_matrix(self.geometry, self.receiver_interpolation)
        return np.asarray(p @ u_sc_total).astype(self.dtype)

    def data(self) -> np.ndarray:
        """``(n_receivers, n_sources)`` complex data ``Lambda[r, s] = u_sc(R r_hat_r; s)``."""
        u_sc = self._scattered_total_grid()
        eta_u = None
        if self.receiver_interpolation == "representation":
            eta_u = self.eta[None] * self.total_fields()
        return self._read(u_sc, eta_u)

    # -- derivatives ---------------------------------------------------------------------
    def jvp(self, deta: np.ndarray) -> np.ndarray:
        """Jacobian of :meth:`data` w.r.t. real eta applied to ``deta`` (n, n).

        Returns
        -------
        (n_receivers, n_sources) complex numpy.ndarray
        """
        deta = self._real(deta)
        u = self.total_fields()
        rhs = self._embed(-(self.omega**2) * deta[None] * u)
        du_total = self._solve_total(rhs) if (np.any(self.eta) or self._needs_p) else None
        if self.receiver_interpolation == "representation":
            eta_du = 0.0 if du_total is None else self.eta[None] * self._restrict(du_total)
            return self._read(None, deta[None] * u + eta_du)
        return self._read(du_total, None)

    @property
    def _needs_p(self) -> bool:
        return self.receiver_interpolation != "representation"

    def _real(self, deta) -> np.ndarray:
        deta = np.asarray(deta)
        n = self.geometry.n
        if deta.shape != (n, n) or deta.dtype.kind not in "fiu":
            raise UserInputError(
                f"deta has shape {deta.shape}, dtype {deta.dtype}: expected real ({n}, {n})"
            )
        return deta.astype(np.float64)

    def vjp(self, residual: np.ndarray) -> np.ndarray:
        """Adjoint of :meth:`jvp` (real part) applied to ``residual`` (n_receivers, n_sources).

        Returns
        -------
        (n, n) float64 numpy.ndarray
            ``Re J^H residual``; the gradient of ``0.5 ||data - d||^2`` is ``vjp(data - d)``.
        """
        g = self.geometry
        r = np.asarray(residual)
        if r.shape != (g.n_receivers, g.n_sources):
            raise UserInputError(
                f"residual has shape {r.shape}: expected ({g.n_receivers}, {g.n_sources})"
            )
        u = self.total_fields().astype(np.complex128)
        n = g.n
        if self.receiver_interpolation == "representation":
            m = representation_matrix(g, self.omega)
            q = (m.conj().T @ r.astype(np.complex128)).T.reshape(-1, n, n)
            grad = np.conj(u) * q
            if np.any(self.eta):
                lam = self._restrict(self._solve_total(self._embed(self.eta[None] * q), "H"))
                grad = grad - self.omega**2 * np.conj(u) * lam
        else:
            p = interpolation_matrix(g, self.receiver_interpolation)
            rhs = np.asarray(p.T @ r.astype(np.complex128), dtype=self.dtype, order="F")
            lam = self._restrict(self._solve_total(rhs, "H"))
            grad = -(self.omega**2) * np.conj(u) * lam
        return grad.real.sum(axis=0)


def _simulate_one(args) -> np.ndarray:
    eta, geometry, freq, order, dtype, reader = args
    solver = HelmholtzSolver(
        geometry, eta, freq, order=order, dtype=dtype, receiver_interpolation=reader
    )
    return solver.data()


def simulate(
    eta: np.ndarray,
    geometry: Geometry,
    freqs,
    *,
    order: int | str = 8,
    dtype=np.complex64,
    workers: int = 1,
    receiver_interpolation: str = "representation",
) -> np.ndarray:
    """Multi-frequency scattering data of one contrast image or a batch.

    Parameters
    ----------
    eta : (n, n) or (b, n, n) float numpy.ndarray
        Contrast ``eta[iy, ix]`` (``1 + eta > 0``), ``n = geometry.n``.
    geometry : Geometry
        Grid, PML and acquisition.
    freqs : float or sequence of float
        Ordinary frequencies ``f > 0`` (``omega = 2 pi f``).
    order : {2, 4, 6, 8, "auto"}
        Stencil order; ``"auto"`` picks it per frequency (:data:`AUTO_ORDER`).
    dtype : {numpy.complex64, numpy.complex128}
        Precision of the solves and of the returned data.
    workers : int
        Processes over (sample, frequency) pairs; the result does not depend on it.
    receiver_interpolation : {"representation", "cubic", "bilinear"}
        Receiver reader; ``"bilinear"`` reproduces the published data's reading.

    Returns
    -------
    (n_freq, n_receivers, n_sources) or (b, n_freq, n_receivers, n_sources) complex array
        ``Lambda[f, r, s] = u_sc(R r_hat_r; s_s)`` for the incident wave ``exp(i omega s . x)``,
        outgoing (:math:`e^{-i\\omega t}`, :math:`H^{(1)}_0`) convention, physical sign.
    """
    batched = np.ndim(eta) == 3
    etas = check_eta(eta, geometry)
    freq_list = [_check_freq(f) for f in np.atleast_1d(np.asarray(freqs, dtype=object))]
    if not freq_list:
        raise UserInputError("freqs is empty: expected at least one frequency > 0")
    for f in freq_list:
        resolve_order(order, f, geometry)
    reader = check_reader(receiver_interpolation)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.complex64), np.dtype(np.complex128)):
        raise UserInputError(f"dtype={dtype!r}: expected numpy.complex64 or numpy.complex128")
    if not isinstance(workers, int | np.integer) or workers < 1:
        raise UserInputError(f"workers={workers!r}: expected an integer >= 1")
    tasks = [(e, geometry, f, order, dtype, reader) for e in etas for f in freq_list]
    if workers == 1 or len(tasks) == 1:
        results = [_simulate_one(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            results = list(pool.map(_simulate_one, tasks))
    out = np.stack(results).reshape(len(etas), len(freq_list), *results[0].shape).astype(dtype)
    return out if batched else out[0]
