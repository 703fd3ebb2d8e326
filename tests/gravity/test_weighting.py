"""Depth and distance weights: normalisation, monotonicity, agreement with GRAV3D's file."""

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.gravity.weighting import depth_weighting, distance_weighting


def _mesh():
    return TensorMesh(
        [np.full(6, 10.0), np.full(5, 10.0), np.full(8, 10.0)], origin=[-30, -25, -80]
    )


def test_depth_weighting_decays_with_depth_and_is_normalised():
    mesh = _mesh()
    w = depth_weighting(mesh, 0.0).reshape(mesh.shape_cells, order="F")
    assert w.max() == pytest.approx(1.0)
    layers = w[0, 0, :]
    assert np.all(np.diff(layers) > 0)  # z index runs bottom -> top
    # thin cells far below: w ~ (z + z0)^(-alpha/2)
    z = -mesh.cell_centers_z
    ratio = layers[0] / layers[1]
    assert ratio == pytest.approx((z[1] + 5) / (z[0] + 5), rel=0.02)


def test_distance_weighting_is_largest_near_the_stations():
    mesh = _mesh()
    st = np.array([[0.0, 0.0, 1.0], [10.0, 5.0, 1.0]])
    w = distance_weighting(mesh, st)
    assert w.max() == pytest.approx(1.0)
    near = np.argmin(np.linalg.norm(mesh.cell_centers - st[0], axis=1))
    assert w[near] > 0.9
    assert w.min() < 0.2
    with pytest.raises(ValueError, match="R0"):
        distance_weighting(mesh, st, r0=-1)


def test_distance_weights_match_the_v6_file(grav3d_example):
    mesh = TensorMesh.read_UBC(str(grav3d_example / "inv_L2" / "mesh.txt"))
    ref = TensorMesh.read_model_UBC(mesh, str(grav3d_example / "inv_L2" / "distance_weight.txt"))
    obs = np.loadtxt(grav3d_example / "inv_L2" / "dobs.grv", skiprows=1)
    w = distance_weighting(mesh, obs[:, :3])
    # cell-centre integral vs GRAV3D's: within 4 % everywhere
    np.testing.assert_allclose(w, ref, rtol=0.04)
