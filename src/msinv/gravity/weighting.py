"""Depth and distance weighting of the model (PFWEIGHT).

Gravity kernels decay with distance, so an unweighted smooth inversion puts density at the
surface. GRAV3D counters this with a cell weight ``w`` that mimics the kernel's decay, used in
the model objective (and, in v6, to scale the sensitivities). Both weights here are normalised
to a maximum of 1.
"""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.optional import require

_DIST = {}


def depth_weighting(
    mesh, z_ref: float, *, exponent: float = 2.0, z0: float | None = None, active=None
) -> np.ndarray:
    """Depth weighting for surface data.

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh, z is elevation (up).
    z_ref : float
        Elevation depths are measured from, metres (GRAV3D: the top of the mesh or the mean
        station elevation).
    exponent : float, default 2.0
        Decay exponent alpha (2 for gravity), > 0.
    z0 : float, optional
        Offset z0 > 0 in metres; defaults to half the thinnest cell.
    active : (n_cells,) bool numpy.ndarray, optional
        Cells to return weights for.

    Returns
    -------
    (n_active,) numpy.ndarray
        Weights in discretize's cell order, maximum 1.

    Notes
    -----
    .. math:: w(z_j) = \\Big[\\frac{1}{\\Delta z_j}\\int_{z_j^{top}}^{z_j^{bot}}
              \\frac{dz}{(z + z_0)^{\\alpha}}\\Big]^{1/2}

    with z the depth below ``z_ref``, integrated in closed form.
    """
    if exponent <= 0:
        raise UserInputError(f"depth-weighting exponent must be > 0, got {exponent}")
    z0 = 0.5 * float(np.min(mesh.h[2])) if z0 is None else float(z0)
    if z0 <= 0:
        raise UserInputError(f"z0 must be > 0, got {z0}")
    zn = np.asarray(mesh.nodes_z)
    top = np.maximum(z_ref - zn[1:], 0.0) + z0  # depth + z0 of each layer's top
    bot = np.maximum(z_ref - zn[:-1], 0.0) + z0
    dz = zn[1:] - zn[:-1]
    if np.isclose(exponent, 1.0):
        integral = np.log(bot / top)
    else:
        integral = (top ** (1 - exponent) - bot ** (1 - exponent)) / (exponent - 1)
    layer = np.sqrt(np.maximum(integral, 0.0) / dz)
    nx, ny = mesh.shape_cells[:2]
    w = np.repeat(layer, nx * ny)
    if active is not None:
        w = w[np.asarray(active, dtype=bool)]
    return w / w.max()


def _distance_kernel():
    if _DIST:
        return _DIST["f"]
    numba = require("numba", "compute distance weights")

    @numba.njit(parallel=True)
    def f(centres, stations, r0, power, out):
        for j in numba.prange(centres.shape[0]):
            acc = 0.0
            for i in range(stations.shape[0]):
                dx = centres[j, 0] - stations[i, 0]
                dy = centres[j, 1] - stations[i, 1]
                dz = centres[j, 2] - stations[i, 2]
                acc += (np.sqrt(dx * dx + dy * dy + dz * dz) + r0) ** power
            out[j] = acc

    _DIST["f"] = f
    return f


def distance_weighting(
    mesh, stations, *, exponent: float = 2.0, r0: float | None = None, active=None
) -> np.ndarray:
    """Distance weighting for arbitrary (e.g. borehole) stations.

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh.
    stations : (n_data, 3) numpy.ndarray
        Station coordinates, metres.
    exponent : float, default 2.0
        Decay exponent alpha (2 for gravity), > 0.
    r0 : float, optional
        R_0 > 0 in metres; a quarter of the smallest cell dimension by default.
    active : (n_cells,) bool numpy.ndarray, optional
        Cells to return weights for.

    Returns
    -------
    (n_active,) numpy.ndarray
        Weights in discretize's cell order, maximum 1.

    Notes
    -----
    .. math:: w_j = V_j^{-1/2}\\Big\\{\\sum_i\\Big[\\int_{V_j}
              \\frac{dv}{(R_{ij}+R_0)^{\\alpha}}\\Big]^2\\Big\\}^{1/4}

    The volume integral is taken at the cell centre (``V_j / (R_ij + R_0)^alpha``), so the
    volumes cancel: :math:`w_j = \\{\\sum_i (R_{ij}+R_0)^{-2\\alpha}\\}^{1/4}`.
    """
    if exponent <= 0:
        raise UserInputError(f"distance-weighting exponent must be > 0, got {exponent}")
    r0 = 0.25 * float(np.min(mesh.h_gridded)) if r0 is None else float(r0)
    if r0 <= 0:
        raise UserInputError(f"R0 must be > 0, got {r0}")
    centres = np.ascontiguousarray(mesh.cell_centers, dtype=np.float64)
    if active is not None:
        centres = np.ascontiguousarray(centres[np.asarray(active, dtype=bool)])
    st = np.ascontiguousarray(np.atleast_2d(stations), dtype=np.float64)
    out = np.empty(centres.shape[0])
    _distance_kernel()(centres, st, r0, -2.0 * exponent, out)
    w = out**0.25
    return w / w.max()
