"""A single layer of prism cells, one per column, draped on a surface (GZES's mesh).

GZES inverts for a "completely fictional" density in one layer of cells whose tops follow the
topography (or lie at a constant elevation, or at the topography minus a depth). The columns
sit on a tensor grid in plan (east, north widths, padding allowed); every column has its own
top and the same thickness, so the layer is not a tensor mesh in 3-D: the forward model sums
the closed-form prism integral of each cell (choclo's ``gravity_u``: Nagy et al. 2000 with
Fukushima's safe log/atan), stations in parallel with numba.

Cells are ordered east fastest, then north (the order of a ``discretize.TensorMesh`` with one
cell vertically, :meth:`LayerMesh.tensor_mesh`, which carries the 2-D model objective).

Conventions: density contrast in g/cc, lengths and elevations in metres, g_z in mGal positive
down (GRAV3D's sign).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msinv.core.optional import require

#: g_z (mGal, down) per unit of choclo's upward ``gravity_u`` at 1 g/cc (= 1000 kg/m³):
#: -1e5 (m/s² -> mGal, and up -> down).
_MGAL_DOWN = -1e5
_KERNELS: dict = {}


def _kernels():
    """Compile the numba loops on first use (numba and choclo are optional extras)."""
    if _KERNELS:
        return _KERNELS
    numba = require("numba", "model an equivalent-source layer")
    choclo = require("choclo", "model an equivalent-source layer")
    gravity_u = choclo.prism.gravity_u

    @numba.njit(parallel=True, cache=False)
    def rows(st, w, e, s, n, bottom, top, out):
        for i in numba.prange(st.shape[0]):
            for j in range(w.size):
                out[i, j] = _MGAL_DOWN * gravity_u(
                    st[i, 0], st[i, 1], st[i, 2], w[j], e[j], s[j], n[j], bottom[j], top[j], 1e3
                )

    @numba.njit(parallel=True, cache=False)
    def apply(st, w, e, s, n, bottom, top, rho, out):
        for i in numba.prange(st.shape[0]):
            acc = 0.0
            for j in range(w.size):
                if rho[j] != 0.0:
                    acc += rho[j] * gravity_u(
                        st[i, 0], st[i, 1], st[i, 2], w[j], e[j], s[j], n[j], bottom[j], top[j], 1e3
                    )
            out[i] = _MGAL_DOWN * acc

    _KERNELS.update(rows=rows, apply=apply)
    return _KERNELS


@dataclass(frozen=True)
class LayerMesh:
    """One layer of prisms on a plan-view tensor grid, each column with its own top.

    Attributes
    ----------
    hx, hy : (nx,), (ny,) numpy.ndarray
        Cell widths east and north, metres (> 0).
    origin : (float, float)
        South-west corner (east, north), metres.
    top : (nx, ny) numpy.ndarray
        Elevation of the top of each column's cell, metres, indexed ``[east, north]``.
    thickness : float
        Thickness of every cell, metres (> 0).
    """

    hx: np.ndarray
    hy: np.ndarray
    origin: tuple[float, float]
    top: np.ndarray
    thickness: float

    def __post_init__(self):
        hx, hy = np.asarray(self.hx, float), np.asarray(self.hy, float)
        top = np.asarray(self.top, float)
        if hx.ndim != 1 or hy.ndim != 1 or min(hx.min(), hy.min()) <= 0:
            raise ValueError("layer widths hx, hy: expected 1-D arrays of positive widths")
        if top.shape != (hx.size, hy.size) or not np.all(np.isfinite(top)):
            raise ValueError(f"layer top: expected finite ({hx.size}, {hy.size}) elevations")
        if not self.thickness > 0:
            raise ValueError(f"layer thickness: expected > 0 m, got {self.thickness}")
        object.__setattr__(self, "hx", hx)
        object.__setattr__(self, "hy", hy)
        object.__setattr__(self, "top", top)

    # ---- geometry ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(nx, ny) cells east and north."""
        return (self.hx.size, self.hy.size)

    @property
    def n_cells(self) -> int:
        """nx · ny."""
        return self.hx.size * self.hy.size

    @property
    def nodes_x(self) -> np.ndarray:
        """(nx + 1,) east node coordinates."""
        return self.origin[0] + np.r_[0.0, np.cumsum(self.hx)]

    @property
    def nodes_y(self) -> np.ndarray:
        """(ny + 1,) north node coordinates."""
        return self.origin[1] + np.r_[0.0, np.cumsum(self.hy)]

    def prisms(self) -> np.ndarray:
        """(n_cells, 6) west, east, south, north, bottom, top of each cell (east fastest)."""
        xn, yn = self.nodes_x, self.nodes_y
        w, s = np.meshgrid(xn[:-1], yn[:-1], indexing="ij")
        e, n = np.meshgrid(xn[1:], yn[1:], indexing="ij")
        top = self.top
        cols = [a.ravel(order="F") for a in (w, e, s, n, top - self.thickness, top)]
        return np.ascontiguousarray(np.column_stack(cols))

    def cell_centers(self) -> np.ndarray:
        """(n_cells, 3) centre of each cell (east, north, elevation)."""
        p = self.prisms()
        return np.column_stack(
            [(p[:, 0] + p[:, 1]) / 2, (p[:, 2] + p[:, 3]) / 2, p[:, 5] - self.thickness / 2]
        )

    def tensor_mesh(self):
        """A ``discretize.TensorMesh`` of the plan grid, one cell thick: the 2-D model objective
        (α_s, α_x, α_y) is the 3-D one of :class:`msinv.gravity.regularisation.Regularisation`
        on it with α_z = 0."""
        discretize = require("discretize", "regularise an equivalent-source layer")
        z0 = float(np.mean(self.top)) - self.thickness
        return discretize.TensorMesh(
            [self.hx, self.hy, [self.thickness]], origin=(*self.origin, z0)
        )

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def draped(
        cls,
        points: np.ndarray,
        *,
        cell: float,
        depth: float,
        thickness: float | None = None,
        surface: np.ndarray | None = None,
        padding: int = 4,
        growth: float = 1.5,
    ) -> LayerMesh:
        """A layer under a surface, covering ``points`` with padding.

        Parameters
        ----------
        points : (n, 3) numpy.ndarray
            Stations (east, north, elevation): the core of the grid covers them.
        cell : float
            Core cell width, metres (> 0).
        depth : float
            Top of each cell at ``surface − depth`` (>= 0; 0 drapes the layer on it).
        thickness : float, optional
            Cell thickness (default: ``cell``).
        surface : (npt, 3) numpy.ndarray, optional
            Topography points; by default the stations' own elevations. Linear interpolation
            on their triangulation, nearest point outside it.
        padding : int, default 4
            Padding cells on each side (>= 0), widths growing by ``growth``.
        growth : float, default 1.5
            Width ratio of successive padding cells (>= 1).
        """
        pts = np.asarray(points, dtype=float)
        if not depth >= 0:
            raise ValueError(f"depth: expected >= 0 m, got {depth}")
        hx, hy, (x0, y0) = cls.plan(pts, cell=cell, padding=padding, growth=growth)
        probe = cls(hx, hy, (x0, y0), np.zeros((hx.size, hy.size)), thickness or cell)
        centres = probe.cell_centers()[:, :2]
        elev = surface_elevation(pts if surface is None else surface, centres)
        top = (elev - depth).reshape(probe.shape, order="F")
        return cls(hx, hy, (x0, y0), top, thickness or cell)

    @staticmethod
    def plan(points: np.ndarray, *, cell: float, padding: int = 4, growth: float = 1.5):
        """The plan-view grid of :meth:`draped` (no tops): widths hx (nx,), hy (ny,) and the
        south-west corner (east, north), metres."""
        pts = np.asarray(points, dtype=float)
        if not cell > 0 or padding < 0 or growth < 1:
            raise ValueError("cell > 0, padding >= 0 and growth >= 1 expected")
        pad = cell * growth ** np.arange(1, padding + 1)
        axes = []
        for k in (0, 1):
            lo, hi = pts[:, k].min(), pts[:, k].max()
            n = max(1, int(np.ceil((hi - lo) / cell)) + 1)
            start = 0.5 * (lo + hi) - n * cell / 2 - pad.sum()
            axes.append((np.r_[pad[::-1], np.full(n, cell), pad], start))
        (hx, x0), (hy, y0) = axes
        return hx, hy, (x0, y0)

    # ---- physics ---------------------------------------------------------------------------
    def sensitivity(self, stations: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Dense G (n_data, n_cells) in mGal per g/cc: ``G[i, j]`` = g_z (down) at station i
        of cell j at 1 g/cc."""
        st = _stations(stations)
        out = np.empty((st.shape[0], self.n_cells), dtype=dtype)
        p = self.prisms()
        _kernels()["rows"](st, *(np.ascontiguousarray(p[:, k]) for k in range(6)), out)
        return out

    def gz(self, stations: np.ndarray, density: np.ndarray) -> np.ndarray:
        """g_z (mGal, down) of a layer density (n_cells,) g/cc at stations, matrix-free."""
        st = _stations(stations)
        rho = np.ascontiguousarray(np.asarray(density, dtype=np.float64))
        if rho.shape != (self.n_cells,):
            raise ValueError(f"density: expected {self.n_cells} values, got {rho.shape}")
        out = np.empty(st.shape[0])
        p = self.prisms()
        _kernels()["apply"](st, *(np.ascontiguousarray(p[:, k]) for k in range(6)), rho, out)
        return out

    def sensitivity_memory(self, n_data: int, dtype=np.float64) -> int:
        """Bytes of the dense G of ``n_data`` stations."""
        return int(n_data) * self.n_cells * np.dtype(dtype).itemsize


def _stations(stations) -> np.ndarray:
    st = np.ascontiguousarray(np.atleast_2d(np.asarray(stations, dtype=np.float64)))
    if st.ndim != 2 or st.shape[1] != 3 or not np.all(np.isfinite(st)):
        raise ValueError(f"stations: expected finite (n, 3) east, north, elevation; got {st.shape}")
    return st


def surface_elevation(points: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Elevation of the surface through ``points`` (n, 3) at ``where`` (m, 2): linear on the
    Delaunay triangulation (matplotlib's, whose trifinder stays fast outside the hull), the
    nearest point's elevation outside it."""
    from scipy import interpolate

    points = np.asarray(points, dtype=float)
    where = np.asarray(where, dtype=float)
    nearest = interpolate.NearestNDInterpolator(points[:, :2], points[:, 2])(where)
    if len(points) < 3 or np.linalg.matrix_rank(points[:, :2] - points[0, :2]) < 2:
        return nearest
    import matplotlib.tri as mtri

    tri = mtri.Triangulation(points[:, 0], points[:, 1])
    z = mtri.LinearTriInterpolator(tri, points[:, 2])(where[:, 0], where[:, 1])
    return np.where(np.ma.getmaskarray(z), nearest, np.ma.getdata(z))


#: Format tag of a dense layer sensitivity (GZSENES's full matrix, ``gzinves_full.mtx``).
DENSE_LAYER_FORMAT = "msinv-layer-dense-sensitivity-1"


def layer_arrays(layer: LayerMesh, prefix: str = "layer_") -> dict:
    """The layer's geometry as arrays for a ``.npz`` (keys ``<prefix>hx`` ... ``thickness``)."""
    return {
        f"{prefix}hx": layer.hx,
        f"{prefix}hy": layer.hy,
        f"{prefix}origin": np.asarray(layer.origin, dtype=np.float64),
        f"{prefix}top": layer.top,
        f"{prefix}thickness": float(layer.thickness),
    }


def layer_from_arrays(f, prefix: str = "layer_") -> LayerMesh:
    """Inverse of :func:`layer_arrays` (``f`` a mapping such as an open ``.npz``)."""
    if f"{prefix}hx" not in f:
        raise ValueError(f"not an equivalent-source layer file (no {prefix}* arrays)")
    return LayerMesh(
        f[f"{prefix}hx"],
        f[f"{prefix}hy"],
        tuple(f[f"{prefix}origin"]),
        f[f"{prefix}top"],
        float(f[f"{prefix}thickness"]),
    )


def layer_from_mesh(
    mesh, topography: np.ndarray | None, depth: float = 0.0
) -> tuple[LayerMesh, np.ndarray]:
    """GZES's layer from a UBC mesh (and topography).

    * NZ = 1: the columns of the mesh, one cell thick; draped on the topography (each top at
      the surface's elevation at the column centre, minus ``depth``) or, without topography,
      at the mesh top.
    * NZ > 1 (equal thicknesses): in each column the top cell completely below the
      topography (GRAV3D's rule, :func:`msinv.gravity.topography.active_from_topography`),
      or the top cell without topography.

    Returns
    -------
    layer : LayerMesh
    cells : (nx·ny,) int numpy.ndarray
        Index of each layer cell among the mesh's cells (mesh order), for writing models.
    """
    nx, ny, nz = mesh.shape_cells
    hz = np.asarray(mesh.h[2])
    origin = (float(mesh.origin[0]), float(mesh.origin[1]))
    top_z = float(mesh.origin[2] + hz.sum())
    if nz == 1:
        top = np.full((nx, ny), top_z)
        if topography is not None:
            probe = LayerMesh(mesh.h[0], mesh.h[1], origin, top, float(hz[0]))
            elev = surface_elevation(topography, probe.cell_centers()[:, :2])
            top = elev.reshape((nx, ny), order="F") - depth
        return LayerMesh(mesh.h[0], mesh.h[1], origin, top, float(hz[0])), np.arange(nx * ny)
    if not np.allclose(hz, hz[0], rtol=1e-9):
        raise ValueError(
            "an equivalent-source mesh needs NZ = 1, or equal thicknesses so that the layer "
            f"can follow the topography; got thicknesses from {hz.min():g} to {hz.max():g} m"
        )
    from msinv.gravity.topography import active_from_topography

    active = active_from_topography(mesh, topography).reshape((nx, ny, nz), order="F")
    if not active.any(axis=2).all():
        raise ValueError("the topography lies below the mesh in some columns: no layer cell there")
    k = nz - 1 - np.argmax(active[:, :, ::-1], axis=2)  # highest active cell of each column
    top = mesh.origin[2] + (k + 1) * hz[0]
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    cells = (i + nx * (j + ny * k)).ravel(order="F")
    return LayerMesh(mesh.h[0], mesh.h[1], origin, top, float(hz[0])), cells
