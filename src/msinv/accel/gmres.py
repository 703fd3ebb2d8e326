"""Batched restarted GMRES in PyTorch: many independent linear systems, one per column.

Notes
-----
Each column ``c`` of ``b`` (shape ``(B, N)``) is its own system ``A_c x_c = b_c``; the operator
is applied to all active columns at once (``apply(v, cols)``), which is what makes a GPU pay.
Per cycle of at most ``restart`` steps and per column:

* Arnoldi with classical Gram--Schmidt applied twice (CGS2: two batched matrix products per
  step instead of ``j`` dot products; as accurate as modified Gram--Schmidt in practice),
* the Hessenberg matrix reduced to triangular form by Givens rotations, accumulated in a small
  unitary ``Q`` (one batched product per step, so the number of kernel launches per step does
  not grow with ``j``); the residual estimate is :math:`\\beta |Q_{j+1, 0}|`,
* a column whose estimate falls to ``rtol * ||b_c||`` is finished at once: its triangular
  system is solved, its solution updated, and it leaves the batch (the Krylov basis is compacted
  in place), so columns that converge early cost nothing more.

At the end of a cycle the true residual ``b - A x`` of every column finished in it is computed;
columns above their tolerance (possible in single precision, where the estimate can run ahead
of the attainable accuracy) start another cycle from it. After ``max_restarts`` cycles the
remaining columns raise :class:`GMRESError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from msinv.core.errors import UserInputError


class GMRESError(RuntimeError):
    """Some columns did not reach their tolerance within the allowed cycles."""


@dataclass(frozen=True)
class GMRESResult:
    """Solution and convergence record of :func:`gmres`.

    Attributes
    ----------
    x : (B, N) complex torch.Tensor
        Solutions.
    iterations : (B,) int64 torch.Tensor
        Arnoldi steps (= operator applications, the initial ones excepted) per column, over all
        cycles.
    residual : (B,) float torch.Tensor
        Final true relative residual ``||b - A x|| / ||b||`` per column (0 where ``b = 0``).
    cycles : int
        Restart cycles run (1 when every column converged in the first).
    """

    x: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    cycles: int


def gmres(
    apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    rtol: float,
    restart: int = 60,
    max_restarts: int = 10,
    compact_fraction: float = 0.1,
) -> GMRESResult:
    """Solve ``A_c x_c = b_c`` for every column ``c`` of ``b`` by restarted GMRES (x0 = 0).

    Parameters
    ----------
    apply : callable
        ``apply(v, cols) -> A v``: ``v`` is ``(k, N)``, ``cols`` the ``(k,)`` int64 indices of
        its columns in ``b`` (so that a per-column operator can pick its parameters).
    b : (B, N) complex torch.Tensor
        Right-hand sides.
    rtol : float
        Relative tolerance on the residual: column ``c`` is done when
        ``||b_c - A_c x_c|| <= rtol * ||b_c||`` (checked on the true residual).
    restart : int, default 60
        Arnoldi steps per cycle (the Krylov basis holds ``restart + 1`` vectors per column).
    max_restarts : int, default 10
        Cycles allowed before :class:`GMRESError`.
    compact_fraction : float, default 0.1
        Finished columns leave the batch (basis compacted) as soon as they are at least this
        fraction of the active ones, and always at the end of a cycle.

    Returns
    -------
    GMRESResult

    Raises
    ------
    GMRESError
        When columns still miss their tolerance after ``max_restarts`` cycles; the message gives
        how many, the worst residual and what to change.
    """
    if b.ndim != 2 or not b.is_complex():
        raise UserInputError(
            f"b has shape {tuple(b.shape)} dtype {b.dtype}: expected complex (B, N)"
        )
    if not 0 < rtol < 1:
        raise UserInputError(f"rtol={rtol!r}: expected 0 < rtol < 1")
    if restart < 1 or max_restarts < 1:
        raise UserInputError(f"restart={restart}, max_restarts={max_restarts}: expected >= 1")
    n_cols = b.shape[0]
    device, real = b.device, b.real.dtype
    x = torch.zeros_like(b)
    iterations = torch.zeros(n_cols, dtype=torch.int64, device=device)
    bnorm = torch.linalg.vector_norm(b, dim=1)
    target = rtol * bnorm
    residual_norm = bnorm.clone()
    active = torch.nonzero(bnorm > 0).flatten()
    r = b[active]
    cycles = 0
    while active.numel():
        if cycles == max_restarts:
            worst = (residual_norm[active] / bnorm[active]).max().item()
            raise GMRESError(
                f"GMRES: {active.numel()} of {n_cols} columns above rtol={rtol:g} after "
                f"{max_restarts} cycles of {restart} steps (worst relative residual {worst:.3g}); "
                "raise restart or max_restarts, or use complex128 for tolerances near 1e-6"
            )
        cycles += 1
        finished = _cycle(apply, r, active, target, x, iterations, restart, compact_fraction)
        # true residual of the columns finished in this cycle (all of the cycle's columns)
        resid = b[finished] - apply(x[finished], finished)
        norm = torch.linalg.vector_norm(resid, dim=1)
        residual_norm[finished] = norm
        again = norm > target[finished]
        active, r = finished[again], resid[again]
    residual = torch.where(bnorm > 0, residual_norm / bnorm.clamp_min(1e-300), 0).to(real)
    return GMRESResult(x=x, iterations=iterations, residual=residual, cycles=cycles)


def _cycle(apply, r, cols, target, x, iterations, restart, compact_fraction) -> torch.Tensor:
    """One GMRES cycle from residual ``r`` (k, N) of columns ``cols``; updates ``x`` and
    ``iterations`` in place and returns the columns it processed (all of ``cols``)."""
    k, size = r.shape
    dtype, device = r.dtype, r.device
    m = restart
    basis = torch.empty(k, m + 1, size, dtype=dtype, device=device)
    tri = torch.zeros(k, m, m, dtype=dtype, device=device)  # R: rotated Hessenberg, upper
    rot = torch.eye(m + 1, dtype=dtype, device=device).repeat(k, 1, 1)  # accumulated Givens Q
    beta = torch.linalg.vector_norm(r, dim=1)
    basis[:, 0] = r / beta[:, None]
    tgt = target[cols]
    live = cols  # columns still in the batch, in the order of the basis rows
    for j in range(m):
        w = apply(basis[:, j], live)
        vj = basis[:, : j + 1]
        h = torch.zeros(live.numel(), j + 2, dtype=dtype, device=device)
        for _ in range(2):  # CGS2
            # c = V^H w, as conj(w^H V^T): no copy of the (conjugated, strided) basis
            c = torch.bmm(w.conj()[:, None, :], vj.transpose(1, 2))[:, 0].conj()
            w = w - torch.bmm(c[:, None, :], vj)[:, 0]
            h[:, : j + 1] += c
        hn = torch.linalg.vector_norm(w, dim=1)
        h[:, j + 1] = hn
        basis[:, j + 1] = w / torch.where(hn > 0, hn, 1)[:, None]
        t = torch.bmm(rot[:, : j + 2, : j + 2], h[:, :, None])[:, :, 0]
        a, bb = t[:, j], t[:, j + 1]
        rho = torch.sqrt(a.abs() ** 2 + bb.abs() ** 2)
        phase = torch.where(a.abs() > 0, a / a.abs().clamp_min(1e-300), 1)
        cs = torch.where(rho > 0, a.abs() / rho.clamp_min(1e-300), 1)
        sn = torch.where(rho > 0, phase * bb.conj() / rho.clamp_min(1e-300), 0)
        qj, qj1 = rot[:, j, : j + 2].clone(), rot[:, j + 1, : j + 2].clone()
        rot[:, j, : j + 2] = cs[:, None] * qj + sn[:, None] * qj1
        rot[:, j + 1, : j + 2] = -sn.conj()[:, None] * qj + cs[:, None] * qj1
        t[:, j] = phase * rho
        tri[:, : j + 1, j] = t[:, : j + 1]
        estimate = beta * rot[:, j + 1, 0].abs()
        done = estimate <= tgt
        last = j == m - 1
        # one host synchronisation per step; breakdown (hn = 0, an exact Krylov space) must
        # leave before step j + 1
        n_done, breakdown = torch.stack([done.sum(), (hn == 0).sum()]).tolist()
        if last or (n_done and (n_done == k or n_done >= compact_fraction * k or breakdown)):
            if last or n_done == k:  # the whole batch: views, no copy of the basis
                _finish(basis, tri, rot, beta, j + 1, live, x)
                iterations[live] += j + 1
                break
            idx = done.nonzero().flatten()
            _finish(basis[idx], tri[idx], rot[idx], beta[idx], j + 1, live[idx], x)
            iterations[live[idx]] += j + 1
            keep = (~done).nonzero().flatten()
            basis = _compact(basis, keep, j + 2)
            tri, rot, beta, tgt, live = tri[keep], rot[keep], beta[keep], tgt[keep], live[keep]
            k = keep.numel()
    return cols


def _finish(basis, tri, rot, beta, steps, cols, x) -> None:
    """Solve the ``steps x steps`` triangular systems of the batch rows given (columns ``cols``
    of ``x``) and add ``V y`` to their solutions."""
    r = tri[:, :steps, :steps]
    g = beta[:, None] * rot[:, :steps, 0]
    y = torch.linalg.solve_triangular(r, g[:, :, None], upper=True)
    x[cols] += torch.bmm(y.transpose(1, 2), basis[:, :steps])[:, 0]


def _compact(basis: torch.Tensor, keep: torch.Tensor, used: int) -> torch.Tensor:
    """Move rows ``keep`` (ascending) of ``basis[:, :used]`` to the front, in place, by slabs
    of an eighth of the rows (the only extra memory; ``keep[i] >= i``, so a slab never reads a
    row an earlier slab has overwritten)."""
    slab = max(1, basis.shape[0] // 8)
    for s in range(0, keep.numel(), slab):
        rows = keep[s : s + slab]
        basis[s : s + rows.numel(), :used] = basis[rows, :used]
    return basis[: keep.numel()]
