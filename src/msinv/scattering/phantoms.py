"""Perturbation families: seeded generators of contrast images ``eta`` for scattering datasets.

Every generator takes a :class:`numpy.random.Generator` and returns an ``(n, n)`` float64 image
indexed ``eta[iy, ix]`` on the node grid ``x_i = y_i = -0.5 + i / (n - 1)`` (rows = y, y
increasing with the row index), zero near the boundary of the square. Sizes are given in pixels
of the paper's 80-node grid (``h = 1/79``) and scaled with ``n`` so that a family keeps its
physical size at any resolution.

=================  =============================================================================
family             law (paper grid, n = 80)
=================  =============================================================================
``squares``        exactly 20 squares of 10 x 10 pixels, centres uniform in the disk of radius
                   0.35, each adds 0.2 (overlaps sum)
``triangles``      1 to 10 right isosceles pixel triangles, legs 3, 5 or 10 pixels, one of four
                   orientations, centres uniform in the disk of radius 0.35, each adds 0.2
``shepp_logan``    randomised modified Shepp--Logan (Chung's ``randomSheppLogan``) on 70 x 70
                   pixels padded by 5, Gaussian blur (sigma 0.9 pixel), peak 1, radial window
``brain``          axial slices of the MNI152 T1 template shipped with nilearn, randomly
                   rotated, scaled and shifted, resampled, peak 1, radial window
=================  =============================================================================

:data:`FAMILIES` maps each name to a :class:`Family` (generator and parameters to record).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from msinv.core.errors import UserInputError

#: Pixel sizes of the families are defined on the paper grid of this many nodes.
PAPER_N = 80

# The modified Shepp--Logan table (Toft, "The Radon transform", 1996, pp. 199-200; the same
# values as MATLAB's ``phantom('Modified Shepp-Logan')``) in the form of Chung's
# randomSheppLogan.m (github.com/matthiaschung/Random-Shepp-Logan-Phantom), which the published
# data generation calls: ellipses 1-4 *overwrite* with intensities already corrected for that
# (0.2 = 1 - 0.8 for the inner skull, 0 = 0.2 - 0.2 for the ventricles); ellipses 5-10 (the
# "tumours") add. Columns: intensity, semi-axis a (along x before rotation), semi-axis b,
# centre x0, centre y0, angle phi in degrees (counter-clockwise from the x axis), on [-1, 1]^2.
# tests/scattering/test_phantoms.py checks the rasterised table against scikit-image's
# published phantom image.
SHEPP_LOGAN_TABLE = np.array(
    [
        [1.0, 0.6900, 0.9200, 0.00, 0.0000, 0.0],
        [0.2, 0.6624, 0.8740, 0.00, -0.0184, 0.0],
        [0.0, 0.1100, 0.3100, 0.22, 0.0000, -18.0],
        [0.0, 0.1600, 0.4100, -0.22, 0.0000, 18.0],
        [0.1, 0.2100, 0.2500, 0.00, 0.3500, 0.0],
        [0.1, 0.0460, 0.0460, 0.00, 0.1000, 0.0],
        [0.1, 0.0460, 0.0460, 0.00, -0.1000, 0.0],
        [0.1, 0.0460, 0.0230, -0.08, -0.6050, 0.0],
        [0.1, 0.0230, 0.0230, 0.00, -0.6060, 0.0],
        [0.1, 0.0230, 0.0460, 0.06, -0.6050, 0.0],
    ]
)
#: Number of leading ellipses of :data:`SHEPP_LOGAN_TABLE` that overwrite (the rest add).
SHEPP_LOGAN_OVERWRITE = 4

_MNI_T1 = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def pixels(size_at_paper_grid: float, n: int) -> float:
    """A length given in pixels of the 80-node paper grid, in pixels of an ``n``-node grid."""
    return size_at_paper_grid * (n - 1) / (PAPER_N - 1)


def node_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)``, each (n, n), of the nodes ``-0.5 + i/(n-1)``; ``X[iy, ix] = x_ix``."""
    t = np.linspace(-0.5, 0.5, n)
    return np.meshgrid(t, t, indexing="xy")


def radial_window(n: int, radius: float = 0.48, width: float = 0.005) -> np.ndarray:
    """Smooth window ``exp(-width / (radius^2 - r^2))`` for ``r < radius``, zero outside.

    The published data generation (``data_generation.m`` of the Back-Projection Diffusion code)
    uses this window with ``radius = 0.48`` and ``width = 0.005``; it is infinitely smooth and
    vanishes with all its derivatives at ``r = radius``.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        Values in (0, 1) inside the disk, 0 outside.
    """
    x, y = node_grid(n)
    gap = radius**2 - (x**2 + y**2)
    out = np.zeros((n, n))
    inside = gap > 0
    out[inside] = np.exp(-width / gap[inside])
    return out


def blur_target(eta: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """Gaussian blur of a target image by ``sigma`` pixels (the published training targets).

    The published training targets were blurred with ``sigma = 0.5`` pixel when loaded while
    the data were computed from the unblurred image; errors were measured against the blurred
    one. :func:`msinv.scattering.dataset.generate` records this choice (``target_blur``).

    Parameters
    ----------
    eta : (..., n, n) float numpy.ndarray
        Image(s); the blur acts on the last two axes with zero padding outside.
    sigma : float, default 0.5
        Standard deviation in pixels (>= 0; 0 returns a copy).
    """
    if not (math.isfinite(sigma) and sigma >= 0):
        raise UserInputError(f"blur sigma={sigma!r}: expected a finite number >= 0 (pixels)")
    eta = np.asarray(eta, dtype=np.float64)
    if sigma == 0:
        return eta.copy()
    sig = (0,) * (eta.ndim - 2) + (sigma, sigma)
    return ndimage.gaussian_filter(eta, sig, mode="constant", cval=0.0)


def _disk_point(rng: np.random.Generator, radius: float) -> tuple[float, float]:
    """A point uniform in the disk of ``radius`` (r = radius sqrt(U), angle uniform)."""
    r = radius * math.sqrt(rng.random())
    t = 2 * math.pi * rng.random()
    return r * math.cos(t), r * math.sin(t)


def _paste(eta: np.ndarray, mask: np.ndarray, centre: tuple[float, float], value: float) -> None:
    """Add ``value`` on ``mask`` (k, k), its centre at the physical point ``centre = (x, y)``."""
    n = eta.shape[0]
    k_y, k_x = mask.shape
    # continuous node index of the centre; the mask's centre is (k - 1) / 2 in its own indices
    i0 = round((centre[1] + 0.5) * (n - 1) - (k_y - 1) / 2)
    j0 = round((centre[0] + 0.5) * (n - 1) - (k_x - 1) / 2)
    if i0 < 0 or j0 < 0 or i0 + k_y > n or j0 + k_x > n:
        raise UserInputError(f"shape of {mask.shape} at {centre} does not fit the {n}x{n} grid")
    eta[i0 : i0 + k_y, j0 : j0 + k_x] += value * mask


def squares(
    rng: np.random.Generator,
    n: int = PAPER_N,
    *,
    count: int = 20,
    side: int = 10,
    radius: float = 0.35,
    value: float = 0.2,
) -> np.ndarray:
    """Overlapping squares: ``count`` squares of ``side`` pixels (paper grid) adding ``value``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Nodes per axis (>= 16).
    count : int, default 20
        Number of squares (exactly; paper: 20).
    side : int, default 10
        Side in pixels of the 80-node grid (paper: 10, i.e. 10h); ``round(side (n-1)/79)``
        pixels on an ``n``-node grid, at least 1.
    radius : float, default 0.35
        Centres are uniform in the disk of this radius (paper: 0.35).
    value : float, default 0.2
        Contrast added by each square (paper: 0.2); overlaps sum.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        ``eta[iy, ix]``, every value a multiple of ``value``.
    """
    _check_n(n)
    k = max(1, round(pixels(side, n)))
    eta = np.zeros((n, n))
    mask = np.ones((k, k))
    for _ in range(count):
        _paste(eta, mask, _disk_point(rng, radius), value)
    return eta


def triangle_mask(leg: int, orientation: int) -> np.ndarray:
    """Right isosceles pixel triangle with legs of ``leg`` pixels: (leg, leg) array of 0/1.

    Orientation 0 has its right angle at the lower-left corner (``[0, 0]``); orientations 1, 2,
    3 are rotations by 90, 180 and 270 degrees.
    """
    i, j = np.indices((leg, leg))
    return np.rot90((i + j <= leg - 1).astype(np.float64), orientation).copy()


def triangles(
    rng: np.random.Generator,
    n: int = PAPER_N,
    *,
    max_count: int = 10,
    legs: tuple[int, ...] = (3, 5, 10),
    radius: float = 0.35,
    value: float = 0.2,
) -> np.ndarray:
    """Overlapping right isosceles triangles ("3-5-10h triangles").

    The number of triangles is uniform in ``1..max_count``; each has legs of a size drawn
    uniformly from ``legs`` (pixels of the paper grid, scaled with ``n``), one of 4 orientations,
    and a centre (of its bounding box) uniform in the disk of ``radius``; each adds ``value``.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        ``eta[iy, ix]``, every value a multiple of ``value``.
    """
    _check_n(n)
    eta = np.zeros((n, n))
    for _ in range(int(rng.integers(1, max_count + 1))):
        leg = max(1, round(pixels(legs[int(rng.integers(len(legs)))], n)))
        mask = triangle_mask(leg, int(rng.integers(4)))
        _paste(eta, mask, _disk_point(rng, radius), value)
    return eta


def rasterise_ellipses(table: np.ndarray, m: int, overwrite: int = SHEPP_LOGAN_OVERWRITE):
    """Rasterise an ellipse table on ``m x m`` nodes ``linspace(-1, 1, m)``; rows = y up.

    Parameters
    ----------
    table : (k, 6) float numpy.ndarray
        Rows ``(intensity, a, b, x0, y0, phi_degrees)``; a point is inside when
        ``((dx cos phi + dy sin phi) / a)^2 + ((dy cos phi - dx sin phi) / b)^2 <= 1``.
    m : int
        Nodes per axis.
    overwrite : int
        The first ``overwrite`` ellipses set their intensity; the later ones add it.

    Returns
    -------
    (m, m) float64 numpy.ndarray
        Image indexed ``[iy, ix]`` with y increasing with the row index.
    """
    t = np.linspace(-1.0, 1.0, m)
    x, y = np.meshgrid(t, t, indexing="xy")
    image = np.zeros((m, m))
    for k, (value, a, b, x0, y0, phi) in enumerate(np.asarray(table, dtype=np.float64)):
        c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
        dx, dy = x - x0, y - y0
        inside = ((dx * c + dy * s) / a) ** 2 + ((dy * c - dx * s) / b) ** 2 <= 1.0
        if k < overwrite:
            image[inside] = value
        else:
            image[inside] += value
    return image


def randomise_shepp_logan(rng: np.random.Generator, table: np.ndarray = SHEPP_LOGAN_TABLE):
    """Chung's random variation of an ellipse table (randomSheppLogan.m, ``modify``).

    A common scale ``1 - 2U/9`` of axes and centres; a common angle in [-45, 45] degrees added
    to every ellipse's own angle (each turns about its own centre, as in the published code);
    a common translation in [0, 0.2]^2; each intensity multiplied by ``1 + 0.2 (U - 0.5)`` and
    clipped to [0, 1]; and a random number (0 to 5, uniform) of the six tumours removed.

    Returns
    -------
    (k, 6) float64 numpy.ndarray
        The modified table, ``4 <= k <= 10``.
    """
    e = np.array(table, dtype=np.float64)
    m = e.shape[0]
    e[:, 1:5] *= 1.0 - rng.random() * 2.0 / 9.0
    e[:, 5] += 90.0 * (rng.random() - 0.5)
    e[:, 3:5] += 0.2 * rng.random(2)
    e[:, 0] = np.clip(e[:, 0] * (1.0 + 0.2 * (rng.random(m) - 0.5)), 0.0, 1.0)
    n_tumours = m - SHEPP_LOGAN_OVERWRITE
    drop = rng.choice(n_tumours, size=int(rng.integers(n_tumours)), replace=False)
    return np.delete(e, SHEPP_LOGAN_OVERWRITE + drop, axis=0)


def _shepp_logan_image(table: np.ndarray, n: int, pad: float, blur: float) -> np.ndarray:
    p = max(1, round(pixels(pad, n)))
    image = np.pad(rasterise_ellipses(table, n - 2 * p), p)
    image = blur_target(image, pixels(blur, n))
    peak = np.abs(image).max()
    return image / peak * radial_window(n)


def shepp_logan(
    rng: np.random.Generator, n: int = PAPER_N, *, pad: float = 5, blur: float = 0.9
) -> np.ndarray:
    """Random Shepp--Logan head: a strong-contrast family (peak about 1).

    The table :data:`SHEPP_LOGAN_TABLE` randomised by :func:`randomise_shepp_logan`,
    rasterised on ``n - 2 pad`` nodes spanning [-1, 1] and padded with ``pad`` zero pixels
    (paper: 70 + 2 x 5 = 80), Gaussian-blurred by ``blur`` pixels, divided by its peak and
    multiplied by :func:`radial_window` (zero from r = 0.48 on). ``pad`` and ``blur`` are in
    pixels of the paper grid, scaled with ``n``.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        ``eta[iy, ix]`` in [0, 1).
    """
    _check_n(n)
    return _shepp_logan_image(randomise_shepp_logan(rng), n, pad, blur)


def shepp_logan_reference(n: int = PAPER_N) -> np.ndarray:
    """The standard modified Shepp--Logan head with the preprocessing of :func:`shepp_logan`.

    Deterministic: the unmodified table, padded, blurred, peak 1 and windowed.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        ``eta[iy, ix]``; the head's top (tumour 1 at y0 = +0.35) towards positive y.
    """
    _check_n(n)
    return _shepp_logan_image(SHEPP_LOGAN_TABLE, n, 5, 0.9)


@cache
def _mni_t1() -> np.ndarray:
    """The MNI152 2009a T1 template shipped inside nilearn's wheel, (197, 233, 189) float32.

    Indexed ``[x, y, z]`` at 1 mm (left-right, posterior-anterior, inferior-superior).
    """
    import nibabel
    import nilearn

    path = Path(nilearn.__file__).parent / _MNI_T1
    if not path.is_file():
        raise FileNotFoundError(f"MNI152 template not found at {path}: reinstall nilearn>=0.10")
    volume = np.asarray(nibabel.load(path).dataobj, dtype=np.float32)
    volume.setflags(write=False)
    return volume


def brain(
    rng: np.random.Generator,
    n: int = PAPER_N,
    *,
    slices: tuple[float, float] = (0.4, 0.65),
    size: tuple[float, float] = (0.8, 1.0),
    shift: float = 0.03,
    radius: float = 0.44,
) -> np.ndarray:
    """MRI-like brain: an axial slice of the MNI152 T1 template, randomly placed.

    The slice index is uniform in the fraction ``slices`` of the template's height; the head
    (voxels above 5% of the maximum) is centred on its centroid, scaled so that its farthest
    voxel lies at ``radius * s`` with ``s`` uniform in ``size``, rotated by a uniform angle,
    shifted by a point uniform in the disk of radius ``shift``, resampled onto the node grid
    (bilinear, after a Gaussian anti-alias filter of 0.4 output pixels), divided by its peak and
    multiplied by :func:`radial_window`. No network access: the template ships with nilearn.

    Returns
    -------
    (n, n) float64 numpy.ndarray
        ``eta[iy, ix]`` in [0, 1), zero from r = 0.48 on.
    """
    _check_n(n)
    volume = _mni_t1()
    nz = volume.shape[2]
    k = int(rng.integers(round(slices[0] * nz), round(slices[1] * nz) + 1))
    section = np.asarray(volume[:, :, k], dtype=np.float64)  # [x_mm, y_mm]
    scale = size[0] + (size[1] - size[0]) * rng.random()
    angle = 2 * math.pi * rng.random()
    offset = _disk_point(rng, shift)

    head = section > 0.05 * section.max()
    ii, jj = np.nonzero(head)
    ci, cj = ii.mean(), jj.mean()
    extent_mm = np.sqrt((ii - ci) ** 2 + (jj - cj) ** 2).max()
    mm_per_unit = extent_mm / (radius * scale)
    section = ndimage.gaussian_filter(section, 0.4 * mm_per_unit / (n - 1))

    x, y = node_grid(n)
    u, v = x - offset[0], y - offset[1]
    c, s = math.cos(angle), math.sin(angle)
    coords = np.stack([ci + mm_per_unit * (c * u + s * v), cj + mm_per_unit * (-s * u + c * v)])
    image = ndimage.map_coordinates(section, coords, order=1, mode="constant", cval=0.0)
    return image / image.max() * radial_window(n)


def _check_n(n: int) -> None:
    if not isinstance(n, int | np.integer) or n < 16:
        raise UserInputError(f"n={n!r}: expected an integer number of nodes per axis >= 16")


@dataclass(frozen=True)
class Family:
    """A perturbation family: its generator and the parameters to record with a dataset.

    Parameters
    ----------
    name : str
        Registry name (``squares``, ``triangles``, ``shepp_logan``, ``brain``).
    sample : callable
        ``sample(rng, n, **params) -> (n, n) float64``.
    params : dict
        Keyword parameters of ``sample`` (their defaults are the paper's law).
    """

    name: str
    sample: Callable[..., np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, rng: np.random.Generator, n: int = PAPER_N) -> np.ndarray:
        """Draw one image with the family's parameters."""
        return self.sample(rng, n, **self.params)

    def with_params(self, **overrides: Any) -> Family:
        """The same family with some parameters changed (unknown names raise a ValueError)."""
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise UserInputError(
                f"family {self.name!r} has no parameter {', '.join(map(repr, unknown))}: "
                f"expected some of {', '.join(self.params)}"
            )
        for key, value in overrides.items():
            _check_param(self.name, key, value, self.params[key])
        return Family(self.name, self.sample, {**self.params, **overrides})

    def record(self) -> dict[str, Any]:
        """JSON-serialisable description (name and parameters) for dataset attributes."""
        return {"name": self.name, "params": _jsonable(self.params)}


#: Allowed values of family parameters beyond their type: (test, what is expected).
_PARAM_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "count": (lambda v: v >= 1, "an integer >= 1"),
    "side": (lambda v: v >= 1, "an integer >= 1 (pixels of the 80-node grid)"),
    "max_count": (lambda v: v >= 1, "an integer >= 1"),
    "legs": (lambda v: len(v) >= 1 and min(v) >= 1, "a list of integers >= 1"),
    "radius": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "value": (lambda v: v != 0 and 1 + v > 0, "a nonzero number > -1 (1 + eta > 0)"),
    "pad": (lambda v: v >= 0, "a number >= 0 (pixels)"),
    "blur": (lambda v: v >= 0, "a number >= 0 (pixels)"),
    "slices": (lambda v: len(v) == 2 and 0 <= v[0] < v[1] <= 1, "[lo, hi] with 0 <= lo < hi <= 1"),
    "size": (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "[lo, hi] with 0 < lo <= hi"),
    "shift": (lambda v: v >= 0, "a number >= 0"),
}


def _check_param(family: str, key: str, value: Any, default: Any) -> None:
    """Raise a one-line error unless ``value`` has the type of ``default`` and a valid value."""

    def is_int(x):
        return isinstance(x, int | np.integer) and not isinstance(x, bool)

    def is_real(x):
        return (is_int(x) or isinstance(x, float | np.floating)) and math.isfinite(x)

    if isinstance(default, tuple):
        item = is_int if all(is_int(d) for d in default) else is_real
        ok = isinstance(value, list | tuple) and all(item(v) for v in value)
        kind = "a list of integers" if item is is_int else "a list of numbers"
    elif is_int(default):
        ok, kind = is_int(value), "an integer"
    else:
        ok, kind = is_real(value), "a finite number"
    test, expected = _PARAM_RANGES.get(key, (lambda v: True, kind))
    if not ok or not test(value):
        raise UserInputError(
            f"family {family!r} parameter {key}={value!r}: expected {expected if ok else kind}"
        )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _defaults(func: Callable) -> dict[str, Any]:
    import inspect

    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


#: Registry of the perturbation families, name -> :class:`Family`.
FAMILIES: dict[str, Family] = {
    f.__name__: Family(f.__name__, f, _defaults(f))
    for f in (squares, triangles, shepp_logan, brain)
}


def get_family(name: str) -> Family:
    """The family called ``name``; an unknown name raises a ValueError listing the known ones."""
    key = name.replace("-", "_")
    if key not in FAMILIES:
        raise UserInputError(f"unknown family {name!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[key]
