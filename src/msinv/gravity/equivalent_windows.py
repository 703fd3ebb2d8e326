"""Equivalent-source layers fitted in two scales and by windows, for 10⁵–10⁶ stations.

One layer over a large survey has a G of N × M entries (10⁵ stations: 80 GB in float64). The
windowed fit keeps memory to one window at a time, in two stages, each fitting what the
previous left (the idea of the gradient boosting of Harmonica's ``EquivalentSourcesGB``,
Soler & Uieda 2021):

1. **Regional**: the stations are averaged in square blocks (one per ten stations, 100 to
   2,000 blocks: :data:`STATIONS_PER_BLOCK`; mean position, mean datum, its standard error:
   :func:`block_means`), and one layer
   (:class:`~msinv.gravity.equivalent.EquivalentLayer`, the estimator's options, its cell
   from the blocks' spacing, its depth chosen by ``depth="auto"``) is fitted to the block
   means. It carries the long wavelengths, which a window of a few kilometres cannot
   represent (fitted alone, without this stage, the
   windows of the 100,000-station benchmark survey continued the field to 300 m with
   0.070 mGal RMS error).
2. **Local**: the residual of the regional layer at every station is fitted tile by tile:
   each square tile's layer (the same options, the fine cell everywhere) fits the residuals of
   the stations in the tile and a margin around it; predictions blend the tiles' layers with
   weights that are 1 in a tile's core and fall to 0 across its margin (cosine taper),
   normalised to sum to 1.

A prediction is the regional layer's plus the blend of the local ones; the misfit reported is
that of this blend at the stations.

Memory: the larger of the regional fit (its blocks × its cells) and one window's fit
(``window`` stations × its cells), plus the N data; estimated up front by
:func:`window_memory` and checked against the estimator's ``memory`` limit.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

#: Stations per window (tile + margin) when the estimator gives none: on the benchmark's band
#: survey of 100,000 stations windows of 1,000 fitted in 52 s, of 2,000 in 74 s, with the same
#: errors to 5 % (``benchmarks/gravity_eqs.py``, methods ``msinv-w1000`` and ``msinv-w2000``).
DEFAULT_WINDOW = 1000
#: Margin on each side of a tile, as a fraction of the tile's side.
MARGIN = 0.3
#: Blocks of the regional stage: one per ``STATIONS_PER_BLOCK`` stations, at least
#: ``MIN_BLOCKS`` and at most ``MAX_BLOCKS`` (until 2 Dec 2026: ``window`` blocks). Means of five
#: stations or fewer carry the field's short wavelengths into the regional layer: windows of
#: 1,000 on the benchmark's band survey of 5,000 stations continued the field to 300 m with
#: 0.00090 mGal RMS error on 1,000 blocks, 0.00068 on 476 (``N5000_msinv.json``); too few
#: blocks leave wavelengths between the regional layer's and the windows': at 100,000 stations
#: windows of 500 on 500 blocks gave 0.00174, windows of 1,000 on 2,000 blocks 0.00025
#: (``N100000_msinv.json``). (``benchmarks/gravity_eqs.py``, methods ``msinv-w1000`` and
#: ``msinv-w500``; the runs on ``window`` blocks were made before this rule and not kept.)
STATIONS_PER_BLOCK = 10
MIN_BLOCKS = 100
MAX_BLOCKS = 2000


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


def block_means(pts, d, s, region, blocks: int):
    """Means of the stations in about ``blocks`` square blocks over ``region``.

    Returns the mean positions (k, 3), mean data (k,) and the standard errors of the means
    (k,), for the k non-empty blocks. A block mean stands for the field at the block's mean
    position, which it is exactly for a field that varies linearly across the block; what
    varies otherwise (the field's curvature, short wavelengths) is an error of the mean as
    such, as the noise is. So each block's data are fitted by a plane (blocks of four
    stations or more) and the error of the mean is √(max(s², mean σ²) / n), s² the scatter
    about the plane (its residual sum of squares over n − 3); σ/√n for smaller blocks. With
    the noise alone, √(Σσ²)/n, means were claimed far more accurate than they are where the
    field curves across a block: in blocks of four stations the regional layer then took the
    field's short wavelengths for long ones, and the field continued upward was 16× less
    accurate than one layer's (``benchmarks/gravity_eqs.py``, ``msinv-w500`` on ``disc-s1``;
    ``tests/gravity/test_equivalent.py`` checks it).
    """
    w, e, so, n = region
    side = np.sqrt((e - w) * (n - so) / blocks)
    ix = np.minimum(((pts[:, 0] - w) / side).astype(int), max(int(np.ceil((e - w) / side)) - 1, 0))
    iy = np.minimum(
        ((pts[:, 1] - so) / side).astype(int), max(int(np.ceil((n - so) / side)) - 1, 0)
    )
    _, label, count = np.unique(ix * (iy.max() + 1) + iy, return_inverse=True, return_counts=True)

    def total(v):
        return np.bincount(label, weights=v)

    xyz = np.column_stack([total(pts[:, k]) / count for k in range(3)])
    dm, noise = total(d) / count, total(s**2) / count
    # the scatter about a plane fitted in each block of four stations or more, from the
    # block's normal equations in coordinates centred on its mean (a 2 x 2 system per block;
    # a tiny ridge keeps a block of collinear stations to the plane along its line)
    x, y, r = pts[:, 0] - xyz[label, 0], pts[:, 1] - xyz[label, 1], d - dm[label]
    a = np.stack([total(x * x), total(x * y), total(x * y), total(y * y)], axis=-1)
    a = a.reshape(-1, 2, 2) + 1e-12 * (a[:, 0] + a[:, 3])[:, None, None] * np.eye(2)
    b = np.stack([total(x * r), total(y * r)], axis=-1)
    fit = count > 3
    explained = np.zeros(count.size)
    coef = np.linalg.solve(a[fit], b[fit][..., None])[..., 0]
    explained[fit] = np.sum(coef * b[fit], axis=1)
    scatter = np.maximum(total(r * r) - explained, 0.0) / np.maximum(count - 3, 1)
    var = np.where(fit, np.maximum(scatter, noise), noise)
    return xyz, dm, np.sqrt(var / count)


def window_memory(window: int, cell_count: int) -> int:
    """Bytes of one window's fit: G and its weighted copy (float64), the M × M matrices of the
    eigendecomposition, and working copies."""
    m = int(cell_count)
    return 8 * (3 * int(window) * m + 4 * min(window, m) ** 2)


def inside_box(points, box, pad=0.0) -> np.ndarray:
    """(n,) bool: points (east, north first) in ``box`` (west, east, south, north) widened by
    ``pad`` metres, edges included."""
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


def fit_windows(est, pts, d, s, sigma_known: bool, limit: int, one_layer_if_regional=False):
    """Fit ``est`` (an EquivalentLayer) in two scales, setting its ``regional_`` (the regional
    layer) and ``windows_`` (tile core, local layer); returns True. With
    ``one_layer_if_regional``, stops after the regional stage when that finds a regional
    (records its degree in ``est.cv_scores_["windows"]``) and returns False: the caller fits
    one layer."""
    from msinv.core.memory import check_memory

    window = est.window or DEFAULT_WINDOW
    cell = est.core_cell(pts)
    region = (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max())
    cores, margin = tiles(region, d.size, window)
    side = max(c[1] - c[0] for c in cores) + 2 * margin
    cells = (int(np.ceil(side / cell)) + 2 * est.padding + 1) ** 2
    blocks = int(np.clip(d.size // STATIONS_PER_BLOCK, MIN_BLOCKS, MAX_BLOCKS))
    regional_cells = (int(np.ceil(np.sqrt(blocks) / 1.5)) + 2 * est.padding + 1) ** 2
    check_memory(
        max(window_memory(int(1.5 * window), cells), window_memory(blocks, regional_cells))
        + 8 * 8 * d.size,
        limit,
        f"windowed layer (a regional layer on {blocks} blocks, then {len(cores)} windows of "
        f"~{window} stations, ~{cells} cells each)",
        "a smaller window= or a larger memory",
    )
    # 1. the regional layer, on block means
    xyz, dm, sm = block_means(pts, d, s, region, blocks)
    # block means are not point values (the field varies inside a block), so neither the
    # regional nor the local layers judge their noise ratio; the whole fit's is checked below
    regional = replace(est, cell=None, window=False, depth="auto", max_noise_ratio=None).fit(
        xyz, dm, sm if sigma_known else None
    )
    if one_layer_if_regional and regional.trend_ is not None:
        est.cv_scores_["windows"] = {"trend": regional.trend_}
        _add_timings(est, [regional])
        return False
    t0 = time.perf_counter()
    residual = d - regional.predict(pts)
    est._spent("regional field", t0)
    # 2. local layers on the residual, window by window
    sub = replace(
        est, cell=cell, window=False, padding=min(est.padding, 2), trend=None, max_noise_ratio=None
    )  # the regional layer carries the regional trend, if any
    est.regional_, est.windows_, est.margin_ = regional, [], margin
    # the blend of the windows at the stations, from each window's fitted field at its own
    # stations (a window's taper vanishes outside them): what predict_windows gives there
    total, weight = np.zeros(d.size), np.zeros(d.size)
    for core in cores:
        mine = inside_box(pts, core, margin)
        if mine.sum() < 10:
            continue
        layer = replace(sub).fit(pts[mine], residual[mine], s[mine] if sigma_known else None)
        est.windows_.append((core, layer))
        w = _taper(pts[mine], core, margin)
        total[mine] += w * layer.fitted_
        weight[mine] += w
    est.fitted_ = d - residual + _blend(total, weight)
    est.phi_d_ = float(np.sum(((est.fitted_ - d) / s) ** 2))  # the true misfit of the blend
    est.noise_ratio_ = est.phi_d_ / d.size if sigma_known else None  # ≤ χ²/(N − tr A)
    _add_timings(est, [regional, *(w[1] for w in est.windows_)])
    for name in ("_layer_", "_density_", "_beta_"):  # no single layer: regional_, windows_
        vars(est).pop(name, None)
    est.depth_ = est.windows_[0][1].depth_
    est.trade_off_ = est.windows_[0][1].trade_off_
    est.trend_, est.trend_coefficients_ = regional.trend_, regional.trend_coefficients_
    est.trend_origin_ = regional.trend_origin_
    return True


def _add_timings(est, layers) -> None:
    """Add the layers' ``timings_`` to ``est.timings_`` (summed over the layers fitted)."""
    for layer in layers:
        for what, seconds in layer.timings_.items():
            est.timings_[what] = est.timings_.get(what, 0.0) + seconds


def predict_windows(est, points) -> np.ndarray:
    """The regional layer's prediction plus the blend of the windows' at (n, 3) points."""
    return blend_windows(
        points,
        [core for core, _ in est.windows_],
        est.margin_,
        est.region_,
        est.regional_.predict,
        [layer.predict for _, layer in est.windows_],
    )


def blend_windows(points, cores, margin, region, regional, windows) -> np.ndarray:
    """A windowed fit's field at (n, 3) points, mGal: ``regional(points)`` plus the windows'
    fields ``windows[k](points)`` (callables, one per tile core ``cores[k]``: west, east,
    south, north) blended with weights 1 in a core and a cosine taper to 0 across ``margin``
    metres; points outside ``region`` (the stations' extent) and its margin are refused."""
    pts = np.asarray(points, dtype=float)
    outside = ~inside_box(pts, region, margin)
    if np.any(outside):
        raise ValueError(
            f"points: {int(outside.sum())} lie outside the windows of the fitted layer (the "
            f"stations' extent and a margin of {margin:.0f} m)"
        )
    total, weight = np.zeros(len(pts)), np.zeros(len(pts))
    for core, field in zip(cores, windows, strict=True):
        near = inside_box(pts, core, margin)
        if not near.any():
            continue
        w = _taper(pts[near], core, margin)
        total[near] += w * field(pts[near])
        weight[near] += w
    return regional(pts) + _blend(total, weight)


def _blend(total, weight) -> np.ndarray:
    """The windows' weighted mean; 0 where no window reaches (a tile with fewer than 10
    stations has none: the regional layer alone predicts there)."""
    return np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
