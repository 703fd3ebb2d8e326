"""A synthetic survey for equivalent sources, made by msinv: hilly ground, a gap, known truth.

:func:`synthetic_survey` draws stations 1 m above a surface of Gaussian hills, removes those in
a band (the gap), and computes g_z of a few buried prisms (exact prism integrals, Harmonica's
sign convention = GRAV3D's) plus seeded Gaussian noise. The true field is known anywhere
(:meth:`Survey.true_gz`), so gridding, gap filling and upward continuation can be scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msinv.core.optional import require


@dataclass
class Survey:
    """Stations, noisy data and the sources that made them.

    Attributes
    ----------
    points : (n, 3) numpy.ndarray
        Stations east, north, elevation (m).
    data : (n,) numpy.ndarray
        g_z + noise, mGal (down).
    sigma : float
        Noise standard deviation, mGal.
    prisms : (k, 6) numpy.ndarray
        Sources: west, east, south, north, bottom, top (m).
    densities : (k,) numpy.ndarray
        Density contrasts, g/cc.
    region : (west, east, south, north)
        The survey area.
    gap : tuple of float
        The area without stations: (west, east) of a north-south band, or (east, north,
        radius) of a disc (``gap_shape``).
    hills : (h, 4) numpy.ndarray
        Gaussian hills: east, north, height, width (m).
    gap_shape : str, default 'band'
        ``"band"`` or ``"disc"``.
    regional : (float, float, float)
        A regional field of distant sources added to the prisms': mGal at the region's centre,
        mGal/km east and north (a plane, harmonic, the same at every elevation).
    """

    points: np.ndarray
    data: np.ndarray
    sigma: float
    prisms: np.ndarray
    densities: np.ndarray
    region: tuple[float, float, float, float]
    gap: tuple[float, float]
    hills: np.ndarray
    gap_shape: str = "band"
    regional: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def surface(self, east: np.ndarray, north: np.ndarray) -> np.ndarray:
        """Ground elevation at (east, north), metres."""
        z = np.zeros(np.broadcast(east, north).shape)
        for x0, y0, h, w in self.hills:
            z = z + h * np.exp(-((east - x0) ** 2 + (north - y0) ** 2) / w**2)
        return z

    def true_gz(self, points: np.ndarray) -> np.ndarray:
        """g_z (mGal, down) of the sources at (m, 3) points, noise-free."""
        hm = require("harmonica", "compute the true field of the synthetic survey")
        pts = np.asarray(points, dtype=float)
        gz = hm.prism_gravity(pts.T, self.prisms, self.densities * 1e3, field="g_z")
        return gz + self.regional_gz(pts)

    def regional_gz(self, points: np.ndarray) -> np.ndarray:
        """The regional field (mGal) at (m, 3) points."""
        from msinv.gravity.equivalent import regional_field

        w, e, s, n = self.region
        c0, per_km_east, per_km_north = self.regional
        centre = ((w + e) / 2, (s + n) / 2)
        return regional_field(points, (c0, per_km_east / 1e3, per_km_north / 1e3), centre)

    def interior(self, points: np.ndarray, margin: float = 0.1) -> np.ndarray:
        """Points at least ``margin`` × the region's size inside it (bool mask)."""
        w, e, s, n = self.region
        mx, my = margin * (e - w), margin * (n - s)
        p = np.asarray(points)
        return (p[:, 0] > w + mx) & (p[:, 0] < e - mx) & (p[:, 1] > s + my) & (p[:, 1] < n - my)

    def in_gap(self, points: np.ndarray) -> np.ndarray:
        """Points in the area without stations (bool mask)."""
        p = np.asarray(points)
        if self.gap_shape == "disc":
            x0, y0, radius = self.gap
            return np.hypot(p[:, 0] - x0, p[:, 1] - y0) < radius
        return (p[:, 0] > self.gap[0]) & (p[:, 0] < self.gap[1])


def synthetic_survey(
    n_stations: int = 2000,
    seed: int = 0,
    size: float = 10_000.0,
    gap_width: float = 500.0,
    noise: float = 0.005,
    gap_shape: str = "band",
    sources: int = 8,
    source_tops: tuple[float, float] = (300.0, 1000.0),
    regional: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Survey:
    """Stations on hilly ground with a gap, over buried prisms.

    Parameters
    ----------
    n_stations : int, default 2000
        Stations drawn uniformly before the gap is removed (so slightly fewer remain).
    seed : int, default 0
        Seed of the stations, hills and noise.
    size : float, default 10000.0
        Side of the square survey, metres.
    gap_width : float, default 500.0
        Width of the north-south band without stations (its centre at 60 % of the east
        extent), or diameter of the disc without stations (its centre at 40 % east, 60 %
        north), metres.
    noise : float, default 0.005
        Noise standard deviation, mGal.
    gap_shape : str, default 'band'
        ``"band"`` or ``"disc"``.
    sources : int, default 8
        Number of buried prisms (>= 1).
    source_tops : (float, float), default (300.0, 1000.0)
        Range of the prisms' top depths below sea level, metres (each prism 300–1000 m
        tall).
    regional : (float, float, float), default (0, 0, 0)
        A regional plane added to the field: mGal at the centre, mGal/km east and north.
    """
    if gap_shape not in ("band", "disc"):
        raise ValueError(f"gap_shape: expected 'band' or 'disc', got {gap_shape!r}")
    if sources < 1:
        raise ValueError(f"sources: expected >= 1, got {sources}")
    rng = np.random.default_rng(seed)
    region = (0.0, size, 0.0, size)
    hills = np.column_stack(
        [
            rng.uniform(0, size, 6),
            rng.uniform(0, size, 6),
            rng.uniform(50, 200, 6),
            rng.uniform(0.08, 0.2, 6) * size,
        ]
    )
    if gap_shape == "disc":
        gap = (0.4 * size, 0.6 * size, gap_width / 2)
    else:
        gap = (0.6 * size - gap_width / 2, 0.6 * size + gap_width / 2)
    # sources: blocks with tops in source_tops below sea level, densities +-0.1 to 0.3 g/cc
    k = sources
    cx, cy = rng.uniform(0.15, 0.85, (2, k)) * size
    half = rng.uniform(0.02, 0.06, (2, k)) * size
    top = -rng.uniform(*source_tops, k)
    bottom = top - rng.uniform(300, 1000, k)
    prisms = np.column_stack([cx - half[0], cx + half[0], cy - half[1], cy + half[1], bottom, top])
    densities = rng.choice([-1.0, 1.0], k) * rng.uniform(0.1, 0.3, k)
    survey = Survey(
        np.empty((0, 3)), np.empty(0), noise, prisms, densities, region, gap, hills, gap_shape,
        tuple(float(v) for v in regional),
    )  # fmt: skip
    east, north = rng.uniform(0, size, (2, n_stations))
    keep = ~survey.in_gap(np.column_stack([east, north]))
    east, north = east[keep], north[keep]
    survey.points = np.column_stack([east, north, survey.surface(east, north) + 1.0])
    clean = survey.true_gz(survey.points)
    survey.data = clean + noise * rng.standard_normal(clean.size)
    return survey
