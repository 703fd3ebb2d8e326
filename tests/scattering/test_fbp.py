"""Filtered back-projection from far-field data recovers a weak smooth contrast (Born regime)."""

import numpy as np

from msinv.scattering import Geometry, simulate
from msinv.scattering.born_ls import filtered_backprojection


def test_filtered_backprojection_recovers_a_weak_bump():
    g = Geometry.paper(40)
    xx, yy = np.meshgrid(g.x, g.y)
    eta = 0.05 * np.exp(-((xx - 0.1) ** 2 + (yy + 0.05) ** 2) / (2 * 0.08**2))
    freqs = [1.25, 2.5, 5.0]
    data = simulate(eta, g, freqs, scheme=8, dtype=np.complex128)
    estimate = filtered_backprojection(data, g, freqs, eps=1e-2)
    assert np.linalg.norm(estimate - eta) / np.linalg.norm(eta) < 0.1
    # the peak sits where the bump is (x = 0.1, y = -0.05): rows are y, columns x
    iy, ix = np.unravel_index(np.argmax(estimate), estimate.shape)
    assert abs(g.x[ix] - 0.1) < 2 * g.h and abs(g.y[iy] + 0.05) < 2 * g.h
