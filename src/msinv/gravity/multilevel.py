"""Coarse-to-fine gravity inversion on nested meshes, with the core continuation driver.

The seeds' nested-iteration idea: invert on a mesh whose cells are merged 2×2×2, prolong the
model (piecewise constant) as the warm start of the next finer level, and finish on the user's
mesh. Each level is one :class:`~msinv.core.continuation.Stage` of
:func:`msinv.core.continuation.continuation`, with its own array bounds and its own minimiser
(the bounded β-search inversion of :func:`msinv.gravity.inversion.invert`); the transfer
between stages is the prolongation :class:`Prolongation`.

The coarse operator is exact for coarse models: ``G_c = G P`` (a coarse cell's sensitivity is
the sum of its children's), so no new sensitivity is built; a coarse level saves CG iterations
(fewer unknowns, better conditioned) and β trials (the fine level starts at the coarse β), not
the cost of one product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

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


def coarse_level(mesh, reg, op, lower, upper, initial):
    """One level coarser: ``(mesh_c, reg_c, op_c, lower_c, upper_c, initial_c, P)``.

    A coarse cell is a parameter when any of its children is; it is fixed (−1) when a child is
    −1 and none is 1, else out of φ_m (0). Depth/distance weights and the reference model are
    volume-weighted means of the children; bounds the tightest of the children (so the
    prolonged model stays feasible); user weights are not carried to coarse levels.
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
    return coarse, reg_c, op @ p, lo, hi, init, p


def invert_multilevel(problem, levels: int, *, callback: Callable[[str, dict], None] | None = None):
    """Coarse-to-fine inversion of an :class:`~msinv.gravity.pipeline.InversionProblem`.

    Parameters
    ----------
    problem : InversionProblem
    levels : int
        Number of meshes (>= 2): the user's and ``levels − 1`` coarsenings.
    callback : callable, optional
        As in :func:`msinv.gravity.inversion.invert`; ``"level"`` events mark each level's start.

    Returns
    -------
    InversionResult
        The finest level's result; its ``log`` holds every level's β solves in order and
        ``levels`` (an added attribute) one summary per level.
    """
    from msinv.core.continuation import Stage, box_arrays, continuation
    from msinv.gravity.inversion import invert

    p = problem
    hierarchy = [(p.mesh, p.reg, p.op, p.lower, p.upper, p.initial, None)]
    for _ in range(levels - 1):
        mesh, reg, op, lo, hi, init, _ = hierarchy[0]
        hierarchy.insert(0, coarse_level(mesh, reg, op, lo, hi, init))
    results = []

    def make_minimiser(k):
        mesh, reg, op = hierarchy[k][:3]
        last = k == len(hierarchy) - 1

        def minimise(fun, x0, bounds, stage, on_iterate):
            lo, hi = box_arrays(bounds, x0.size)
            config = p.config
            if results:  # start at the coarser level's beta
                config = replace(config, beta=results[-1].beta, beta_start=1.0)
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
            "beta_solves": len(r.log),
            "cg_iterations": sum(e.cg_iterations for e in r.log),
            "seconds": sum(e.seconds for e in r.log),
            "phi_d": r.phi_d,
        }
        for k, r in enumerate(results)
    ]
    final = results[-1]
    final.log = [e for r in results for e in r.log]
    final.levels = summary
    return final
