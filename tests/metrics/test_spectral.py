"""Radial power spectrum (pysteps convention) and MELR."""

from __future__ import annotations

import numpy as np
import pytest

from msinv.metrics import melr, rapsd


def _rapsd_loop(field):
    """Hand loop in the pysteps convention (centred ogrid coordinates, rounded radii)."""
    m, n = field.shape
    s1 = np.s_[-(m // 2) : m // 2 + (m % 2)]
    s2 = np.s_[-(n // 2) : n // 2 + (n % 2)]
    yc, xc = np.ogrid[s1, s2]
    r_grid = np.sqrt(xc * xc + yc * yc).round()
    size = max(m, n)
    r_range = np.arange(0, size // 2 + 1) if size % 2 else np.arange(0, size // 2)
    psd = np.fft.fftshift(np.fft.fft2(field))
    psd = np.abs(psd) ** 2 / psd.size
    return np.array([np.mean(psd[r_grid == r]) for r in r_range])


@pytest.mark.parametrize("shape", [(80, 80), (9, 7), (16, 16)])
def test_rapsd_matches_a_hand_loop(shape, rng):
    field = rng.standard_normal(shape)
    ours = rapsd(field)
    np.testing.assert_allclose(ours, _rapsd_loop(field), rtol=1e-12)
    if shape == (80, 80):
        assert ours.shape == (40,)


def test_rapsd_of_a_constant_is_all_in_bin_zero():
    spectrum = rapsd(np.full((2, 8, 8), 3.0))
    np.testing.assert_allclose(spectrum[:, 0], 9.0 * 64)
    np.testing.assert_allclose(spectrum[:, 1:], 0.0, atol=1e-20)


def test_melr_hand_cases(rng):
    target = rng.standard_normal((2, 16, 16))
    np.testing.assert_allclose(melr(target, target), 0.0, atol=1e-14)
    for weighted in (False, True):  # doubling the image multiplies the power by 4 everywhere
        np.testing.assert_allclose(melr(2 * target, target, weighted=weighted), np.log(4.0))
    assert melr.lower_is_better


def test_melr_weights_follow_the_reference_energy(rng):
    target = rng.standard_normal((16, 16))
    pred = target + 0.3 * rng.standard_normal((16, 16))
    e_p, e_r = rapsd(pred), rapsd(target)
    log_ratio = np.abs(np.log(e_p / e_r))
    assert melr(pred, target) == pytest.approx(log_ratio.mean())
    assert melr(pred, target, weighted=True) == pytest.approx(np.sum(e_r * log_ratio) / e_r.sum())
