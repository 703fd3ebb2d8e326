"""The library pipeline: block-wise compressed G within a budget, resume, stations, active cells."""

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.gravity.compression import CompressedSensitivity, CompressionConfig
from msinv.gravity.forward import gz, sensitivity_rows
from msinv.gravity.pipeline import SensitivitySettings, build_sensitivity_file, row_scaling
from msinv.gravity.sensitivity import (
    OnTheFlySensitivity,
    build_compressed,
    load_sensitivity,
    plan_blocks,
)


@pytest.fixture
def small(rng):
    mesh = TensorMesh(
        [np.full(10, 10.0), np.full(8, 10.0), np.full(6, 10.0)], origin=[-50, -40, -60]
    )
    st = np.column_stack([rng.uniform(-40, 40, 23), rng.uniform(-30, 30, 23), np.full(23, 2.0)])
    active = np.ones(mesh.n_cells, bool)
    active[mesh.cell_centers[:, 2] > -10] = (
        rng.random(int((mesh.cell_centers[:, 2] > -10).sum())) < 0.5
    )
    w = rng.uniform(0.5, 1.0, int(active.sum()))
    return mesh, st, active, w


def test_blockwise_equals_dense_compression_and_resumes(small, tmp_path):
    mesh, st, active, w = small
    scaling = row_scaling(mesh, active, w, True)
    cfg = CompressionConfig("daub2", rstar=0.05)
    g = sensitivity_rows(mesh, st, active)
    dense = CompressedSensitivity.compress(g, mesh.shape_cells, active, scaling, cfg)
    # a budget that forces blocks of a few rows
    n_coef = dense.transform.shape_out[0]
    budget = 2 * (2 * 4 * 8 * n_coef + 5 * 8 * int(active.sum()))
    plan = plan_blocks(st.shape[0], int(active.sum()), n_coef, budget, workers=2)
    assert plan.block_rows == 5 and plan.n_blocks == 5
    out = tmp_path / "g.mtx"
    logged = []
    op, rms = build_compressed(
        mesh, st, active, scaling, cfg, out, budget=budget, workers=2, log=logged.append
    )
    assert (op.matrix != dense.matrix).nnz == 0 and np.array_equal(op.r, dense.r)
    np.testing.assert_allclose(rms, np.sqrt(np.mean(g**2, axis=0)))
    assert not (tmp_path / "g.mtx.partial").exists() and "5 blocks" in logged[0]
    # a killed build: keep two finished blocks, then resume
    partial = tmp_path / "k.mtx.partial"
    calls = []

    def die_at_third_block(done, total):
        calls.append(done)
        if done > 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_compressed(
            mesh,
            st,
            active,
            scaling,
            cfg,
            tmp_path / "k.mtx",
            budget=budget,
            workers=2,
            progress=die_at_third_block,
        )
    assert sorted(p.name for p in partial.glob("block_*.npz")) == [
        "block_00000.npz",
        "block_00001.npz",
    ]
    logged.clear()
    op2, _ = build_compressed(
        mesh,
        st,
        active,
        scaling,
        cfg,
        tmp_path / "k.mtx",
        budget=budget,
        workers=2,
        log=logged.append,
    )
    assert any("resuming" in line for line in logged)
    assert sum("written" in line for line in logged) == 3  # only the missing blocks
    assert (op2.matrix != dense.matrix).nnz == 0
    # other inputs on the same partial folder are refused
    (tmp_path / "z.mtx.partial").mkdir()
    (tmp_path / "z.mtx.partial" / "plan.json").write_text("{}")
    with pytest.raises(ValueError, match="other inputs"):
        build_compressed(
            mesh, st, active, scaling, cfg, tmp_path / "z.mtx", budget=budget, workers=2
        )
    with pytest.raises(ValueError, match="budget"):
        plan_blocks(10, 100, 10_000, 1000)


def test_pipeline_file_stores_and_checks_stations(small, tmp_path):
    mesh, st, active, w = small
    settings = SensitivitySettings(rstar=0.05, memory=64 * 2**20, workers=2)
    res = build_sensitivity_file(
        mesh, st, active, w, settings, tmp_path / "s.mtx", sensitivity_txt=tmp_path / "sens.txt"
    )
    model = np.zeros(mesh.n_cells)
    model[active] = 0.1
    assert res.diagnostics["data_relative_error"] < 0.05
    op, _, act, weights = load_sensitivity(tmp_path / "s.mtx", stations=st)
    np.testing.assert_allclose(op.forward(model[act]), gz(mesh, st, model), rtol=0.1)
    np.testing.assert_allclose(weights, w)
    moved = st.copy()
    moved[3, 0] += 5.0
    with pytest.raises(ValueError, match="station 4"):
        load_sensitivity(tmp_path / "s.mtx", stations=moved)
    with pytest.raises(ValueError, match="built for 23"):
        load_sensitivity(tmp_path / "s.mtx", stations=st[:5])
    assert np.loadtxt(tmp_path / "sens.txt").size == mesh.n_cells
    dense = build_sensitivity_file(
        mesh, st, active, w, SensitivitySettings(wavelet="NONE"), tmp_path / "d.mtx"
    )
    np.testing.assert_allclose(dense.op.forward(model[act]), gz(mesh, st, model), rtol=1e-5)
    with pytest.raises(ValueError, match="GiB"):
        build_sensitivity_file(
            mesh, st, active, w, SensitivitySettings(wavelet="NONE", memory=100), tmp_path / "x"
        )


def test_on_the_fly_operator_matches_the_rows(small, rng):
    mesh, st, active, _ = small
    op = OnTheFlySensitivity(mesh, st, active, block=4)
    x = rng.standard_normal(int(active.sum()))
    y = rng.standard_normal(st.shape[0])
    g = sensitivity_rows(mesh, st, active)
    np.testing.assert_allclose(op.forward(x), g @ x, rtol=1e-10)
    np.testing.assert_allclose(op.adjoint(y), g.T @ y, rtol=1e-10)
