"""Vertical gravity of a prism model on a tensor mesh (GZFOR3D / GZPRE3D physics).

The closed-form prism integral (Nagy, Papp & Benedek 2000, with Fukushima 2020's safe
logarithm and arctangent) is evaluated by :func:`choclo.prism.kernel_u`. On a tensor mesh the
kernel is evaluated once per (station, mesh node) and every cell is the signed sum of its eight
nodes (the "node-sharing" trick: about 8x fewer kernel evaluations than per-cell vertices).
Stations run in parallel with numba's ``prange``.

Conventions: density contrast in g/cc, lengths in metres, data in mGal, ``g_z`` positive
**down** as GRAV3D prints it (a positive contrast gives a positive anomaly); choclo's kernel
gives the upward component in SI units, converted exactly by :data:`MGAL_PER_GCC`.
"""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.operator import LinearOperator
from msinv.core.optional import require

#: Gravitational constant of choclo (CODATA 2018), m^3 kg^-1 s^-2.
GRAVITATIONAL_CONST = 6.6743e-11
#: Factor from (kernel sum x density in g/cc) to **downward** g_z in mGal:
#: -G * 1000 (g/cc -> kg/m^3) * 1e5 (m/s^2 -> mGal); the minus sign turns choclo's upward
#: component into GRAV3D's downward one.
MGAL_PER_GCC = -GRAVITATIONAL_CONST * 1e3 * 1e5

_KERNELS = {}


def _numba_kernels():
    """Compile the numba loops once, lazily (numba and choclo are optional extras)."""
    if _KERNELS:
        return _KERNELS
    numba = require("numba", "compute gravity sensitivities")
    choclo = require("choclo", "compute gravity sensitivities")
    kernel_u = choclo.prism.kernel_u

    @numba.njit(inline="always")
    def _node_kernels(xn, yn, zn, xs, ys, zs, k):
        for c in range(zn.size):
            dz = zn[c] - zs
            for b in range(yn.size):
                dy = yn[b] - ys
                for a in range(xn.size):
                    dx = xn[a] - xs
                    k[c, b, a] = kernel_u(dx, dy, dz, np.sqrt(dx * dx + dy * dy + dz * dz))

    @numba.njit(inline="always")
    def _cell(k, a, b, c):
        return (
            k[c + 1, b + 1, a + 1]
            - k[c + 1, b + 1, a]
            - k[c + 1, b, a + 1]
            + k[c + 1, b, a]
            - k[c, b + 1, a + 1]
            + k[c, b + 1, a]
            + k[c, b, a + 1]
            - k[c, b, a]
        )

    @numba.njit(parallel=True, cache=False)
    def rows(xn, yn, zn, stations, cols, scale, out):
        nx, ny = xn.size - 1, yn.size - 1
        for s in numba.prange(stations.shape[0]):
            k = np.empty((zn.size, yn.size, xn.size))
            _node_kernels(xn, yn, zn, stations[s, 0], stations[s, 1], stations[s, 2], k)
            for j in range(cols.size):
                cell = cols[j]
                a = cell % nx
                b = (cell // nx) % ny
                c = cell // (nx * ny)
                out[s, j] = scale * _cell(k, a, b, c)

    @numba.njit(parallel=True, cache=False)
    def apply(xn, yn, zn, stations, density, scale, out):
        nx, ny, nz = xn.size - 1, yn.size - 1, zn.size - 1
        for s in numba.prange(stations.shape[0]):
            k = np.empty((zn.size, yn.size, xn.size))
            _node_kernels(xn, yn, zn, stations[s, 0], stations[s, 1], stations[s, 2], k)
            acc = 0.0
            for c in range(nz):
                for b in range(ny):
                    for a in range(nx):
                        rho = density[a + nx * (b + ny * c)]
                        if rho != 0.0:
                            acc += rho * _cell(k, a, b, c)
            out[s] = scale * acc

    _KERNELS.update(rows=rows, apply=apply)
    return _KERNELS


def _nodes(mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if getattr(mesh, "dim", 3) != 3:
        raise UserInputError(f"gravity needs a 3-D tensor mesh, got a {mesh.dim}-D mesh")
    return tuple(
        np.ascontiguousarray(n, dtype=np.float64)
        for n in (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)
    )


def _stations(stations) -> np.ndarray:
    st = np.ascontiguousarray(np.atleast_2d(np.asarray(stations, dtype=np.float64)))
    if st.ndim != 2 or st.shape[1] != 3:
        raise UserInputError(f"stations must be an (n, 3) array of E, N, elevation; got {st.shape}")
    if not np.all(np.isfinite(st)):
        raise UserInputError("stations contain NaN or infinite coordinates")
    return st


def gz(mesh, stations, density) -> np.ndarray:
    """Downward vertical gravity of a density-contrast model, matrix-free.

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh (x east, y north, z elevation up).
    stations : (n_data, 3) numpy.ndarray
        Easting, northing, elevation of each station, metres. Stations may sit anywhere:
        above, on faces, edges or corners of cells, or inside the model (boreholes).
    density : (mesh.n_cells,) numpy.ndarray
        Density contrast in g/cc in discretize's ordering (x fastest, z bottom to top);
        inactive cells must hold 0.

    Returns
    -------
    (n_data,) numpy.ndarray
        g_z in mGal, positive down.

    Notes
    -----
    .. math:: g_z(\\mathbf r_o) = \\gamma \\int \\rho(\\mathbf r)\\,
              \\frac{z - z_o}{|\\mathbf r - \\mathbf r_o|^3}\\,dv

    with z positive down, evaluated per prism as the signed eight-vertex sum of the kernel,
    the vertices shared between cells.
    """
    xn, yn, zn = _nodes(mesh)
    st = _stations(stations)
    rho = np.ascontiguousarray(np.asarray(density, dtype=np.float64).ravel())
    if rho.size != mesh.n_cells:
        raise UserInputError(f"density has {rho.size} values, the mesh has {mesh.n_cells} cells")
    out = np.empty(st.shape[0])
    _numba_kernels()["apply"](xn, yn, zn, st, rho, MGAL_PER_GCC, out)
    return out


def forward_memory(mesh, n_data: int) -> int:
    """Bytes :func:`gz` needs for ``n_data`` stations: stations and results, the model, and one
    node-kernel array per thread (numba's)."""
    numba = require("numba", "compute gravity")
    nodes = (mesh.shape_cells[0] + 1) * (mesh.shape_cells[1] + 1) * (mesh.shape_cells[2] + 1)
    return 8 * (4 * int(n_data) + 2 * mesh.n_cells + numba.config.NUMBA_NUM_THREADS * nodes)


def sensitivity_rows(mesh, stations, active=None, dtype=np.float64, out=None) -> np.ndarray:
    """Rows of the sensitivity matrix G (mGal per g/cc) for some stations.

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh.
    stations : (n, 3) numpy.ndarray
        Station coordinates, metres.
    active : (mesh.n_cells,) bool numpy.ndarray, optional
        Cells that are model parameters (columns of G, in discretize's order); all by default.
    dtype : {numpy.float64, numpy.float32}
        Storage precision of G (the kernel is always evaluated in float64).
    out : (n, n_active) numpy.ndarray, optional
        Where to write the rows.

    Returns
    -------
    (n, n_active) numpy.ndarray
        ``G[i, j]`` = g_z at station i (mGal, down) of cell j at 1 g/cc.
    """
    xn, yn, zn = _nodes(mesh)
    st = _stations(stations)
    cols = (
        np.arange(mesh.n_cells, dtype=np.int64)
        if active is None
        else np.flatnonzero(np.asarray(active, dtype=bool)).astype(np.int64)
    )
    if out is None:
        out = np.empty((st.shape[0], cols.size), dtype=dtype)
    _numba_kernels()["rows"](xn, yn, zn, st, cols, MGAL_PER_GCC, out)
    return out


class GravityOperator(LinearOperator):
    """The dense sensitivity ``G`` as an operator: ``d = G m`` and ``m' = G^T d``.

    Parameters
    ----------
    matrix : (n_data, n_active) numpy.ndarray
        Sensitivities in mGal per g/cc (float32 or float64), e.g. from
        :func:`msinv.gravity.sensitivity.build_sensitivity`.
    """

    real_model = True

    def __init__(self, matrix: np.ndarray):
        self.matrix = np.asarray(matrix)
        if self.matrix.ndim != 2:
            raise UserInputError(f"G must be a 2-D matrix, got shape {self.matrix.shape}")
        self.shape_out, self.shape_in = (self.matrix.shape[0],), (self.matrix.shape[1],)
        self.dtype = self.matrix.dtype

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Predicted data ``G m``: (n_active,) g/cc -> (n_data,) mGal."""
        return self.matrix @ np.asarray(x, dtype=self.dtype)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``G^T v``: (n_data,) -> (n_active,)."""
        return self.matrix.T @ np.asarray(y, dtype=self.dtype)

    @classmethod
    def example(cls, rng: np.random.Generator) -> GravityOperator:
        """A 4x3x2 mesh seen from five stations above it."""
        from discretize import TensorMesh

        mesh = TensorMesh([rng.uniform(5, 10, 4), rng.uniform(5, 10, 3), rng.uniform(5, 10, 2)])
        st = np.column_stack([rng.uniform(0, 30, 5), rng.uniform(0, 20, 5), np.full(5, 25.0)])
        return cls(sensitivity_rows(mesh, st))
