"""GRAV3D observations / locations / predicted / topography / weights files; the v6 example."""

from __future__ import annotations

import discretize
import numpy as np

from msinv.gravity.control import (
    read_inversion_control,
    read_pfweight_control,
    read_sensitivity_control,
)
from msinv.gravity.ubc import read_mesh, read_model
from msinv.gravity.ubc_data import (
    GravityData,
    ObjectiveWeights,
    read_locations,
    read_observations,
    read_predicted,
    read_topography,
    read_weights,
    write_data,
    write_topography,
    write_weights,
)


def _data(rng, n=7):
    loc = rng.uniform(-500, 500, (n, 3))
    return GravityData(loc, rng.standard_normal(n) * 1e-2, rng.uniform(1e-4, 1e-3, n))


def test_observations_predicted_locations_roundtrip(tmp_path, rng):
    data = _data(rng)
    write_data(tmp_path / "d.grv", data, comment="test data")
    back = read_observations(tmp_path / "d.grv")
    for name in ("locations", "values", "std"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    write_data(tmp_path / "d.pre", GravityData(data.locations, data.values))
    pre = read_predicted(tmp_path / "d.pre")
    np.testing.assert_array_equal(pre.values, data.values)
    assert pre.std is None
    write_data(tmp_path / "d.loc", GravityData(data.locations))
    for name in ("d.loc", "d.pre", "d.grv"):  # stations come from any of the three
        np.testing.assert_array_equal(read_locations(tmp_path / name).locations, data.locations)


def test_comments_anywhere_and_trailing_comment_on_ndat(tmp_path):
    text = "! survey A\n! units mGal\n2   ! number of data\n0 0 1 0.5 0.01\n! a note\n1 0 1 0.6 0.02 ! last\n"
    (tmp_path / "d.grv").write_text(text)
    data = read_observations(tmp_path / "d.grv")
    np.testing.assert_array_equal(data.values, [0.5, 0.6])
    np.testing.assert_array_equal(data.std, [0.01, 0.02])


def test_topography_roundtrip(tmp_path, rng):
    points = rng.uniform(-100, 100, (11, 3))
    write_topography(tmp_path / "t.txt", points, comment="topo")
    np.testing.assert_array_equal(read_topography(tmp_path / "t.txt"), points)


def test_weights_roundtrip_and_file_order(tmp_path, rng):
    mesh = discretize.TensorMesh([np.ones(3), np.ones(2), np.ones(4)])
    shapes = [(3, 2, 4), (2, 2, 4), (3, 1, 4), (3, 2, 3)]
    weights = ObjectiveWeights(*(rng.random(s) for s in shapes))
    write_weights(tmp_path / "w.txt", weights)
    back = read_weights(tmp_path / "w.txt", mesh)
    for name in "sxyz":
        np.testing.assert_array_equal(getattr(back, name), getattr(weights, name))
    values = np.loadtxt(tmp_path / "w.txt")
    assert values.size == sum(np.prod(s) for s in shapes)
    # first value: top cell (z index 3 from the bottom) of the south-west column
    assert values[0] == weights.s[0, 0, 3]
    # the x-interface part starts right after the cells, with the same ordering
    assert values[24] == weights.x[0, 0, 3] and values[25] == weights.x[0, 0, 2]


def test_every_file_of_the_v6_example_is_accepted(grav3d_example):
    ex = grav3d_example
    mesh = read_mesh(ex / "fwd" / "mesh.txt")
    assert mesh.shape_cells == (76, 76, 38)
    np.testing.assert_allclose(mesh.nodes_z[-1], 0.0, atol=1e-9)  # top corner Z0 = 0
    np.testing.assert_allclose(mesh.origin[:2], [-1220.299958, -1220.299958])
    for folder in ("inv_L2", "inv_sparse", "model", "pfweight"):
        other = read_mesh(ex / folder / "mesh.txt")
        assert all(np.array_equal(a, b) for a, b in zip(other.h, mesh.h, strict=True))
    model = read_model(ex / "fwd" / "model.den", mesh)
    block = mesh.cell_centers[model == 0.1]
    assert set(np.unique(model)) == {0.0, 0.1}
    assert block[:, 2].min() > -400 and block[:, 2].max() < -200
    assert np.abs(block[:, :2]).max() < 100
    stations = read_locations(ex / "fwd" / "survey.loc")
    assert stations.n_data == 676
    for folder in ("inv_L2", "inv_sparse", "pfweight"):
        obs = read_observations(ex / folder / "dobs.grv")
        np.testing.assert_array_equal(obs.locations, stations.locations)
        np.testing.assert_array_equal(obs.std, 5e-4)
    for folder in ("inv_L2", "inv_sparse"):
        weights = read_model(ex / folder / "distance_weight.txt", mesh)
        assert weights.min() > 0
        sens = read_sensitivity_control(ex / folder / "sens.inp")
        assert sens.mesh_file == ex.resolve() / folder / "mesh.txt"
        assert sens.weights_file.name == "distance_weight.txt"
        inv = read_inversion_control(ex / folder / "inv.inp")
        assert inv.obs_file == ex.resolve() / folder / "dobs.grv"
        assert inv.chifact == 1.0 and inv.tolc == 0.02 and inv.target_misfit(obs.n_data) == 676
    pf = read_pfweight_control(ex / "pfweight" / "pfweight.inp")
    assert pf.weighting == "distance" and pf.field == "GRAV"
