"""Dense sensitivity matrix G built in chunks of stations (GZSEN3D without compression)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    st = np.atleast_2d(np.asarray(stations, dtype=np.float64))
    n_active = mesh.n_cells if active is None else int(np.count_nonzero(active))
    need = sensitivity_memory(st.shape[0], n_active, dtype)
    if max_bytes is not None and need > max_bytes:
        raise ValueError(
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
