"""Reading the scattered field at the receivers.

Three readers, all linear:

* ``"representation"``: :math:`u_{sc}(x_r) = \\omega^2 \\int \\Phi(x_r - y)\\,\\eta(y)\\,u(y)\\,dy`
  (Lippmann--Schwinger representation with the free-space Green's function
  :math:`\\Phi(x, y) = \\tfrac{i}{4} H_0^{(1)}(\\omega |x - y|)`), trapezoid rule on the contrast
  grid. Exact outside the support of eta and valid at any radius; the matrix ``M`` acts on
  ``eta * u`` on the contrast grid.
* ``"cubic"``: tensor 4-point Lagrange interpolation of the scattered field on the
  computational grid (PML included).
* ``"bilinear"``: bilinear interpolation, the reading of the published data.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.special import hankel1

from msinv.core.errors import UserInputError
from msinv.scattering.geometry import Geometry

#: Receiver readers offered by the solver.
READERS = ("representation", "cubic", "bilinear")

_EULER_GAMMA = 0.5772156649015329


def check_reader(name: str) -> str:
    """Validate a ``receiver_interpolation`` value."""
    if name not in READERS:
        raise UserInputError(f"receiver_interpolation={name!r}: expected one of {READERS}")
    return name


@lru_cache(maxsize=16)
def representation_matrix(geometry: Geometry, omega: float) -> np.ndarray:
    """Dense ``M`` with ``Lambda[r] = (M @ (eta * u).ravel())[r]``.

    Returns
    -------
    (n_receivers, n * n) complex128 numpy.ndarray
        :math:`M_{rj} = \\omega^2 w_j \\Phi(x_r - y_j)`, ``w_j`` the 2-D trapezoid weights
        (``h^2`` inside, halved on edges, quartered at corners); flattened index
        ``j = iy * n + ix``.

    Notes
    -----
    A receiver that falls within ``1e-9 h`` of a node uses, for that node, the mean of
    :math:`\\Phi` over the disk of area ``h^2`` (small-argument expansion), which removes the
    logarithmic singularity.
    """
    g = geometry
    xx, yy = np.meshgrid(g.x, g.y)  # [iy, ix]
    pts = g.receiver_points
    dist = np.hypot(pts[:, 0, None] - xx.ravel()[None], pts[:, 1, None] - yy.ravel()[None])
    w1 = np.full(g.n, g.h)
    w1[[0, -1]] *= 0.5
    weights = np.outer(w1, w1).ravel()
    near = dist < 1e-9 * g.h
    phi = 0.25j * hankel1(0, omega * np.where(near, 1.0, dist))
    if near.any():
        a = g.h / np.sqrt(np.pi)
        phi[near] = 0.25j - (np.log(omega * a / 2) + _EULER_GAMMA - 0.5) / (2 * np.pi)
    m = omega**2 * weights[None] * phi
    m.setflags(write=False)
    return m


def _lagrange(t: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Lagrange basis values at ``t`` (k,) for integer ``nodes`` (p,) -> (k, p)."""
    out = np.ones((t.size, nodes.size))
    for i, xi in enumerate(nodes):
        for xj in nodes:
            if xj != xi:
                out[:, i] *= (t - xj) / (xi - xj)
    return out


def _check_on_grid(g: Geometry, kind: str, distance: np.ndarray) -> None:
    """Refuse receivers off the computational grid, warn about receivers in the PML.

    ``distance``: each receiver's largest coordinate distance from the grid's centre, in
    cells. Off the grid a {bilinear, cubic} reader would extrapolate; inside the PML the field
    is damped, so the data read there are not the physical field.
    """
    tol = 1e-9
    outside = np.flatnonzero(distance > (g.n_total - 1) / 2 + tol)
    if outside.size:
        r = int(outside[0])
        x, y = g.receiver_points[r]
        lo, hi = g.x_total[0], g.x_total[-1]
        raise UserInputError(
            f"receiver {r} at ({x:.6g}, {y:.6g}) lies outside the computational grid "
            f"[{lo:.6g}, {hi:.6g}]^2 ({outside.size} of {g.n_receivers}): the {kind!r} reader "
            "would extrapolate; use receiver_interpolation='representation' (receivers anywhere "
            "off the contrast square) or a smaller receiver_radius"
        )
    in_pml = np.flatnonzero(distance > (g.n - 1) / 2 + tol)
    if in_pml.size:
        warnings.warn(
            f"{in_pml.size} of {g.n_receivers} receivers lie in the PML (receiver_radius="
            f"{g.receiver_radius:g}, contrast grid {g.extent}): the {kind!r} reader reads the "
            "damped field there, not the physical one; use receiver_interpolation="
            "'representation'",
            stacklevel=3,
        )


@lru_cache(maxsize=16)
def interpolation_matrix(geometry: Geometry, kind: str) -> sp.csr_matrix:
    """Sparse ``P`` reading a field on the computational grid at the receivers.

    Parameters
    ----------
    geometry : Geometry
    kind : {"bilinear", "cubic"}

    Returns
    -------
    (n_receivers, n_total**2) float64 scipy.sparse.csr_matrix
        Acts on the flattened computational-grid field (index ``iy * n_total + ix``).
    """
    g = geometry
    nt = g.n_total
    x0 = g.x_total[0]
    pts = g.receiver_points
    fx = (pts[:, 0] - x0) / g.h
    fy = (pts[:, 1] - x0) / g.h
    _check_on_grid(g, kind, np.maximum(np.abs(fx - (nt - 1) / 2), np.abs(fy - (nt - 1) / 2)))
    if kind == "bilinear":
        offs = np.array([0, 1])
        base_x = np.clip(np.floor(fx).astype(int), 0, nt - 2)
        base_y = np.clip(np.floor(fy).astype(int), 0, nt - 2)
    elif kind == "cubic":
        offs = np.array([-1, 0, 1, 2])
        base_x = np.clip(np.floor(fx).astype(int), 1, nt - 3)
        base_y = np.clip(np.floor(fy).astype(int), 1, nt - 3)
    else:
        raise UserInputError(f"interpolation kind {kind!r}: expected 'bilinear' or 'cubic'")
    wx = _lagrange(fx - base_x, offs)
    wy = _lagrange(fy - base_y, offs)
    rows, cols, vals = [], [], []
    for a, oy in enumerate(offs):
        for b, ox in enumerate(offs):
            rows.append(np.arange(g.n_receivers))
            cols.append((base_y + oy) * nt + (base_x + ox))
            vals.append(wy[:, a] * wx[:, b])
    p = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(g.n_receivers, nt * nt),
    )
    return p
