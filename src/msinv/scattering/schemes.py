"""Finite-difference schemes of the Helmholtz operator: stiffness and mass stencils.

A scheme discretises :math:`\\Delta_{PML} u + k^2 u = f`, :math:`k^2 = \\omega^2 (1 + \\eta)`, on
the computational grid (contrast grid + PML, natural order ``iy * n_total + ix``) as

.. math:: A(\\eta)\\, u = M f, \\qquad A(\\eta) = L + \\omega^2 M\\,\\mathrm{diag}(1 + \\eta),

with ``L`` the stiffness matrix (the discrete stretched Laplacian) and ``M`` the mass matrix
(``eta`` is zero in the PML). The wide centred schemes of orders 2-8 have ``M = I``: ``eta``
sits on the diagonal only. Compact schemes spread the mass over the 3 x 3 stencil, so the
Jacobian :math:`\\partial A/\\partial\\eta\\,\\delta\\eta = \\omega^2 M\\,\\mathrm{diag}(\\delta\\eta)`
and the source ``M f`` both go through ``M``.

Schemes are small frozen values (hashable cache keys). :func:`get_scheme` turns a name
(``"wide8"``), an integer order (8 -> ``"wide8"``) or a :class:`Scheme` into a scheme;
:func:`resolve_scheme` also resolves the per-frequency policies of :data:`POLICIES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

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


class Scheme(ABC):
    """A discretisation ``A(eta) = L + omega^2 M diag(1 + eta)`` of the Helmholtz operator.

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

#: Registered schemes by name.
SCHEMES: dict[str, Scheme] = {
    s.name: s for s in (*(WideScheme(o) for o in ORDERS), COMPACT4, COMPACT_OPT)
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
