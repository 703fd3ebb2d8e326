"""Sensitivity matrix G (GZSEN3D): dense in chunks of stations, compressed block by block
within a memory budget (resumable), or applied on the fly; saved with its mesh and stations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.inputs import npz_errors, open_npz
from msinv.core.operator import LinearOperator
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
    chunk : int, default 64
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


def save_sensitivity(
    path, op, mesh, config: dict | None = None, model_weights=None, stations=None
) -> Path:
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
    stations : (n_data, 3) numpy.ndarray, optional
        Station positions of the rows (stored as ``stations``; checked on use by
        :func:`check_stations`).

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
    extra = _mesh_arrays(mesh)
    if stations is not None:
        extra["stations"] = np.atleast_2d(np.asarray(stations, dtype=np.float64))
    if isinstance(op, CompressedSensitivity):
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
            **extra,
        )
    return path


def load_sensitivity(path, stations=None):
    """Read a file of :func:`save_sensitivity`.

    Parameters
    ----------
    path : str or Path
    stations : (n_data, 3) numpy.ndarray, optional
        Positions of the data to be used with it: checked against the stored ones
        (:func:`check_stations`; files without stored positions are not checked).

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
        if stations is not None:
            check_stations(path, f["stations"] if "stations" in f else None, stations)
        if kind == DENSE_FORMAT:
            return GravityOperator(f["g"]), mesh, f["active"], f["weights"]
        model_weights = f["model_weights"] if "model_weights" in f else None
    with npz_errors(path):
        op = CompressedSensitivity.load(path)
    return op, mesh, op.active, op.weights if model_weights is None else model_weights


class OnTheFlySensitivity(LinearOperator):
    """G without storing it: ``G m`` by the forward kernel, ``Gᵀ v`` by rows rebuilt per block.

    For problems whose G (even compressed) does not fit: no memory beyond one block of rows,
    at the price of re-evaluating the kernel at every product. Both products run in parallel
    over stations (numba).

    Parameters
    ----------
    mesh : discretize.TensorMesh
    stations : (n_data, 3) numpy.ndarray
        Station coordinates, metres.
    active : (n_cells,) bool numpy.ndarray, optional
        Model cells (columns); all by default.
    block : int, default 64
        Stations per block of rows in the adjoint (>= 1): ``block * n_active * 8`` bytes.
    """

    real_model = True

    def __init__(self, mesh, stations, active=None, block: int = 64):
        if block < 1:
            raise UserInputError(f"block must be >= 1, got {block}")
        self.mesh = mesh
        self.stations = np.atleast_2d(np.asarray(stations, dtype=np.float64))
        self.active = (
            np.ones(mesh.n_cells, bool) if active is None else np.asarray(active, dtype=bool)
        )
        self.block = int(block)
        self.shape_in = (int(self.active.sum()),)
        self.shape_out = (self.stations.shape[0],)
        self.dtype = np.dtype(np.float64)

    def forward(self, x):
        """``G x``: (n_active,) g/cc -> (n_data,) mGal, by :func:`~msinv.gravity.forward.gz`."""
        from msinv.gravity.forward import gz

        full = np.zeros(self.mesh.n_cells)
        full[self.active] = x
        return gz(self.mesh, self.stations, full)

    def adjoint(self, y):
        """``Gᵀ y``: (n_data,) -> (n_active,), one block of rows at a time."""
        y = np.asarray(y, dtype=np.float64)
        out = np.zeros(self.shape_in)
        for start in range(0, self.shape_out[0], self.block):
            stop = min(start + self.block, self.shape_out[0])
            rows = sensitivity_rows(self.mesh, self.stations[start:stop], self.active)
            out += y[start:stop] @ rows
        return out

    @classmethod
    def example(cls, rng):
        from discretize import TensorMesh

        mesh = TensorMesh([np.full(4, 10.0), np.full(3, 10.0), np.full(3, 10.0)], "CCN")
        st = np.column_stack([rng.uniform(-20, 20, (5, 2)), np.full(5, 1.0)])
        active = rng.random(mesh.n_cells) < 0.8
        return cls(mesh, st, active, block=2)


def stored_stations(path) -> np.ndarray | None:
    """Station positions stored in a sensitivity file (None for files written without them)."""
    with np.load(path, allow_pickle=False) as f:
        return f["stations"] if "stations" in f else None


def check_stations(path, stored, stations, atol: float = 1e-3) -> None:
    """Refuse a sensitivity whose stored station positions differ from the data's.

    Parameters
    ----------
    path : str or Path
        The sensitivity file (for the message).
    stored : (n_data, 3) numpy.ndarray or None
        Positions stored with the operator (None: an older file without them, not checked).
    stations : (n_data, 3) numpy.ndarray
        Positions of the data to be inverted or predicted.
    atol : float, default 0.001
        Tolerance in metres.
    """
    if stored is None:
        return
    stations = np.atleast_2d(np.asarray(stations, dtype=np.float64))
    if stored.shape != stations.shape:
        raise UserInputError(
            f"{path}: built for {stored.shape[0]} stations, the data have {stations.shape[0]}"
        )
    off = np.abs(stored - stations).max(axis=1)
    if np.any(off > atol):
        i = int(np.argmax(off > atol))
        raise UserInputError(
            f"{path}: station {i + 1} of the data is at {stations[i].tolist()}, the sensitivity "
            f"was built for {stored[i].tolist()} (off by {off[i]:.3g} m): rebuild it"
        )


@dataclass(frozen=True)
class BlockPlan:
    """How a compressed G is built within a memory budget (printed before any work).

    Attributes
    ----------
    block_rows : int
        Stations per block.
    n_blocks : int
    block_bytes : int
        Dense block of rows (float64) plus the wavelet work arrays of every worker.
    dense_bytes : int
        What the dense float32 G would need (for comparison).
    budget : int
        The memory budget, bytes.
    """

    block_rows: int
    n_blocks: int
    block_bytes: int
    dense_bytes: int
    budget: int

    def describe(self) -> str:
        """One line for the log."""
        return (
            f"dense G would need {self.dense_bytes / 2**30:.2f} GiB (float32); building it in "
            f"{self.n_blocks} blocks of {self.block_rows} rows, {self.block_bytes / 2**20:.0f} "
            f"MiB each, within a budget of {self.budget / 2**30:.2f} GiB (plus the compressed "
            "rows kept so far)"
        )


def plan_blocks(
    n_data: int, n_active: int, n_coefficients: int, budget: int, workers: int = 1
) -> BlockPlan:
    """Largest block of rows whose dense float64 rows and wavelet work arrays fit half the
    budget (the other half is left to the compressed rows); at most 512 rows per block."""
    per_row = 8 * n_active
    work = workers * 4 * 8 * n_coefficients  # padded image, coefficients, copies per worker
    rows = int(min(512, max(1, (budget // 2 - work) // per_row)))
    if budget // 2 < work + per_row:
        raise UserInputError(
            f"a memory budget of {budget / 2**30:.2f} GiB cannot hold one row of G and the "
            f"wavelet work arrays ({(work + per_row) / 2**20:.0f} MiB, half the budget at most)"
        )
    rows = min(rows, n_data)
    return BlockPlan(
        rows,
        -(-n_data // rows),
        rows * per_row + work,
        sensitivity_memory(n_data, n_active, np.float32),
        int(budget),
    )


def _digest(*arrays) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def build_compressed(
    mesh,
    stations,
    active,
    scaling,
    config,
    out,
    *,
    budget: int,
    model_weights=None,
    record: dict | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    probe: np.ndarray | None = None,
):
    """Build, compress and save G block by block of stations, never holding the dense G.

    Parameters
    ----------
    mesh : discretize.TensorMesh
    stations : (n_data, 3) numpy.ndarray
    active : (n_cells,) bool numpy.ndarray
    scaling : (n_active,) numpy.ndarray
        Row scaling divided out before the transform (> 0).
    config : CompressionConfig
    out : str or Path
        The sensitivity file to write (GRAV3D's ``gzinv3d.mtx``).
    budget : int
        Memory budget in bytes for the dense block and the wavelet work (see
        :func:`plan_blocks`).
    model_weights : (n_active,) numpy.ndarray, optional
        Depth/distance weights of the inversion, stored with the operator.
    record : dict, optional
        Settings recorded in the provenance.
    workers : int, optional
        Compression threads (default: the machine's cores).
    progress : callable, optional
        ``progress(done, total)`` after each row.
    log : callable, optional
        Receives one line per event (plan, resume, block written).
    probe : (n_active,) numpy.ndarray, optional
        A model whose exact data ``G @ probe`` are computed from the dense blocks on the way
        (no second pass of the kernel; e.g. a test or true model).

    Returns
    -------
    op : CompressedSensitivity
    rms : (n_active,) numpy.ndarray
        RMS over the stations of every column of the exact G (GZSEN3D's average sensitivity).
    probe_data : (n_data,) numpy.ndarray
        Only when ``probe`` is given: its exact data.

    Notes
    -----
    Each compressed block goes at once to ``<out>.partial/block_NNNNN.npz`` (written under a
    temporary name, then renamed), next to a ``plan.json`` holding the inputs' digests. A
    killed build started again with the same inputs skips the blocks already written; with
    other inputs it refuses (the folder names what differs). The finished operator is
    written to ``out`` atomically and the partial folder removed. A representative-row
    threshold (rule ``"representative"``) is tuned on the first block.
    """
    import json
    import os
    import shutil

    from msinv.gravity.compression import (
        CompressedSensitivity,
        Wavelet3D,
        assemble,
        compress_rows,
        representative_threshold,
    )

    say = log or (lambda line: None)
    out = Path(out)
    st = np.atleast_2d(np.asarray(stations, dtype=np.float64))
    active = np.asarray(active, dtype=bool)
    scaling = np.asarray(scaling, dtype=np.float64)
    workers = workers or os.cpu_count() or 1
    transform = Wavelet3D(mesh.shape_cells, config.wavelet, config.level)
    plan = plan_blocks(st.shape[0], int(active.sum()), transform.shape_out[0], budget, workers)
    say(plan.describe())
    partial = out.with_name(out.name + ".partial")
    meta = {
        "inputs": _digest(st, active, scaling, *(np.asarray(h) for h in mesh.h), mesh.origin),
        "config": [config.wavelet, config.rule, config.rstar, config.threshold, config.level],
        "block_rows": plan.block_rows,
        "n_data": int(st.shape[0]),
        "probe": None if probe is None else _digest(np.asarray(probe, dtype=np.float64)),
    }
    plan_file = partial / "plan.json"
    if partial.exists():
        old = json.loads(plan_file.read_text()) if plan_file.exists() else None
        if old != meta:
            raise UserInputError(
                f"{partial}: an unfinished build with other inputs or settings; delete the "
                "folder to start afresh"
            )
        say(f"resuming the unfinished build in {partial}")
    else:
        partial.mkdir(parents=True)
        plan_file.write_text(json.dumps(meta))
    kept, r = [], []
    col_sq = np.zeros(int(active.sum()))
    probe_data = []
    delta_rel = None
    for b in range(plan.n_blocks):
        start = b * plan.block_rows
        stop = min(start + plan.block_rows, st.shape[0])
        path = partial / f"block_{b:05d}.npz"
        if path.exists():
            with np.load(path) as f:
                counts = f["counts"]
                split = np.cumsum(counts)[:-1]
                kept += list(
                    zip(np.split(f["indices"], split), np.split(f["data"], split), strict=True)
                )
                r.append(f["r"])
                col_sq += f["col_sq"]
                if probe is not None:
                    probe_data.append(f["probe"])
                delta_rel = float(f["delta_rel"]) if "delta_rel" in f else None
            if progress is not None:
                progress(stop, st.shape[0])
            continue
        g = sensitivity_rows(mesh, st[start:stop], active, dtype=np.float64)
        block_sq = np.einsum("ij,ij->j", g, g)
        col_sq += block_sq
        extra = {}
        if probe is not None:
            extra["probe"] = g @ np.asarray(probe, dtype=np.float64)
            probe_data.append(extra["probe"])
        if b == 0:
            delta_rel = representative_threshold(g, transform, active, scaling, config)

        def rows_done(done, _total, _start=start):
            if progress is not None:
                progress(_start + done, st.shape[0])

        block, rb = compress_rows(
            g, transform, active, scaling, config, delta_rel, workers=workers, callback=rows_done
        )
        del g
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez(
                fh,
                counts=np.array([k[0].size for k in block], dtype=np.int64),
                indices=np.concatenate([k[0] for k in block]),
                data=np.concatenate([k[1] for k in block]),
                r=rb,
                col_sq=block_sq,
                **extra,
                **({} if delta_rel is None else {"delta_rel": delta_rel}),
            )
        os.replace(tmp, path)
        kept += block
        r.append(rb)
        say(f"block {b + 1}/{plan.n_blocks}: rows {start + 1}-{stop} written")
    weights = np.ones(int(active.sum())) if model_weights is None else model_weights
    op = CompressedSensitivity(
        assemble(kept, transform), transform, active, scaling, np.concatenate(r)
    )
    tmp = out.with_name(out.name + ".tmp")
    save_sensitivity(tmp, op, mesh, record, model_weights=weights, stations=st)
    os.replace(tmp, out)
    shutil.rmtree(partial)
    rms = np.sqrt(col_sq / st.shape[0])
    if probe is not None:
        return op, rms, np.concatenate(probe_data)
    return op, rms
