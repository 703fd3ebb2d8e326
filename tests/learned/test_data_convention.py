"""Simulated data reach the learned front ends in the convention they expect.

A point-like scatterer is simulated by the forward solver, written to a dataset store, read by
the training-data loader, normalised and back-projected: the peak of the analytical
back-projection |F* Lambda| must sit on the scatterer. Conjugated data (the other time
convention) move the peak to the mirror pixel, so this test catches a conjugation anywhere
on the way (solver, store, loader, normalisation).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from msinv.learned.backprojection import build_backprojection
from msinv.learned.data import Normalisation, PairDataset, load_pairs
from msinv.scattering import Geometry, simulate
from msinv.scattering.dataset import DatasetConfig, create_empty, write_chunk

N, FREQS = 24, (2.5, 5.0)
CENTRES = [(0.2, -0.1), (-0.15, 0.25), (0.05, 0.3)]


@pytest.fixture(scope="module")
def scatterers(tmp_path_factory):
    geometry = Geometry.paper(N)
    xx, yy = np.meshgrid(geometry.x, geometry.y)  # rows are y
    h = geometry.x[1] - geometry.x[0]
    eta = np.stack(
        [0.05 * np.exp(-((xx - a) ** 2 + (yy - b) ** 2) / (2 * h**2)) for a, b in CENTRES]
    )
    data = simulate(eta, geometry, list(FREQS), scheme=4)
    path = tmp_path_factory.mktemp("conv") / "points.zarr"
    config = DatasetConfig(
        family="external", count=len(CENTRES), geometry=geometry, freqs=FREQS, chunk=len(CENTRES)
    )
    write_chunk(
        create_empty(path, config),
        config,
        0,
        {"eta": eta.astype(np.float32), "data": data.astype(np.complex64)},
    )
    return geometry, path


def _peak(image: np.ndarray, geometry) -> tuple[float, float]:
    iy, ix = np.unravel_index(np.argmax(image), image.shape)
    return float(geometry.x[ix]), float(geometry.y[iy])


def test_back_projection_peaks_on_the_scatterer_not_its_mirror(scatterers):
    geometry, path = scatterers
    pairs = load_pairs(path)
    ds = PairDataset(pairs, Normalisation.fit(pairs.eta, pairs.data))
    bp = build_backprojection("analytical", N, len(FREQS), freqs=FREQS, geometry=geometry)
    h = geometry.x[1] - geometry.x[0]
    with torch.no_grad():
        alpha = bp(ds.data).numpy()  # (b, 2 n_freq, n, n): real parts, then imaginary parts
    f = len(FREQS) - 1  # the highest frequency resolves best (half a wavelength: 2.3 pixels)
    for j, (a, b) in enumerate(CENTRES):
        mag = np.hypot(alpha[j, f], alpha[j, len(FREQS) + f])
        px, py = _peak(mag, geometry)
        assert np.hypot(px - a, py - b) <= 1.5 * h, (j, (px, py), (a, b))
        # the mirror pixel is weak: the test distinguishes the two conventions
        iy, ix = np.argmin(np.abs(geometry.y + b)), np.argmin(np.abs(geometry.x + a))
        assert mag[iy, ix] < 0.5 * mag.max()
    # the same data conjugated put the peak on the mirror point (what the test guards against)
    with torch.no_grad():
        mirror = bp(ds.data.conj()).numpy()
    mag = np.hypot(mirror[0, 1], mirror[0, 3])
    px, py = _peak(mag, geometry)
    assert np.hypot(px + CENTRES[0][0], py + CENTRES[0][1]) <= 1.5 * h


def test_normalisation_round_trip_and_moments(rng):
    eta = rng.uniform(-0.2, 0.5, (7, 6, 6))
    data = (
        rng.standard_normal((7, 2, 5, 5)) * [[[3.0]], [[0.2]]]
        + 1.5
        + 1j * (rng.standard_normal((7, 2, 5, 5)) - 0.7)
    )
    norm = Normalisation.fit(eta, data)
    # eta: centred per pixel, one scalar scale; the inverse restores the images (numpy, torch)
    e = norm.eta(eta).astype(np.float64)
    np.testing.assert_allclose(e.mean(axis=0), 0, atol=1e-6)
    assert e.std() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(norm.eta_inverse(e), eta, rtol=0, atol=1e-6)
    back = norm.eta_inverse(torch.from_numpy(e)).numpy()
    np.testing.assert_allclose(back, eta, rtol=0, atol=1e-6)
    # data: per frequency, real and imaginary parts together have mean 0 and std 1 ...
    d = norm.data(data).astype(np.complex128)
    parts = np.stack([d.real, d.imag], axis=1)  # (N, 2, f, r, s)
    np.testing.assert_allclose(parts.mean(axis=(0, 1, 3, 4)), 0, atol=1e-6)
    np.testing.assert_allclose(parts.std(axis=(0, 1, 3, 4)), 1, rtol=1e-5)
    # ... by the affine map (Lambda - m (1 + i)) / s, written out here (no conjugation)
    m, s = norm.data_mean[:, None, None], norm.data_std[:, None, None]
    np.testing.assert_allclose(d, (data - m * (1 + 1j)) / s, rtol=1e-5, atol=1e-6)
    # and the statistics survive a checkpoint
    again = Normalisation.from_state_dict(norm.state_dict())
    for field in ("eta_mean", "eta_std", "data_mean", "data_std"):
        np.testing.assert_array_equal(getattr(again, field), getattr(norm, field))
