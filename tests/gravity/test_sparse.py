"""Sparse norms by IRLS, user weights, coarse-to-fine levels (GRAV3D v6 lines 13-14)."""

import numpy as np
import pytest

from msinv.gravity.forward import GravityOperator
from msinv.gravity.inversion import InversionConfig, SparseConfig, invert
from msinv.gravity.regularisation import Regularisation

from .test_inversion import block  # noqa: F401  (the shared small block problem)


def _true(mesh):
    c = mesh.cell_centers
    inside = (np.abs(c[:, 0]) < 40) & (np.abs(c[:, 1]) < 40) & (c[:, 2] < -40) & (c[:, 2] > -100)
    return np.where(inside, 0.2, 0.0)


def test_sparse_norms_are_more_compact_at_the_same_misfit(block):  # noqa: F811
    mesh, _, g, data, sigma, w = block
    cfg = InversionConfig(mode=1, tolc=0.02)
    l2 = invert(
        GravityOperator(g),
        data,
        sigma,
        Regularisation(mesh, weights=w),
        lower=0.0,
        upper=1.0,
        config=cfg,
    )
    reg = Regularisation(mesh, weights=w)
    sp = invert(
        GravityOperator(g),
        data,
        sigma,
        reg,
        lower=0.0,
        upper=1.0,
        config=cfg,
        sparse=SparseConfig(norms=(0.0, 0.0, 0.0, 0.0)),
    )
    target = data.size
    assert sp.converged and abs(sp.phi_d - target) <= 0.02 * target
    assert max(e.irls for e in sp.log) >= 2
    assert np.all(sp.model >= 0) and np.all(sp.model <= 1)
    true = _true(mesh)
    # compact: a larger peak and a smaller support than the smooth model, closer to the truth
    assert sp.model.max() > 1.3 * l2.model.max()
    support = np.count_nonzero(sp.model > 0.1 * sp.model.max())
    assert support < 0.8 * np.count_nonzero(l2.model > 0.1 * l2.model.max())
    corr = [np.corrcoef(m, true)[0, 1] for m in (l2.model, sp.model)]
    assert corr[1] > corr[0]
    text = sp.log_text()
    assert len(text.splitlines()) == len(sp.log) + 4


def test_p2_sparse_is_least_squares_and_bad_config(block):  # noqa: F811
    mesh, _, g, data, sigma, w = block
    reg = Regularisation(mesh, weights=w)
    m = np.random.default_rng(0).standard_normal(reg.n_active) * 0.01
    before = reg.terms(m)
    reg.reweight(m, dict.fromkeys("sxyz", 2.0), dict.fromkeys("sxyz", 1e-3))
    after = reg.terms(m)
    assert after == pytest.approx(before, rel=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        SparseConfig(norms=(3.0, 2, 2, 2))
    with pytest.raises(ValueError, match="mode 1"):
        invert(
            GravityOperator(g),
            data,
            sigma,
            reg,
            config=InversionConfig(mode=3, beta=1.0),
            sparse=SparseConfig(),
        )


def test_user_weights_scale_their_term(block):  # noqa: F811
    mesh, _, _, _, _, w = block
    reg = Regularisation(mesh, weights=w)
    m = np.random.default_rng(1).standard_normal(reg.n_active)
    base = reg.terms(m)
    reg.set_user_weights({"s": np.full(mesh.n_cells, 3.0), "z": np.full(mesh.n_cells, 0.5)})
    now = reg.terms(m)
    assert now["s"] == pytest.approx(3 * base["s"]) and now["z"] == pytest.approx(0.5 * base["z"])
    assert now["x"] == pytest.approx(base["x"])
    nx, ny, nz = mesh.shape_cells
    faces = np.full((nx - 1) * ny * nz, 2.0)
    reg.set_user_weights({"x": faces})  # one value per interface (GRAV3D weights file)
    assert reg.terms(m)["x"] == pytest.approx(2 * base["x"]) and reg.terms(m)["s"] == pytest.approx(
        base["s"]
    )
    with pytest.raises(ValueError, match="user weight"):
        reg.set_user_weights({"x": np.ones(5)})


def test_coarse_to_fine_reaches_the_target(block):  # noqa: F811
    from msinv.core.operator import dottest
    from msinv.gravity.multilevel import coarse_level, coarsen_mesh
    from msinv.gravity.pipeline import InversionProblem, run_inversion

    mesh, st, g, data, sigma, w = block
    coarse, parent = coarsen_mesh(mesh)
    assert coarse.shape_cells == (6, 5, 4)
    np.testing.assert_allclose(np.bincount(parent, mesh.cell_volumes), coarse.cell_volumes)
    reg = Regularisation(mesh, weights=w)
    op = GravityOperator(g)
    _, reg_c, op_c, lo, hi, init, p = coarse_level(mesh, reg, op, -1.0, 1.0, 0.0)
    assert np.all(lo == -1.0) and np.all(hi == 1.0) and np.all(init == 0.0)
    dottest(p, np.random.default_rng(2))
    x = np.random.default_rng(3).standard_normal(p.shape_in[0])
    np.testing.assert_allclose(op_c.forward(x), g @ p.forward(x))  # G_c = G P exactly
    n = reg.n_active
    problem = InversionProblem(
        mesh,
        op,
        data,
        sigma,
        st,
        data,
        reg,
        np.full(n, -1.0),
        np.full(n, 1.0),
        np.zeros(n),
        InversionConfig(mode=1),
        None,
        np.ones(mesh.n_cells, bool),
        np.zeros(data.size),
    )
    res = run_inversion(problem, levels=2)
    assert res.converged and abs(res.phi_d - data.size) <= 0.02 * data.size
    assert [lv["parameters"] for lv in res.levels] == [reg_c.n_active, n]
