"""Finite-difference schemes of the Helmholtz operator: stiffness and mass stencils.

A scheme discretises :math:`\\Delta_{PML} u + k^2 u = f`, :math:`k^2 = \\omega^2 (1 + \\eta)`, on
the computational grid (contrast grid + PML, natural order ``iy * n_total + ix``) as

.. math:: A(\\eta)\\, u = M f, \\qquad A(\\eta) = L + \\omega^2 M\\,\\mathrm{diag}(1 + \\eta),

with ``L`` the stiffness matrix (the discrete stretched Laplacian) and ``M`` the mass matrix
(``eta`` is zero in the PML). The wide centred schemes of orders 2-8 have ``M = I``: ``eta``
sits on the diagonal only. Compact schemes spread the mass over the 3 x 3 stencil, so the
Jacobian :math:`\\partial A/\\partial\\eta\\,\\delta\\eta = \\omega^2 M\\,\\mathrm{diag}(\\delta\\eta)`
and the source ``M f`` both go through ``M``. The sixth-order compact scheme for variable
``k`` (:class:`Compact6Scheme`, ``"compact6"``) is not affine in ``eta`` (``k^6`` terms and
derivatives of ``k^2``): in general ``A(eta) = A(0) + sum_t P_t diag(kappa_t(eta)) Q_t E^T``
(:class:`EtaTerm`) with a source operator ``S(eta)`` in place of ``M``, and a scheme supplies
the coefficients ``kappa_t`` with their exact derivative and its transpose.

Schemes are small frozen values (hashable cache keys). :func:`get_scheme` turns a name
(``"wide8"``), an integer order (8 -> ``"wide8"``) or a :class:`Scheme` into a scheme;
:func:`resolve_scheme` also resolves the per-frequency policies of :data:`POLICIES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from msinv.core.errors import UserInputError
from msinv.scattering.geometry import Geometry
from msinv.scattering.stencils import ORDERS, centred_weights


def pml_1d(geometry: Geometry, omega: float) -> tuple[np.ndarray, np.ndarray]:
    """Stretching ``s = 1 + i sigma / omega`` and its derivative ``s'`` on one axis.

    Returns
    -------
    s, ds : (n_total,) complex128 numpy.ndarray
        At the computational-grid nodes; ``sigma(t) = pml_strength * t**2`` with ``t`` the
        depth into the layer divided by its thickness ``pml_width * h`` (zero inside).
    """
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


def contrast_nodes(geometry: Geometry) -> np.ndarray:
    """Natural computational-grid index (``iy * n_total + ix``) of contrast-grid node ``j``
    (flattened ``iy * n + ix``), ``(n * n,)`` int."""
    w, nt = geometry.pml_width, geometry.n_total
    iy, ix = np.meshgrid(np.arange(w, w + geometry.n), np.arange(w, w + geometry.n), indexing="ij")
    return (iy * nt + ix).ravel()


class EtaTerm(NamedTuple):
    """One term ``P diag(kappa) Q E^T`` of ``A(eta) - A(0)`` (``kappa`` from
    :meth:`Scheme.coefficients`, ``E`` the embedding of the contrast grid).

    Attributes
    ----------
    left : scipy.sparse.csr_matrix or None
        ``P``, ``(n_total**2, n**2)``; None: ``E`` itself.
    right : scipy.sparse.csr_matrix or None
        ``Q``, ``(n**2, n**2)``, acting on contrast-grid fields; None: the identity. A term has
        ``left`` or ``right`` (or neither), not both.
    """

    left: sp.csr_matrix | None
    right: sp.csr_matrix | None


class Scheme(ABC):
    """A discretisation ``A(eta) u = S f`` of the Helmholtz operator.

    ``A(eta) = A(0) + sum_t P_t diag(kappa_t(eta)) Q_t E^T`` (:class:`EtaTerm`,
    ``kappa_t(0) = 0``). The default, for the schemes affine in ``eta``, is one term,
    ``A(eta) = L + omega^2 M diag(1 + eta)``: ``P = M E``, ``kappa = omega^2 eta``, and
    ``S = M E``; :class:`Compact6Scheme` overrides these methods.

    Attributes
    ----------
    name : str
        Registry name, recorded in dataset attributes (e.g. ``"wide8"``).
    order : int
        Formal order of accuracy away from the PML and from jumps of ``eta``.
    """

    name: str
    order: int

    @abstractmethod
    def stiffness(self, geometry: Geometry, omega: float) -> sp.spmatrix:
        """``L``: the discrete :math:`\\Delta_{PML}`, ``(n_total**2, n_total**2)`` sparse."""

    def mass(self, geometry: Geometry, omega: float) -> sp.csr_matrix | None:
        """``M``, ``(n_total**2, n_total**2)`` sparse, or None for the identity."""
        return None

    def background(self, geometry: Geometry, omega: float) -> sp.csr_matrix:
        """``A(0) = L + omega^2 M``, CSR in natural order."""
        m = self.mass(geometry, omega)
        m = sp.identity(geometry.n_total**2) if m is None else m
        return (self.stiffness(geometry, omega) + omega**2 * m).tocsr()

    def mass_columns(self, geometry: Geometry, omega: float) -> sp.csr_matrix | None:
        """``M E``, ``(n_total**2, n**2)``: the mass matrix's columns at the contrast-grid
        nodes (``E`` the embedding of the contrast grid); None for ``M = I``."""
        m = self.mass(geometry, omega)
        return None if m is None else m.tocsc()[:, contrast_nodes(geometry)].tocsr()

    def source(self, geometry: Geometry, omega: float, eta: np.ndarray) -> sp.csr_matrix | None:
        """``S(eta)``, ``(n_total**2, n**2)``: the right-hand side ``S f`` of a source ``f``
        on the contrast grid (zero in the PML); None for ``E``. Default: ``M E``."""
        return self.mass_columns(geometry, omega)

    def eta_terms(self, geometry: Geometry, omega: float) -> tuple[EtaTerm, ...]:
        """The fixed operators of ``A(eta) - A(0)``, one per coefficient of
        :meth:`coefficients`. Default: ``(EtaTerm(M E, None),)``."""
        return (EtaTerm(self.mass_columns(geometry, omega), None),)

    def coefficients(self, eta: np.ndarray, geometry: Geometry, omega: float) -> np.ndarray:
        """``kappa_t(eta)``, ``(n_terms, n, n)`` real, zero at ``eta = 0``. Default
        ``omega^2 eta``."""
        return omega**2 * eta[None]

    def coefficients_jvp(
        self, eta: np.ndarray, deta: np.ndarray, geometry: Geometry, omega: float
    ) -> np.ndarray:
        """Derivative of :meth:`coefficients` at ``eta`` applied to ``deta`` (n, n):
        ``(n_terms, n, n)``."""
        return omega**2 * deta[None]

    def coefficients_vjp(
        self, eta: np.ndarray, cot: np.ndarray, geometry: Geometry, omega: float
    ) -> np.ndarray:
        """Transpose of :meth:`coefficients_jvp` applied to ``cot`` (n_terms, n, n): ``(n, n)``."""
        return omega**2 * cot[0]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class WideScheme(Scheme):
    """Centred differences of even order on the ``order + 1``-point cross; ``M = I``.

    :math:`\\Delta_{PML} = \\sum_a s_a^{-2}\\partial_a^2 - s_a' s_a^{-3}\\partial_a` with both
    derivatives centred of order 2, 4, 6 or 8; values beyond the outer edge of the PML are zero
    (Dirichlet). The stencil of order 8 is the published one (17-point cross).
    """

    order: int

    def __post_init__(self):
        if self.order not in ORDERS:
            raise UserInputError(f"wide scheme order {self.order!r}: expected one of {ORDERS}")

    @property
    def name(self) -> str:
        return f"wide{self.order}"

    def stiffness(self, geometry: Geometry, omega: float) -> sp.spmatrix:
        g = geometry
        nt = g.n_total
        s, ds = pml_1d(g, omega)
        d1 = centred_weights(self.order, 1) / g.h
        d2 = centred_weights(self.order, 2) / g.h**2
        m = self.order // 2
        offsets = list(range(-m, m + 1))
        dx1 = sp.diags([np.full(nt - abs(k), w) for k, w in zip(offsets, d1, strict=True)], offsets)
        dx2 = sp.diags([np.full(nt - abs(k), w) for k, w in zip(offsets, d2, strict=True)], offsets)
        lap1 = sp.diags(1 / s**2) @ dx2 - sp.diags(ds / s**3) @ dx1
        eye = sp.identity(nt, format="csr")
        return sp.kron(eye, lap1) + sp.kron(lap1, eye)


@dataclass(frozen=True)
class CompactScheme(Scheme):
    """A 9-point (3 x 3) scheme: ``L = Dx + Dy + gamma h^2 S Dx Dy`` and
    ``M = I + alpha h^2 (Sx Dx + Sy Dy) + beta h^4 Sx Sy Dx Dy``.

    ``Dx``, ``Dy`` are the 3-point second-order discretisations of
    :math:`s_a^{-1}\\partial_a(s_a^{-1}\\partial_a) = s_a^{-2}\\partial_a^2 - s_a' s_a^{-3}\\partial_a`
    (the stretched second derivative, the plain ``delta^2 / h^2`` inside), ``Sx = diag(s_x^2)``,
    ``Sy = diag(s_y^2)`` and ``S = (Sx + Sy) / 2``.

    Inside the PML-free region (``s = 1``) this is ``L = Delta_h + gamma h^2 Dxx Dyy``,
    ``M = I + alpha h^2 Delta_h + beta h^4 Dxx Dyy``; with ``gamma = 1/6``, ``alpha = 1/12``,
    ``beta = 0`` it is the fourth-order compact scheme of Singer & Turkel (1998) for variable
    wavenumber, :math:`\\Delta_h u + \\tfrac{h^2}{6} D_{xx}D_{yy} u
    + (I + \\tfrac{h^2}{12}\\Delta_h)(k^2 u) = (I + \\tfrac{h^2}{12}\\Delta_h) f`, derived from
    :math:`\\partial_x^4 u + \\partial_y^4 u = \\Delta(f - k^2 u) - 2\\partial_x^2\\partial_y^2 u`.

    In the PML the same derivation in the stretched coordinates
    :math:`d\\tilde x = s_x dx` (local spacings :math:`\\tilde h_a = s_a h`, so that
    :math:`\\tilde h_a^2 D_a \\approx h^2\\partial_a^2` in grid units) gives the ``Sx``, ``Sy``
    factors: the scheme is consistent for the stretched operator (Dastour & Liao 2019 show
    that dropping them is not) and reduces continuously to the interior scheme at the
    layer's edge, where the quadratic profile has ``sigma = sigma' = 0``. Its reflection is
    measured in ``tests/scattering/test_compact.py``.

    The mass ``M`` acts on :math:`k^2 u`; :math:`\\eta` enters only through
    :math:`\\omega^2 M \\mathrm{diag}(\\eta)`, so no derivative of :math:`k^2` is needed and a
    piecewise-constant contrast with sharp edges is taken as it is (the error at an edge is
    that of the pixelisation, as for every scheme; measured by the disk oracle).
    """

    name: str
    order: int
    gamma: float
    alpha: float
    beta: float = 0.0
    k4: float = 0.0

    def _axes(self, geometry: Geometry, omega: float):
        g = geometry
        nt = g.n_total
        s, ds = pml_1d(g, omega)
        d1 = centred_weights(2, 1) / g.h
        d2 = centred_weights(2, 2) / g.h**2
        dx1 = sp.diags(
            [np.full(nt - 1, d1[0]), np.full(nt, d1[1]), np.full(nt - 1, d1[2])], [-1, 0, 1]
        )
        dx2 = sp.diags(
            [np.full(nt - 1, d2[0]), np.full(nt, d2[1]), np.full(nt - 1, d2[2])], [-1, 0, 1]
        )
        lap1 = (sp.diags(1 / s**2) @ dx2 - sp.diags(ds / s**3) @ dx1).tocsr()
        eye = sp.identity(nt, format="csr")
        dx, dy = sp.kron(eye, lap1, format="csr"), sp.kron(lap1, eye, format="csr")
        sx, sy = np.tile(s**2, nt), np.repeat(s**2, nt)  # natural order iy * nt + ix
        return dx, dy, sx, sy

    def stiffness(self, geometry: Geometry, omega: float) -> sp.csr_matrix:
        dx, dy, sx, sy = self._axes(geometry, omega)
        h2 = geometry.h**2
        return (dx + dy + sp.diags(self.gamma * h2 * (sx + sy) / 2) @ (dx @ dy)).tocsr()

    def mass(self, geometry: Geometry, omega: float) -> sp.csr_matrix:
        dx, dy, sx, sy = self._axes(geometry, omega)
        h2 = geometry.h**2
        m = sp.identity(geometry.n_total**2, format="csr") + self.alpha * h2 * (
            sp.diags(sx) @ dx + sp.diags(sy) @ dy
        )
        if self.beta:
            m = m + sp.diags(self.beta * h2**2 * sx * sy) @ (dx @ dy)
        if self.k4:
            m = m * (1 - self.k4 * (omega * geometry.h) ** 4)
        return m.tocsr()


#: Fourth-order compact scheme (Singer & Turkel 1998; Harari & Turkel 1995).
COMPACT4 = CompactScheme("compact4", 4, gamma=1 / 6, alpha=1 / 12)

#: Dispersion-corrected compact scheme: fourth order for variable k; for constant ``k = omega``
#: (the background and the PML) its symbol error is O((kh)^8), i.e. sixth-order dispersion.
#: With ``gamma = 1/6, alpha = 1/12`` (forced by fourth order) the symbol residual of a plane
#: wave at angle t is ``(kh)^6 (1.5 + (360 beta - 7) cos^2 t sin^2 t) / 360``: the corner mass
#: ``beta = 7/360`` makes it isotropic, and scaling the mass by ``1 - (omega h)^4 / 240``
#: cancels it (docs/scattering.md).
COMPACT_OPT = CompactScheme("compact-opt", 4, gamma=1 / 6, alpha=1 / 12, beta=7 / 360, k4=1 / 240)


class _Derivatives(NamedTuple):
    """Centred differences on the contrast grid with ``eta`` (or a field) extended by zero,
    ``(n**2, n**2)`` CSR each, second-order accurate: ``dx``, ``dy`` (3-point first
    derivatives), ``dxx``, ``dyy`` (3-point second), ``dxy = dx dy``, ``lap = dxx + dyy``,
    ``lapx = dx lap``, ``lapy = dy lap`` (gradient of the Laplacian) and ``bilap = lap lap``
    (13 points), the composites taken on the zero-extended grid (not truncated between
    factors)."""

    dx: sp.csr_matrix
    dy: sp.csr_matrix
    dxx: sp.csr_matrix
    dyy: sp.csr_matrix
    dxy: sp.csr_matrix
    lap: sp.csr_matrix
    lapx: sp.csr_matrix
    lapy: sp.csr_matrix
    bilap: sp.csr_matrix


@lru_cache(maxsize=8)
def _derivatives(n: int, h: float) -> _Derivatives:
    """:class:`_Derivatives` of the ``n x n`` contrast grid of spacing ``h`` (cached)."""
    pad = 2  # the widest composite (bilap) reaches two nodes beyond the grid
    npd = n + 2 * pad
    one = sp.identity(npd, format="csr")
    d1 = sp.diags([-np.ones(npd - 1), np.ones(npd - 1)], [-1, 1]) / (2 * h)
    d2 = sp.diags([np.ones(npd - 1), -2 * np.ones(npd), np.ones(npd - 1)], [-1, 0, 1]) / h**2
    dx, dy = sp.kron(one, d1, format="csr"), sp.kron(d1, one, format="csr")
    dxx, dyy = sp.kron(one, d2, format="csr"), sp.kron(d2, one, format="csr")
    lap = dxx + dyy
    inner = (np.arange(pad, pad + n)[:, None] * npd + np.arange(pad, pad + n)[None, :]).ravel()
    embed = sp.csr_matrix((np.ones(n * n), (inner, np.arange(n * n))), shape=(npd * npd, n * n))

    def crop(op):
        return (op @ embed)[inner].tocsr()

    return _Derivatives(
        *(crop(op) for op in (dx, dy, dxx, dyy, dx @ dy, lap, dx @ lap, dy @ lap, lap @ lap))
    )


@dataclass(frozen=True)
class Compact6Scheme(CompactScheme):
    """Sixth-order compact (3 x 3) scheme for a variable wavenumber (after Turkel, Gordon,
    Gordon & Tsynkov 2013), on the :class:`CompactScheme` of ``compact-opt`` outside the
    contrast grid.

    With ``K = k^2 = omega^2 (1 + eta)`` and :math:`\\Delta u = -K u`, the truncation error of
    :math:`\\Delta_h u + \\tfrac{h^2}{6}\\delta_x^2\\delta_y^2 u` gives, to :math:`O(h^6)`,

    .. math:: \\Delta_h u + \\tfrac{h^2}{6}\\delta_x^2\\delta_y^2 u
        + (I + \\tfrac{h^2}{12}\\Delta_h + \\tfrac{7 h^4}{360}\\delta_x^2\\delta_y^2)(K u)
        - \\tfrac{h^4}{240}\\Delta^2(K u) = S f,

    and the equation turns the one non-compact term into derivatives of ``K`` times
    derivatives of ``u`` of order at most two (all on the 3 x 3 stencil):

    .. math:: \\Delta^2(K u) = K^3 u + (\\Delta^2 K - 3 K \\Delta K - 4 |\\nabla K|^2) u
        + (4 \\nabla\\Delta K - 6 K \\nabla K)\\cdot\\nabla u + 4\\, \\nabla^2 K : \\nabla^2 u.

    So ``A(eta) = L + M diag(c(K)) + N(K)`` with ``M`` the unscaled compact mass
    (``beta = 7/360``), ``c(K) = K (1 - h^4 K^2 / 240)`` (for constant ``K = omega^2`` this
    is ``compact-opt``, whose ``A(0)`` and PML this scheme shares), and
    ``N(K) = -h^4/240 [a + b . grad_h + 4 K_xx dxx + 8 K_xy dxy + 4 K_yy dyy]``,
    ``a = Delta^2 K - 3 K Delta K - 4 |grad K|^2``, ``b = 4 grad Delta K - 6 K grad K``. The
    derivatives of ``K`` are centred differences (:class:`_Derivatives`) of the nodal ``K``
    with ``eta`` extended by zero, second-order accurate, which the ``h^4`` factor makes
    sixth order. With a source (``Delta u = f - K u``) the same identity adds terms in ``f``:
    the source operator ``S(eta)`` (:meth:`source`).

    *Jumps.* The derivative terms are used everywhere, also across the sharp edges of a
    piecewise-constant ``eta``: there they are zero-sum difference stencils of the jump (a
    discrete distribution, consistent in the weak sense), not dropped; the disk oracle
    measures the result. ``N`` is omitted on the outermost ring of the contrast grid (its
    3 x 3 stencil would reach the PML, where ``K = omega^2``).

    *PML.* ``compact-opt``'s stretched compact form (a fourth-order derivation in stretched
    coordinates, consistent in the layer, Dastour & Liao 2019), which equals this scheme
    where ``s = 1`` and ``eta = 0``; reflection measured in ``tests/scattering/test_compact.py``.

    ``A`` is not affine in ``eta``: seven :class:`EtaTerm` (``M diag(c - c(0))`` and one
    row-scaled difference operator per coefficient of ``N``), whose coefficients' exact
    derivatives :meth:`coefficients_jvp` / :meth:`coefficients_vjp` keep the solver's
    Jacobian and its adjoint exact.
    """

    def mass_columns(self, geometry: Geometry, omega: float) -> sp.csr_matrix:
        """The unscaled mass ``M E`` (without ``compact-opt``'s ``1 - (omega h)^4 / 240``)."""
        scale = 1 - self.k4 * (omega * geometry.h) ** 4
        return super().mass_columns(geometry, omega) / scale

    def source(self, geometry: Geometry, omega: float, eta: np.ndarray) -> sp.csr_matrix:
        """``S f = M f - h^4/240 [Delta_h^2 f - K Delta_h f + K^2 f - 4 grad K . grad_h f
        - 2 (Delta K) f]``: the source part of ``h^4/240 Delta^2 g``, ``g = f - K u``."""
        g = geometry
        d = _derivatives(g.n, g.h)
        kx, ky, _, _, _, lk, _, _, _ = self._diffs(eta, g, omega)
        k = omega**2 * (1 + eta.ravel())
        corr = (
            d.bilap
            - sp.diags(k) @ d.lap
            + sp.diags(k**2 - 2 * lk)
            - 4 * (sp.diags(kx) @ d.dx + sp.diags(ky) @ d.dy)
        )
        embed = sp.csr_matrix(
            (np.ones(g.n**2), (contrast_nodes(g), np.arange(g.n**2))),
            shape=(g.n_total**2, g.n**2),
        )
        return (self.mass_columns(g, omega) - g.h**4 / 240 * (embed @ corr)).tocsr()

    def eta_terms(self, geometry: Geometry, omega: float) -> tuple[EtaTerm, ...]:
        d = _derivatives(geometry.n, geometry.h)
        rows = (None, d.dx, d.dy, d.dxx, d.dxy, d.dyy)
        return (
            EtaTerm(self.mass_columns(geometry, omega), None),
            *(EtaTerm(None, q) for q in rows),
        )

    @staticmethod
    def _ring(geometry: Geometry) -> np.ndarray:
        """``-h^4 / 240`` inside, 0 on the outermost ring of the contrast grid, ``(n, n)``."""
        r = np.zeros((geometry.n, geometry.n))
        r[1:-1, 1:-1] = -(geometry.h**4) / 240
        return r

    @staticmethod
    def _diffs(field: np.ndarray, geometry: Geometry, omega: float) -> list[np.ndarray]:
        """Differences ``(dx, dy, dxx, dyy, dxy, lap, lapx, lapy, bilap)`` of
        ``omega^2 field`` (the derivatives of ``K`` for ``field = eta``), flat ``(n**2,)``."""
        e = omega**2 * field.ravel()
        return [op @ e for op in _derivatives(geometry.n, geometry.h)]

    def coefficients(self, eta, geometry, omega):
        n, h4 = geometry.n, geometry.h**4
        kx, ky, kxx, kyy, kxy, lk, lkx, lky, bk = self._diffs(eta, geometry, omega)
        e = eta.ravel()
        k = omega**2 * (1 + e)
        c = omega**2 * e * (1 - (omega**4 * h4 / 240) * (3 + 3 * e + e**2))
        a = bk - 3 * k * lk - 4 * (kx**2 + ky**2)
        bx, by = 4 * lkx - 6 * k * kx, 4 * lky - 6 * k * ky
        out = np.stack([c, a, bx, by, 4 * kxx, 8 * kxy, 4 * kyy]).reshape(7, n, n)
        out[1:] *= self._ring(geometry)
        return out

    def coefficients_jvp(self, eta, deta, geometry, omega):
        n, h4 = geometry.n, geometry.h**4
        kx, ky, _, _, _, lk, _, _, _ = self._diffs(eta, geometry, omega)
        k, dk = omega**2 * (1 + eta.ravel()), omega**2 * deta.ravel()
        dkx, dky, dkxx, dkyy, dkxy, dlk, dlkx, dlky, dbk = self._diffs(deta, geometry, omega)
        dc = dk * (1 - (omega**4 * h4 / 80) * (1 + eta.ravel()) ** 2)
        da = dbk - 3 * (dk * lk + k * dlk) - 8 * (kx * dkx + ky * dky)
        dbx = 4 * dlkx - 6 * (dk * kx + k * dkx)
        dby = 4 * dlky - 6 * (dk * ky + k * dky)
        out = np.stack([dc, da, dbx, dby, 4 * dkxx, 8 * dkxy, 4 * dkyy]).reshape(7, n, n)
        out[1:] *= self._ring(geometry)
        return out

    def coefficients_vjp(self, eta, cot, geometry, omega):
        n, h4 = geometry.n, geometry.h**4
        d = _derivatives(n, geometry.h)
        kx, ky, _, _, _, lk, _, _, _ = self._diffs(eta, geometry, omega)
        k = omega**2 * (1 + eta.ravel())
        c = (cot[1:] * self._ring(geometry)).reshape(6, -1)
        ca, cbx, cby = c[0], c[1], c[2]
        grad_k = cot[0].ravel() * (1 - (omega**4 * h4 / 80) * (1 + eta.ravel()) ** 2)
        grad_k = grad_k - 3 * lk * ca - 6 * (kx * cbx + ky * cby)
        terms = (
            (d.bilap, ca),
            (d.lap, -3 * k * ca),
            (d.dx, -8 * kx * ca - 6 * k * cbx),
            (d.dy, -8 * ky * ca - 6 * k * cby),
            (d.lapx, 4 * cbx),
            (d.lapy, 4 * cby),
            (d.dxx, 4 * c[3]),
            (d.dxy, 8 * c[4]),
            (d.dyy, 4 * c[5]),
        )
        for op, v in terms:
            grad_k = grad_k + op.T @ v
        return omega**2 * grad_k.reshape(n, n)


#: Sixth-order compact scheme for variable k (see :class:`Compact6Scheme`).
COMPACT6 = Compact6Scheme("compact6", 6, gamma=1 / 6, alpha=1 / 12, beta=7 / 360, k4=1 / 240)

#: Registered schemes by name.
SCHEMES: dict[str, Scheme] = {
    s.name: s for s in (*(WideScheme(o) for o in ORDERS), COMPACT4, COMPACT_OPT, COMPACT6)
}

#: Per-frequency policies: ``(points per wavelength >= limit, scheme name)``, first match wins.
#: ``"auto"``: the lowest wide order whose disk-oracle error stays within the acceptance budget
#: (benchmarks/scatter_generate.py, docs/scattering.md).
POLICIES: dict[str, tuple[tuple[float, str], ...]] = {
    "auto": ((24.0, "wide4"), (12.0, "wide6"), (0.0, "wide8")),
}


def _choices() -> str:
    return f"one of {sorted(SCHEMES)}, a wide order {ORDERS} or a policy {sorted(POLICIES)}"


def scheme_name(scheme: Scheme | str | int) -> str:
    """Canonical name of a scheme or policy: ``8 -> "wide8"``, ``"auto" -> "auto"``.

    Raises
    ------
    ValueError
        On anything that names no registered scheme or policy.
    """
    if isinstance(scheme, Scheme):
        return scheme.name
    if isinstance(scheme, int | np.integer) and not isinstance(scheme, bool):
        if int(scheme) in ORDERS:
            return f"wide{int(scheme)}"
    elif isinstance(scheme, str):
        if scheme in SCHEMES or scheme in POLICIES:
            return scheme
        if scheme in {str(o) for o in ORDERS}:
            return f"wide{scheme}"
    raise UserInputError(f"scheme={scheme!r}: expected {_choices()}")


def get_scheme(scheme: Scheme | str | int) -> Scheme:
    """The :class:`Scheme` named by ``scheme`` (a policy is refused: use :func:`resolve_scheme`)."""
    if isinstance(scheme, Scheme):
        return scheme
    name = scheme_name(scheme)
    if name in POLICIES:
        raise UserInputError(
            f"scheme={scheme!r} is a per-frequency policy: resolve it at a frequency"
        )
    return SCHEMES[name]


def resolve_scheme(scheme: Scheme | str | int, freq: float, geometry: Geometry) -> Scheme:
    """The scheme used at ``freq``: ``scheme`` itself, or the policy's choice for the points
    per wavelength ``1 / (freq h)``."""
    name = scheme if isinstance(scheme, Scheme) else scheme_name(scheme)
    if isinstance(name, str) and name in POLICIES:
        ppw = 1.0 / (freq * geometry.h)
        return SCHEMES[next(s for limit, s in POLICIES[name] if ppw >= limit)]
    return get_scheme(name)
