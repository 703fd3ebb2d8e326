"""The second, independent solver (FFT Lippmann-Schwinger) and its cross-check of the FD one."""

import numpy as np
import pytest

from msinv.scattering import Geometry, HelmholtzSolver
from msinv.scattering.analytic import disk_data, pixel_disk
from msinv.scattering.lippmann_schwinger import lippmann_schwinger_data


def _geometry(n):
    return Geometry(n=n, pml_width=(n - 1) // 4, n_sources=6, n_receivers=8)


def _bump(g):
    xx, yy = np.meshgrid(g.x, g.y)
    return 0.3 * np.exp(-((xx - 0.05) ** 2 + (yy + 0.03) ** 2) / (2 * 0.08**2))


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_lippmann_schwinger_matches_the_disk_series():
    g = _geometry(41)
    ref = disk_data(g, 2.0, 0.2, 0.2)
    assert _rel(lippmann_schwinger_data(pixel_disk(g, 0.2, 0.2), g, 2.0), ref) < 5e-3


def test_lippmann_schwinger_is_spectral_on_a_smooth_bump():
    d33 = lippmann_schwinger_data(_bump(_geometry(33)), _geometry(33), 2.0)
    d65 = lippmann_schwinger_data(_bump(_geometry(65)), _geometry(65), 2.0)
    assert _rel(d33, d65) < 1e-6


@pytest.mark.parametrize(("n", "budget"), [(33, 2e-3), (65, 5e-4)])
def test_fd_solver_agrees_with_lippmann_schwinger(n, budget):
    """Two independent discretisations (FD + PML vs spectral integral equation) agree, and the
    gap closes as the FD grid is refined."""
    g = _geometry(n)
    ls = lippmann_schwinger_data(_bump(g), g, 2.0)
    fd = HelmholtzSolver(g, _bump(g), 2.0, scheme=8).data()
    assert _rel(fd, ls) < budget
