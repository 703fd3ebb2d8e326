"""Linearisation about a non-zero background: the derivative of the data there, and the
Born least-squares inversion that starts from it."""

from __future__ import annotations

import numpy as np
import pytest

from msinv.scattering import simulate
from msinv.scattering.born_ls import LinearisedData, born_ls

FREQS = [1.5, 3.0]
SCHEME = 4


@pytest.fixture
def case(small_geometry, bump):
    """(geometry, background, perturbation shape, data of a contrast)."""
    g = small_geometry

    def data(eta):
        return simulate(eta, g, FREQS, scheme=SCHEME, dtype=np.complex128)

    return g, bump(g, (0.1, -0.05), 0.03, 0.4), bump(g, (-0.1, 0.1), 0.02, 1.0), data


def test_jacobian_at_a_background_is_the_derivative_there(case):
    g, background, delta, data = case
    op = LinearisedData(g, FREQS, background=background, scheme=SCHEME)
    np.testing.assert_allclose(op.background_data(), data(background), rtol=1e-10, atol=0)
    jd = op.forward(delta)
    jd = jd[..., 0] + 1j * jd[..., 1]
    errs = []
    for eps in (1e-3, 5e-4):  # central differences: second order in eps
        fd = (data(background + eps * delta) - data(background - eps * delta)) / (2 * eps)
        errs.append(np.linalg.norm(fd - jd) / np.linalg.norm(jd))
    assert errs[0] < 1e-4 and 3.0 < errs[0] / errs[1] < 5.0, errs
    # the background matters: the Born operator (at zero) gives another answer
    born = LinearisedData(g, FREQS, scheme=SCHEME).forward(delta)
    assert np.linalg.norm(born[..., 0] + 1j * born[..., 1] - jd) > 0.05 * np.linalg.norm(jd)


def test_born_ls_about_the_true_background_keeps_it(case):
    """Data of eta_b + a small delta, inverted about eta_b: the estimate is eta_b plus a
    perturbation that fits the residual data, far closer than the Born (about zero) one."""
    g, background, shape, data = case
    delta = 0.01 * shape
    d = data(background + delta)
    est = born_ls(d, g, FREQS, background=background, scheme=SCHEME, iterations=30)
    about_zero = born_ls(d, g, FREQS, scheme=SCHEME, iterations=30)
    err = np.linalg.norm(est - background - delta) / np.linalg.norm(delta)
    assert err < 0.5
    assert np.linalg.norm(about_zero - background - delta) > 2 * np.linalg.norm(
        est - background - delta
    )
