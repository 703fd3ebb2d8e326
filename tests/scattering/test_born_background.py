"""Linearisation about a non-zero background: the derivative of the data there, and the
Born least-squares inversion that starts from it."""

from __future__ import annotations

import numpy as np

from msinv.scattering import Geometry, simulate
from msinv.scattering.born_ls import LinearisedData, born_ls

GEOM = Geometry(n=16, pml_width=4, n_sources=6, n_receivers=8)
FREQS = [1.5, 3.0]
SCHEME = 4


def _bump(centre, width, amp):
    x, y = np.meshgrid(GEOM.x, GEOM.y)
    return amp * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / width)


BACKGROUND = _bump((0.1, -0.05), 0.03, 0.4)


def _data(eta):
    return simulate(eta, GEOM, FREQS, scheme=SCHEME, dtype=np.complex128)


def test_jacobian_at_a_background_is_the_derivative_there():
    delta = _bump((-0.1, 0.1), 0.02, 1.0)
    op = LinearisedData(GEOM, FREQS, background=BACKGROUND, scheme=SCHEME)
    np.testing.assert_allclose(op.background_data(), _data(BACKGROUND), rtol=1e-10, atol=0)
    jd = op.forward(delta)
    jd = jd[..., 0] + 1j * jd[..., 1]
    errs = []
    for eps in (1e-3, 5e-4):  # central differences: second order in eps
        fd = (_data(BACKGROUND + eps * delta) - _data(BACKGROUND - eps * delta)) / (2 * eps)
        errs.append(np.linalg.norm(fd - jd) / np.linalg.norm(jd))
    assert errs[0] < 1e-4 and 3.0 < errs[0] / errs[1] < 5.0, errs
    # the background matters: the Born operator (at zero) gives another answer
    born = LinearisedData(GEOM, FREQS, scheme=SCHEME).forward(delta)
    assert np.linalg.norm(born[..., 0] + 1j * born[..., 1] - jd) > 0.05 * np.linalg.norm(jd)


def test_born_ls_about_the_true_background_keeps_it():
    """Data of eta_b + a small delta, inverted about eta_b: the estimate is eta_b plus a
    perturbation that fits the residual data, far closer than the Born (about zero) one."""
    delta = _bump((-0.1, 0.1), 0.02, 0.01)
    est = born_ls(
        _data(BACKGROUND + delta), GEOM, FREQS, background=BACKGROUND, scheme=SCHEME, iterations=30
    )
    about_zero = born_ls(_data(BACKGROUND + delta), GEOM, FREQS, scheme=SCHEME, iterations=30)
    err = np.linalg.norm(est - BACKGROUND - delta) / np.linalg.norm(delta)
    assert err < 0.5
    assert np.linalg.norm(about_zero - BACKGROUND - delta) > 2 * np.linalg.norm(
        est - BACKGROUND - delta
    )
