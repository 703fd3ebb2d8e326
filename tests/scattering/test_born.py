"""Born operator (linearisation of simulate at eta = 0) and the analytic back-projection."""

import numpy as np
import pytest

from msinv.core.operator import dottest
from msinv.scattering import BackProjection, BornOperator, Geometry, simulate
from msinv.scattering.born import near_to_far


def _bump(g):
    xx, yy = np.meshgrid(g.x, g.y)
    return np.exp(-((xx - 0.05) ** 2 + (yy + 0.1) ** 2) / (2 * 0.07**2))


@pytest.mark.parametrize("reader", ["representation", "cubic"])
def test_born_limit(reader):
    """simulate(eps eta) / eps -> Born(eta) linearly in eps."""
    g = Geometry.paper(24)
    eta, freqs = _bump(g), [1.0, 2.5]
    born = BornOperator(g, freqs, receiver_interpolation=reader).forward(eta)
    errs = []
    for eps in (1e-2, 5e-3):
        d = simulate(eps * eta, g, freqs, dtype=np.complex128, receiver_interpolation=reader)
        errs.append(np.linalg.norm(d / eps - born) / np.linalg.norm(born))
    assert errs[0] < 0.05
    assert 1.8 < errs[0] / errs[1] < 2.2  # the remainder is first order in eps


@pytest.mark.parametrize("reader", ["representation", "cubic", "bilinear"])
def test_born_dot_product(rng, reader):
    g = Geometry(n=16, pml_width=4, n_sources=5, n_receivers=7)
    dottest(BornOperator(g, [1.0, 3.0], scheme=6, receiver_interpolation=reader), rng)


def test_near_to_far_matches_the_far_field_born_map():
    """Born near-field data (representation reader, exact) mapped to the far field equal the
    analytic far-field Born map: checks the transform, its constant and the conventions."""
    g = Geometry.paper(24)
    eta = _bump(g)
    for f in (1.0, 2.5):
        near = BornOperator(g, [f]).forward(eta)[0]
        far = BackProjection(g, [f]).far_field_born(eta)[0]
        assert np.linalg.norm(near_to_far(near, g, f) - far) < 1e-6 * np.linalg.norm(far)


def test_far_field_reciprocity_and_near_field_asymmetry():
    """u_inf(r, s) = u_inf(-s, -r): with sources at pi + 2 pi k / n the far-field data matrix
    is symmetric; the raw R = 0.5 data are not."""
    g = Geometry.paper(24)
    eta = np.zeros((24, 24))
    eta[4:10, 12:19] = 0.2
    d = simulate(eta, g, 2.0, dtype=np.complex128)[0]
    far = near_to_far(d, g, 2.0)
    # Limited by the discretisation (the PML-stretched FD operator is not exactly symmetric).
    assert np.linalg.norm(far - far.T) < 3e-3 * np.linalg.norm(far)
    assert np.linalg.norm(d - d.T) > 0.05 * np.linalg.norm(d)


def test_back_projection_peaks_at_the_scatterer():
    g = Geometry.paper(32)
    eta = np.zeros((32, 32))
    eta[20:24, 8:12] = 0.1  # y > 0, x < 0
    freqs = [2.5, 5.0]
    alpha = BackProjection(g, freqs).forward(simulate(eta, g, freqs, dtype=np.complex128))
    iy, ix = np.unravel_index(np.abs(alpha.sum(0)).argmax(), (32, 32))
    assert 19 <= iy <= 24 and 7 <= ix <= 12


def test_back_projection_dot_product_far_field_input(rng):
    dottest(
        BackProjection(Geometry(n=16, n_sources=4, n_receivers=6), [1.5], far_field_input=True), rng
    )
