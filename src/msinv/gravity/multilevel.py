"""Coarse-to-fine gravity inversion on nested meshes, with the core continuation driver.

The seeds' nested-iteration idea: invert on a mesh whose cells are merged 2×2×2, prolong the
model (piecewise constant) as the warm start of the next finer level, and finish on the user's
mesh. Each level is one :class:`~msinv.core.continuation.Stage` of
:func:`msinv.core.continuation.continuation`, with its own array bounds and its own minimiser
(the bounded β-search inversion of :func:`msinv.gravity.inversion.invert`); the transfer
between stages is the prolongation :class:`Prolongation`.

The coarse operator is the sensitivity of the coarse mesh itself, built for the same stations
(:func:`coarse_operator`): the prism integral is additive, so a coarse cell's exact
sensitivity is the sum of its eight children's, ``G_c = G P``, but computed on the coarse mesh
it has 8× fewer columns and costs about 8× less to build, to store and to apply (a compressed
G is rebuilt block by block at the fine operator's wavelet and r*, resumable, in
:attr:`CoarseBuild.work`). Where that is not exact (a coarse cell with a child that is not a
parameter: topography, active-cells file) or the operator is not a plain sensitivity, the
level falls back to ``G P`` (the fine G times the prolongation: exact, no cheaper per
product) and says so in its summary.

Each finer level starts at the coarser level's β and model; the slope d(log φ_d)/d(log β)
measured by the coarser level's search makes the second β trial a Newton step
(:attr:`~msinv.gravity.inversion.InversionConfig.beta_slope`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from msinv.core.operator import LinearOperator


def coarsen_mesh(mesh):
    """Merge cells 2×2×2 (an odd last cell of an axis stays alone).

    Returns
    -------
    coarse : discretize.TensorMesh
        Same origin and extent.
    parent : (mesh.n_cells,) int numpy.ndarray
        Index of the coarse cell that holds each fine cell.
    """
    from discretize import TensorMesh

    hs, idx = [], []
    for h in mesh.h:
        h = np.asarray(h, dtype=np.float64)
        merged = h[0::2].copy()
        merged[: h[1::2].size] += h[1::2]
        hs.append(merged)
        idx.append(np.arange(h.size) // 2)
    coarse = TensorMesh(hs, origin=mesh.origin)
    ncx, ncy, _ = coarse.shape_cells
    ix, iy, iz = np.meshgrid(*idx, indexing="ij")
    parent = (ix + ncx * (iy + ncy * iz)).ravel(order="F")
    return coarse, parent


class Prolongation(LinearOperator):
    """Coarse parameters -> fine parameters, piecewise constant (each child takes its parent).

    Parameters
    ----------
    parent : (n_fine,) int numpy.ndarray
        Index among the coarse parameters of every fine parameter's parent.
    n_coarse : int
        Number of coarse parameters.

    Notes
    -----
    The adjoint sums the children: :math:`(P^T y)_J = \\sum_{j \\in J} y_j`.
    """

    real_model = True

    def __init__(self, parent: np.ndarray, n_coarse: int):
        self.parent = np.asarray(parent, dtype=np.int64)
        self.shape_in, self.shape_out = (int(n_coarse),), (self.parent.size,)
        self.dtype = np.dtype(np.float64)

    def forward(self, x):
        return np.asarray(x, dtype=np.float64)[self.parent]

    def adjoint(self, y):
        return np.bincount(self.parent, weights=np.asarray(y, float), minlength=self.shape_in[0])

    @classmethod
    def example(cls, rng):
        return cls(rng.permutation(np.repeat(np.arange(4), 3)), 4)


def _group(values, parent, n, vol):
    """Volume-weighted mean of fine cell values over each coarse cell."""
    num = np.bincount(parent, weights=values * vol, minlength=n)
    den = np.bincount(parent, weights=vol, minlength=n)
    return num / np.where(den > 0, den, 1.0)


@dataclass(frozen=True)
class CoarseBuild:
    """How coarse levels get their own sensitivity (:func:`coarse_operator`).

    Attributes
    ----------
    stations : (n_data, 3) numpy.ndarray or None
        Station positions of the data (metres). None: no coarse sensitivity is built, every
        coarse level uses ``G P``.
    work : Path or None
        Folder for compressed coarse sensitivities (``gzinv3d_coarse<k>.mtx``, resumable
        while being built, reused when they match); None: built in a temporary folder and
        kept in memory only.
    rstar : float or None
        Relative error r* of the coarse compression; None: the largest r_i of the fine
        operator (its r* under the per-row rule).
    budget : int or None
        Memory budget of a compressed build, bytes (None: the default of
        :class:`~msinv.gravity.pipeline.SensitivitySettings`).
    workers : int or None
        Compression threads (None: every core).
    log : callable or None
        Receives one line per build event.
    """

    stations: np.ndarray | None = None
    work: Path | None = None
    rstar: float | None = None
    budget: int | None = None
    workers: int | None = None
    log: Callable[[str], None] | None = None


def _fits_coarse_mesh(op, reg, parent, nc) -> bool:
    """True when ``op`` is a plain sensitivity on the parameters and every child of every
    coarse parameter is a parameter, so that the coarse mesh's own sensitivity is ``G P``."""
    from msinv.gravity.compression import CompressedSensitivity
    from msinv.gravity.forward import GravityOperator
    from msinv.gravity.sensitivity import OnTheFlySensitivity

    if not isinstance(op, (CompressedSensitivity, GravityOperator, OnTheFlySensitivity)):
        return False
    if op.shape_in[0] != reg.n_active:
        return False
    param = reg.codes == 1
    children = np.bincount(parent, minlength=nc)
    param_children = np.bincount(parent, weights=param.astype(float), minlength=nc)
    touched = param_children > 0
    return bool(np.all(param_children[touched] == children[touched]))


def coarse_operator(op, mesh, coarse, parent, active_c, build: CoarseBuild, level: int):
    """The sensitivity of the coarse mesh's parameter cells, of the same kind as ``op``.

    Parameters
    ----------
    op : CompressedSensitivity, GravityOperator or OnTheFlySensitivity
        The fine operator (columns: the fine parameters).
    mesh, coarse : discretize.TensorMesh
        Fine and coarse meshes.
    parent : (mesh.n_cells,) int numpy.ndarray
        Coarse cell of each fine cell (:func:`coarsen_mesh`).
    active_c : (coarse.n_cells,) bool numpy.ndarray
        Coarse parameter cells (every child a fine parameter, see :func:`coarse_level`).
    build : CoarseBuild
    level : int
        How many times coarsened (names the file).

    Returns
    -------
    op_c : LinearOperator
        Dense (same dtype) for a dense G, on the fly for on the fly, compressed (same wavelet,
        per-row rule at r*, rows scaled by the children's mean scaling) for a compressed G.
    how : str
        One line for the level summary (what was built or reused, seconds).
    """
    import time

    from msinv.gravity.compression import WAVELETS, CompressedSensitivity, CompressionConfig
    from msinv.gravity.forward import GravityOperator
    from msinv.gravity.sensitivity import (
        OnTheFlySensitivity,
        build_compressed,
        build_sensitivity,
    )

    t0 = time.perf_counter()
    st = build.stations
    if isinstance(op, OnTheFlySensitivity):
        return OnTheFlySensitivity(coarse, st, active_c, op.block), "on the fly on the coarse mesh"
    if isinstance(op, GravityOperator):
        g = build_sensitivity(coarse, st, active_c, dtype=op.matrix.dtype, max_bytes=build.budget)
        return GravityOperator(g), f"dense coarse G built in {time.perf_counter() - t0:.1f} s"
    assert isinstance(op, CompressedSensitivity)
    wavelet = {v: k for k, v in WAVELETS.items()}.get(op.transform.wavelet, op.transform.wavelet)
    rstar = build.rstar if build.rstar is not None else float(op.r.max())
    config = CompressionConfig(wavelet, "per_row", rstar if 0 < rstar < 1 else 0.05)
    scaling_full = np.zeros(mesh.n_cells)
    scaling_full[op.active] = op.weights
    scaling = _group(scaling_full, parent, coarse.n_cells, mesh.cell_volumes)[active_c]
    say = build.log or (lambda line: None)
    if build.budget is not None:
        budget = build.budget
    else:
        from msinv.gravity.pipeline import SensitivitySettings

        budget = SensitivitySettings().budget
    kwargs = {"budget": budget, "workers": build.workers, "log": say}
    kwargs["record"] = {"coarse_level": level, "wavelet": wavelet, "rstar": config.rstar}
    if build.work is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            op_c, _ = build_compressed(
                coarse, st, active_c, scaling, config, Path(tmp) / "g.mtx", **kwargs
            )
        return op_c, f"compressed coarse G built in {time.perf_counter() - t0:.1f} s"
    out = Path(build.work) / f"gzinv3d_coarse{level}.mtx"
    if out.exists():
        reused = _reuse(out, coarse, st, active_c, config)
        if reused is not None:
            return reused, f"compressed coarse G reused from {out}"
        say(f"{out} does not match this problem: building it again")
    op_c, _ = build_compressed(coarse, st, active_c, scaling, config, out, **kwargs)
    return op_c, f"compressed coarse G built in {time.perf_counter() - t0:.1f} s ({out})"


def _reuse(path, coarse, stations, active_c, config):
    """The compressed coarse operator stored in ``path`` when it was built for this coarse
    mesh, these stations and parameters, this wavelet and r*; else None."""
    from msinv.core.errors import UserInputError
    from msinv.gravity.compression import WAVELETS
    from msinv.gravity.sensitivity import load_sensitivity

    try:
        op, mesh, active, _ = load_sensitivity(path, stations=stations)
    except UserInputError:
        return None
    same = (
        mesh.shape_cells == coarse.shape_cells
        and all(np.allclose(a, b) for a, b in zip(mesh.h, coarse.h, strict=True))
        and np.allclose(mesh.origin, coarse.origin)
        and np.array_equal(active, active_c)
        and op.transform.wavelet == WAVELETS[config.wavelet]
        and float(op.r.max()) <= config.rstar
    )
    return op if same else None


def coarse_level(mesh, reg, op, lower, upper, initial, build: CoarseBuild | None = None, level=1):
    """One level coarser: ``(mesh_c, reg_c, op_c, lower_c, upper_c, initial_c, P, how)``.

    A coarse cell is a parameter when any of its children is; it is fixed (−1) when a child is
    −1 and none is 1, else out of φ_m (0). Depth/distance weights and the reference model are
    volume-weighted means of the children; bounds the tightest of the children (so the
    prolonged model stays feasible); user weights are not carried to coarse levels. The
    operator is the coarse mesh's own sensitivity when ``build`` has the stations and that is
    exact (:func:`coarse_operator`), else ``op @ P``; ``how`` says which.
    """
    from msinv.gravity.regularisation import Regularisation

    coarse, parent = coarsen_mesh(mesh)
    nc = coarse.n_cells
    vol = mesh.cell_volumes
    codes = reg.codes
    is_param = np.bincount(parent, weights=(codes == 1).astype(float), minlength=nc) > 0
    is_keep = np.bincount(parent, weights=(codes == -1).astype(float), minlength=nc) > 0
    codes_c = np.where(is_param, 1, np.where(is_keep, -1, 0))
    weights_c = _group(reg.weights, parent, nc, vol)
    ref_c = _group(reg.reference, parent, nc, vol)
    reg_c = Regularisation(coarse, reg.config, codes_c, weights_c, ref_c)
    # parameters: fine active -> their parent's index among coarse parameters
    coarse_index = np.full(nc, -1)
    coarse_index[is_param] = np.arange(int(is_param.sum()))
    p = Prolongation(coarse_index[parent[reg.active]], int(is_param.sum()))
    n_c = p.shape_in[0]
    lo = np.full(n_c, -np.inf)
    hi = np.full(n_c, np.inf)
    np.maximum.at(lo, p.parent, np.broadcast_to(lower, p.shape_out))
    np.minimum.at(hi, p.parent, np.broadcast_to(upper, p.shape_out))
    init = np.clip(
        np.bincount(p.parent, weights=np.broadcast_to(initial, p.shape_out), minlength=n_c)
        / np.bincount(p.parent, minlength=n_c),
        lo,
        hi,
    )
    if build is None or build.stations is None:
        op_c, how = op @ p, "G P (no coarse sensitivity asked for)"
    elif not _fits_coarse_mesh(op, reg, parent, nc):
        op_c, how = op @ p, "G P (a coarse cell has children that are not parameters)"
    else:
        op_c, how = coarse_operator(op, mesh, coarse, parent, is_param, build, level)
    return coarse, reg_c, op_c, lo, hi, init, p, how


def _slope(log) -> float | None:
    """d(log φ_d)/d(log β) of a β search's last two distinct trials (None when not > 0)."""
    trials = [(e.beta, e.phi_d) for e in log if not e.irls]
    for (b1, p1), (b2, p2) in zip(trials[-2::-1], trials[::-1], strict=False):
        if b1 != b2 and p1 > 0 and p2 > 0:
            slope = (np.log(p2) - np.log(p1)) / (np.log(b2) - np.log(b1))
            return float(slope) if slope > 0 else None
    return None


def invert_multilevel(
    problem,
    levels: int,
    *,
    build: CoarseBuild | None = None,
    callback: Callable[[str, dict], None] | None = None,
):
    """Coarse-to-fine inversion of an :class:`~msinv.gravity.pipeline.InversionProblem`.

    Parameters
    ----------
    problem : InversionProblem
    levels : int
        Number of meshes (>= 2): the user's and ``levels − 1`` coarsenings.
    build : CoarseBuild, optional
        How coarse sensitivities are built; default: for ``problem.locations`` in a temporary
        folder.
    callback : callable, optional
        As in :func:`msinv.gravity.inversion.invert`; ``"level"`` events mark each level's start.

    Returns
    -------
    InversionResult
        The finest level's result; its ``log`` holds every level's β solves in order and
        ``levels`` one summary per level (cells, parameters, operator, build seconds, β
        solves, CG iterations, solve seconds, φ_d).
    """
    import time

    from msinv.core.continuation import Stage, box_arrays, continuation
    from msinv.gravity.inversion import invert

    p = problem
    build = build if build is not None else CoarseBuild(stations=p.locations)
    hierarchy = [(p.mesh, p.reg, p.op, p.lower, p.upper, p.initial, None, "the user's G", 0.0)]
    for k in range(levels - 1):
        mesh, reg, op, lo, hi, init = hierarchy[0][:6]
        t0 = time.perf_counter()
        level = coarse_level(mesh, reg, op, lo, hi, init, build, level=k + 1)
        hierarchy.insert(0, (*level, time.perf_counter() - t0))
        if callback is not None:
            callback("level_operator", {"level": levels - 1 - k, "operator": level[7]})
    results = []

    def make_minimiser(k):
        mesh, reg, op = hierarchy[k][:3]
        last = k == len(hierarchy) - 1

        def minimise(fun, x0, bounds, stage, on_iterate):
            lo, hi = box_arrays(bounds, x0.size)
            config = p.config
            if results:  # start at the coarser level's beta, Newton step with its slope
                config = replace(
                    config,
                    beta=results[-1].beta,
                    beta_start=1.0,
                    beta_slope=_slope(results[-1].log),
                )
                if config.mode == 2:
                    config = replace(config, beta=p.config.beta)
            if callback is not None:
                callback("level", {"level": k + 1, "cells": mesh.n_cells, "parameters": x0.size})
            res = invert(
                op,
                p.data,
                p.std,
                reg,
                lower=lo,
                upper=hi,
                initial=x0,
                config=config,
                sparse=p.sparse if last else None,
                callback=callback,
            )
            results.append(res)
            return res.model, len(res.log), f"level {k + 1}: {len(res.log)} beta solves"

        return minimise

    def objective(stage):
        k = stage.payload
        op = hierarchy[k][2]

        def fun(x):  # phi_d (reported at each level's start; the minimiser does the work)
            r = (op.forward(x) - p.data) / p.std
            return float(r @ r), 2 * op.adjoint(r / p.std)

        return fun

    def transfer(x, previous, stage):
        if previous is None:
            return x
        return hierarchy[stage.payload - 1][6].forward(x)  # P of the coarser level

    stages = [
        Stage(
            f"level {k + 1} ({h[0].n_cells} cells)",
            payload=k,
            max_iter=1,
            bounds=(h[3], h[4]),
            minimiser=make_minimiser(k),
        )
        for k, h in enumerate(hierarchy)
    ]
    continuation(stages, objective, hierarchy[0][5], transfer=transfer)
    summary = [
        {
            "level": k + 1,
            "cells": hierarchy[k][0].n_cells,
            "parameters": int(hierarchy[k][2].shape_in[0]),
            "operator": hierarchy[k][7],
            "operator_seconds": hierarchy[k][8],
            "beta_solves": len(r.log),
            "cg_iterations": sum(e.cg_iterations for e in r.log),
            "seconds": sum(e.seconds for e in r.log),
            "beta": r.beta,
            "phi_d": r.phi_d,
        }
        for k, r in enumerate(results)
    ]
    final = results[-1]
    final.log = [e for r in results for e in r.log]
    final.levels = summary
    return final
