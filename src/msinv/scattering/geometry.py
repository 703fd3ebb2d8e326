"""Grid, absorbing layer and acquisition of the 2-D scattering problem.

A :class:`Geometry` is a small immutable value: it holds only scalars, so it is hashable, cheap
to compare, usable as a cache key and serialisable with :meth:`Geometry.to_dict`. The node
coordinates and the source/receiver angles are derived from those scalars on demand.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from msinv.core.errors import UserInputError

#: The PML chosen per frequency for ``pml_width="auto"``: ``(points per wavelength >= limit,
#: width in nodes, sigma_max * h)``, first match wins. The discrete layer depends only on
#: ``omega h``, the width in nodes and ``sigma_max h``, so the choice carries over between grids
#: at the same points per wavelength. Chosen on ``Geometry.paper(80)`` (f = 2.5, 5, 10: 31.6,
#: 15.8, 7.9 points per wavelength) as the thinnest layers whose reflection (data against a
#: 40-node layer, worst of the three disks of ``tests/scattering/test_pml.py``) stays near
#: 0.2%: 10 nodes (sigma_max 50), 8 (60), 6 (79); the published layer is 20 nodes, sigma_max
#: 80. Measured in ``tests/scattering/test_pml.py`` and ``docs/scattering.md``.
PML_POLICY: tuple[tuple[float, int, float], ...] = (
    (24.0, 10, 0.63),
    (12.0, 8, 0.76),
    (0.0, 6, 1.0),
)


def published_pml_width(n: int) -> int:
    """PML width of the published data scaled to ``n`` nodes: ``round(20 n / 80)`` (>= 4)."""
    return max(4, round(20 * n / 80))


@dataclass(frozen=True)
class Geometry:
    """Square grid of ``n x n`` nodes, a PML around it, plane-wave sources and circular receivers.

    Parameters
    ----------
    n : int
        Nodes per axis of the contrast grid, both ends included (16 <= n <= 1024).
    extent : tuple of float, default (-0.5, 0.5)
        ``(lo, hi)`` of the node coordinates on both axes (hi > lo), e.g. ``(-0.5, 0.5)``.
    pml_width : int or "auto", default 20
        Nodes of perfectly matched layer added on every side (1 <= pml_width <= 200), or
        ``"auto"``: the solver chooses width and strength per frequency (:data:`PML_POLICY`,
        :meth:`at`). The layer is a numerical device, not part of the acquisition.
    pml_strength : float or None
        Peak damping :math:`\\sigma_{max}` of the quadratic profile
        :math:`\\sigma(t) = \\sigma_{max} t^2`, ``t`` in (0, 1] across the layer (> 0);
        default (None) 80 with an integer width; None with ``pml_width="auto"`` (chosen with
        the width).
    n_sources : int, default 80
        Number of plane-wave incidence directions (>= 1).
    n_receivers : int, default 80
        Number of receivers on the circle (>= 1).
    receiver_radius : float, default 0.5
        Radius ``R`` of the receiver circle (> 0); it may lie inside the grid.
    source_offset : float
        Angle of the first incidence direction in radians; the k-th is
        ``source_offset + 2 pi k / n_sources``.
    receiver_offset : float, default 0.0
        Angle of the first receiver; the k-th is ``receiver_offset + 2 pi k / n_receivers``.

    Attributes
    ----------
    x, y : (n,) float64 numpy.ndarray
        Node coordinates; a contrast image is indexed ``eta[iy, ix]``.
    h : float
        Node spacing ``(hi - lo) / (n - 1)``.
    source_angles : (n_sources,) float64 numpy.ndarray
        Incidence angles: source ``s`` sends ``exp(i omega (cos t_s, sin t_s) . x)``.
    receiver_angles : (n_receivers,) float64 numpy.ndarray
        Receiver ``r`` sits at ``R (cos t_r, sin t_r)``.
    """

    n: int
    extent: tuple[float, float] = (-0.5, 0.5)
    pml_width: int | str = 20
    pml_strength: float | None = None
    n_sources: int = 80
    n_receivers: int = 80
    receiver_radius: float = 0.5
    source_offset: float = math.pi
    receiver_offset: float = 0.0

    def __post_init__(self):
        def bad(field, value, expected):
            raise UserInputError(f"Geometry.{field}={value!r}: expected {expected}")

        if not isinstance(self.n, int | np.integer) or not 16 <= self.n <= 1024:
            bad("n", self.n, "an integer in [16, 1024]")
        lo, hi = (float(v) for v in self.extent)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            bad("extent", self.extent, "finite (lo, hi) with hi > lo")
        object.__setattr__(self, "extent", (lo, hi))
        object.__setattr__(self, "n", int(self.n))
        if self.pml_width == "auto":
            if self.pml_strength is not None:
                bad(
                    "pml_strength", self.pml_strength, "None with pml_width='auto' (chosen with it)"
                )
        else:
            if not isinstance(self.pml_width, int | np.integer) or not 1 <= self.pml_width <= 200:
                bad("pml_width", self.pml_width, "an integer in [1, 200] or 'auto'")
            object.__setattr__(self, "pml_width", int(self.pml_width))
            if self.pml_strength is None:
                object.__setattr__(self, "pml_strength", 80.0)
            if not (
                isinstance(self.pml_strength, int | float | np.number)
                and math.isfinite(self.pml_strength)
                and self.pml_strength > 0
            ):
                bad("pml_strength", self.pml_strength, "a finite number > 0")
        for field in ("n_sources", "n_receivers"):
            value = getattr(self, field)
            if not isinstance(value, int | np.integer) or not 1 <= value <= 4096:
                bad(field, value, "an integer in [1, 4096]")
            object.__setattr__(self, field, int(value))
        if not (math.isfinite(self.receiver_radius) and self.receiver_radius > 0):
            bad("receiver_radius", self.receiver_radius, "a finite number > 0")
        fixed = ("receiver_radius", "source_offset", "receiver_offset")
        for field in fixed if self.pml_auto else ("pml_strength", *fixed):
            value = float(getattr(self, field))
            if not math.isfinite(value):
                bad(field, value, "a finite number")
            object.__setattr__(self, field, value)

    @classmethod
    def paper(
        cls,
        n: int = 80,
        *,
        pml_width: int | str | None = "auto",
        pml_strength: float | None = None,
    ):
        """The published acquisition (Zhang et al. 2025), scaled to ``n`` nodes as in its MRI runs.

        Nodes on [-0.5, 0.5] including both ends, ``n`` sources at ``pi + 2 pi k / n``, ``n``
        receivers at ``2 pi k / n`` on the radius 0.5.

        The absorbing layer is a numerical choice, not part of the acquisition: by default
        (``pml_width="auto"`` or None) the solver chooses it per frequency
        (:data:`PML_POLICY`, thinner and cheaper than the published one within the same
        disk-oracle budget). ``pml_width="published"`` gives the published data's layer,
        ``round(20 n / 80)`` nodes (20 at n = 80) with :math:`\\sigma_{max} = 80`; an integer
        gives that many nodes with ``pml_strength`` (default 80).
        """
        if pml_width is None:
            pml_width = "auto"
        if pml_width == "published":
            pml_width = published_pml_width(n)
        return cls(
            n=n,
            extent=(-0.5, 0.5),
            pml_width=pml_width,
            pml_strength=pml_strength,
            n_sources=n,
            n_receivers=n,
            receiver_radius=0.5,
            source_offset=math.pi,
            receiver_offset=0.0,
        )

    @property
    def pml_auto(self) -> bool:
        """Whether the PML is chosen per frequency (``pml_width == "auto"``)."""
        return self.pml_width == "auto"

    def at(self, freq: float) -> Geometry:
        """The geometry the solver uses at ``freq``: itself, or with ``pml_width="auto"`` the
        width and strength of :data:`PML_POLICY` for the background points per wavelength
        ``1 / (freq h)`` (``sigma_max = (sigma_max h) / h``)."""
        if not self.pml_auto:
            return self
        ppw = 1.0 / (float(freq) * self.h)
        width, sigma_h = next((w, s) for limit, w, s in PML_POLICY if ppw >= limit)
        return dataclasses.replace(self, pml_width=width, pml_strength=sigma_h / self.h)

    def _fixed_pml(self) -> None:
        if self.pml_auto:
            raise UserInputError(
                "this Geometry has pml_width='auto' (the PML is chosen per frequency): use "
                "geometry.at(freq) for the computational grid"
            )

    @property
    def h(self) -> float:
        """Node spacing."""
        return (self.extent[1] - self.extent[0]) / (self.n - 1)

    @property
    def x(self) -> np.ndarray:
        """(n,) node coordinates along x (columns of ``eta``)."""
        return np.linspace(self.extent[0], self.extent[1], self.n)

    @property
    def y(self) -> np.ndarray:
        """(n,) node coordinates along y (rows of ``eta``)."""
        return self.x

    @property
    def source_angles(self) -> np.ndarray:
        """(n_sources,) incidence angles in radians."""
        return self.source_offset + 2 * np.pi * np.arange(self.n_sources) / self.n_sources

    @property
    def receiver_angles(self) -> np.ndarray:
        """(n_receivers,) receiver angles in radians."""
        return self.receiver_offset + 2 * np.pi * np.arange(self.n_receivers) / self.n_receivers

    @property
    def receiver_points(self) -> np.ndarray:
        """(n_receivers, 2) receiver coordinates ``(x, y)``."""
        t = self.receiver_angles
        return self.receiver_radius * np.stack([np.cos(t), np.sin(t)], axis=1)

    @property
    def source_directions(self) -> np.ndarray:
        """(n_sources, 2) unit incidence directions ``s``."""
        t = self.source_angles
        return np.stack([np.cos(t), np.sin(t)], axis=1)

    @property
    def n_total(self) -> int:
        """Nodes per axis of the computational grid, PML included (fixed PML only)."""
        self._fixed_pml()
        return self.n + 2 * self.pml_width

    @property
    def x_total(self) -> np.ndarray:
        """(n_total,) node coordinates of the computational grid, PML included (fixed PML)."""
        self._fixed_pml()
        w = self.pml_width
        return self.extent[0] + self.h * np.arange(-w, self.n + w)

    def to_dict(self) -> dict:
        """JSON-serialisable fields (for dataset attributes)."""
        d = asdict(self)
        d["extent"] = list(self.extent)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise a one-line ValueError."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise UserInputError(
                f"Geometry.from_dict: unknown keys {sorted(unknown)}; expected {sorted(names)}"
            )
        if "n" not in d:
            raise UserInputError("Geometry.from_dict: missing key 'n'")
        d = dict(d)
        if "extent" in d:
            d["extent"] = tuple(d["extent"])
        return cls(**d)


#: Fewer points per shortest wavelength than this: a warning (the data are inaccurate).
PPW_WARN = 4.0
#: Fewer than this (the Nyquist limit): refused, the grid cannot carry the wave.
PPW_REFUSE = 2.0


def points_per_wavelength(geometry: Geometry, freq: float, eta_max: float = 0.0) -> float:
    """Grid points per shortest wavelength: ``1 / (f h sqrt(1 + eta_max))``.

    The background speed is 1, so the wavelength is ``1/f`` outside the scatterer and
    ``1 / (f sqrt(1 + eta))`` where the contrast is ``eta``.
    """
    return 1.0 / (freq * geometry.h * math.sqrt(1.0 + max(eta_max, 0.0)))


def check_resolution(geometry: Geometry, freqs, eta_max: float = 0.0) -> float:
    """Refuse (below :data:`PPW_REFUSE`) or warn (below :data:`PPW_WARN`) on an under-resolved
    problem; returns the smallest points per wavelength over ``freqs``.

    Parameters
    ----------
    geometry : Geometry
    freqs : sequence of float
        Frequencies (> 0).
    eta_max : float, default 0.0
        Largest contrast of the medium (0: the background only).

    Raises
    ------
    UserInputError
        Fewer than 2 points per wavelength: nothing computed there would mean anything.
    """
    import warnings

    from msinv.core.errors import MsinvWarning

    f = max(float(x) for x in freqs)
    ppw = points_per_wavelength(geometry, f, eta_max)
    where = f"f = {f:g} on n = {geometry.n} (h = {geometry.h:.4g})" + (
        f" with max contrast {eta_max:g}" if eta_max > 0 else ""
    )
    if ppw < PPW_REFUSE:
        raise UserInputError(
            f"{where}: {ppw:.3g} points per wavelength, below the Nyquist limit of "
            f"{PPW_REFUSE:g}; use a finer grid (--n), lower frequencies or a smaller contrast"
        )
    if ppw < PPW_WARN:
        warnings.warn(
            MsinvWarning(
                f"{where}: only {ppw:.3g} points per wavelength (below {PPW_WARN:g}); the "
                "finite-difference data will be inaccurate"
            ),
            stacklevel=2,
        )
    return ppw
