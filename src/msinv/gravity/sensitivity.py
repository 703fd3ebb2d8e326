"""Dense sensitivity matrix G built in chunks of stations (GZSEN3D without compression)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.inputs import npz_errors, open_npz
from msinv.gravity.forward import sensitivity_rows


def sensitivity_memory(n_data: int, n_active: int, dtype=np.float64) -> int:
    """Bytes needed to store the dense G: ``n_data * n_active * itemsize``."""
    return int(n_data) * int(n_active) * np.dtype(dtype).itemsize


def build_sensitivity(
    mesh,
    stations,
    active=None,
    *,
    dtype=np.float64,
    chunk: int = 64,
    max_bytes: int | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Dense G (mGal per g/cc), station chunk by station chunk.

    Parameters
    ----------
    mesh : discretize.TensorMesh
        3-D tensor mesh.
    stations : (n_data, 3) numpy.ndarray
        Station coordinates, metres.
    active : (n_cells,) bool numpy.ndarray, optional
        Columns of G; all cells by default.
    dtype : {numpy.float64, numpy.float32}
        Storage precision.
    chunk : int
        Stations per chunk (>= 1); progress is reported after each.
    max_bytes : int, optional
        Refuse to allocate more than this (the estimate is checked before any work).
    callback : callable, optional
        ``callback(done, total)`` after each chunk (e.g. a tqdm update).

    Returns
    -------
    (n_data, n_active) numpy.ndarray
    """
    if chunk < 1:
        raise UserInputError(f"chunk must be >= 1, got {chunk}")
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise UserInputError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    st = np.atleast_2d(np.asarray(stations, dtype=np.float64))
    n_active = mesh.n_cells if active is None else int(np.count_nonzero(active))
    need = sensitivity_memory(st.shape[0], n_active, dtype)
    if max_bytes is not None and need > max_bytes:
        raise UserInputError(
            f"dense G needs {need / 2**30:.2f} GiB ({st.shape[0]} data x {n_active} cells, "
            f"{np.dtype(dtype).name}), more than the allowed {max_bytes / 2**30:.2f} GiB"
        )
    g = np.empty((st.shape[0], n_active), dtype=dtype)
    for start in range(0, st.shape[0], chunk):
        stop = min(start + chunk, st.shape[0])
        sensitivity_rows(mesh, st[start:stop], active, dtype=dtype, out=g[start:stop])
        if callback is not None:
            callback(stop, st.shape[0])
    return g


#: Format tag of a dense sensitivity file written by :func:`save_sensitivity`.
DENSE_FORMAT = "msinv-dense-sensitivity-1"


def _mesh_arrays(mesh) -> dict:
    return {
        "mesh_hx": mesh.h[0],
        "mesh_hy": mesh.h[1],
        "mesh_hz": mesh.h[2],
        "mesh_origin": np.asarray(mesh.origin, dtype=np.float64),
    }


def save_sensitivity(path, op, mesh, config: dict | None = None, model_weights=None) -> Path:
    """Write a sensitivity (GZSEN3D's ``gzinv3d.mtx``) with its mesh, as NumPy ``.npz``.

    Parameters
    ----------
    path : str or Path
        Output file, written under exactly this name.
    op : CompressedSensitivity or tuple
        The compressed operator, or ``(g, active, weights)`` for a dense G: ``g``
        (n_data, n_active), ``active`` (n_cells,) bool, ``weights`` (n_active,) the
        depth/distance weights of the inversion (ones for none).
    mesh : discretize.TensorMesh
        The mesh (stored as ``mesh_hx``, ``mesh_hy``, ``mesh_hz``, ``mesh_origin``).
    config : dict, optional
        Recorded in the provenance.
    model_weights : (n_active,) numpy.ndarray, optional
        Depth/distance weights for the inversion when they differ from the compression's row
        scaling (stored as ``model_weights``).

    Notes
    -----
    A compressed file follows :mod:`msinv.gravity.compression`'s format; a dense file holds
    ``format`` = ``"msinv-dense-sensitivity-1"``, ``g``, ``active``, ``weights`` and
    ``provenance`` (JSON), plus the mesh arrays.
    """
    import json

    from msinv.core.provenance import provenance
    from msinv.gravity.compression import CompressedSensitivity

    path = Path(path)
    if isinstance(op, CompressedSensitivity):
        extra = _mesh_arrays(mesh)
        if model_weights is not None:
            extra["model_weights"] = np.asarray(model_weights, dtype=np.float64)
        return op.save(path, config, extra=extra)
    g, active, weights = op
    with path.open("wb") as fh:
        np.savez(
            fh,
            format=DENSE_FORMAT,
            g=g,
            active=np.asarray(active, bool),
            weights=np.asarray(weights, np.float64),
            provenance=json.dumps(provenance(config)),
            **_mesh_arrays(mesh),
        )
    return path


def load_sensitivity(path):
    """Read a file of :func:`save_sensitivity`.

    Returns
    -------
    op : LinearOperator
        :class:`~msinv.gravity.forward.GravityOperator` or
        :class:`~msinv.gravity.compression.CompressedSensitivity` on the active cells.
    mesh : discretize.TensorMesh
    active : (n_cells,) bool numpy.ndarray
    weights : (n_active,) numpy.ndarray
        The depth/distance weights for the inversion (``model_weights`` when stored, else
        the row scaling).
    """
    from msinv.core.optional import require
    from msinv.gravity.compression import FORMAT, CompressedSensitivity
    from msinv.gravity.forward import GravityOperator

    discretize = require("discretize", "read a sensitivity file")
    path = Path(path)
    f = open_npz(path, what="a sensitivity file written by `msinv gravity sensitivity`")
    with f, npz_errors(path):
        kind = str(f["format"]) if "format" in f else ""
        if kind not in (FORMAT, DENSE_FORMAT) or "mesh_hx" not in f:
            raise UserInputError(
                f"{path}: not a sensitivity file written by msinv gravity sensitivity"
            )
        mesh = discretize.TensorMesh(
            [f["mesh_hx"], f["mesh_hy"], f["mesh_hz"]], origin=f["mesh_origin"]
        )
        if kind == DENSE_FORMAT:
            return GravityOperator(f["g"]), mesh, f["active"], f["weights"]
        model_weights = f["model_weights"] if "model_weights" in f else None
    with npz_errors(path):
        op = CompressedSensitivity.load(path)
    return op, mesh, op.active, op.weights if model_weights is None else model_weights
