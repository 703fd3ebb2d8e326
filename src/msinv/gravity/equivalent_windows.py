"""Equivalent-source layers fitted window by window, for surveys of 10⁵–10⁶ stations.

One layer over a large survey has a G of N × M entries (10⁵ stations: 80 GB in float64); the
windowed fit keeps memory to one window at a time. The survey is cut into square tiles; each
tile's layer is fitted (:class:`~msinv.gravity.equivalent.EquivalentLayer`, the same options, the
same cell size everywhere) to the stations of the tile and a margin around it, so that the
field of sources outside the tile is represented in the margin; predictions blend the tiles'
layers with weights that are 1 in a tile's core and fall to 0 across its margin (cosine taper),
normalised to sum to 1. This is the windowing of Harmonica's ``EquivalentSourcesGB`` (Soler &
Uieda 2021) without the boosting passes: each window fits the data rather than the residual
of the previous windows, which keeps the windows independent.

Memory: one window's G (``window`` stations × its cells) plus the N data; estimated up front by
:func:`window_memory` and checked against the estimator's ``memory`` limit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

#: Stations per window (tile + margin) when the estimator gives none.
DEFAULT_WINDOW = 2000
#: Margin on each side of a tile, as a fraction of the tile's side.
MARGIN = 0.3


def tiles(region, n_data: int, window: int):
    """Square tiles over ``region`` holding about ``window`` stations with their margins.

    Returns a list of (west, east, south, north) tile cores and the margin width (m).
    """
    w, e, s, n = region
    area = (e - w) * (n - s)
    side = np.sqrt(window * area / n_data) / (1 + 2 * MARGIN)
    nx, ny = max(1, int(np.ceil((e - w) / side))), max(1, int(np.ceil((n - s) / side)))
    xs, ys = np.linspace(w, e, nx + 1), np.linspace(s, n, ny + 1)
    cores = [(xs[i], xs[i + 1], ys[j], ys[j + 1]) for j in range(ny) for i in range(nx)]
    return cores, MARGIN * max((e - w) / nx, (n - s) / ny)


def window_memory(window: int, cell_count: int) -> int:
    """Bytes of one window's fit: G (float64), its normal matrix, and working copies."""
    m = int(cell_count)
    return 8 * (2 * int(window) * m + 3 * min(window, m) ** 2)


def _inside(points, box, pad=0.0):
    w, e, s, n = box
    p = np.asarray(points)
    return (p[:, 0] >= w - pad) & (p[:, 0] <= e + pad) & (p[:, 1] >= s - pad) & (p[:, 1] <= n + pad)


def _taper(points, box, margin):
    """1 in the core, cosine down to 0 at the margin's outer edge (separable in x and y)."""
    w, e, s, n = box
    out = np.ones(len(points))
    for lo, hi, x in ((w, e, points[:, 0]), (s, n, points[:, 1])):
        dist = np.maximum(np.maximum(lo - x, x - hi), 0.0) / margin
        out *= np.where(dist < 1, 0.5 * (1 + np.cos(np.pi * np.minimum(dist, 1))), 0.0)
    return out


def fit_windows(est, pts, d, s, sigma_known: bool, limit: int):
    """Fit ``est`` (an EquivalentLayer) window by window; returns ``est`` with ``windows_``."""
    from msinv.core.memory import check_memory

    window = est.window or DEFAULT_WINDOW
    cell = est.cell or 1.5 * est.default_cell(pts)
    region = (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max())
    cores, margin = tiles(region, d.size, window)
    side = max(c[1] - c[0] for c in cores) + 2 * margin
    cells = (int(np.ceil(side / cell)) + 2 * est.padding + 1) ** 2
    check_memory(
        window_memory(int(1.5 * window), cells) + 8 * 8 * d.size,
        limit,
        f"windowed layer ({len(cores)} windows of ~{window} stations, ~{cells} cells each)",
        "a smaller window= or a larger memory",
    )
    sub = replace(est, cell=cell, window=None, padding=min(est.padding, 2))
    est.windows_, est.margin_ = [], margin
    phi = 0.0
    for core in cores:
        mine = _inside(pts, core, margin)
        if mine.sum() < 10:
            continue
        layer = replace(sub).fit(pts[mine], d[mine], s[mine] if sigma_known else None)
        est.windows_.append((core, layer))
        inner = _inside(pts[mine], core)
        phi += float(
            np.sum(((layer.predict(pts[mine][inner]) - d[mine][inner]) / s[mine][inner]) ** 2)
        )
    est.phi_d_ = phi
    est.layer_, est.density_ = est.windows_[0][1].layer_, est.windows_[0][1].density_
    est.depth_ = est.windows_[0][1].depth_
    return est


def predict_windows(est, points) -> np.ndarray:
    """Blend of the windows' predictions at (n, 3) points (weights normalised to 1)."""
    pts = np.asarray(points, dtype=float)
    total, weight = np.zeros(len(pts)), np.zeros(len(pts))
    for core, layer in est.windows_:
        near = _inside(pts, core, est.margin_)
        if not near.any():
            continue
        w = _taper(pts[near], core, est.margin_)
        total[near] += w * layer.predict(pts[near])
        weight[near] += w
    if np.any(weight == 0):
        raise ValueError("points outside every window of the fitted layer")
    return total / weight
