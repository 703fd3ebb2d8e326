"""Receiver readers and the derivatives of the data: jvp/vjp (Taylor and dot-product tests)."""

import numpy as np
import pytest

from msinv.core import taylor_test
from msinv.scattering import Geometry, HelmholtzSolver, simulate
from msinv.scattering.analytic import disk_data, pixel_disk

READERS = ["representation", "cubic", "bilinear"]


def _smooth(g, rng, amp=0.2):
    xx, yy = np.meshgrid(g.x, g.y)
    c = rng.uniform(-0.15, 0.15, size=2)
    return amp * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * 0.1**2))


def test_readers_against_the_disk_at_8_points_per_wavelength():
    """On the half-size paper grid at 8 points per wavelength the representation formula
    is the most accurate reader and bilinear interpolation the least (measured values are
    reported in docs/scattering.md by benchmarks/scatter_generate.py --readers)."""
    g = Geometry.paper(40)
    f = 10.0 * 39 / 79
    eta = pixel_disk(g, 0.2, 0.2)
    ref = disk_data(g, f, 0.2, 0.2)
    err = {}
    for reader in READERS:
        d = simulate(eta, g, f, dtype=np.complex128, receiver_interpolation=reader)[0]
        err[reader] = np.linalg.norm(d - ref) / np.linalg.norm(ref)
    assert err["representation"] < 0.02
    assert err["representation"] < err["cubic"] < err["bilinear"]
    assert err["bilinear"] > 0.02


@pytest.mark.parametrize("reader", READERS)
def test_jvp_vjp_dot_product(rng, reader):
    g = Geometry(n=16, pml_width=4, n_sources=5, n_receivers=6)
    s = HelmholtzSolver(g, _smooth(g, rng), 2.0, scheme=4, receiver_interpolation=reader)
    deta = rng.standard_normal((16, 16))
    r = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    lhs = np.vdot(r, s.jvp(deta)).real
    rhs = np.vdot(deta, s.vjp(r))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)


@pytest.mark.parametrize("reader", READERS)
def test_misfit_gradient_taylor(rng, reader):
    """J(eta + t d) - J(eta) - t <grad, d> = O(t^2) with grad = vjp(data - d_obs)."""
    g = Geometry(n=16, pml_width=4, n_sources=5, n_receivers=6)
    eta = _smooth(g, rng)
    d_obs = HelmholtzSolver(g, _smooth(g, rng, 0.3), 2.0, receiver_interpolation=reader).data()

    def misfit(e):
        return (
            0.5
            * np.linalg.norm(
                HelmholtzSolver(g, e, 2.0, receiver_interpolation=reader).data() - d_obs
            )
            ** 2
        )

    s = HelmholtzSolver(g, eta, 2.0, receiver_interpolation=reader)
    grad = s.vjp(s.data() - d_obs)
    direction = rng.standard_normal((16, 16)) * 0.05
    res = taylor_test(misfit, eta, direction, grad, steps=[1e-1, 5e-2, 2.5e-2])
    # Without the gradient term the remainder decays only linearly: the test can fail.
    assert np.log2(res.zeroth[-2] / res.zeroth[-1]) < 1.3


def test_jvp_matches_finite_difference(rng):
    g = Geometry(n=16, pml_width=4, n_sources=3, n_receivers=4)
    eta, deta = _smooth(g, rng), _smooth(g, rng, 1.0)
    s = HelmholtzSolver(g, eta, 2.5)
    t = 1e-6
    fd = (
        HelmholtzSolver(g, eta + t * deta, 2.5).data()
        - HelmholtzSolver(g, eta - t * deta, 2.5).data()
    ) / (2 * t)
    np.testing.assert_allclose(s.jvp(deta), fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())


def test_bad_residual_shape():
    s = HelmholtzSolver(Geometry.paper(16), np.zeros((16, 16)), 1.0)
    with pytest.raises(ValueError, match=r"expected \(16, 16\)"):
        s.vjp(np.zeros((3, 3)))
