"""Forward modelling against Harmonica (the oracle), known values and the slab limit."""

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.gravity.forward import GRAVITATIONAL_CONST, GravityOperator, gz, sensitivity_rows

harmonica = pytest.importorskip("harmonica")


def _prisms(mesh):
    i, j, k = np.unravel_index(np.arange(mesh.n_cells), mesh.shape_cells, order="F")
    xn, yn, zn = mesh.nodes_x, mesh.nodes_y, mesh.nodes_z
    return np.column_stack([xn[i], xn[i + 1], yn[j], yn[j + 1], zn[k], zn[k + 1]])


def _oracle(mesh, stations, rho):
    return harmonica.prism_gravity(stations.T, _prisms(mesh), rho * 1000.0, field="g_z")


@pytest.fixture
def random_mesh(rng):
    h = [rng.uniform(5, 20, 5), rng.uniform(5, 20, 4), rng.uniform(5, 20, 3)]
    return TensorMesh(h, origin=[-40.0, -30.0, -50.0])


def test_random_prisms_and_stations_match_harmonica(random_mesh, rng):
    mesh = random_mesh
    rho = rng.uniform(-1, 1, mesh.n_cells)
    above = np.column_stack(
        [rng.uniform(-80, 80, 30), rng.uniform(-80, 80, 30), rng.uniform(0, 40, 30)]
    )
    inside = np.column_stack(
        [rng.uniform(-40, 20, 20), rng.uniform(-30, 20, 20), rng.uniform(-50, 0, 20)]
    )
    # every mesh node: corners, edges and faces of prisms
    stations = np.vstack([above, inside, mesh.nodes, mesh.faces_x[::3], mesh.edges_z[::3]])
    ref = _oracle(mesh, stations, rho)
    scale = np.max(np.abs(ref))
    np.testing.assert_allclose(gz(mesh, stations, rho), ref, rtol=1e-10, atol=1e-10 * scale)
    g = sensitivity_rows(mesh, stations)
    np.testing.assert_allclose(g @ rho, ref, rtol=1e-10, atol=1e-10 * scale)


def test_borehole_through_the_model(random_mesh, rng):
    mesh = random_mesh
    rho = rng.uniform(0, 1, mesh.n_cells)
    z = np.linspace(20, -70, 41)  # passes through every layer boundary region
    stations = np.column_stack([np.full_like(z, 3.3), np.full_like(z, -1.7), z])
    stations = np.vstack([stations, [[mesh.nodes_x[2], mesh.nodes_y[1], mesh.nodes_z[1]]]])
    ref = _oracle(mesh, stations, rho)
    np.testing.assert_allclose(
        gz(mesh, stations, rho), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max()
    )


def test_active_columns_and_float32(random_mesh, rng):
    mesh = random_mesh
    active = rng.uniform(size=mesh.n_cells) > 0.3
    st = np.column_stack([rng.uniform(-40, 40, 7), rng.uniform(-40, 40, 7), np.full(7, 5.0)])
    full = sensitivity_rows(mesh, st)
    np.testing.assert_array_equal(sensitivity_rows(mesh, st, active), full[:, active])
    g32 = sensitivity_rows(mesh, st, dtype=np.float32)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, full, rtol=1e-6)


def test_point_below_cube_positive_and_matches_sphere_far_away():
    # 1 g/cc cube of side 10 m; at 1 km below-above it behaves like a point mass
    mesh = TensorMesh([[10.0], [10.0], [10.0]], origin=[-5, -5, -5])
    g = gz(mesh, [[0.0, 0.0, 1000.0]], [1.0])[0]
    point = GRAVITATIONAL_CONST * 1000.0 * 1000.0 / 1000.0**2 * 1e5
    assert g > 0  # positive contrast, station above -> positive (downward) anomaly
    assert g == pytest.approx(point, rel=1e-5)
    # below the cube the downward component is negative
    assert gz(mesh, [[0.0, 0.0, -1000.0]], [1.0])[0] == pytest.approx(-point, rel=1e-5)


def test_infinite_slab_limit():
    # slab 10 m thick, 1 g/cc, 200 km wide: g_z -> 2 pi G rho t
    width = [1e5, 1e5]
    mesh = TensorMesh([width, width, [10.0]], origin=[-1e5, -1e5, -10.0])
    g = gz(mesh, [[0.0, 0.0, 1.0]], np.ones(mesh.n_cells))[0]
    slab = 2 * np.pi * GRAVITATIONAL_CONST * 1000.0 * 10.0 * 1e5
    assert g == pytest.approx(slab, rel=2e-4)


def test_bad_input_is_named():
    mesh = TensorMesh([[1.0], [1.0], [1.0]])
    with pytest.raises(ValueError, match="stations"):
        gz(mesh, np.zeros((2, 2)), [1.0])
    with pytest.raises(ValueError, match="density has 2 values"):
        gz(mesh, np.zeros((1, 3)), [1.0, 2.0])
    with pytest.raises(ValueError, match="2-D matrix"):
        GravityOperator(np.zeros(3))
