"""Finite-difference Helmholtz solver with a PML: fields, data, Jacobian and its adjoint.

Notes
-----
Governing equation (time convention :math:`e^{-i\\omega t}`, wave speed 1 outside the medium)
for the scattered field of the plane wave :math:`u_{in} = e^{i\\omega s\\cdot x}`:

.. math:: \\Delta_{PML} u_{sc} + \\omega^2 (1 + \\eta) u_{sc} = -\\omega^2 \\eta\\, u_{in},

with :math:`\\Delta_{PML} = \\sum_{a\\in\\{x,y\\}} s_a^{-1}\\partial_a (s_a^{-1} \\partial_a)
= s_a^{-2}\\partial_a^2 - s_a' s_a^{-3} \\partial_a`, :math:`s_a = 1 + i\\sigma(a)/\\omega`
(complex stretching that damps outgoing waves :math:`e^{i\\omega |x|}`), ``sigma`` quadratic
across the layer and zero on the contrast grid, discretised by a scheme
(:mod:`msinv.scattering.schemes`) as ``A(eta) u = S f``; values beyond the outer edge of the
PML are zero (Dirichlet). ``A(eta) = A(0) + sum_t P_t diag(kappa_t(eta)) Q_t E^T`` differs
between samples only in the entries of its eta terms (for the schemes affine in eta, one term
``omega^2 M diag(eta)``: the diagonal of the contrast grid for the wide schemes), so its
eta-independent part is assembled once per (geometry, omega, scheme) and cached.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from threadpoolctl import ThreadpoolController

from msinv.core.errors import UserInputError
from msinv.core.interrupts import worker_pool
from msinv.scattering.geometry import Geometry
from msinv.scattering.receivers import interpolation_matrix, representation_matrix
from msinv.scattering.schemes import EtaTerm, Scheme, contrast_nodes
from msinv.scattering.spec import ForwardSpec, as_spec

#: SuperLU settings. The matrix is structurally symmetric: it is permuted symmetrically by a
#: METIS nested dissection of its graph (computed once per grid and scheme, see
#: :func:`_ordering`), then factorised in that order with symmetric mode and a small diagonal
#: pivot threshold. Measured fill at 80 x 80 + 10-node PML, order 8: 3.3 M non-zeros in L + U
#: against 4.4 M (MMD on A^T + A) and 5.2 M (COLAMD); see benchmarks/scatter_generate.py.
SUPERLU_OPTIONS = {
    "permc_spec": "NATURAL",
    "diag_pivot_thresh": 0.001,
    "options": {"SymmetricMode": True},
}


#: Right-hand sides from which an adjoint solve factorises ``A^H`` (kept beside the factors of
#: ``A``) and solves it untransposed: SciPy's SuperLU solves with ``trans="H"`` one column at
#: a time, about 2.6x the cost of an untransposed block solve, while one more factorisation
#: costs less than half a block solve of 80 columns (measured in benchmarks/fwi.py). Fewer
#: columns: ``trans="H"`` with the factors of ``A``. Both are exact.
ADJOINT_FACTOR_MIN_RHS = 16


@lru_cache(maxsize=1)
def _threadpools() -> ThreadpoolController:
    """The process's BLAS/OpenMP pools, inspected once (a fresh inspection per call costs
    milliseconds, several percent of a solve)."""
    return ThreadpoolController()


def one_blas_thread():
    """Context manager: one BLAS thread inside (parallelism comes from worker processes;
    threaded BLAS inside SuperLU's small supernodes only oversubscribes the cores, 10x slower
    on a loaded machine)."""
    return _threadpools().limit(limits=1, user_api="blas")


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


@lru_cache(maxsize=16)
def _ordering(geometry: Geometry, scheme: Scheme) -> np.ndarray:
    """METIS nested-dissection permutation of the (eta- and omega-independent) matrix graph."""
    import pymetis

    graph = scheme.background(geometry, 1.0)
    graph = (abs(graph) + abs(graph.T)).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    perm = pymetis.nested_dissection(
        pymetis.CSRAdjacency(adj_starts=graph.indptr, adjacent=graph.indices)
    )[0]
    return np.asarray(perm, dtype=np.int64)


class _Background(NamedTuple):
    """Cached eta-independent pieces of ``A(eta) = A(0) + sum_t P_t diag(kappa_t) Q_t E^T``.

    Attributes
    ----------
    a0 : scipy.sparse.csc_matrix
        ``A(0)`` permuted symmetrically by ``perm`` (rows and columns).
    terms : tuple of (pos, val, idx)
        Per :class:`~msinv.scattering.schemes.EtaTerm`: ``A(eta).data[pos] = a0.data[pos] +
        val * kappa_t.ravel()[idx]`` (positions unique within a term); for the schemes affine
        in eta, one term: the entries of ``M`` in the columns of the contrast grid.
    nodes : (n * n,) int numpy.ndarray
        Natural computational-grid index of contrast-grid node ``j`` (flattened ``iy * n + ix``).
    perm : (n_total**2,) int numpy.ndarray
        Elimination order: row ``i`` of ``a0`` is natural row ``perm[i]``.
    nodes_p : (n * n,) int numpy.ndarray
        Row of ``a0`` (elimination order) of contrast-grid node ``j``. Fields on the
        computational grid are kept in elimination order, so that no solve permutes.
    """

    a0: sp.csc_matrix
    terms: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    nodes: np.ndarray
    perm: np.ndarray
    nodes_p: np.ndarray


def _term_entries(term: EtaTerm, nodes: np.ndarray):
    """``(rows, cols, idx, val)`` of a term's entries: natural computational-grid row and
    column, index of its coefficient on the contrast grid, fixed factor."""
    if term.left is not None and term.right is not None:
        raise ValueError("an EtaTerm has a left or a right operator, not both")
    if term.left is not None:
        p = term.left.tocoo()
        return p.row, nodes[p.col], p.col, p.data
    if term.right is not None:
        q = term.right.tocoo()
        return nodes[q.row], nodes[q.col], q.row, q.data
    return nodes, nodes, np.arange(nodes.size), np.ones(nodes.size)


@lru_cache(maxsize=32)
def _background(geometry: Geometry, omega: float, scheme: Scheme) -> _Background:
    """The eta-independent part of the matrix and where eta enters it (see :class:`_Background`)."""
    g = geometry
    nt = g.n_total
    perm = _ordering(g, scheme)
    a0 = scheme.background(g, omega)[perm][:, perm].tocsc()
    a0.sort_indices()
    nodes = contrast_nodes(g)
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    # Position of entry (row, col) in CSC data: search the key col * N + row among a0's keys.
    big = np.int64(nt * nt)
    col_of = np.repeat(np.arange(a0.shape[1], dtype=np.int64), np.diff(a0.indptr))
    keys = col_of * big + a0.indices
    terms = []
    for term in scheme.eta_terms(g, omega):
        rows, cols, idx, val = _term_entries(term, nodes)
        want = inverse[cols].astype(np.int64) * big + inverse[rows]
        pos = np.searchsorted(keys, want)
        if not np.array_equal(keys[np.minimum(pos, keys.size - 1)], want):
            raise RuntimeError(f"scheme {scheme.name}: eta term not inside the matrix pattern")
        terms.append((pos, val, idx))
    a0.data.setflags(write=False)
    return _Background(a0, tuple(terms), nodes, perm, inverse[nodes])


class _Operators(NamedTuple):
    """A scheme's fixed operators in elimination order and in the solver's precision.

    Attributes
    ----------
    left, left_h : tuple of (scipy.sparse.csr_matrix or None)
        Per term, ``P_t`` and ``P_t^H`` (None: ``E``).
    right : tuple of (scipy.sparse.csr_matrix or None)
        Per term, ``Q_t`` ``(n**2, n**2)`` as the scheme gives it (None: the identity).
    embed : scipy.sparse.csr_matrix
        ``E`` in elimination order, ``(n_total**2, n**2)``.
    """

    left: tuple
    left_h: tuple
    right: tuple
    embed: sp.csr_matrix


@lru_cache(maxsize=64)
def _operators(geometry: Geometry, omega: float, scheme: Scheme, dtype: np.dtype) -> _Operators:
    """:class:`_Operators` of ``scheme`` at ``omega`` (cached)."""
    perm = _ordering(geometry, scheme)
    terms = scheme.eta_terms(geometry, omega)
    left = tuple(_permuted_rows(t.left, perm, dtype) for t in terms)
    right = tuple(None if t.right is None else t.right.tocsr() for t in terms)
    nodes = contrast_nodes(geometry)
    embed = sp.csr_matrix(
        (np.ones(nodes.size), (np.argsort(perm)[nodes], np.arange(nodes.size))),
        shape=(perm.size, nodes.size),
    )
    left_h = tuple(None if p is None else p.conj().T.tocsr() for p in left)
    return _Operators(left, left_h, right, embed)


def _permuted_rows(op: sp.spmatrix | None, perm: np.ndarray, dtype) -> sp.csr_matrix | None:
    """``op`` with its rows in elimination order, in precision ``dtype`` (None stays None)."""
    return None if op is None else op.tocsr()[perm].tocsr().astype(dtype)


@lru_cache(maxsize=16)
def _interpolation_permuted(geometry: Geometry, kind: str, scheme: Scheme) -> sp.csr_matrix:
    """The receivers' interpolation matrix acting on fields in elimination order."""
    perm = _ordering(geometry, scheme)
    return interpolation_matrix(geometry, kind)[:, perm].tocsr()


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
def _incident_fields_as(geometry: Geometry, omega: float, dtype: np.dtype) -> np.ndarray:
    """:func:`incident_fields` in the solver's precision (cached, read-only)."""
    u = incident_fields(geometry, omega).astype(dtype)
    u.setflags(write=False)
    return u


@lru_cache(maxsize=32)
def _representation_matrix_as(geometry: Geometry, omega: float, dtype: np.dtype) -> np.ndarray:
    """The receiver representation matrix in the solver's precision (cached)."""
    return representation_matrix(geometry, omega).astype(dtype)


class HelmholtzSolver:
    """One factorisation of ``A(eta, omega)``, many solves: fields, data, ``jvp`` and ``vjp``.

    This is the sparse-LU (``"scipy"``) implementation of the forward model; the ``backend``
    field of a spec only dispatches :func:`simulate`.

    Parameters
    ----------
    geometry : Geometry or ForwardSpec
        Grid, PML and acquisition, or a whole forward model (its scheme, reader and precision
        are used unless the keywords below say otherwise). A PML chosen per frequency
        (``pml_width="auto"``) is resolved at ``freq``: :attr:`geometry` is the computational
        grid used.
    eta : (n, n) float numpy.ndarray
        Contrast ``eta[iy, ix]`` on the nodes of the geometry (``1 + eta > 0``).
    freq : float
        Ordinary frequency ``f`` (> 0); ``omega = 2 pi f`` is the background wavenumber.
    scheme : str, int or Scheme, optional
        Scheme (:mod:`msinv.scattering.schemes`): a name (``"wide8"``), a wide order (``8``) or
        a per-frequency policy (``"auto"``). Default: the spec's, :data:`~msinv.scattering.spec.DEFAULT_SCHEME` for a geometry.
    dtype : {numpy.complex128, numpy.complex64}, optional
        Precision of the factorisation and of the solves. Default: the spec's, complex128 for
        a bare geometry.
    receiver_interpolation : {"representation", "cubic", "bilinear"}, optional
        How the data are read at the receivers (see :mod:`msinv.scattering.receivers`).
        Default: the spec's, ``"representation"`` for a geometry.

    Notes
    -----
    The discrete field of a source ``f`` on the contrast grid is ``u = A^{-1} S f`` (``S`` the
    scheme's source operator: ``M E`` with ``M`` its mass matrix, the identity for the wide
    schemes). The scattered field solves ``A(eta) u_sc = -(A(eta) - A(0)) u_in``, i.e.
    ``A(eta) (u_in + u_sc) = A(0) u_in``, the scheme's homogeneous equation for the total
    field up to the plane wave's own truncation error. The data are
    ``Lambda[r, s] = (P u_sc_s)[r] + (R (eta * u_s))[r]`` where ``P`` is the interpolation
    matrix (zero for the representation reader) and ``R`` the representation matrix (zero for
    interpolating readers), ``u_s = u_in,s + u_sc,s`` the total field. With
    ``A delta_u = -dA[delta_eta] u``, ``dA[delta_eta] = sum_t P_t diag(dkappa_t) Q_t E^T``
    (``dkappa = omega^2 delta_eta`` for the affine schemes), the Jacobian is
    ``J delta_eta = P delta_u + R(delta_eta * u + eta * delta_u)`` and its adjoint (real part,
    real model) ``J^H r = Re sum_s conj(u_s) * q_s + kappa'(eta)^T c`` with ``q_s = R^H r_s``,
    ``lambda_s = A^{-H} (P^H r_s + eta * q_s)`` and
    ``c_t = -Re sum_s conj(P_t^H lambda_s) * Q_t u_s`` (for the affine schemes,
    ``-omega^2 Re sum_s conj(u_s) * M^H lambda_s``). The adjoint solve factorises ``A^H``
    once and solves it untransposed (all columns at once) when it has at least
    :data:`ADJOINT_FACTOR_MIN_RHS` columns, else it reuses the factors of ``A``
    (``trans="H"``).
    """

    def __init__(
        self,
        geometry: Geometry | ForwardSpec,
        eta: np.ndarray,
        freq: float,
        *,
        scheme: Scheme | str | int | None = None,
        dtype=None,
        receiver_interpolation: str | None = None,
    ):
        if isinstance(geometry, Geometry) and dtype is None:
            dtype = np.complex128
        self.spec = as_spec(
            geometry, scheme=scheme, dtype=dtype, receiver_interpolation=receiver_interpolation
        )
        self.eta = check_eta(eta, self.spec.geometry, batch=False)[0]
        self.freq = _check_freq(freq)
        self.omega = 2 * np.pi * self.freq
        # the computational grid at this frequency (a PML chosen per frequency resolved)
        self.geometry = self.spec.geometry.at(self.freq)
        self.scheme = self.spec.scheme_at(self.freq)
        self.dtype = self.spec.np_dtype
        self.receiver_interpolation = self.spec.receiver_interpolation
        self._lu = None
        self._lu_h = None
        self._u_sc = None
        self._kappa = None
        self._src = None

    # -- linear algebra ------------------------------------------------------------------
    @property
    def _bg(self) -> _Background:
        return _background(self.geometry, self.omega, self.scheme)

    @property
    def matrix(self) -> sp.csc_matrix:
        """``A(eta, omega)`` on the computational grid, ``(n_total**2, n_total**2)`` CSC,
        natural order ``iy * n_total + ix``."""
        perm = self._bg.perm
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size)
        return self._permuted_matrix()[inverse][:, inverse].tocsc()

    def _permuted_matrix(self) -> sp.csc_matrix:
        bg = self._bg
        a = bg.a0.copy()
        a.data = a.data.copy()
        kappa = self._coefficients()
        for (pos, val, idx), k in zip(bg.terms, kappa, strict=True):
            a.data[pos] += val * k.ravel()[idx]
        return a.astype(self.dtype)

    def _coefficients(self) -> np.ndarray:
        """``kappa_t(eta)`` of the scheme's eta terms, ``(n_terms, n, n)`` (cached)."""
        if self._kappa is None:
            self._kappa = self.scheme.coefficients(self.eta, self.geometry, self.omega)
        return self._kappa

    @property
    def _ops(self) -> _Operators:
        return _operators(self.geometry, self.omega, self.scheme, self.dtype)

    @property
    def lu(self):
        """SuperLU factors of :attr:`matrix` in the nested-dissection order, computed on first use."""
        if self._lu is None:
            with one_blas_thread():
                self._lu = splu(self._permuted_matrix(), **SUPERLU_OPTIONS)
        return self._lu

    @property
    def lu_adjoint(self):
        """SuperLU factors of ``A^H`` (same ordering), computed on first use by an adjoint
        solve of at least :data:`ADJOINT_FACTOR_MIN_RHS` columns."""
        if self._lu_h is None:
            a_h = self._permuted_matrix().conj().T.tocsc()
            with one_blas_thread():
                self._lu_h = splu(a_h, **SUPERLU_OPTIONS)
        return self._lu_h

    def _solve_total(self, rhs: np.ndarray, adjoint: bool = False) -> np.ndarray:
        """``A^{-1} rhs`` (``A^{-H} rhs`` with ``adjoint``) for right-hand sides
        ``(n_total**2, k)`` on the computational grid, both in elimination order."""
        rhs = np.asarray(rhs, dtype=self.dtype, order="F")
        if not adjoint:
            lu, trans = self.lu, "N"
        elif self._lu_h is not None or rhs.shape[1] >= ADJOINT_FACTOR_MIN_RHS:
            lu, trans = self.lu_adjoint, "N"
        else:
            lu, trans = self.lu, "H"
        with one_blas_thread():
            return lu.solve(rhs, trans=trans)

    def _embed(self, f: np.ndarray) -> np.ndarray:
        """``(k, n, n)`` contrast-grid arrays -> ``(n_total**2, k)`` computational-grid columns
        (elimination order, zero in the PML)."""
        k = f.shape[0]
        out = np.zeros((self.geometry.n_total**2, k), dtype=self.dtype, order="F")
        out[self._bg.nodes_p] = f.reshape(k, -1).T
        return out

    def _apply_left(self, p: sp.csr_matrix | None, f: np.ndarray) -> np.ndarray:
        """``P f`` for ``f`` (k, n, n) on the contrast grid (``P = E`` for None),
        ``(n_total**2, k)`` in elimination order."""
        if p is None:
            return self._embed(f)
        # sparse @ C-ordered block: scipy's fast path (4x faster than on a Fortran block)
        x = np.ascontiguousarray(f.reshape(f.shape[0], -1).T, dtype=self.dtype)
        return np.asfortranarray(p @ x)

    @property
    def _source_matrix(self) -> sp.csr_matrix | None:
        """The scheme's source operator ``S(eta)`` in elimination order (None: ``E``)."""
        if self._src is None:
            src = self.scheme.source(self.geometry, self.omega, self.eta)
            self._src = (_permuted_rows(src, self._bg.perm, self.dtype),)
        return self._src[0]

    def _source(self, f: np.ndarray) -> np.ndarray:
        """``S f``: the right-hand side of the source ``f`` (k, n, n), ``(n_total**2, k)``."""
        return self._apply_left(self._source_matrix, f)

    def _apply_terms(self, kappa: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``sum_t P_t (kappa_t * Q_t u)`` for fields ``u`` (k, n, n) on the contrast grid:
        ``(A(eta) - A(0)) u`` for ``kappa(eta)``, ``dA[deta] u`` for its derivative;
        ``(n_total**2, k)``. With difference operators ``Q_t`` (compact6) the sum is
        assembled as one sparse matrix and applied once."""
        ops = self._ops
        n = self.geometry.n
        if all(q is None for q in ops.right):
            out = None
            for p, k in zip(ops.left, kappa, strict=True):
                term = self._apply_left(p, k.reshape(1, n, n) * u)
                out = term if out is None else out + term
            return out
        op = None
        for p, q, k in zip(ops.left, ops.right, kappa, strict=True):
            kq = sp.diags(k.ravel()) if q is None else sp.diags(k.ravel()) @ q
            term = (ops.embed if p is None else p) @ kq
            op = term if op is None else op + term
        x = np.ascontiguousarray(u.reshape(u.shape[0], -1).T, dtype=self.dtype)
        return np.asfortranarray(op.tocsr().astype(self.dtype) @ x)

    def _terms_adjoint(self, lam: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Transpose of ``dkappa -> Re <lam, dA u>``: ``Re sum_s conj(P_t^H lam_s) * Q_t u_s``,
        ``(n_terms, n, n)``, for ``lam`` (n_total**2, k) and ``u`` (k, n, n)."""
        ops = self._ops
        n = self.geometry.n
        uc = np.ascontiguousarray(u.reshape(u.shape[0], -1).T)  # (n**2, k)
        lam_e = None
        out = []
        for p_h, q in zip(ops.left_h, ops.right, strict=True):
            if p_h is None:
                lam_e = lam[self._bg.nodes_p] if lam_e is None else lam_e
                mu = lam_e
            else:
                mu = p_h @ lam
            qu = uc if q is None else q @ uc
            out.append((mu.real * qu.real + mu.imag * qu.imag).sum(axis=1).reshape(n, n))
        return np.stack(out)

    def _restrict(self, u: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`_embed` (drops the PML): ``(n_total**2, k) -> (k, n, n)``."""
        n = self.geometry.n
        return np.ascontiguousarray(u[self._bg.nodes_p].T).reshape(-1, n, n)

    def _contrast(self, x: np.ndarray) -> np.ndarray:
        """``(n**2, k)`` contrast-grid columns -> ``(k, n, n)``."""
        n = self.geometry.n
        return np.ascontiguousarray(np.asarray(x).T).reshape(-1, n, n)

    def _adjoint_solve(self, g: np.ndarray | None, trans_rhs=None) -> np.ndarray:
        """``A^{-H} (E g + trans_rhs)`` on the computational grid, ``(n_total**2, k)``.

        ``g`` (k, n, n) lives on the contrast grid; ``trans_rhs`` (n_total**2, k), optional,
        on the computational grid.
        """
        rhs = self._embed(g) if g is not None else 0
        if trans_rhs is not None:
            rhs = rhs + np.asarray(trans_rhs, dtype=self.dtype)
        return np.ascontiguousarray(self._solve_total(rhs, adjoint=True))

    def _rhs_array(self, f, name: str) -> np.ndarray:
        f = np.asarray(f)
        n = self.geometry.n
        if f.shape[1:] != (n, n):  # (k, n, n); no other number of axes gives this
            raise UserInputError(f"{name} has shape {f.shape}: expected (k, {n}, {n})")
        return f

    def solve(self, f: np.ndarray) -> np.ndarray:
        """The discrete solution ``u = A^{-1} S f`` of ``Delta u + k^2 u = f`` for ``f``
        (k, n, n) on the contrast grid (zero in the PML).

        Returns
        -------
        (k, n, n) complex numpy.ndarray
            ``u`` restricted to the contrast grid.
        """
        f = self._rhs_array(f, "f")
        return self._restrict(self._solve_total(self._source(f)))

    def solve_adjoint(self, g: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`solve`: ``S^H A^{-H} g`` with the same factors;
        ``(k, n, n) -> (k, n, n)``."""
        lam = self._adjoint_solve(self._rhs_array(g, "g"))
        s = self._source_matrix
        return self._restrict(lam) if s is None else self._contrast(s.conj().T @ lam)

    # -- fields and data -----------------------------------------------------------------
    def incident_fields(self) -> np.ndarray:
        """``(n_sources, n, n)`` incident plane waves on the contrast grid (read-only)."""
        return _incident_fields_as(self.geometry, self.omega, self.dtype)

    def _scattered_total_grid(self) -> np.ndarray:
        if self._u_sc is None:
            u_in = incident_fields(self.geometry, self.omega)
            rhs = -self._apply_terms(self._coefficients(), u_in)
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
        """Receiver reading: ``P u_sc`` or ``R (eta u)`` -> ``(n_receivers, k)``."""
        if self.receiver_interpolation == "representation":
            m = _representation_matrix_as(self.geometry, self.omega, self.dtype)
            return m @ eta_u.reshape(eta_u.shape[0], -1).T.astype(self.dtype)
        p = _interpolation_permuted(self.geometry, self.receiver_interpolation, self.scheme)
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
        dkappa = self.scheme.coefficients_jvp(self.eta, deta, self.geometry, self.omega)
        rhs = -self._apply_terms(dkappa, u)
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
            grad = (np.conj(u) * q).real.sum(axis=0)
            if not np.any(self.eta):
                return grad
            lam = self._adjoint_solve(self.eta[None] * q)
        else:
            p = _interpolation_permuted(g, self.receiver_interpolation, self.scheme)
            rhs = np.asarray(p.T @ r.astype(np.complex128), dtype=self.dtype, order="F")
            lam = self._adjoint_solve(None, rhs)
            grad = 0.0
        cot = -self._terms_adjoint(lam, u)
        return grad + self.scheme.coefficients_vjp(self.eta, cot, self.geometry, self.omega)


def _simulate_one(args) -> np.ndarray:
    eta, spec, freq = args
    # One BLAS thread per (sample, frequency): parallelism comes from the workers.
    with one_blas_thread():
        return HelmholtzSolver(spec, eta, freq).data()


def simulate(
    eta: np.ndarray,
    geometry: Geometry | ForwardSpec,
    freqs,
    *,
    scheme: Scheme | str | int | None = None,
    dtype=None,
    receiver_interpolation: str | None = None,
    backend: str | None = None,
    workers: int = 1,
) -> np.ndarray:
    """Multi-frequency scattering data of one contrast image or a batch.

    Parameters
    ----------
    eta : (n, n) or (b, n, n) float numpy.ndarray
        Contrast ``eta[iy, ix]`` (``1 + eta > 0``), ``n = geometry.n``.
    geometry : Geometry or ForwardSpec
        Grid, PML and acquisition, or a whole forward model (:class:`ForwardSpec`, whose
        fields the keywords below override). ``Geometry.paper(n)`` lets the solver choose the
        PML per frequency (:meth:`Geometry.at`); ``Geometry.paper(n, pml_width="published")``
        is the published 20-node layer.
    freqs : float or sequence of float
        Ordinary frequencies ``f > 0`` (``omega = 2 pi f``).
    scheme : str, int or Scheme, optional
        Scheme or per-frequency policy (:mod:`msinv.scattering.schemes`); default the spec's
        (:data:`~msinv.scattering.spec.DEFAULT_SCHEME` for a geometry).
    dtype : {numpy.complex64, numpy.complex128}, optional
        Precision of the solves and of the returned data (default complex64).
    receiver_interpolation : {"representation", "cubic", "bilinear"}, optional
        Receiver reader; ``"bilinear"`` reproduces the published data's reading.
    backend : {"scipy", "torch"}, optional
        ``"scipy"`` (default): sparse LU in this process or ``workers`` processes.
        ``"torch"``: ``msinv.accel.simulate(eta (b, n, n), spec, freqs)`` (``learn`` extra).
    workers : int, default 1
        Processes over (sample, frequency) pairs (scipy backend); the result does not depend
        on it.

    Returns
    -------
    (n_freq, n_receivers, n_sources) or (b, n_freq, n_receivers, n_sources) complex array
        ``Lambda[f, r, s] = u_sc(R r_hat_r; s_s)`` for the incident wave ``exp(i omega s . x)``,
        outgoing (:math:`e^{-i\\omega t}`, :math:`H^{(1)}_0`) convention, physical sign.
    """
    batched = np.ndim(eta) == 3
    spec = as_spec(  # refuses what is neither a Geometry nor a ForwardSpec, in one line
        geometry,
        scheme=scheme,
        dtype=dtype,
        receiver_interpolation=receiver_interpolation,
        backend=backend,
    )
    etas = check_eta(eta, spec.geometry)
    freq_list = [_check_freq(f) for f in np.atleast_1d(np.asarray(freqs, dtype=object))]
    if not freq_list:
        raise UserInputError("freqs is empty: expected at least one frequency > 0")
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise UserInputError(f"workers={workers!r}: expected an integer >= 1")
    if spec.backend != "scipy":
        out = _backend_simulate(spec.backend)(etas, spec, freq_list)
        out = np.asarray(out, dtype=spec.np_dtype)
        return out if batched else out[0]
    tasks = [(e, spec, f) for e in etas for f in freq_list]
    if workers == 1 or len(tasks) == 1:
        results = [_simulate_one(t) for t in tasks]
    else:
        with worker_pool(min(workers, len(tasks))) as pool:  # Ctrl-C stops it at once
            results = list(pool.map(_simulate_one, tasks))
    out = np.stack(results).reshape(len(etas), len(freq_list), *results[0].shape)
    out = out.astype(spec.np_dtype)
    return out if batched else out[0]


def _backend_simulate(backend: str):
    """The ``simulate(etas (b, n, n) float64, spec, freqs) -> (b, n_freq, n_rec, n_src)`` of a
    non-scipy backend: ``msinv.accel.simulate`` for ``"torch"`` (imported only here, so that
    this module never imports torch)."""
    from importlib import import_module

    try:
        return import_module("msinv.accel").simulate
    except ImportError as exc:
        raise UserInputError(
            f"backend={backend!r} needs msinv.accel and PyTorch (pip install 'msinv[learn]'): {exc}"
        ) from None
