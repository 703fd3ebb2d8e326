"""Active cells from topography, the GRAV3D way: only cells completely below the surface.

GRAV3D triangulates the scattered topography points and keeps a cell only when its whole top
face lies at or below the interpolated surface; cells cut by the surface, or above it, are
removed from the model (and written as −100 in output models).  ``discretize``'s
``active_from_xyz`` tests the cell *centres* instead, which keeps cells the surface cuts through.
"""

from __future__ import annotations

import numpy as np
from scipy import interpolate

from msinv.core.errors import UserInputError


def surface_minimum(mesh, points: np.ndarray) -> np.ndarray:
    """Lowest elevation of the triangulated topography over each column of cells.

    The surface is the piecewise-linear interpolant on the Delaunay triangulation of the points
    (``matplotlib.tri.LinearTriInterpolator``); outside the convex hull of the points it takes
    the elevation of the nearest point.  The minimum of a piecewise-linear function over a
    rectangle lies at one of: the rectangle's corners, a data point inside it, or a crossing of
    a triangle edge with its sides; all three sets are evaluated, so the result is exact inside
    the hull.

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh (east, north, elevation).
    points : (npt, 3) numpy.ndarray
        Topography points: east, north, elevation (m).

    Returns
    -------
    (NE, NN) float64 numpy.ndarray
        Minimum surface elevation over the footprint of each column ``[east, north]``.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 1:
        raise UserInputError(f"topography: expected (npt >= 1, 3) points, got shape {points.shape}")
    xn, yn = np.asarray(mesh.nodes_x), np.asarray(mesh.nodes_y)
    ne, nn = len(xn) - 1, len(yn) - 1
    nearest = interpolate.NearestNDInterpolator(points[:, :2], points[:, 2])
    lowest = np.full((ne, nn), np.inf)

    # 1) corners of every column: the node grid.
    gx, gy = np.meshgrid(xn, yn, indexing="ij")
    nodes = np.column_stack([gx.ravel(), gy.ravel()])
    if len(points) >= 3 and np.linalg.matrix_rank(points[:, :2] - points[0, :2]) == 2:
        import matplotlib.tri as mtri  # C++ triangulation and trifinder (no LAPACK calls)

        tri = mtri.Triangulation(points[:, 0], points[:, 1])
        z = mtri.LinearTriInterpolator(tri, points[:, 2])(nodes[:, 0], nodes[:, 1])
        z = np.where(np.ma.getmaskarray(z), nearest(nodes), np.ma.getdata(z)).reshape(gx.shape)
        crossings = _edge_crossings(tri.edges, points, xn, yn)
    else:  # too few points to triangulate: a nearest-point surface
        z = nearest(nodes).reshape(gx.shape)
        crossings = np.empty((0, 3))
    corner_min = np.minimum.reduce([z[:-1, :-1], z[1:, :-1], z[:-1, 1:], z[1:, 1:]])
    lowest = np.minimum(lowest, corner_min)

    # 2) data points and 3) edge crossings: each lowers every column whose closed footprint
    # holds it (two or four columns when it lies on a node line).
    extra = np.vstack([points, crossings])
    x, y, elev = extra.T
    i_lo = np.maximum(np.searchsorted(xn, x, "left") - 1, 0)
    i_hi = np.minimum(np.searchsorted(xn, x, "right") - 1, ne - 1)
    j_lo = np.maximum(np.searchsorted(yn, y, "left") - 1, 0)
    j_hi = np.minimum(np.searchsorted(yn, y, "right") - 1, nn - 1)
    inside = (i_lo <= i_hi) & (j_lo <= j_hi)
    for i in (i_lo, i_hi):
        for j in (j_lo, j_hi):
            np.minimum.at(lowest, (i[inside], j[inside]), elev[inside])
    return lowest


def _edge_crossings(edges: np.ndarray, points: np.ndarray, xn: np.ndarray, yn: np.ndarray):
    """Points where triangulation edges cross the mesh's node lines x = xn[i] and y = yn[j].

    Returns an ``(n, 3)`` array of (east, north, elevation) on the linear surface.
    """
    p, q = points[edges[:, 0], :2], points[edges[:, 1], :2]
    zp, zq = points[edges[:, 0], 2], points[edges[:, 1], 2]
    out = []
    for axis, lines in ((0, xn), (1, yn)):
        a, b = p[:, axis], q[:, axis]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        # every (edge, line) pair with the line strictly between the edge's two ends
        start = np.searchsorted(lines, lo, "right")
        stop = np.searchsorted(lines, hi, "left")
        counts = np.maximum(stop - start, 0)
        edge = np.repeat(np.arange(len(edges)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        value = lines[np.repeat(start, counts) + offsets]
        t = (value - a[edge]) / (b[edge] - a[edge])
        point = p[edge] + t[:, None] * (q[edge] - p[edge])
        point[:, axis] = value  # exactly on the line, so both neighbouring columns see it
        out.append(np.column_stack([point, zp[edge] + t * (zq[edge] - zp[edge])]))
    return np.vstack(out)


def active_from_topography(mesh, points: np.ndarray | None) -> np.ndarray:
    """Cells completely below the topography (GRAV3D's rule).

    A cell is active when the top of the cell is at or below the lowest point of the
    triangulated surface over its footprint (:func:`surface_minimum`).

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh; z is elevation.
    points : (npt, 3) numpy.ndarray or None
        Topography points (east, north, elevation); None (``null`` in a control file) means a
        flat surface on top of the mesh: every cell is active.

    Returns
    -------
    (n_cells,) bool numpy.ndarray
        True for cells kept in the model, in mesh order (east fastest, then north, then z up).
    """
    if points is None:
        return np.ones(mesh.n_cells, dtype=bool)
    lowest = surface_minimum(mesh, points)
    tops = np.asarray(mesh.nodes_z)[1:]
    scale = max(1.0, float(np.abs(mesh.nodes_z).max()))
    below = tops[None, None, :] <= lowest[:, :, None] + 1e-9 * scale
    return below.reshape(-1, order="F")
