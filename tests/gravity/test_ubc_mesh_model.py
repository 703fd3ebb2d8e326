"""UBC-GIF mesh and model files: exact round trips, discretize agreement, ordering, VTK."""

from __future__ import annotations

import discretize
import numpy as np
import pytest

from msinv.gravity.ubc import (
    ABOVE_TOPOGRAPHY,
    model_or_value,
    read_active,
    read_mesh,
    read_model,
    read_vtk,
    write_mesh,
    write_model,
    write_vtk,
)


def _mesh(rng, shape=(5, 4, 3)):
    h = [rng.uniform(1.0, 30.0, n) for n in shape]
    h[0][1:3] = 10.0  # a run to compress as n*w
    return discretize.TensorMesh(h, origin=rng.uniform(-1e3, 1e3, 3))


def test_mesh_roundtrip_exact(tmp_path, rng):
    mesh = _mesh(rng)
    write_mesh(tmp_path / "m.txt", mesh, comment="made by a test")
    back = read_mesh(tmp_path / "m.txt")
    assert all(np.array_equal(a, b) for a, b in zip(back.h, mesh.h, strict=True))
    np.testing.assert_allclose(back.origin, mesh.origin, rtol=0, atol=1e-12)
    # and writing what was read reproduces the text exactly
    write_mesh(tmp_path / "m2.txt", back, comment="made by a test")
    assert (tmp_path / "m.txt").read_text() == (tmp_path / "m2.txt").read_text()
    assert "2*10.0" in (tmp_path / "m.txt").read_text()


def test_mesh_top_corner_and_thickness_order(tmp_path):
    text = "! comment line\n2 3 4 ! NE NN NZ\n100 200 50\n2*10\n5 6 \n 7\n1 2 3 4\n"
    (tmp_path / "m.txt").write_text(text.replace("\n", "\r\n"))  # CRLF, wrapped north widths
    mesh = read_mesh(tmp_path / "m.txt")
    assert mesh.shape_cells == (2, 3, 4)
    np.testing.assert_array_equal(mesh.h[1], [5, 6, 7])
    np.testing.assert_array_equal(mesh.h[2], [4, 3, 2, 1])  # bottom → top in discretize
    np.testing.assert_array_equal(mesh.origin, [100, 200, 50 - 10])  # bottom-south-west
    assert mesh.nodes_z[-1] == 50.0  # the file's Z0 is the top (an elevation)
    assert mesh.cell_centers_z[-1] == 49.5  # top cell is 1 m thick


def test_mesh_agrees_with_discretize_both_ways(tmp_path, rng):
    mesh = _mesh(rng)
    write_mesh(tmp_path / "ours.txt", mesh)
    theirs = discretize.TensorMesh.read_UBC(str(tmp_path / "ours.txt"))
    mesh.write_UBC(str(tmp_path / "theirs.txt"))
    ours = read_mesh(tmp_path / "theirs.txt")
    for a, b in ((theirs, mesh), (ours, theirs)):
        np.testing.assert_allclose(a.origin, b.origin, rtol=0, atol=1e-6)  # discretize: %.6f
        for ha, hb in zip(a.h, b.h, strict=True):
            np.testing.assert_allclose(ha, hb, rtol=0, atol=1e-6)


def test_model_roundtrip_and_order_match_discretize(tmp_path, rng):
    mesh = _mesh(rng)
    model = rng.standard_normal(mesh.n_cells)
    write_model(tmp_path / "ours.den", mesh, model)
    np.testing.assert_array_equal(read_model(tmp_path / "ours.den", mesh), model)
    np.testing.assert_array_equal(mesh.read_model_UBC(str(tmp_path / "ours.den")), model)
    mesh.write_model_UBC(str(tmp_path / "theirs.den"), model)
    np.testing.assert_allclose(read_model(tmp_path / "theirs.den", mesh), model, rtol=1e-15)


def test_model_file_order_is_z_down_then_east_then_north(tmp_path):
    mesh = discretize.TensorMesh([[1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0]])
    # model value = 100*east + 10*north + depth index (0 = top)
    e, n, z_up = np.meshgrid(range(2), range(3), range(2), indexing="ij")
    model = (100 * e + 10 * n + (1 - z_up)).reshape(-1, order="F").astype(float)
    write_model(tmp_path / "m.den", mesh, model)
    values = np.loadtxt(tmp_path / "m.den")
    expected = [100 * ie + 10 * jn + k for jn in range(3) for ie in range(2) for k in range(2)]
    np.testing.assert_array_equal(values, expected)


def test_model_with_comments_and_several_values_per_line(tmp_path):
    mesh = discretize.TensorMesh([[1.0, 1.0], [1.0], [1.0, 1.0]])
    (tmp_path / "m.den").write_text("! density\n1 2 ! top then bottom of column 1\n3\n4.0D0\n")
    np.testing.assert_array_equal(read_model(tmp_path / "m.den", mesh), [2, 4, 1, 3])


def test_byte_order_mark_and_model_or_value(tmp_path):
    (tmp_path / "m.txt").write_text("\ufeff2 1 1\r\n0 0 0\r\n2*1\r\n1\r\n1\r\n", encoding="utf-8")
    mesh = read_mesh(tmp_path / "m.txt")  # a Windows editor's BOM and CRLF
    assert mesh.shape_cells == (2, 1, 1)
    (tmp_path / "m.den").write_text("\ufeff0.5\n0.25\n", encoding="utf-8")
    np.testing.assert_array_equal(model_or_value(tmp_path / "m.den", mesh), [0.5, 0.25])
    np.testing.assert_array_equal(model_or_value(-np.inf, mesh), [-np.inf, -np.inf])


def test_inactive_cells_written_as_minus_100_and_active_flags(tmp_path, rng):
    mesh = _mesh(rng, (3, 2, 4))
    active = rng.random(mesh.n_cells) > 0.3
    write_model(tmp_path / "m.den", mesh, np.ones(mesh.n_cells), active=active)
    back = read_model(tmp_path / "m.den", mesh)
    np.testing.assert_array_equal(back, np.where(active, 1.0, ABOVE_TOPOGRAPHY))
    flags = rng.integers(-1, 2, mesh.n_cells).astype(float)
    write_model(tmp_path / "a.txt", mesh, flags)
    got = read_active(tmp_path / "a.txt", mesh)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, flags)


def test_vtk_roundtrip(tmp_path, rng):
    mesh = _mesh(rng)
    density, weights = rng.standard_normal(mesh.n_cells), rng.random(mesh.n_cells)
    active = np.arange(mesh.n_cells) % 3 > 0
    write_vtk(tmp_path / "m.vtk", mesh, {"density": density, "weights": weights}, active=active)
    nodes, models = read_vtk(tmp_path / "m.vtk")
    for got, want in zip(nodes, (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(models["density"], np.where(active, density, np.nan))
    np.testing.assert_array_equal(models["weights"][active], weights[active])
    with pytest.raises(ValueError, match="expected"):
        write_vtk(tmp_path / "bad.vtk", mesh, {"a name": density})
