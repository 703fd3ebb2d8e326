"""Sparse ℓp model norm in Born least squares (``reg="lp:W:P"``) through the core IRLS driver."""

import numpy as np

from msinv.scattering import invert
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import simulate

GEOM = Geometry(n=20, pml_width=4, n_sources=8, n_receivers=12)
FREQS = [1.5, 3.0]


def test_lp_norm_recovers_a_sparse_contrast_better_than_tikhonov(rng):
    eta = np.zeros((GEOM.n, GEOM.n))
    eta[6, 7], eta[12, 13], eta[9, 4] = 0.02, 0.015, -0.02  # three point scatterers
    data = simulate(eta, GEOM, FREQS, scheme=8, dtype=np.complex128)
    e = rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)
    noisy = data + 0.01 * np.linalg.norm(data) * e / np.linalg.norm(e)
    tik = invert(noisy, GEOM, FREQS, method="born", reg="tikhonov:1e-3")
    lp = invert(noisy, GEOM, FREQS, method="born", reg="lp:1e-3:1")
    err = [np.linalg.norm(x - eta) / np.linalg.norm(eta) for x in (tik, lp)]
    assert err[1] < 0.8 * err[0]
    # sparser: fewer pixels above a tenth of the peak
    count = [np.count_nonzero(np.abs(x) > 0.1 * np.abs(x).max()) for x in (tik, lp)]
    assert count[1] < count[0]
