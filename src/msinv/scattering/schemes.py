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


#: Registered schemes by name.
SCHEMES: dict[str, Scheme] = {s.name: s for s in (WideScheme(o) for o in ORDERS)}

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
