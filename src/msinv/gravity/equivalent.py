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
(:func:`msinv.gravity.inversion.invert`). The trade-off β (``trade_off``) maximises the
evidence p(d | β) when σ is known (the default: the fit is the most probable density of a
Gaussian model, and β the value the data make most probable), or minimises the unbiased
predictive risk estimate (the expected misfit to the *true* field at the stations, which the
target misfit χ² = N overshoots by smoothing the field too much), or gives φ_d = chifact·N
(GZES mode 1, ``"target"``), or minimises generalised cross-validation; it is fixed with
``damping``, or chosen by k-fold cross-validation when the errors are unknown. A default layer
whose residuals are well above the stated noise (``max_noise_ratio``: the layer is too coarse
for data that accurate) is refined while the evidence grows, and a fit that stays so warns;
one that is not is followed by coarser, deeper layers while the evidence grows
(``deep_factors``: deep sources make a smooth field). A regional plane is fitted beside the
layer when the data carry one (``trend``).

With ``wavelet`` set, each row of G is compressed by a 2-D wavelet transform
(:class:`msinv.gravity.compression.Wavelet2D`), the search runs with the compressed G and is
finished with the full G (:func:`msinv.gravity.inversion.finish`), so that the misfit reported
is the true one. Surveys of more than :data:`WINDOWS_ABOVE` stations, or whose G exceeds the
memory, are fitted in two scales, window by window (:mod:`msinv.gravity.equivalent_windows`),
unless they carry a regional.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import warnings
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


#: Rules for the trade-off parameter (see :class:`EquivalentLayer`).
TRADE_OFFS = ("evidence", "upre", "target", "gcv", "cv")
#: The rules that minimise a function of β known for every β (:meth:`TikhonovSolver.score`).
SCORED = ("evidence", "upre", "gcv")

#: How much a plane must lower the predictive risk (χ² units; ``EquivalentLayer._choose_trend``)
#: for ``trend="auto"`` to fit one: adding
#: three free coefficients to a fit that needs none lowers it by about χ²₃ − 6, which exceeds
#: 10 with probability 0.1 %.
TREND_MARGIN = 10.0
#: Above this many stations a fit is made in windows (``window=None``): one layer's exact
#: solution costs O(M³) for M ≈ N/2.25 cells, SimPEG's iterations and windows O(N M) and O(N).
#: On the benchmark's band and disc surveys (``benchmarks/gravity_eqs_sizes.py``; methods
#: ``msinv-whole``, ``msinv-w1000``, ``simpeg``; ``docs/benchmarks.md``) one layer took 2.6-3.7
#: s at 3,300-4,000 stations and 57 s at 9,515 against SimPEG's 6.9-15 s, windows of 1,000
#: stations 1.0-1.3 and 4.1 s, more accurate on the surface and within 1.18x upward; at 3,000
#: stations windows continued the disc survey's field upward 3x less accurately.
WINDOWS_ABOVE = 3000


class _OneLayer:
    """An attribute of a fit on one layer (``layer_``, ``density_``, ``beta_``), which a windowed
    fit has not: reading it there raises an AttributeError that says where its layers are."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        if hasattr(obj, "windows_"):
            raise AttributeError(
                f"{self.name}: a windowed fit ({len(obj.windows_)} windows) has no single layer; "
                "its layers are regional_ and windows_[k][1] (fit with window=False for one)"
            )
        try:
            return vars(obj)["_" + self.name]
        except KeyError:
            raise AttributeError(f"{self.name}: the layer is not fitted") from None

    def __set__(self, obj, value):
        vars(obj)["_" + self.name] = value


@dataclass
class EquivalentLayer:
    """A draped layer of prism cells fitted to gravity data (GZES), scikit-learn style.

    Every option has a default that builds a sensible layer from the stations alone.

    Parameters
    ----------
    cell : float, optional
        Core cell width, metres; default: 1.5 × the stations' mean spacing √(area of their
        convex hull / N), refined (÷ 1.5, twice at most) when the target misfit is out of reach
        or the layer is too coarse for the data (``max_noise_ratio``).
    depth : float, "auto" or "cv", optional
        Tops of the cells at the surface minus ``depth`` metres; default: ``default_depth``
        (1.5) cell widths, then coarser, deeper layers while they score better
        (``deep_factors``: sources deep under a smooth field).
        ``"auto"`` chooses it among ``depth_factors`` × cell by the trade-off rule's own
        score (the greatest evidence, least UPRE or GCV; k-fold cross-validation for the other
        rules), one fit per candidate; ``"cv"`` by k-fold cross-validation.
    thickness : float, optional
        Cell thickness; default: the cell width.
    topography : (npt, 3) numpy.ndarray, optional
        The surface to drape on; default: the stations' own elevations.
    elevation : float, optional
        A flat layer instead: tops at this elevation (GZES's constant-depth layer).
    alphas : (float, float, float), optional
        α_s, α_x, α_y of the 2-D model objective (lengths in metres, so the smoothness length
        is √(α_x/α_s)); default (cell⁻², 1, 1): a smoothness length of one cell (GZES's
        defaults 1e-4, 1, 1 are this for 100 m cells). α_s must be > 0: without it the
        objective does not see a constant density and the problem has no unique solution.
    lower, upper : float
        Bounds on the density, g/cc (GZES users set them wide).
    trade_off : str, optional
        How β is chosen (:class:`TikhonovSolver`, exact for every rule):

        * ``"evidence"`` (default when ``sigma`` is given): the maximum of the marginal
          likelihood p(d | β) of the fit's Gaussian model (noise N(0, σ²), prior density
          N(0, (βR)⁻¹); :meth:`TikhonovSolver.log_evidence`), the β the data make most
          probable. It sets the prior's scale, and so the field's, from all the data, which
          fills gaps better than a rule that looks at the stations alone (ten benchmark
          surveys: see ``docs/gravity.md``);
        * ``"upre"``: the minimum of the unbiased predictive risk estimate φ_d + 2 tr A − N
          (Mallows' C_p; Vogel 2002, ch. 7), the β whose field is expected closest to the
          noise-free data *at the stations*. The target misfit χ² = N leaves a misfit of
          N − tr A to the noise only when the fit has no bias, so it over-smooths (on the
          benchmark survey: see ``docs/gravity.md``);
        * ``"target"``: φ_d = chifact·N (GZES mode 1, the GZINVES default);
        * ``"gcv"``: the minimum of generalised cross-validation (needs no σ scale);
        * ``"cv"`` (default without ``sigma``): k-fold cross-validation over a range of β's.

        With finite bounds or a wavelet, β is chosen on the unbounded dense solution (the
        target misfit by the bounded inversion itself) and the bounded inversion runs at it.
    chifact : float, default 1.0
        Target misfit per datum for ``trade_off="target"`` (χ² = chifact·N).
    damping : float, optional
        A fixed β instead of a rule.
    folds : int, default 5
        k of the k-fold cross-validation (>= 2) used for ``trade_off="cv"`` and for
        ``depth="cv"``.
    depth_factors : tuple of float, default (1.0, 1.5, 2.5, 4.0)
        Candidate depths (in cell widths) for ``depth="auto"`` and ``"cv"``.
    wavelet : str, optional
        ``daub1``..``daub6``, ``symm4``..``symm6``: compress each row of G by a 2-D wavelet
        transform at ``rstar`` and finish with the full G; None: dense G only.
    rstar : float, default 0.05
        Relative reconstruction error per row for the compression.
    rule : str, default 'per_row'
        ``"per_row"`` or GZES's ``"representative"`` (one representative row for surface data,
        one for borehole data).
    padding : int, default 0
        Padding cells around the stations' extent, widths growing 1.5× (default 0: the
        layer covers the stations only, as Harmonica's sources lie under the stations).
        Padding cells are the cheapest field per unit of the model objective — a cell of
        area A gives a field ~ A ρ at a cost α_s A ρ² — so a padded layer puts long
        wavelengths into them, which biases upward continuation; the evidence and UPRE both
        prefer the unpadded layer (on both benchmark surveys, and in ``tests/gravity``). Give
        padding for a survey whose regional field was not removed.
    trend : "auto", 0, 1 or None, default "auto"
        A regional field fitted beside the layer: a polynomial in east and north (0: a
        constant, 1: a plane) with free coefficients, continued unchanged by ``predict``
        (the field of distant sources, as a regional is removed before gridding and added
        back). A layer under the stations alone cannot make a field that stays large at its
        edges: on the benchmark survey with a regional of a few mGal (``band-regional`` of
        ``benchmarks/gravity_eqs.py``) it continued the field upward 46x less accurately than
        the layer with the plane (0.159 against 0.00346 mGal), with a misfit near χ² = N, so
        nothing showed it. ``"auto"`` fits the plane when it lowers the predictive risk of
        the layer (UPRE, σ scaled by the fit's noise ratio) by more than ``TREND_MARGIN``; the
        plane costs a little upward accuracy where the data carry no regional (its broad part
        is continued without decay), so it is not fitted unasked. None: no regional.
    window : int or False, optional
        Fit in overlapping windows of about this many stations (see
        :mod:`msinv.gravity.equivalent_windows`); default: windows of
        :data:`~msinv.gravity.equivalent_windows.DEFAULT_WINDOW` stations for surveys of more
        than :data:`WINDOWS_ABOVE` (3,000) stations or whose dense G exceeds ``memory``, one
        layer otherwise; above 3,000 stations one layer also when the data carry a regional
        (``trend``) and one layer's G fits in ``memory``, as one layer splits a regional plane
        from the field more accurately. False: one layer always (refused when its G exceeds
        ``memory``). A windowed fit has no single layer: reading ``layer_``, ``density_`` or
        ``beta_`` raises an AttributeError; ``regional_`` and ``windows_`` hold the layers.
    memory : float, optional
        Memory limit in GiB for G; default: half of the available memory.
    seed : int, default 0
        Seed of the folds.
    default_depth : float, default 1.5
        Depth of the layer in cells when ``depth`` is not given: 1.5, the depth of greatest
        evidence (and of least UPRE) among 1, 1.5, 2.5 and 4 cells on both 2,000-station
        benchmark surveys (the band gap and the disc gap of ``benchmarks/gravity_eqs.py
        --survey``, ``--methods msinv-auto``); ``depth="auto"`` makes that choice on each
        survey, at 4× the cost.
    deep_factors : tuple of float, default (2.5, 3.5, 5.0, 7.0)
        Depths (in default cells) of the coarser layers (1.5 default cells) tried after the
        default layer, in turn while each scores better, when neither cell nor depth is given
        and the default layer is not too coarse for the data (see ``_deepen``); () tries none.
    max_noise_ratio : float or None, default 1.5
        The largest noise ratio χ²/(N − tr A) (:attr:`noise_ratio_`) a fit may have and be
        taken as consistent with σ. At the best β the residuals of a layer that can represent
        the field are the noise, so the ratio is near 1 (0.9–1.2 on the ten benchmark surveys,
        σ = 0.005 mGal); a layer too coarse for data this accurate leaves the field's short
        wavelengths in the residuals (the ratio was 72 on the benchmark's disc survey with
        σ = 0.0002 mGal, and its gap 19× less accurate than Harmonica's). Above it, with the
        default cell and an exact fit (no bounds, no wavelet) by a scored rule (evidence,
        UPRE, GCV), the cell is refined (÷ 1.5, twice at most, as memory allows), each finer
        layer at the depth of best score among ``depth_factors`` (or the ``depth`` given), and
        the finer layer is kept while it scores better (greater evidence, ...). A fit that
        still exceeds it gives a warning. None: never refine, never warn.

    Attributes
    ----------
    layer_ : LayerMesh
        The fitted layer (not with windows: see ``window``).
    density_ : (n_cells,) numpy.ndarray
        Its density, g/cc (not with windows).
    beta_, phi_d_ : float
        Trade-off parameter (not with windows: each window has its own) and the true misfit
        of the fit.
    regional_, windows_ : EquivalentLayer, list of ((west, east, south, north), EquivalentLayer)
        With windows only: the regional layer fitted to block means, and each tile's core with
        the layer fitted to the residual around it.
    trade_off_ : str
        The rule that chose β (``"damping"`` when fixed).
    trend_ : int or None
        The degree of the regional fitted (None: none).
    trend_coefficients_ : (k,) numpy.ndarray or None
        The regional: mGal at ``trend_origin_`` (east, north), then mGal/m east and north for
        a plane.
    fitted_ : (n,) numpy.ndarray
        The fitted field at the stations, mGal: what :meth:`predict` gives there (the layer's
        field plus the regional; with windows, their blend), whose misfit is ``phi_d_``.
    phi_d_compressed_ : float or None
        The misfit the compressed G claimed before the full-G finish.
    noise_ratio_ : float or None
        χ²/(N − tr A): the fit's misfit over what noise of standard deviation σ leaves when
        tr A of the N data are spent on the fit (exact fits with σ given and β by a scored
        rule; else None: the target misfit and a fixed damping set χ² themselves). With
        windows, the lower bound χ²/N, and no refinement.
    cv_scores_ : dict
        Cross-validation RMS error per candidate, when used; the score of each cell width the
        refinement tried under ``"cell"`` (the rule's score: negative log evidence, UPRE or
        GCV; smaller is better) and its noise ratio under ``"noise_ratio"``; the predictive
        risk without and with a regional plane under ``"trend"`` (``trend="auto"``); the score
        of each (cell, depth) of the deeper layers tried under ``"deeper"``; under ``"windows"``
        the degree of the regional the windows' regional stage found, when the fit was then
        made on one layer.
    timings_ : dict
        Seconds spent building G (``"sensitivity"``), decomposing, compressing and inverting,
        each summed over the layers the fit tried (with windows: over the regional layer and
        the windows, and the regional layer's field at the stations, ``"regional field"``).
    """

    cell: float | None = None
    depth: float | str | None = None
    thickness: float | None = None
    topography: np.ndarray | None = None
    elevation: float | None = None
    alphas: tuple[float, float, float] | None = None
    lower: float = -np.inf
    upper: float = np.inf
    trade_off: str | None = None
    chifact: float = 1.0
    damping: float | None = None
    folds: int = 5
    depth_factors: tuple[float, ...] = (1.0, 1.5, 2.5, 4.0)
    wavelet: str | None = None
    rstar: float = 0.05
    rule: str = "per_row"
    padding: int = 0
    trend: int | str | None = "auto"
    window: int | bool | None = None
    memory: float | None = None
    seed: int = 0
    default_depth: float = 1.5
    deep_factors: tuple[float, ...] = (2.5, 3.5, 5.0, 7.0)
    max_noise_ratio: float | None = 1.5
    cv_scores_: dict = field(default_factory=dict, init=False, repr=False)
    timings_: dict = field(default_factory=dict, init=False, repr=False)
    layer_ = _OneLayer()
    density_ = _OneLayer()
    beta_ = _OneLayer()

    def __post_init__(self):
        if self.cell is not None and not self.cell > 0:
            raise ValueError(f"cell: expected > 0 m, got {self.cell}")
        if isinstance(self.depth, str) and self.depth not in ("auto", "cv"):
            raise ValueError(f"depth: expected metres >= 0, 'auto' or 'cv', got {self.depth!r}")
        if isinstance(self.depth, (int, float)) and not self.depth >= 0:
            raise ValueError(f"depth: expected >= 0 m, got {self.depth}")
        a = self.alphas
        if a is not None and (len(a) != 3 or min(a) < 0 or not a[0] > 0):
            raise ValueError(
                f"alphas: expected alpha_s > 0 and alpha_x, alpha_y >= 0 (without the smallness "
                f"term the layer's model objective is singular), got {self.alphas}"
            )
        if not self.lower < self.upper:
            raise ValueError(f"bounds: expected lower < upper, got {self.lower}, {self.upper}")
        if self.trade_off not in (None, *TRADE_OFFS):
            raise ValueError(f"trade_off: expected one of {TRADE_OFFS}, got {self.trade_off!r}")
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
        if self.max_noise_ratio is not None and not self.max_noise_ratio > 1:
            raise ValueError(f"max_noise_ratio: expected > 1 or None, got {self.max_noise_ratio}")
        if self.trend not in ("auto", None, 0, 1) or isinstance(self.trend, bool):
            raise ValueError(f"trend: expected 'auto', 0, 1 or None, got {self.trend!r}")
        if not all(f > 0 for f in self.deep_factors):
            raise ValueError(f"deep_factors: expected depths > 0 (cells), got {self.deep_factors}")
        if self.window is True or (self.window not in (None, False) and self.window < 10):
            raise ValueError(f"window: expected >= 10 stations, None or False, got {self.window}")

    # ---- the layer ---------------------------------------------------------------------
    def default_cell(self, points: np.ndarray) -> float:
        """Mean station spacing √(hull area / N), metres; for stations on a line (a hull of
        no area), the median distance from a station to its nearest neighbour."""
        from scipy.spatial import ConvexHull, QhullError, cKDTree

        pts = np.asarray(points, float)[:, :2]
        area = 0.0
        if len(pts) >= 3:
            with contextlib.suppress(QhullError):  # collinear or coincident stations: no area
                area = ConvexHull(pts).volume
        if area > 0:
            return float(np.sqrt(area / len(pts)))
        if len(pts) >= 2:
            gaps = cKDTree(pts).query(pts, k=2)[0][:, 1]
            if np.any(gaps > 0):
                return float(np.median(gaps[gaps > 0]))
        raise ValueError(
            "points: the stations do not spread over a line or an area, so no cell size "
            "follows from their spacing; give cell"
        )

    def core_cell(self, points: np.ndarray) -> float:
        """The cell width a fit to ``points`` starts from, metres: ``cell``, or 1.5 × the mean
        station spacing (:meth:`default_cell`)."""
        return self.cell or 1.5 * self.default_cell(points)

    def sensitivity_memory(self, points: np.ndarray, cell: float | None = None) -> int:
        """Bytes of the dense G of a layer of ``cell`` (default :meth:`core_cell`) for these
        stations: what ``fit`` compares with ``memory`` to choose windows."""
        cell = cell or self.core_cell(points)
        hx, hy, _ = LayerMesh.plan(points, cell=cell, padding=self.padding)
        return 8 * len(points) * hx.size * hy.size

    def build_layer(
        self, points: np.ndarray, depth: float | None = None, cell: float | None = None
    ) -> LayerMesh:
        """The layer this estimator would fit to ``points`` (depth and cell in metres, or the
        defaults: ``cell`` or 1.5 × the mean spacing, ``default_depth`` × cell)."""
        cell = cell or self.core_cell(points)
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
        self.cv_scores_, self.timings_ = {}, {}  # this fit's, not a previous one's
        for name in ("regional_", "windows_", "margin_"):  # a previous windowed fit's
            vars(self).pop(name, None)
        self.n_data_ = d.size
        self.surface_ = pts
        self.region_ = (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max())
        limit = memory_limit(self.memory)
        cell = self.core_cell(pts)
        self._no_trend()
        self._prepared = {}
        if self._windowed(pts, cell, borehole, limit):
            from msinv.gravity.equivalent_windows import fit_windows

            # windows chosen for speed alone give way to one layer when the data carry a
            # regional: their regional layer, coarse and deep, takes part of the plane, which
            # then decays upward (the benchmark's band-regional survey at 5,000 stations:
            # 0.0148 mGal RMS error upward at 300 m in windows, 0.0011 on one layer)
            speed = self.window is None and self.sensitivity_memory(pts, cell) <= limit
            if fit_windows(self, pts, d, s, sigma is not None, limit, one_layer_if_regional=speed):
                self._warn_if_too_coarse()
                return self
            self._no_trend()  # the regional stage's plane was fitted to block means
        if self.trend == "auto":
            # decided first, on the default layer: a regional left in the data would make the
            # layer look too coarse and send the fit into refinement
            self.trend_ = self._choose_trend(pts, d, s, sigma is not None, cell)
        else:
            self.trend_ = self.trend
        for attempt in range(3 if self.cell is None else 1):
            try:
                self._fit_cell(pts, d, s, sigma is not None, cell, borehole, self.depth)
                break
            except TargetMisfitError:
                if attempt == (2 if self.cell is None else 0):
                    raise
                cell /= 1.5  # the default cell was too coarse to reach the target: refine
        if self.cell is None and self.score_ is not None and not self._too_coarse():
            if self.depth is None and self.deep_factors:
                self._deepen(pts, d, s, sigma is not None, cell, borehole)
        elif self.cell is None and self.score_ is not None:
            self._refine(pts, d, s, cell, borehole, limit)
            if self.trend == "auto" and self.cell_ != cell:
                # decided again on the layer kept: on a layer too coarse for the data the
                # unresolved field, not noise, is what the plane reduces
                first = self.trend_
                self.trend_ = self._choose_trend(pts, d, s, True, self.cell_, self.depth_)
                if self.trend_ != first:
                    self._fit_cell(pts, d, s, True, self.cell_, borehole, self.depth_)
        self._prepared = {}  # the decompositions held during the fit
        self._warn_if_too_coarse()
        return self

    def _windowed(self, pts, cell, borehole, limit) -> bool:
        """Fit in windows? (``window``; checks what one layer or windows cannot do.)"""
        from msinv.core.memory import MemoryLimitError

        need = self.sensitivity_memory(pts, cell)
        if self.window is False:
            if need > limit:
                raise MemoryLimitError(
                    f"EquivalentLayer(window=False): one layer of {cell:.4g} m cells over "
                    f"{len(pts)} stations needs {need / 2**30:.3g} GiB for G, over the limit of "
                    f"{limit / 2**30:.3g} GiB; allow windows (window=None), or give a larger "
                    "cell or memory"
                )
            return False
        windows = self.window is not None or len(pts) > WINDOWS_ABOVE or need > limit
        if windows and borehole is not None and np.any(borehole):
            if self.window is None and need <= limit:
                return False  # windows average stations in blocks: not borehole stations
            raise ValueError(
                "borehole: a windowed fit takes surface stations only (its regional stage "
                "averages stations in blocks); fit borehole data with window=False"
            )
        return windows

    # ---- the regional trend ---------------------------------------------------------------
    def _no_trend(self) -> None:
        """No regional yet; its origin the centre of the stations, its scale their extent."""
        west, east, south, north = self.region_
        self.trend_origin_ = ((west + east) / 2, (south + north) / 2)
        self._trend_scale = max(east - west, north - south, 1.0)
        self.trend_, self.trend_coefficients_ = None, None

    def _trend_columns(self, points, degree) -> np.ndarray:
        """(n, k) columns of a regional of ``degree`` at points: 1, then east and north from
        ``trend_origin_`` over the survey's size (scaled so that S is well conditioned)."""
        p = np.asarray(points, dtype=float)
        cols = [np.ones(len(p))]
        if degree == 1:
            cols += [(p[:, k] - self.trend_origin_[k]) / self._trend_scale for k in (0, 1)]
        return np.column_stack(cols)

    def _with_trend(self, solver: TikhonovSolver, points) -> TikhonovSolver:
        """``solver`` with this fit's regional columns (itself when no regional)."""
        if self.trend_ is None:
            return solver
        return solver.with_columns(self._trend_columns(points, self.trend_))

    def _set_trend(self, coefficients) -> None:
        """Store a fitted regional's coefficients in mGal and mGal/m."""
        if self.trend_ is None:
            self.trend_coefficients_ = None
            return
        c = np.asarray(coefficients, dtype=float).copy()
        c[1:] /= self._trend_scale
        self.trend_coefficients_ = c

    def _trend_at(self, points) -> np.ndarray:
        """The fitted regional at (n, 3) points, mGal (zeros when none)."""
        if self.trend_coefficients_ is None:
            return np.zeros(len(points))
        return regional_field(points, self.trend_coefficients_, self.trend_origin_)

    def _choose_trend(self, pts, d, s, sigma_known, cell, depth=None) -> int | None:
        """``trend="auto"``: 1 when a plane lowers the predictive risk of the layer of ``cell``
        and ``depth`` (default: the default depth, or the one given) by more than
        ``TREND_MARGIN``, else None.

        The risk is UPRE with σ² scaled by the noise ratio r = φ_d/(N − tr A) of the fit
        without the plane, φ_d/r + 2 tr A, each fit at the β of least UPRE (of least GCV when
        σ is not given): on a layer that leaves some of the field unresolved, or with σ
        underestimated (or block means' errors), r > 1 and the plane's gain is judged
        against the residuals actually left, not against σ. The layer's decomposition is
        kept for the fit that follows."""
        if depth is None and isinstance(self.depth, (int, float)):
            depth = self.depth
        depth = self.default_depth * cell if depth is None else float(depth)
        base = self._prepare(pts, s, cell, depth)[2]
        plane = base.with_columns(self._trend_columns(pts, 1))
        rule = "upre" if sigma_known else "gcv"
        b0, b1 = base.beta_minimising(rule, d), plane.beta_minimising(rule, d)
        ratio = base.phi_d(b0, d) / max(d.size - base.dof(b0), 1.0)
        scores = {
            "none": base.phi_d(b0, d) / ratio + 2 * base.dof(b0),
            "plane": plane.phi_d(b1, d) / ratio + 2 * plane.dof(b1),
        }
        self.cv_scores_["trend"] = scores
        return 1 if scores["none"] - scores["plane"] > TREND_MARGIN else None

    def _prepare(self, pts, s, cell, depth):
        """(layer, G, solver without columns) of the layer at ``cell`` and ``depth``, made once
        per fit (those of one cell width at a time are kept)."""
        key = (float(cell), float(depth))
        if key not in self._prepared:
            self._prepared = {k: v for k, v in self._prepared.items() if k[0] == key[0]}
            t0 = time.perf_counter()
            layer = self.build_layer(pts, depth, cell)
            g = layer.sensitivity(pts)
            self._spent("sensitivity", t0)
            t0 = time.perf_counter()
            solver = TikhonovSolver(g, s, _hessian(self._regularisation(layer)))
            self._spent("decomposition", t0)
            self._prepared[key] = (layer, g, solver)
        return self._prepared[key]

    def _spent(self, what: str, since: float) -> None:
        """Add the seconds since ``since`` to ``timings_[what]`` (summed over the layers
        tried)."""
        self.timings_[what] = self.timings_.get(what, 0.0) + time.perf_counter() - since

    def _warn_if_too_coarse(self):
        """Warn when the fit's noise ratio is above ``max_noise_ratio``, naming the likelier
        cause: a layer too coarse lowers it several-fold when refined (4.3 to 1.0, 71 to 1.9
        on the benchmark's quiet surveys), an underestimated σ barely (8.4 to 6.9 to 5.5 with
        σ a third of the noise's), so σ is named when no refinement step lowered it 2x; see
        ``cv_scores_["noise_ratio"]``."""
        if not self._too_coarse():
            return
        from msinv.core.errors import MsinvWarning

        ratios = list(self.cv_scores_.get("noise_ratio", {}).values())
        steps = [a / b for a, b in itertools.pairwise(ratios) if b]
        if steps and max(steps) < 2.0:
            cause = (
                f"refining the layer lowered it {max(steps):.2g}x a step at most "
                f"({' -> '.join(f'{r:.3g}' for r in ratios)}), so sigma is likely underestimated "
                f"(by about {np.sqrt(self.noise_ratio_):.2g}x): check sigma"
            )
        else:
            cause = (
                "the layer is too coarse for data this accurate (give a smaller cell), or sigma "
                "is underestimated"
            )
        warnings.warn(
            MsinvWarning(
                f"EquivalentLayer: the fit's residuals are {np.sqrt(self.noise_ratio_):.3g}x "
                f"what sigma implies (chi2/(N - tr A) = {self.noise_ratio_:.3g} > "
                f"max_noise_ratio {self.max_noise_ratio:g}, cell {self.cell_:.4g} m): {cause}"
            ),
            stacklevel=3,
        )

    def _too_coarse(self) -> bool:
        """Is the fit's noise ratio above ``max_noise_ratio``?"""
        limit, ratio = self.max_noise_ratio, self.noise_ratio_
        return limit is not None and ratio is not None and ratio > limit

    def _refine(self, pts, d, s, cell, borehole, limit):
        """Finer default layers while the fit is too coarse for the data (``max_noise_ratio``),
        each kept only while it scores better than the coarser one."""
        depth = "auto" if self.depth is None else self.depth
        tried = {cell: self.score_}
        ratios = {cell: self.noise_ratio_}
        self.cv_scores_["noise_ratio"] = ratios
        for _ in range(2):
            finer = cell / 1.5
            if self.sensitivity_memory(pts, finer) > limit:
                break
            kept = self._snapshot()
            self._fit_cell(pts, d, s, True, finer, borehole, depth)
            tried[finer], ratios[finer] = self.score_, self.noise_ratio_
            if not self.score_ < kept["score_"]:
                self._restore(kept)  # the coarser layer scores better: keep it
                break
            cell = finer
            if not self._too_coarse():
                break
        self.cv_scores_["cell"], self.cv_scores_["noise_ratio"] = tried, ratios

    def _deepen(self, pts, d, s, sigma_known, cell, borehole):
        """Coarser, deeper default layers while they score better: sources deep under a
        smooth field.

        A layer of 1.5 cells (the default cell) at depths of ``deep_factors`` default cells,
        each kept while it scores better (greater evidence, ...) than the layer before it. On
        the ten benchmark surveys (sources 150–1,000 m deep, 2,000 stations over 10 km) the
        first one scores worse and the default layer is kept; on six surveys of sources
        800–3,000 m deep the layers kept are 1.05–5.3x more accurate in the gaps than the
        default layer and level with Harmonica's cross-validated point sources
        (``benchmarks/gravity_eqs.py``, ``gravity_eqs.DEEP``; ``docs/gravity.md``). The probe
        costs about half the default fit when it is not kept."""
        coarse = 1.5 * cell
        tried = {(cell, self.depth_): self.score_}
        for factor in self.deep_factors:
            kept = self._snapshot()
            self._fit_cell(pts, d, s, sigma_known, coarse, borehole, factor * cell)
            tried[(coarse, factor * cell)] = self.score_
            if not self.score_ < kept["score_"]:
                self._restore(kept)  # the layer before scores better: keep it
                break
        self.cv_scores_["deeper"] = tried

    def _snapshot(self) -> dict:
        """The fitted state (copies of its dicts; not the held decompositions)."""
        return {
            k: (dict(v) if isinstance(v, dict) else v)
            for k, v in vars(self).items()
            if k != "_prepared"
        }

    def _restore(self, kept: dict) -> None:
        vars(self).update(kept)

    def _rule(self, sigma_known: bool) -> str:
        """The trade-off rule of this fit (``"damping"`` for a fixed β)."""
        if self.damping is not None:
            return "damping"
        rule = self.trade_off or ("evidence" if sigma_known else "cv")
        if rule in ("evidence", "upre", "target") and not sigma_known:
            raise ValueError(f"trade_off={rule!r} needs sigma; give it, or use 'cv' or 'gcv'")
        return rule

    def _fit_cell(self, pts, d, s, sigma_known, cell, borehole, depth):
        rule = self._rule(sigma_known)
        prepared = None
        if depth == "auto" and rule in SCORED:
            scores, fits = {}, {}
            for f in self.depth_factors:
                layer, g, solver = self._prepare(pts, s, cell, f * cell)
                solver = self._with_trend(solver, pts)
                beta = solver.beta_minimising(rule, d)
                scores[f * cell] = float(solver.score(rule, beta, d))
                fits[f * cell] = (layer, g, solver)
            self.cv_scores_["depth"] = scores
            depth = min(scores, key=scores.get)
            prepared = fits[depth]
        elif depth in ("auto", "cv"):
            scores = {}
            for f in self.depth_factors:
                scores[f * cell] = self._cv(pts, d, s, f * cell, cell, rule)[0]
            self.cv_scores_["depth"] = scores
            depth = min(scores, key=scores.get)
        self.depth_ = self.default_depth * cell if depth is None else float(depth)
        beta = self.damping
        if rule == "cv":
            _, beta = self._cv(pts, d, s, self.depth_, cell, rule)
        self.trade_off_ = rule
        if prepared is None and (float(cell), self.depth_) in self._prepared:
            layer, g, solver = self._prepare(pts, s, cell, self.depth_)
            prepared = (g, self._with_trend(solver, pts))
            self._fit_once(pts, d, s, layer, beta, rule, sigma_known, borehole, prepared)
        elif prepared is None:
            layer = self.build_layer(pts, self.depth_, cell)
            self._fit_once(pts, d, s, layer, beta, rule, sigma_known, borehole)
        else:
            self._fit_once(pts, d, s, prepared[0], beta, rule, sigma_known, borehole, prepared[1:])

    def _fit_once(self, pts, d, s, layer, beta, rule, sigma_known, borehole=None, prepared=None):
        """One fit on one layer, β given or chosen by ``rule`` (``prepared``: the layer's G
        and :class:`TikhonovSolver` when already made).

        Without bounds and compression the problem is solved exactly for every β
        (:class:`TikhonovSolver`); with finite bounds, or a wavelet, by the bounded inversion
        (:func:`msinv.gravity.inversion.invert`) at the β the rule gives on the unbounded
        solution (or searching the target misfit itself), the compressed one finished with the
        full G. A regional (``trend_``) is fitted jointly by the exact solver; the bounded
        inversion fits the data less the regional of the exact joint fit at its β.
        """
        from msinv.gravity.forward import GravityOperator
        from msinv.gravity.inversion import InversionConfig, finish, invert

        t0 = time.perf_counter()
        g, solver = prepared or (layer.sensitivity(pts), None)
        self._spent("sensitivity", t0)
        reg = self._regularisation(layer)
        self.phi_d_compressed_ = self.score_ = self.noise_ratio_ = None
        exact = self.wavelet is None and np.isinf(self.lower) and np.isinf(self.upper)
        t1 = time.perf_counter()
        need = exact or (beta is None and rule in SCORED) or self.trend_ is not None
        if solver is None and need:
            solver = self._with_trend(TikhonovSolver(g, s, _hessian(reg)), pts)
            self._spent("decomposition", t1)
            t1 = time.perf_counter()
        if beta is None and rule in SCORED:
            beta = solver.beta_minimising(rule, d)
        regional = np.zeros(d.size)
        if self.trend_ is not None:  # the regional of the exact joint fit (bounds: at its β)
            at = solver.beta_for(self.chifact * d.size, d) if beta is None else beta
            self._set_trend(solver.coefficients(at, d))
            regional = self._trend_at(pts)
        else:
            self._set_trend(None)
        if exact:
            beta = solver.beta_for(self.chifact * d.size, d) if beta is None else beta
            model = solver.model(beta, d)
            self.result_ = None
        else:
            op = GravityOperator(g)
            cfg = InversionConfig(mode=1 if beta is None else 2, chifact=self.chifact, beta=beta)
            bounds = {"lower": self.lower, "upper": self.upper}
            if self.wavelet is not None:
                comp = _compress(g, layer, self.wavelet, self.rstar, self.rule, borehole)
                self.compression_ = comp
                self._spent("compression", t1)
                t1 = time.perf_counter()
                res = invert(comp, d - regional, s, reg, **bounds, config=cfg)
                res = finish(op, res, d - regional, s, reg, **bounds, config=cfg)
                self.phi_d_compressed_ = res.phi_d_approximate
            else:
                res = invert(op, d - regional, s, reg, **bounds, config=cfg)
            self.result_ = res
            beta, model = res.beta, res.model
        self.fitted_ = g @ model + regional
        phi_d = float(np.sum(((self.fitted_ - d) / s) ** 2))  # the true misfit
        if exact and rule in SCORED:
            self.score_ = float(solver.score(rule, beta, d))
            if sigma_known:
                self.noise_ratio_ = phi_d / max(d.size - solver.dof(beta), 1.0)
        self._spent("inversion", t1)
        self.layer_, self.density_ = layer, model
        self.beta_, self.phi_d_ = beta, phi_d

    def _regularisation(self, layer: LayerMesh):
        from msinv.gravity.regularisation import Regularisation, RegularisationConfig

        cell = float(np.min(layer.hx))
        a_s, a_x, a_y = self.alphas or (cell**-2, 1.0, 1.0)
        cfg = RegularisationConfig(a_s, a_x, a_y, 0.0)
        return Regularisation(layer.tensor_mesh(), cfg)

    def _cv(self, pts, d, s, depth, cell, rule: str):
        """k-fold cross-validation of one depth: RMS held-out error and the β chosen.

        With ``rule`` ``"cv"`` a range of β's (every 20th of :meth:`TikhonovSolver.beta_range`)
        is scored and the best returned; otherwise each fold is fitted with its own β by the
        rule (or the fixed damping). Folds are drawn with ``seed``.
        """
        layer = self.build_layer(pts, depth, cell)
        g = layer.sensitivity(pts)
        hess = _hessian(self._regularisation(layer))
        rng = np.random.default_rng(self.seed)
        fold = rng.permutation(d.size) % self.folds
        if rule == "cv":
            betas = list(TikhonovSolver(g, s, hess).beta_range()[::20])
        else:
            betas = [self.damping if rule == "damping" else None]
        sq = dict.fromkeys(betas, 0.0)
        for k in range(self.folds):
            train, test = fold != k, fold == k
            part = self._with_trend(TikhonovSolver(g[train], s[train], hess), pts[train])
            for b in betas:
                if b is None and rule == "target":
                    b = part.beta_for(self.chifact * train.sum(), d[train])
                elif b is None:
                    b = part.beta_minimising(rule, d[train])
                pred = g[test] @ part.model(b, d[train])
                if self.trend_ is not None:
                    regional = self._trend_columns(pts[test], self.trend_)
                    pred = pred + regional @ part.coefficients(b, d[train])
                sq[betas[0] if len(betas) == 1 else b] += float(np.sum((pred - d[test]) ** 2))
        errors = {b: float(np.sqrt(v / d.size)) for b, v in sq.items()}
        best = min(errors, key=errors.get)
        self.cv_scores_.setdefault("beta", {}).update(
            {(rule if b is None else b): e for b, e in errors.items()}
        )
        return errors[best], best

    # ---- prediction ----------------------------------------------------------------------
    def predict(self, points) -> np.ndarray:
        """g_z (mGal, down) of the fitted layer at (n, 3) points."""
        if not hasattr(self, "fitted_"):
            raise ValueError("the layer is not fitted: call fit(points, data, sigma) first")
        if hasattr(self, "windows_"):
            from msinv.gravity.equivalent_windows import predict_windows

            return predict_windows(self, points)
        pts = np.asarray(points, float)
        return self.layer_.gz(pts, self.density_) + self._trend_at(pts)

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
        if spacing is not None and not spacing > 0:
            raise ValueError(f"spacing: expected > 0 m, got {spacing}")
        spacing = self.cell_ if spacing is None else float(spacing)
        w, e, s, n = region or self.region_
        if not (w <= e and s <= n):
            raise ValueError(f"region: expected (west, east, south, north), got {region}")
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
        """The fitted layer's core cell width, metres (the windows' with windows)."""
        if hasattr(self, "windows_"):
            return self.windows_[0][1].cell_
        return float(np.min(self.layer_.hx))


def regional_field(points, coefficients, origin) -> np.ndarray:
    """A regional of :attr:`EquivalentLayer.trend_coefficients_` at (n, 3) points, mGal:
    c₀ (at ``origin``, east and north in metres), plus c₁ (x − x₀) + c₂ (y − y₀) for a plane
    (c₁, c₂ in mGal/m). The same at every elevation."""
    p = np.asarray(points, dtype=float)
    c = np.asarray(coefficients, dtype=float)
    if c.shape not in ((1,), (3,)):
        raise ValueError(f"regional coefficients: expected 1 or 3 values, got {c.shape}")
    out = np.full(len(p), c[0])
    if c.size == 3:
        out += c[1] * (p[:, 0] - origin[0]) + c[2] * (p[:, 1] - origin[1])
    return out


class TargetMisfitError(ValueError):
    """No trade-off parameter gives the target misfit on this layer."""


def _check(points, data, sigma):
    pts = np.asarray(points, dtype=np.float64)
    d = np.asarray(data, dtype=np.float64).ravel()
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
        raise ValueError(f"points: expected finite (n, 3) east, north, elevation, got {pts.shape}")
    if d.shape != (pts.shape[0],) or not np.all(np.isfinite(d)):
        raise ValueError(f"data: expected {pts.shape[0]} finite values, got {d.shape}")
    s = np.ones(d.size) if sigma is None else np.asarray(sigma, dtype=np.float64)
    if s.ndim > 1 or s.size not in (1, d.size):
        raise ValueError(f"sigma: expected a number or {d.size} values, got shape {s.shape}")
    s = np.broadcast_to(s.ravel(), d.shape)
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


def _check_pivots(pivots, factorisation: str):
    """Refuse a singular model objective from the pivots of its factorisation."""
    pivots = np.abs(pivots)
    if not pivots.min() > 1e-12 * pivots.max():
        raise _singular(
            f"smallest {factorisation} pivot {pivots.min():.3g} of the largest {pivots.max():.3g}"
        )


def _singular(detail: str) -> ValueError:
    return ValueError(
        f"hessian: R is singular ({detail}); the exact solver needs a positive definite model "
        "objective: give it a smallness term (alpha_s > 0)"
    )


class TikhonovSolver:
    r"""Exact unbounded Tikhonov solutions of a layer for every β, from one eigendecomposition.

    With B = W_d G (N data × M cells), w = W_d d, R the model objective's Hessian (reference
    0) and :math:`\min_m \|Bm - w\|^2 + \beta\, m^T R m`. When N > M (model space), with
    R = L Lᵀ (Cholesky), :math:`K = L^{-1} B^T B L^{-T} = V \Lambda V^T` and
    :math:`a = V^T L^{-1} B^T w`; when N ≤ M (data space), :math:`K = B R^{-1} B^T = U
    \Lambda U^T` and :math:`a = U^T w`. Both K have the nonzero eigenvalues of
    :math:`R^{-1/2} B^T B R^{-1/2}`, and with :math:`s_k` the data's power in component k
    (:math:`a_k^2` in model space, :math:`\lambda_k a_k^2` in data space)

    .. math:: m(\beta) = T \frac{a}{\lambda + \beta}, \qquad
              \phi_d(\beta) = \|w\|^2 - \sum_k s_k \frac{\lambda_k + 2\beta}{(\lambda_k
              + \beta)^2}, \qquad
              \mathrm{tr}\,A(\beta) = \sum_k \frac{\lambda_k}{\lambda_k + \beta},

    T = L^{-T} V (model space) or R^{-1} Bᵀ U (data space), A(β) = B (BᵀB + βR)⁻¹ Bᵀ the
    influence matrix (tr A: the effective number of parameters). Each costs O(min(N, M)) once
    the decomposition is made: in model space N M² flops for BᵀB (BLAS ``syrk``), M³ for the
    reduction by L (LAPACK ``sygst``) and about 9 M³ for the symmetric eigendecomposition, in
    data space N² M for B R⁻¹ Bᵀ (one sparse LU of R) and 9 N³; memory O(min(N, M)² + N M).
    Every rule of the trade-off (target misfit, evidence, UPRE, GCV, k-fold
    cross-validation) is then exact and cheap. The misfit is ‖w‖² less the fitted power, so
    its rounding error is about 1e-16 ‖w‖², negligible unless the data exceed their noise
    by 10⁷ or more. The method for layers and windows of a few thousand cells. (A Householder
    QR of B, used instead of BᵀB until 2 Dec 2026, costs 2 N M² flops at a lower rate.)

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
        from threadpoolctl import threadpool_limits

        # one BLAS thread: at these sizes threads gain little, and on a loaded machine
        # OpenBLAS's spinning threads cost up to 8x the CPU time (measured, M = 1,521)
        with threadpool_limits(limits=1, user_api="blas"):
            self._decompose(g, sigma, hessian)
        self._key: tuple = (None, None)
        self._cols = None

    def _decompose(self, g, sigma, hessian):
        from scipy.linalg import cholesky, eigh
        from scipy.linalg.blas import dsyrk
        from scipy.linalg.lapack import dsygst

        self.sigma = np.asarray(sigma, dtype=np.float64)
        b = np.asarray(g, dtype=np.float64) / self.sigma[:, None]
        self.n_data, n_cells = b.shape
        self.data_space = self.n_data <= n_cells
        if self.data_space:
            from scipy.sparse.linalg import splu

            lu = splu(hessian.tocsc())
            _check_pivots(lu.U.diagonal(), "LU")
            self._rinv_bt = lu.solve(np.asfortranarray(b.T))
            lam, self.basis = eigh(b @ self._rinv_bt)
        else:
            try:
                self._chol = cholesky(hessian.toarray(), lower=True)
            except np.linalg.LinAlgError:
                raise _singular("its Cholesky factorisation failed") from None
            _check_pivots(np.diag(self._chol) ** 2, "Cholesky")
            self._b = b  # kept for Bᵀ W_d d (model space only)
            gram = dsyrk(1.0, b.T, trans=0, lower=1)  # BᵀB, lower triangle
            k, info = dsygst(gram, self._chol, itype=1, lower=1, overwrite_a=1)
            if info != 0:
                raise RuntimeError(f"LAPACK sygst failed (info {info})")
            lam, self.basis = eigh(k, lower=True, overwrite_a=True)
        self.lam = np.maximum(lam, 0.0)  # rounding can make the smallest slightly negative

    def _apply_t(self, x: np.ndarray) -> np.ndarray:
        """R⁻¹ Bᵀ x (data space) or L⁻ᵀ x (model space): from the eigenbasis to the cells."""
        from scipy.linalg import solve_triangular

        if self.data_space:
            return self._rinv_bt @ x
        return solve_triangular(self._chol, x, lower=True, trans="T")

    @property
    def to_model(self) -> np.ndarray:
        """T, (n_cells, r): without columns the model is T a(w)/(λ + β)."""
        return self._apply_t(self.basis)

    def _components(self, x: np.ndarray) -> np.ndarray:
        """a(x), (k,) or (k, c): the whitened data-space vector(s) x in the eigenbasis (Uᵀx in
        data space, Vᵀ L⁻¹ Bᵀ x in model space)."""
        from scipy.linalg import solve_triangular

        if self.data_space:
            return self.basis.T @ x
        return self.basis.T @ solve_triangular(self._chol, self._b.T @ x, lower=True)

    @property
    def _scale(self) -> np.ndarray:
        """sc: x·A y = Σ sc a(x) a(y)/(λ + β) (λ in data space, 1 in model space)."""
        return self.lam if self.data_space else np.ones_like(self.lam)

    def with_columns(self, columns) -> TikhonovSolver:
        r"""The same decomposition, fitting also unpenalised columns P (a regional trend).

        The fit becomes :math:`\min_{m, c} \|W_d(Gm + Pc - d)\|^2 + \beta\, m^T R m`: c is
        free (a flat prior), so eliminating it leaves the data's part outside what P spans.
        With E = I − A(β) (A the influence matrix of the layer alone) and S = Pᵀ E P
        (whitened P),

        .. math:: c = S^{-1} P^T E w, \qquad r = E(w - Pc), \qquad
                  \mathrm{tr}\,A_P = \mathrm{tr}\,A + \mathrm{tr}(S^{-1} P^T E^2 P),

        every product xᵀE y, xᵀE²y following from the components a(x), a(y) in the
        eigenbasis, so each rule stays exact at O(min(N, M)·k²) per β. The evidence becomes the
        restricted (REML) likelihood of the data's part outside P (c integrated out under a
        flat prior): it chooses β, but it does not compare a fit with columns to one without.

        Parameters
        ----------
        columns : (n_data, k) numpy.ndarray
            The columns in data units (mGal per unit coefficient), k >= 1, of full rank.
        """
        from copy import copy

        p = np.asarray(columns, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] != self.n_data or p.shape[1] < 1:
            raise ValueError(f"columns: expected ({self.n_data}, k >= 1), got {p.shape}")
        pw = p / self.sigma[:, None]
        gram = pw.T @ pw
        if np.linalg.matrix_rank(gram) < p.shape[1]:
            raise ValueError("columns: expected linearly independent columns")
        new = copy(self)
        new._cols, new._cols_a, new._cols_gram = pw, self._components(pw), gram
        new._key = (None, None)
        return new

    @property
    def n_columns(self) -> int:
        """k, the unpenalised columns fitted beside the layer (:meth:`with_columns`)."""
        return 0 if self._cols is None else self._cols.shape[1]

    def _coefficients(self, d) -> tuple[np.ndarray, np.ndarray]:
        """For X = [w, P_w] (the whitened data and columns): a(X), (r, 1 + k), and XᵀX
        (cached per d)."""
        d = np.asarray(d, dtype=np.float64)
        key = d.tobytes()
        if self._key[0] != key:
            wd = d / self.sigma
            a = self._components(wd)[:, None]
            x_gram = np.array([[wd @ wd]])
            if self._cols is not None:
                a = np.hstack([a, self._cols_a])
                cross = self._cols.T @ wd
                x_gram = np.block([[x_gram, cross[None, :]], [cross[:, None], self._cols_gram]])
            self._key = (key, (a, x_gram))
        return self._key[1]

    def _weighted(self, beta, a, gram):
        """gram − Σ_k f_k a_k a_kᵀ for the weights of xᵀE y and of xᵀE² y: two arrays
        (..., c, c) for β of shape (...), a of shape (r, c) (one product by BLAS)."""
        b = np.asarray(beta, dtype=np.float64)[..., None]
        lam, sc = self.lam, self._scale
        fit = sc / (lam + b)  # x·A y = Σ fit a(x) a(y)
        fit2 = sc * (lam + 2 * b) / (lam + b) ** 2  # x·(I − E²) y
        outer = (a[:, :, None] * a[:, None, :]).reshape(a.shape[0], -1)
        shape = (*b.shape[:-1], a.shape[1], a.shape[1])
        return gram - (fit @ outer).reshape(shape), gram - (fit2 @ outer).reshape(shape)

    def _forms(self, beta, d):
        """XᵀE X and XᵀE²X, (..., 1 + k, 1 + k) for β of shape (...)."""
        a, x_gram = self._coefficients(d)
        return self._weighted(beta, a, x_gram)

    def _fit(self, beta, d):
        """c, φ_d and the columns' part of tr A, for β of shape (...)."""
        e1, e2 = self._forms(beta, d)
        if self._cols is None:
            zero = np.zeros(e1.shape[:-2])
            return np.zeros((*e1.shape[:-2], 0)), np.maximum(e2[..., 0, 0], 0.0), zero
        s, t = e1[..., 1:, 1:], e1[..., 1:, 0]
        c = np.linalg.solve(s, t[..., None])[..., 0]
        phi = (
            e2[..., 0, 0]
            - 2 * np.einsum("...i,...i->...", c, e2[..., 1:, 0])
            + np.einsum("...i,...ij,...j->...", c, e2[..., 1:, 1:], c)
        )
        extra = np.trace(np.linalg.solve(s, e2[..., 1:, 1:]), axis1=-2, axis2=-1)
        return c, np.maximum(phi, 0.0), extra

    @staticmethod
    def _out(x, beta):
        return float(x) if np.ndim(beta) == 0 else x

    def coefficients(self, beta: float, d) -> np.ndarray:
        """c(β), (k,): the columns' coefficients (units of ``d`` per unit column)."""
        return self._fit(float(beta), d)[0]

    def model(self, beta: float, d) -> np.ndarray:
        """The layer density m(β), (n_cells,) g/cc."""
        a, _ = self._coefficients(d)
        comp = a[:, 0] - a[:, 1:] @ self.coefficients(beta, d)  # a(w − P_w c)
        return self._apply_t(self.basis @ (comp / (self.lam + beta)))

    def phi_d(self, beta, d):
        """The misfit ‖W_d(G m(β) + P c(β) − d)‖² (β a number or an array of them)."""
        return self._out(self._fit(beta, d)[1], beta)

    def dof(self, beta):
        """tr A(β) = Σ λ/(λ + β) (+ the columns' part, k at most): the effective number of
        parameters of the fit."""
        b = np.asarray(beta, dtype=np.float64)[..., None]
        out = np.sum(self.lam / (self.lam + b), axis=-1)
        if self._cols is not None:
            e1, e2 = self._weighted(beta, self._cols_a, self._cols_gram)
            out = out + np.trace(np.linalg.solve(e1, e2), axis1=-2, axis2=-1)
        return self._out(out, beta)

    def upre(self, beta, d):
        """Unbiased predictive risk estimate φ_d(β) + 2 tr A(β) − N (Mallows' C_p; the
        expected ‖W_d(G m(β) − d_true)‖² when σ is the noise's true standard deviation)."""
        return self.phi_d(beta, d) + 2 * self.dof(beta) - self.n_data

    def gcv(self, beta, d):
        """Generalised cross-validation N φ_d(β) / (N − tr A(β))² (needs no σ scale)."""
        return (
            self.n_data * self.phi_d(beta, d) / np.maximum(self.n_data - self.dof(beta), 1e-12) ** 2
        )

    def log_evidence(self, beta, d):
        r"""The log marginal likelihood log p(d | β) of the Gaussian model behind the fit.

        The fit is the most probable density when the whitened data are W_d d = B m + e,
        e ~ N(0, I), and the prior is m ~ N(0, (βR)⁻¹); integrating m out gives
        W_d d ~ N(0, C), C = I + B R⁻¹ Bᵀ / β, whose inverse is E = I − A(β) (Woodbury) and
        whose determinant is Π_k (λ_k + β)/β, so that

        .. math:: \log p(d\mid\beta) = -\frac12 \Big[w^T E w + \sum_k \log\frac{\lambda_k
                  + \beta}{\beta} + N \log 2\pi\Big] - \sum_i \log \sigma_i .

        With columns (:meth:`with_columns`) it is the restricted likelihood: wᵀEw less
        tᵀS⁻¹t (t = PᵀEw), plus log det S − log det PᵀP, with N − k in place of N. Its maximum
        over β (type-II maximum likelihood, MacKay 1992) weighs the fit against the volume of
        models the layer allows, and it compares layers (depths, cell sizes) fitted to the
        same data with the same columns on one scale. β a number or an array of them.
        """
        e1, _ = self._forms(beta, d)
        b = np.asarray(beta, dtype=np.float64)[..., None]
        quad = e1[..., 0, 0]
        logdet = np.sum(np.log1p(self.lam / b), axis=-1)
        n = self.n_data - self.n_columns
        if self._cols is not None:
            s, t = e1[..., 1:, 1:], e1[..., 1:, 0]
            quad = quad - np.einsum("...i,...i->...", t, np.linalg.solve(s, t[..., None])[..., 0])
            logdet = logdet + np.linalg.slogdet(s)[1] - np.linalg.slogdet(self._cols_gram)[1]
        const = n * np.log(2 * np.pi) + 2 * np.sum(np.log(self.sigma))
        return self._out(-0.5 * (quad + logdet + const), beta)

    def score(self, rule: str, beta, d):
        """The function ``rule`` minimises: ``"upre"``, ``"gcv"`` or ``"evidence"`` (the
        negative log evidence)."""
        if rule not in SCORED:
            raise ValueError(f"rule: expected one of {SCORED}, got {rule!r}")
        return -self.log_evidence(beta, d) if rule == "evidence" else getattr(self, rule)(beta, d)

    def beta_range(self) -> np.ndarray:
        """400 β's spaced evenly in log from 1e-3 × the smallest eigenvalue (at least
        1e-16 × the largest) to 10 × the largest: from least squares to the null model."""
        top = float(self.lam.max()) if self.lam.max() > 0 else 1.0
        bottom = max(float(self.lam.min()), 1e-16 * top) * 1e-3
        return np.logspace(np.log10(bottom), np.log10(10 * top), 400)

    def beta_minimising(self, rule: str, d) -> float:
        """β minimising :meth:`score` ``rule`` (``"upre"``, ``"gcv"`` or ``"evidence"``) over
        :meth:`beta_range`, refined by Brent's method between the neighbours of the best grid
        point."""
        from scipy.optimize import minimize_scalar

        grid = self.beta_range()
        k = int(np.argmin(self.score(rule, grid, d)))  # refuses an unknown rule
        lo, hi = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, grid.size - 1)])
        res = minimize_scalar(
            lambda x: float(self.score(rule, np.exp(x), d)), bounds=(lo, hi), method="bounded"
        )
        return float(np.exp(res.x))

    def beta_for(self, target: float, d, rtol: float = 1e-6) -> float:
        """β with φ_d(β) = target (φ_d increases with β; root of log φ_d − log target)."""
        from scipy.optimize import brentq

        grid = self.beta_range()
        phi = self.phi_d(grid, d)
        if not phi[0] < target < phi[-1]:
            raise TargetMisfitError(
                f"no β gives the target misfit {target:.4g} (φ_d ranges from {phi[0]:.4g} to "
                f"{phi[-1]:.4g} on this layer); check sigma, or give a damping"
            )
        k = int(np.searchsorted(phi, target))
        x = brentq(
            lambda x: np.log(self.phi_d(np.exp(x), d)) - np.log(target),
            np.log(grid[k - 1]), np.log(grid[k]), rtol=rtol,
        )  # fmt: skip
        return float(np.exp(x))
