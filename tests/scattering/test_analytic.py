"""The disk series oracle itself: convergence of the series and a consistency check."""

import numpy as np
import pytest

from msinv.scattering.analytic import disk_coefficients, disk_data, pixel_disk
from msinv.scattering.geometry import Geometry


def test_series_is_truncated_far_enough():
    a = disk_coefficients(2 * np.pi * 10, 0.3, 0.5, 80)
    # The coefficients decay super-exponentially beyond k1 a: the tail is negligible.
    assert np.abs(a[[0, -1]]).max() < 1e-30 * np.abs(a).max()


def test_small_contrast_matches_born_series():
    """For eta -> 0 the exact data are linear in eta (first-order Born)."""
    g = Geometry.paper(32)
    d1 = disk_data(g, 2.0, 0.2, 1e-4)
    d2 = disk_data(g, 2.0, 0.2, 2e-4)
    np.testing.assert_allclose(d2, 2 * d1, rtol=2e-3)


def test_off_centre_disk_is_the_centred_one_shifted(rng):
    """Translating the disk multiplies the far field by exp(i omega (s - r).c)."""
    g = Geometry(n=32, n_sources=8, n_receivers=8, receiver_radius=200.0)
    c = np.array([0.05, -0.08])
    omega = 2 * np.pi * 1.5
    d0 = disk_data(g, 1.5, 0.2, 0.3)
    dc = disk_data(g, 1.5, 0.2, 0.3, centre=tuple(c))
    r_hat = g.receiver_points / g.receiver_radius
    phase = np.exp(
        1j * omega * (g.source_directions @ c)[None, :] - 1j * omega * (r_hat @ c)[:, None]
    )
    np.testing.assert_allclose(dc, d0 * phase, rtol=2e-3, atol=2e-3 * np.abs(d0).max())


def test_pixel_disk_area():
    g = Geometry.paper(80)
    eta = pixel_disk(g, 0.3, 0.2)
    assert eta.shape == (80, 80)
    assert np.isclose(eta.sum() * g.h**2, 0.2 * np.pi * 0.09, rtol=1e-3)


def test_receiver_inside_disk_is_rejected():
    with pytest.raises(ValueError, match="inside the disk"):
        disk_data(Geometry.paper(32), 2.0, 0.6, 0.2)
