"""The forward's memory estimate against what the forward allocates (written from a survivor
of the sampled mutation run, docs/testing.md)."""

import tracemalloc

import numba
import numpy as np
import pytest
from discretize import TensorMesh

from msinv.core.errors import UserInputError
from msinv.gravity.forward import forward_memory, gz


def test_memory_estimate_covers_what_the_forward_allocates():
    """forward_memory (the CLI's check before a forward) is an upper bound of the NumPy memory
    gz allocates (traced) and, with the caller's stations and model, the per-thread node
    arrays of the numba kernel, within a factor 2 of that sum."""
    rng = np.random.default_rng(0)
    mesh = TensorMesh([np.full(10, 20.0), np.full(8, 20.0), np.full(6, 20.0)], [0, 0, -120])
    n_data = 5000
    stations = np.column_stack(
        [rng.uniform(0, 200, n_data), rng.uniform(0, 160, n_data), np.full(n_data, 5.0)]
    )
    rho = rng.uniform(-1, 1, mesh.n_cells)
    gz(mesh, stations[:10], rho)  # compile first: the JIT's own allocations are not the forward's
    tracemalloc.start()
    try:
        gz(mesh, stations, rho)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    nodes = 11 * 9 * 7
    estimate = forward_memory(mesh, n_data)
    assert peak <= estimate
    needed = peak + stations.nbytes + rho.nbytes + 8 * numba.config.NUMBA_NUM_THREADS * nodes
    assert estimate <= 2 * needed


def test_a_2d_mesh_is_refused_in_one_line():
    mesh = TensorMesh([np.full(4, 10.0), np.full(3, 10.0)])
    with pytest.raises(UserInputError, match="gravity needs a 3-D tensor mesh, got a 2-D mesh"):
        gz(mesh, np.zeros((1, 3)), np.zeros(mesh.n_cells))


def test_memory_estimate_counts_one_node_array_per_thread():
    """At equal cells and stations, a mesh with more nodes (24 x 1 x 1: 100 nodes, against
    4 x 3 x 2: 60) needs one more float64 per node in each thread's kernel array."""
    wide = TensorMesh([np.full(24, 5.0), [5.0], [5.0]])
    block = TensorMesh([np.full(4, 5.0), np.full(3, 5.0), np.full(2, 5.0)])
    assert (wide.n_cells, wide.n_nodes, block.n_cells, block.n_nodes) == (24, 100, 24, 60)
    threads = numba.config.NUMBA_NUM_THREADS
    assert forward_memory(wide, 7) - forward_memory(block, 7) == 8 * threads * (100 - 60)


def test_memory_estimate_counts_each_station_s_coordinates_and_result():
    """Each station costs its three float64 coordinates and its float64 result: 32 bytes; each
    cell its density and one float64 of work: 16 bytes."""
    mesh = TensorMesh([np.full(4, 5.0), np.full(3, 5.0), np.full(2, 5.0)])
    assert forward_memory(mesh, 1001) - forward_memory(mesh, 1) == 1000 * 32
    deeper = TensorMesh([np.full(4, 5.0), np.full(3, 5.0), np.full(3, 5.0)])  # +12 cells, +20 nodes
    threads = numba.config.NUMBA_NUM_THREADS
    assert forward_memory(deeper, 7) - forward_memory(mesh, 7) == 12 * 16 + 20 * 8 * threads


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("reader", ["gz", "sensitivity_rows"])
def test_stations_with_a_non_finite_coordinate_are_refused(bad, reader):
    """A station at NaN or infinity has no data: it is refused in one line by the forward and
    by the sensitivity rows, not turned into NaN data."""
    from msinv.gravity import forward

    mesh = TensorMesh([np.full(3, 10.0), np.full(3, 10.0), np.full(2, 10.0)], origin=[0, 0, -20])
    st = np.array([[5.0, 5.0, 1.0], [15.0, 5.0, 1.0]])
    st[1, 2] = bad
    args = (mesh, st, np.zeros(mesh.n_cells)) if reader == "gz" else (mesh, st)
    with pytest.raises(UserInputError, match="stations contain NaN or infinite coordinates"):
        getattr(forward, reader)(*args)


def test_example_operator_is_the_documented_survey(rng):
    """GravityOperator.example (the registry's dot-product test input) is G of a 4x3x2 mesh
    seen from five stations: a (5, 24) float64 matrix that passes the dot-product test."""
    from msinv.core.operator import dottest
    from msinv.gravity.forward import GravityOperator

    op = GravityOperator.example(rng)
    assert op.shape_out == (5,) and op.shape_in == (24,) and op.matrix.dtype == np.float64
    assert np.all(op.matrix > 0)  # every cell lies below the stations: g_z (down) > 0
    dottest(op, rng)


def test_a_station_vector_an_output_buffer_and_the_matrix_free_forward_agree():
    """The forms of the forward's arguments give the same numbers: one station given as an
    (E, N, elevation) vector is the one-row (1, 3) array; ``out=`` receives exactly the rows
    a fresh call returns (and is what is returned); ``gz`` of a model is G @ model."""
    from msinv.gravity.forward import sensitivity_rows

    rng = np.random.default_rng(4)
    mesh = TensorMesh([rng.uniform(5, 10, 4), rng.uniform(5, 10, 3), rng.uniform(5, 10, 2)])
    st = np.column_stack([rng.uniform(0, 30, 4), rng.uniform(0, 20, 4), np.full(4, 25.0)])
    active = np.arange(mesh.n_cells) % 3 != 0
    rows = sensitivity_rows(mesh, st, active)
    np.testing.assert_array_equal(sensitivity_rows(mesh, st[2], active), rows[2:3])
    buffer = np.full((4, int(active.sum())), np.nan)
    assert sensitivity_rows(mesh, st, active, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, rows)
    model = np.where(active, rng.uniform(-0.5, 0.5, mesh.n_cells), 0.0)
    np.testing.assert_allclose(gz(mesh, st, model), rows @ model[active], rtol=1e-12)
    np.testing.assert_allclose(gz(mesh, st[0], model), rows[:1] @ model[active], rtol=1e-12)
