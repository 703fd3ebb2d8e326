"""Equivalent sources in the GZES tradition: a draped layer of prisms fitted to gravity data.

GZES (UBC-GIF) inverts surface (and borehole) gravity for the density of a single layer of
cells under the stations; that density is "completely fictional, a means to create a model that
reproduces the data", and the layer then predicts the field anywhere: gridding, gap filling,
upward continuation. :class:`EquivalentLayer` is that workflow with the interface Harmonica and
scikit-learn users know::

    layer = EquivalentLayer().fit(points, data, sigma)   # points (n, 3): east, north, elevation
    layer.predict(new_points)                            # g_z in mGal, GRAV3D's sign (down)
    grid = layer.grid(spacing=50.0)                      # draped over the stations
    up = layer.upward(300.0)                             # a grid at 300 m elevation

The fit minimises φ_d + β φ_m with φ_m = α_s∫ρ² + α_x∫(∂ρ/∂x)² + α_y∫(∂ρ/∂y)² on the layer
(GZES's 2-D model objective), bounded by projected gradients
(:func:`msinv.gravity.inversion.invert`); β is searched so that φ_d = chifact·N (GZES mode 1),
fixed (``damping``), or, when the errors are unknown, chosen by k-fold cross-validation.

With ``wavelet`` set, each row of G is compressed by a 2-D wavelet transform
(:class:`msinv.gravity.compression.Wavelet2D`), the search runs with the compressed G and is
finished with the full G (:func:`msinv.gravity.inversion.finish`), so that the misfit reported
is the true one. Large surveys are fitted window by window (:mod:`msinv.gravity.equivalent_windows`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from msinv.gravity.layer import LayerMesh, surface_elevation


@dataclass
class LayerGrid:
    """Values of a fitted layer on a regular grid.

    Attributes
    ----------
    easting : (nx,) numpy.ndarray
    northing : (ny,) numpy.ndarray
    elevation : (ny, nx) numpy.ndarray
        Elevation of each grid point, metres.
    gz : (ny, nx) numpy.ndarray
        Predicted g_z, mGal (down).
    """

    easting: np.ndarray
    northing: np.ndarray
    elevation: np.ndarray
    gz: np.ndarray

    def points(self) -> np.ndarray:
        """(ny·nx, 3) east, north, elevation of the grid points (east fastest)."""
        e, n = np.meshgrid(self.easting, self.northing)
        return np.column_stack([e.ravel(), n.ravel(), self.elevation.ravel()])

    def to_xarray(self):
        """An ``xarray.Dataset`` (variables ``gz``, ``elevation``; dims northing, easting)."""
        from msinv.core.optional import require

        xr = require("xarray", "write gridded gravity as netCDF")
        coords = {"northing": self.northing, "easting": self.easting}
        dims = ("northing", "easting")
        return xr.Dataset(
            {
                "gz": (dims, self.gz, {"units": "mGal", "long_name": "g_z, positive down"}),
                "elevation": (dims, self.elevation, {"units": "m"}),
            },
            coords=coords,
        )


@dataclass
class EquivalentLayer:
    """A draped layer of prism cells fitted to gravity data (GZES), scikit-learn style.

    Every option has a default that builds a sensible layer from the stations alone.

    Parameters
    ----------
    cell : float, optional
        Core cell width, metres; default: 1.5 × the stations' mean spacing √(area of their
        convex hull / N), refined (÷ 1.5, twice at most) when the target misfit is out of reach.
    depth : float or "cv", optional
        Tops of the cells at the surface minus ``depth`` metres; default: ``default_depth``
        (2.5) cell widths.
        ``"cv"`` chooses it among ``depth_factors`` × cell by k-fold cross-validation.
    thickness : float, optional
        Cell thickness; default: the cell width.
    topography : (npt, 3) numpy.ndarray, optional
        The surface to drape on; default: the stations' own elevations.
    elevation : float, optional
        A flat layer instead: tops at this elevation (GZES's constant-depth layer).
    alphas : (float, float, float), optional
        α_s, α_x, α_y of the 2-D model objective (lengths in metres, so the smoothness length
        is √(α_x/α_s)); default (cell⁻², 1, 1): a smoothness length of one cell (GZES's
        defaults 1e-4, 1, 1 are this for 100 m cells).
    lower, upper : float
        Bounds on the density, g/cc (GZES users set them wide).
    chifact : float
        Target misfit per datum when ``sigma`` is given (χ² = chifact·N).
    damping : float, optional
        A fixed β instead of the target misfit.
    folds : int
        k of the k-fold cross-validation (>= 2) used when ``sigma`` is not given, and for
        ``depth="cv"``.
    depth_factors : tuple of float
        Candidate depths (in cell widths) for ``depth="cv"``.
    wavelet : str, optional
        ``daub1``..``daub6``, ``symm4``..``symm6``: compress each row of G by a 2-D wavelet
        transform at ``rstar`` and finish with the full G; None: dense G only.
    rstar : float
        Relative reconstruction error per row for the compression.
    rule : str
        ``"per_row"`` or GZES's ``"representative"`` (one representative row for surface data,
        one for borehole data).
    padding : int
        Padding cells around the stations' extent, widths growing 1.5×.
    window : int, optional
        Fit in overlapping windows of about this many stations (see
        :mod:`msinv.gravity.equivalent_windows`); default: windows only when the dense G of
        all stations exceeds ``memory``.
    memory : float, optional
        Memory limit in GiB for G; default: half of the available memory.
    seed : int
        Seed of the folds.
    default_depth : float
        Depth of the layer in cells when ``depth`` is not given.

    Attributes
    ----------
    layer_ : LayerMesh
        The fitted layer (or the first window's, with windows).
    density_ : (n_cells,) numpy.ndarray
        Its density, g/cc.
    beta_, phi_d_ : float
        Trade-off parameter and the true misfit of the fit.
    phi_d_compressed_ : float or None
        The misfit the compressed G claimed before the full-G finish.
    cv_scores_ : dict
        Cross-validation RMS error per candidate, when used.
    timings_ : dict
        Seconds spent building G, compressing, inverting.
    """

    cell: float | None = None
    depth: float | str | None = None
    thickness: float | None = None
    topography: np.ndarray | None = None
    elevation: float | None = None
    alphas: tuple[float, float, float] | None = None
    lower: float = -np.inf
    upper: float = np.inf
    chifact: float = 1.0
    damping: float | None = None
    folds: int = 5
    depth_factors: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
    wavelet: str | None = None
    rstar: float = 0.05
    rule: str = "per_row"
    padding: int = 4
    window: int | None = None
    memory: float | None = None
    seed: int = 0
    default_depth: float = 2.5
    cv_scores_: dict = field(default_factory=dict, init=False, repr=False)
    timings_: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        if self.cell is not None and not self.cell > 0:
            raise ValueError(f"cell: expected > 0 m, got {self.cell}")
        if isinstance(self.depth, str) and self.depth != "cv":
            raise ValueError(f"depth: expected metres >= 0 or 'cv', got {self.depth!r}")
        if isinstance(self.depth, (int, float)) and not self.depth >= 0:
            raise ValueError(f"depth: expected >= 0 m, got {self.depth}")
        a = self.alphas
        if a is not None and (len(a) != 3 or min(a) < 0 or max(a) == 0):
            raise ValueError(f"alphas: expected three values >= 0, not all 0, got {self.alphas}")
        if not self.lower < self.upper:
            raise ValueError(f"bounds: expected lower < upper, got {self.lower}, {self.upper}")
        if not self.chifact > 0:
            raise ValueError(f"chifact: expected > 0, got {self.chifact}")
        if self.damping is not None and not self.damping > 0:
            raise ValueError(f"damping: expected > 0, got {self.damping}")
        if self.folds < 2:
            raise ValueError(f"folds: expected >= 2, got {self.folds}")
        if self.rule not in ("per_row", "representative"):
            raise ValueError(f"rule: expected 'per_row' or 'representative', got {self.rule!r}")
        if not 0 < self.rstar < 1:
            raise ValueError(f"rstar: expected in (0, 1), got {self.rstar}")
        if self.window is not None and self.window < 10:
            raise ValueError(f"window: expected >= 10 stations, got {self.window}")

    # ---- the layer ---------------------------------------------------------------------
    def default_cell(self, points: np.ndarray) -> float:
        """Mean station spacing √(hull area / N), metres."""
        from scipy.spatial import ConvexHull

        pts = np.asarray(points, float)[:, :2]
        area = ConvexHull(pts).volume if len(pts) >= 3 else 0.0
        return float(np.sqrt(area / len(pts))) if area > 0 else 1.0

    def build_layer(
        self, points: np.ndarray, depth: float | None = None, cell: float | None = None
    ) -> LayerMesh:
        """The layer this estimator would fit to ``points`` (depth and cell in metres, or the
        defaults: ``cell`` or 1.5 × the mean spacing, ``default_depth`` × cell)."""
        cell = cell or self.cell or 1.5 * self.default_cell(points)
        depth = self.default_depth * cell if depth is None else depth
        layer = LayerMesh.draped(
            points,
            cell=cell,
            depth=depth,
            thickness=self.thickness,
            surface=self.topography,
            padding=self.padding,
        )
        if self.elevation is not None:
            layer = LayerMesh(
                layer.hx,
                layer.hy,
                layer.origin,
                np.full(layer.shape, float(self.elevation)),
                layer.thickness,
            )
        return layer

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, points, data, sigma=None, borehole=None) -> EquivalentLayer:
        """Fit the layer to data.

        Parameters
        ----------
        points : (n, 3) numpy.ndarray
            Station east, north, elevation, metres.
        data : (n,) numpy.ndarray
            g_z in mGal (GRAV3D's sign: positive down, a positive contrast gives a positive
            anomaly).
        sigma : float or (n,) numpy.ndarray, optional
            Standard deviations, mGal (> 0). Without them the trade-off is chosen by k-fold
            cross-validation and the misfit is measured with σ = 1.
        borehole : (n,) bool numpy.ndarray, optional
            Borehole stations (GZES's second representative row for compression).

        Returns
        -------
        EquivalentLayer
            ``self``, fitted.
        """
        from msinv.core.memory import memory_limit

        pts, d, s = _check(points, data, sigma)
        self.n_data_ = d.size
        self.surface_ = pts
        self.region_ = (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max())
        limit = memory_limit(self.memory)
        cell = self.cell or 1.5 * self.default_cell(pts)
        if (
            self.window is not None
            or self.build_layer(pts, 0.0, cell).sensitivity_memory(d.size) > limit
        ):
            from msinv.gravity.equivalent_windows import fit_windows

            return fit_windows(self, pts, d, s, sigma is not None, limit)
        for attempt in range(3 if self.cell is None else 1):
            try:
                self._fit_cell(pts, d, s, sigma is not None, cell, borehole)
                return self
            except TargetMisfitError:
                if attempt == (2 if self.cell is None else 0):
                    raise
                cell /= 1.5  # the default cell was too coarse to reach the target: refine
        return self

    def _fit_cell(self, pts, d, s, sigma_known, cell, borehole):
        depth = self.depth
        if depth == "cv":
            scores = {}
            for f in self.depth_factors:
                scores[f * cell] = self._cv(pts, d, s, f * cell, cell, sigma_known)[0]
            self.cv_scores_["depth"] = scores
            depth = min(scores, key=scores.get)
        self.depth_ = self.default_depth * cell if depth is None else float(depth)
        beta = self.damping
        if not sigma_known and beta is None:
            _, beta = self._cv(pts, d, s, self.depth_, cell, False)
        self._fit_once(pts, d, s, self.build_layer(pts, self.depth_, cell), beta, borehole)

    def _fit_once(self, pts, d, s, layer, beta, borehole=None):
        """One fit on one layer: β for χ² = chifact·N (``beta`` None) or a fixed β.

        Without bounds and compression the normal equations are solved exactly in data space
        (:class:`TikhonovSolver`); with finite bounds, or a wavelet, by the bounded inversion
        (:func:`msinv.gravity.inversion.invert`), the compressed one finished with the full G.
        """
        from msinv.gravity.forward import GravityOperator
        from msinv.gravity.inversion import InversionConfig, finish, invert

        t0 = time.perf_counter()
        g = layer.sensitivity(pts)
        self.timings_["sensitivity"] = time.perf_counter() - t0
        reg = self._regularisation(layer)
        self.phi_d_compressed_ = None
        t1 = time.perf_counter()
        if self.wavelet is None and np.isinf(self.lower) and np.isinf(self.upper):
            solver = TikhonovSolver(g, s, _hessian(reg))
            self.timings_["data_space"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            beta = solver.beta_for(self.chifact * d.size, d) if beta is None else beta
            model = solver.model(beta, d)
            phi_d = float(np.sum(((g @ model - d) / s) ** 2))
            self.result_ = None
        else:
            op = GravityOperator(g)
            cfg = InversionConfig(mode=1 if beta is None else 2, chifact=self.chifact, beta=beta)
            bounds = {"lower": self.lower, "upper": self.upper}
            if self.wavelet is not None:
                comp = _compress(g, layer, self.wavelet, self.rstar, self.rule, borehole)
                self.compression_ = comp
                self.timings_["compression"] = time.perf_counter() - t1
                t1 = time.perf_counter()
                res = invert(comp, d, s, reg, **bounds, config=cfg)
                res = finish(op, res, d, s, reg, **bounds, config=cfg)
                self.phi_d_compressed_ = res.phi_d_approximate
            else:
                res = invert(op, d, s, reg, **bounds, config=cfg)
            self.result_ = res
            beta, model, phi_d = res.beta, res.model, res.phi_d
        self.timings_["inversion"] = time.perf_counter() - t1
        self.layer_, self.density_ = layer, model
        self.beta_, self.phi_d_ = beta, phi_d

    def _regularisation(self, layer: LayerMesh):
        from msinv.gravity.regularisation import Regularisation, RegularisationConfig

        cell = float(np.min(layer.hx))
        a_s, a_x, a_y = self.alphas or (cell**-2, 1.0, 1.0)
        cfg = RegularisationConfig(a_s, a_x, a_y, 0.0)
        return Regularisation(layer.tensor_mesh(), cfg)

    def _cv(self, pts, d, s, depth, cell, sigma_known: bool):
        """k-fold cross-validation of one depth: RMS held-out error and the β chosen.

        With σ known each fold is fitted to χ² = chifact·N_train; otherwise a range of β's is
        scored and the best returned. Folds are drawn with ``seed``.
        """
        layer = self.build_layer(pts, depth, cell)
        g = layer.sensitivity(pts)
        hess = _hessian(self._regularisation(layer))
        rng = np.random.default_rng(self.seed)
        fold = rng.permutation(d.size) % self.folds
        full = TikhonovSolver(g, s, hess)
        if sigma_known or self.damping is not None:
            betas = [None] if self.damping is None else [self.damping]
        else:
            betas = list(full.beta_scale() * 10.0 ** np.arange(-8.0, 1.0, 1.0))
        sq = dict.fromkeys(betas, 0.0)
        for k in range(self.folds):
            train, test = fold != k, fold == k
            part = full.subset(train)
            for b in betas:
                beta = part.beta_for(self.chifact * train.sum(), d[train]) if b is None else b
                pred = g[test] @ part.model(beta, d[train])
                sq[b] += float(np.sum((pred - d[test]) ** 2))
        errors = {b: float(np.sqrt(v / d.size)) for b, v in sq.items()}
        best = min(errors, key=errors.get)
        self.cv_scores_.setdefault("beta", {}).update(
            {("target" if b is None else b): e for b, e in errors.items()}
        )
        return errors[best], best

    # ---- prediction ----------------------------------------------------------------------
    def predict(self, points) -> np.ndarray:
        """g_z (mGal, down) of the fitted layer at (n, 3) points."""
        if not hasattr(self, "density_"):
            raise ValueError("the layer is not fitted: call fit(points, data, sigma) first")
        if hasattr(self, "windows_"):
            from msinv.gravity.equivalent_windows import predict_windows

            return predict_windows(self, points)
        return self.layer_.gz(np.asarray(points, float), self.density_)

    def grid(
        self,
        spacing: float | None = None,
        region: tuple[float, float, float, float] | None = None,
        elevation: float | None = None,
        height: float | None = None,
    ) -> LayerGrid:
        """Predict on a regular grid.

        Parameters
        ----------
        spacing : float, optional
            Grid spacing, metres (default: the layer's cell width).
        region : (west, east, south, north), optional
            Default: the extent of the fitted stations.
        elevation : float, optional
            A flat grid at this elevation.
        height : float, optional
            A grid draped ``height`` metres above the surface (the topography, else the
            stations' surface). The default (neither) drapes at the stations' own height: 0 m
            above the stations' surface.
        """
        if elevation is not None and height is not None:
            raise ValueError("give elevation (a flat grid) or height (draped), not both")
        spacing = spacing or self.cell_
        w, e, s, n = region or self.region_
        east = np.arange(w, e + spacing / 2, spacing)
        north = np.arange(s, n + spacing / 2, spacing)
        ge, gn = np.meshgrid(east, north)
        if elevation is not None:
            z = np.full(ge.shape, float(elevation))
        else:
            surface = self.topography if self.topography is not None else self.surface_
            xy = np.column_stack([ge.ravel(), gn.ravel()])
            z = surface_elevation(surface, xy).reshape(ge.shape) + (height or 0.0)
        values = self.predict(np.column_stack([ge.ravel(), gn.ravel(), z.ravel()]))
        return LayerGrid(east, north, z, values.reshape(ge.shape))

    def upward(self, height: float, spacing: float | None = None, region=None) -> LayerGrid:
        """Upward continuation: a flat grid at elevation ``height`` metres (absolute, as
        Harmonica's ``upward`` coordinate)."""
        return self.grid(spacing=spacing, region=region, elevation=height)

    @property
    def cell_(self) -> float:
        return float(np.min(self.layer_.hx))


class TargetMisfitError(ValueError):
    """No trade-off parameter gives the target misfit on this layer."""


def _check(points, data, sigma):
    pts = np.asarray(points, dtype=np.float64)
    d = np.asarray(data, dtype=np.float64).ravel()
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
        raise ValueError(f"points: expected finite (n, 3) east, north, elevation, got {pts.shape}")
    if d.shape != (pts.shape[0],) or not np.all(np.isfinite(d)):
        raise ValueError(f"data: expected {pts.shape[0]} finite values, got {d.shape}")
    s = np.ones(d.size) if sigma is None else np.broadcast_to(np.asarray(sigma, float), d.shape)
    if np.any(~(s > 0)):
        raise ValueError("sigma: expected standard deviations > 0")
    return pts, d, np.array(s)


def _compress(g, layer: LayerMesh, wavelet, rstar, rule, borehole):
    """2-D wavelet compression of the layer's rows (GZES)."""
    from msinv.gravity.compression import CompressedSensitivity, CompressionConfig

    cfg = CompressionConfig(wavelet, rule, rstar)
    return CompressedSensitivity.compress(g, layer.shape, config=cfg, borehole=borehole)


def _hessian(reg):
    """Σ A_kᵀ A_k of a regularisation (sparse, SPD when α_s > 0)."""
    return sum(o.matrix.T @ o.matrix for o in reg.operators.values()).tocsc()


class TikhonovSolver:
    r"""Exact unbounded Tikhonov solutions of a layer, by Cholesky factorisation, for any β.

    With B = W_d G (N data × M cells), R the model objective's Hessian (reference 0) and
    :math:`\min_m \|Bm - W_d d\|^2 + \beta\, m^T R m`:

    * model space (N > M): :math:`(B^TB + \beta R)\,m = B^T W_d d`, an M × M system;
    * data space (N <= M): :math:`m = R^{-1}B^T c`, :math:`(K + \beta I)\,c = W_d d` with
      :math:`K = B R^{-1} B^T` (N × N; one sparse LU of R), and the weighted residual is
      :math:`-\beta c`.

    Each β costs one dense Cholesky of min(N, M)³/3 flops; the β of a target misfit is found
    by :func:`msinv.core.solvers.beta_search` (secant on log φ_d, log β). Memory
    O(min(N, M)² + N M): the method for layers and windows of a few thousand cells.

    Parameters
    ----------
    g : (n_data, n_cells) numpy.ndarray
        Layer sensitivity.
    sigma : (n_data,) numpy.ndarray
        Standard deviations.
    hessian : scipy.sparse matrix
        R (n_cells × n_cells), symmetric positive definite.
    """

    def __init__(self, g, sigma, hessian):
        self.g = np.asarray(g, dtype=np.float64)
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self.hessian = hessian
        b = self.g / self.sigma[:, None]
        self.data_space = b.shape[0] <= b.shape[1]
        if self.data_space:
            from scipy.sparse.linalg import splu

            self.rinv_bt = splu(hessian.tocsc()).solve(np.asfortranarray(b.T))
            self.normal = b @ self.rinv_bt
            self.penalty = None
        else:
            self.normal = b.T @ b
            self.penalty = hessian.toarray()
        self._cache: tuple = (None, None)

    def subset(self, rows: np.ndarray) -> TikhonovSolver:
        """The solver of a subset of the data (cross-validation folds)."""
        return TikhonovSolver(self.g[rows], self.sigma[rows], self.hessian)

    def _solve(self, beta: float, d) -> np.ndarray:
        from scipy.linalg import cho_factor, cho_solve

        d = np.asarray(d, dtype=np.float64)
        key = (beta, d.tobytes())
        if self._cache[0] == key:
            return self._cache[1]
        wd = d / self.sigma
        if self.data_space:
            a, rhs = self.normal + beta * np.eye(self.normal.shape[0]), wd
        else:
            a, rhs = self.normal + beta * self.penalty, self.g.T @ (wd / self.sigma)
        try:
            x = cho_solve(cho_factor(a), rhs)
        except np.linalg.LinAlgError:  # β so small that rounding breaks definiteness
            x = np.linalg.lstsq(a, rhs, rcond=None)[0]
        self._cache = (key, x)
        return x

    def model(self, beta: float, d) -> np.ndarray:
        """The layer density m(β), (n_cells,) g/cc."""
        x = self._solve(beta, d)
        return self.rinv_bt @ x if self.data_space else x

    def phi_d(self, beta: float, d) -> float:
        """The misfit ‖W_d(G m(β) − d)‖²."""
        x = self._solve(beta, d)
        if self.data_space:
            return float(beta**2 * (x @ x))
        return float(np.sum(((self.g @ x - d) / self.sigma) ** 2))

    def beta_scale(self) -> float:
        """tr(data term) / tr(penalty): the β at which both weigh the same."""
        penalty = self.normal.shape[0] if self.data_space else np.trace(self.penalty)
        return float(np.trace(self.normal) / penalty)

    def beta_for(self, target: float, d, rtol: float = 1e-3) -> float:
        """β with φ_d(β) = target within ``rtol`` (first trial: the ratio of the traces)."""
        from msinv.core.solvers import beta_search

        res = beta_search(
            lambda b: self.phi_d(b, d), target, 1e-3 * self.beta_scale(), rtol=rtol, max_iter=60
        )
        if not res.converged:
            raise TargetMisfitError(
                f"no β gives the target misfit {target:.4g} (last φ_d {res.phi_d:.4g}); "
                "check sigma, or give a damping"
            )
        return res.beta
