"""Active cells the GRAV3D way: cells completely below the triangulated topography."""

from __future__ import annotations

import discretize
import numpy as np
from discretize.utils import active_from_xyz

from msinv.gravity.topography import active_from_topography, surface_minimum


def _mesh():
    return discretize.TensorMesh(
        [np.full(12, 10.0), np.full(9, 10.0), np.full(10, 10.0)], origin=(0.0, 0.0, -100.0)
    )


def test_tilted_plane_matches_the_analytic_rule(rng):
    mesh = _mesh()
    xy = rng.uniform(-30, 160, (200, 2))
    plane = lambda x, y: 0.3 * x - 0.2 * y - 30.0  # noqa: E731
    active = active_from_topography(mesh, np.column_stack([xy, plane(*xy.T)]))
    cc = mesh.cell_centers
    # lowest point of the plane over a footprint: the west-north corner
    expected = cc[:, 2] + 5.0 <= plane(cc[:, 0] - 5.0, cc[:, 1] + 5.0)
    np.testing.assert_array_equal(active, expected)
    # a strictly smaller set than discretize's cell-centre test
    centres = active_from_xyz(mesh, np.column_stack([xy, plane(*xy.T)]))
    assert np.all(centres[active]) and centres.sum() > active.sum()


def test_minimum_is_exact_for_a_rough_surface(rng):
    mesh = _mesh()
    xy = rng.uniform(-30, 160, (60, 2))
    points = np.column_stack([xy, rng.uniform(-60, 0, 60)])
    lowest = surface_minimum(mesh, points)
    # brute force: the linear interpolant sampled densely inside every footprint
    import matplotlib.tri as mtri

    surface = mtri.LinearTriInterpolator(mtri.Triangulation(xy[:, 0], xy[:, 1]), points[:, 2])
    s = np.linspace(0, 1, 41)
    for i in range(0, 12, 3):
        for j in range(0, 9, 2):
            gx, gy = np.meshgrid(10 * i + 10 * s, 10 * j + 10 * s)
            sampled = surface(gx, gy)
            if np.ma.count_masked(sampled):
                continue  # footprint leaves the hull: nearest-point extension, not tested here
            assert lowest[i, j] <= sampled.min() + 1e-9
            assert lowest[i, j] >= sampled.min() - 0.2  # sampling misses at most a sliver


def test_flat_and_missing_topography(rng):
    mesh = _mesh()
    assert active_from_topography(mesh, None).all()
    flat = np.array([[-10.0, -10.0, -35.0], [200.0, -10.0, -35.0], [0.0, 200.0, -35.0]])
    active = active_from_topography(mesh, flat)
    np.testing.assert_array_equal(active, mesh.cell_centers[:, 2] + 5.0 <= -35.0)
    one_point = active_from_topography(mesh, np.array([[50.0, 50.0, -20.0]]))
    np.testing.assert_array_equal(one_point, mesh.cell_centers[:, 2] + 5.0 <= -20.0)
