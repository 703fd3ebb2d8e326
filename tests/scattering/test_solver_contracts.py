"""Input contracts of the FD solver that a wrong guard would break silently.

Written from the survivors of the sampled mutation run (docs/testing.md): each test states
what the solver must refuse, so that a dropped or loosened check fails here.
"""

import numpy as np
import pytest

from msinv.core.errors import UserInputError
from msinv.scattering import Geometry, HelmholtzSolver
from msinv.scattering.schemes import resolve_scheme


def test_solver_refuses_a_batch_of_images(small_geometry, bump):
    """One solver is one medium: a (b, n, n) batch is refused, not cut to its first image."""
    eta = bump(small_geometry)
    with pytest.raises(UserInputError, match=r"\(n, n\)"):
        HelmholtzSolver(small_geometry, np.stack([eta, 2 * eta]), 2.0)
    with pytest.raises(UserInputError):
        HelmholtzSolver(small_geometry, eta[None], 2.0)


def test_vjp_refuses_a_transposed_residual(small_geometry, bump):
    """The residual is (n_receivers, n_sources); its transpose is refused with one line."""
    g = small_geometry
    assert g.n_receivers != g.n_sources
    solver = HelmholtzSolver(g, bump(g), 2.0)
    residual = np.ones((g.n_sources, g.n_receivers), complex)
    with pytest.raises(UserInputError, match="residual has shape"):
        solver.vjp(residual)


@pytest.mark.parametrize("reader", ["representation", "cubic", "bilinear"])
def test_jvp_about_an_empty_medium_is_the_born_derivative(small_geometry, bump, reader):
    """About eta = 0 the data vanish, so jvp(d) is the central difference of data(+-t d)
    (the Born approximation), and it is linear: jvp(0) = 0."""
    g = small_geometry
    kw = {"receiver_interpolation": reader, "dtype": np.complex128}
    s = HelmholtzSolver(g, np.zeros((g.n, g.n)), 2.0, **kw)
    d = bump(g, amp=1.0)
    t = 1e-6
    fd = (
        HelmholtzSolver(g, t * d, 2.0, **kw).data() - HelmholtzSolver(g, -t * d, 2.0, **kw).data()
    ) / (2 * t)
    np.testing.assert_allclose(s.jvp(d), fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())
    np.testing.assert_array_equal(s.jvp(np.zeros((g.n, g.n))), 0.0)


def test_auto_policy_chooses_a_scheme_at_every_frequency():
    """ "auto" covers every points-per-wavelength value (its last limit is 0, not a gap) and
    never lowers the order as the frequency rises."""
    g = Geometry.paper(40)
    ppw = np.array([100.0, 24.0, 23.9, 12.0, 11.9, 3.0, 0.9, 0.1])
    orders = [resolve_scheme("auto", 1.0 / (p * g.h), g).order for p in ppw]
    assert orders == sorted(orders)
    assert orders[0] < orders[-1]
