"""Dense G in chunks: equals the matrix-free forward, memory estimate, refusal; the checks of\nthe sensitivity files and of the block-wise build's resume."""

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.core.errors import UserInputError
from msinv.gravity.compression import CompressionConfig, wavelet_transform
from msinv.gravity.forward import gz
from msinv.gravity.sensitivity import (
    DENSE_FORMAT,
    OnTheFlySensitivity,
    build_compressed,
    build_sensitivity,
    check_stations,
    load_sensitivity,
    plan_blocks,
    save_sensitivity,
    sensitivity_memory,
)


def test_chunks_equal_forward_and_report_progress(rng):
    mesh = TensorMesh([np.full(5, 10.0), np.full(4, 10.0), np.full(3, 10.0)], origin=[0, 0, -30])
    st = np.column_stack([rng.uniform(0, 50, 11), rng.uniform(0, 40, 11), np.full(11, 1.0)])
    seen = []
    g = build_sensitivity(mesh, st, chunk=4, callback=lambda d, n: seen.append((d, n)))
    assert seen == [(4, 11), (8, 11), (11, 11)]
    rho = rng.uniform(-1, 1, mesh.n_cells)
    np.testing.assert_allclose(g @ rho, gz(mesh, st, rho), rtol=1e-12)
    assert sensitivity_memory(11, mesh.n_cells, np.float32) == 11 * mesh.n_cells * 4
    with pytest.raises(ValueError, match="GiB"):
        build_sensitivity(mesh, st, max_bytes=100)
    with pytest.raises(ValueError, match="dtype"):
        build_sensitivity(mesh, st, dtype=np.int32)


def _tiny():
    mesh = TensorMesh([np.full(4, 10.0), np.full(4, 10.0), np.full(2, 10.0)], origin=[0, 0, -20])
    xs, ys = np.meshgrid([5.0, 20.0, 35.0], [5.0, 35.0])
    return mesh, np.column_stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])


@pytest.mark.parametrize("chunk", [0, -3])
def test_chunk_of_stations_must_be_at_least_one(chunk):
    mesh, st = _tiny()
    with pytest.raises(UserInputError, match=f"chunk must be >= 1, got {chunk}"):
        build_sensitivity(mesh, st, chunk=chunk)
    assert build_sensitivity(mesh, st, chunk=1).shape == (6, 32)


@pytest.mark.parametrize("block", [0, -1])
def test_on_the_fly_block_of_rows_must_be_at_least_one(block):
    mesh, st = _tiny()
    with pytest.raises(UserInputError, match=f"block must be >= 1, got {block}"):
        OnTheFlySensitivity(mesh, st, block=block)
    assert OnTheFlySensitivity(mesh, st, block=1).shape_out == (6,)


@pytest.mark.parametrize("content", ["foreign format", "no mesh"])
def test_a_file_that_is_not_a_sensitivity_is_refused_in_one_line(tmp_path, content):
    """An .npz of another kind (another format tag, or the dense tag without the mesh) is
    refused with the file's name, not read as a sensitivity."""
    path = tmp_path / "other.npz"
    if content == "foreign format":
        np.savez(path, format=np.array("something-else"), mesh_hx=np.ones(2))
    else:
        np.savez(path, format=np.array(DENSE_FORMAT), g=np.ones((2, 2)))
    with pytest.raises(
        UserInputError, match=r"^\S*other\.npz: not a sensitivity file written by msinv gravity"
    ):
        load_sensitivity(path)


def test_a_file_without_stored_stations_is_not_checked(tmp_path):
    """A sensitivity written without station positions (an older file) is used with whatever
    stations are given; one with stored positions refuses other stations."""
    mesh, st = _tiny()
    g = build_sensitivity(mesh, st)
    dense = (g, np.ones(mesh.n_cells, bool), np.ones(mesh.n_cells))
    save_sensitivity(tmp_path / "old.npz", dense, mesh)
    save_sensitivity(tmp_path / "new.npz", dense, mesh, stations=st)
    elsewhere = st + 50.0
    assert check_stations(tmp_path / "old.npz", None, elsewhere) is None
    op, _, _, _ = load_sensitivity(tmp_path / "old.npz", stations=elsewhere)
    np.testing.assert_array_equal(op.forward(np.ones(mesh.n_cells)), g @ np.ones(mesh.n_cells))
    with pytest.raises(
        UserInputError, match=r"^\S*new\.npz: station 1 of the data is at .*\(off by 50 m\)"
    ):
        load_sensitivity(tmp_path / "new.npz", stations=elsewhere)


def test_resumed_build_keeps_the_probe_data_and_reports_every_row(tmp_path, rng):
    """A killed block-wise build resumed with a probe model: the blocks read back from the
    partial folder contribute their stored probe data (the result is G @ probe for every
    station, in order) and the progress reaches every row, the skipped blocks included."""
    mesh = TensorMesh([np.full(6, 10.0), np.full(6, 10.0), np.full(4, 10.0)], origin=[0, 0, -40])
    st = np.column_stack([rng.uniform(0, 60, 12), rng.uniform(0, 60, 12), np.full(12, 2.0)])
    active = np.ones(mesh.n_cells, bool)
    scaling = np.ones(mesh.n_cells)
    probe = rng.uniform(-0.5, 0.5, mesh.n_cells)
    cfg = CompressionConfig("daub2", rstar=0.05)
    n_coef = wavelet_transform(mesh.shape_cells, cfg.wavelet).shape_out[0]
    budget = 2 * (4 * 8 * n_coef + 4 * 8 * mesh.n_cells)  # blocks of 4 rows (one worker)
    plan = plan_blocks(12, mesh.n_cells, n_coef, budget, workers=1)
    assert (plan.block_rows, plan.n_blocks) == (4, 3)
    out = tmp_path / "g.mtx"

    def die_in_the_second_block(done, total):
        if done > plan.block_rows:
            raise KeyboardInterrupt

    kw = dict(budget=budget, workers=1, probe=probe)
    with pytest.raises(KeyboardInterrupt):
        build_compressed(mesh, st, active, scaling, cfg, out, progress=die_in_the_second_block,
                         **kw)  # fmt: skip
    assert [p.name for p in (tmp_path / "g.mtx.partial").glob("block_*.npz")] == ["block_00000.npz"]
    seen = []
    _, _, probe_data = build_compressed(
        mesh, st, active, scaling, cfg, out, progress=lambda d, n: seen.append((d, n)), **kw
    )
    np.testing.assert_allclose(probe_data, gz(mesh, st, probe), rtol=1e-10, atol=1e-14)
    assert seen[0] == (plan.block_rows, 12) and seen[-1] == (12, 12)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
