"""Inversion on a small block problem: mode 1 hits the target, bounds hold, modes 2 and 3."""

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.gravity.compression import CompressedSensitivity, CompressionConfig
from msinv.gravity.forward import GravityOperator
from msinv.gravity.inversion import InversionConfig, invert
from msinv.gravity.regularisation import Regularisation, RegularisationConfig
from msinv.gravity.sensitivity import build_sensitivity
from msinv.gravity.weighting import distance_weighting


@pytest.fixture
def block(rng):
    mesh = TensorMesh(
        [np.full(12, 20.0), np.full(10, 20.0), np.full(8, 20.0)], origin=[-120, -100, -160]
    )
    xs, ys = np.meshgrid(np.linspace(-100, 100, 8), np.linspace(-80, 80, 7))
    st = np.column_stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    g = build_sensitivity(mesh, st)
    true = np.zeros(mesh.n_cells)
    c = mesh.cell_centers
    true[(np.abs(c[:, 0]) < 40) & (np.abs(c[:, 1]) < 40) & (c[:, 2] < -40) & (c[:, 2] > -100)] = 0.2
    clean = g @ true
    sigma = np.full(st.shape[0], 0.02 * np.abs(clean).max())
    data = clean + sigma * rng.standard_normal(st.shape[0])
    w = distance_weighting(mesh, st)
    return mesh, st, g, data, sigma, w


def test_mode1_lands_within_tolc_and_logs(block):
    mesh, _, g, data, sigma, w = block
    reg = Regularisation(mesh, weights=w)
    events = []
    res = invert(
        GravityOperator(g),
        data,
        sigma,
        reg,
        lower=-1,
        upper=1,
        config=InversionConfig(mode=1, tolc=0.02),
        callback=lambda e, i: events.append(e),
    )
    target = data.size
    assert res.converged and abs(res.phi_d - target) <= 0.02 * target
    assert res.phi_d == pytest.approx(np.sum(((g @ res.model - data) / sigma) ** 2))
    assert "beta" in events and "cg" in events
    text = res.log_text()
    assert len(text.splitlines()) == len(res.log) + 4 and "phi_d" in text
    # the recovered anomaly is positive and centred on the block
    k = np.argmax(reg.full_model(res.model))
    assert np.all(np.abs(mesh.cell_centers[k, :2]) < 60)


def test_bounds_are_reached_never_passed(block):
    mesh, _, g, data, sigma, w = block
    reg = Regularisation(mesh, weights=w)
    lo, hi = 0.0, 0.05  # the unbounded model exceeds 0.05 and dips below 0
    free = invert(GravityOperator(g), data, sigma, reg, config=InversionConfig(mode=2, beta=1e-2))
    assert free.model.max() > hi and free.model.min() < lo
    res = invert(
        GravityOperator(g),
        data,
        sigma,
        reg,
        lower=lo,
        upper=hi,
        config=InversionConfig(mode=2, beta=1e-2),
    )
    assert res.model.min() >= lo and res.model.max() <= hi
    assert res.log[-1].n_lower > 0 and res.log[-1].n_upper > 0
    assert np.count_nonzero(res.model == hi) == res.log[-1].n_upper


def test_smooth_mod_dif_follows_the_reference_where_data_are_silent(block):
    mesh, _, g, data, sigma, w = block
    ref = np.full(mesh.n_cells, 0.0)
    ref[mesh.cell_centers[:, 0] > 0] = 0.3  # a step in the reference
    out = {}
    for smooth in ("SMOOTH_MOD", "SMOOTH_MOD_DIF"):
        cfg = RegularisationConfig(alpha_s=1e-6, smooth=smooth)  # smoothness dominates
        reg = Regularisation(mesh, cfg, weights=w, reference=ref)
        out[smooth] = reg.full_model(
            invert(
                GravityOperator(g),
                data,
                sigma,
                reg,
                initial=0.0,
                config=InversionConfig(mode=2, beta=10.0, cg_tol=1e-8, max_cg=2000),
            ).model
        )
    c = mesh.cell_centers
    deep = c[:, 2] < -140
    east, west = deep & (c[:, 0] == 10), deep & (c[:, 0] == -10)  # either side of the step
    jump = {k: v[east].mean() - v[west].mean() for k, v in out.items()}
    # DIF keeps the reference's sharp step (its derivative costs nothing); MOD smooths it
    assert jump["SMOOTH_MOD_DIF"] > 0.15
    assert jump["SMOOTH_MOD"] < 0.5 * jump["SMOOTH_MOD_DIF"]


def test_mode3_lcurve_and_compressed_operator(block):
    mesh, _, g, data, sigma, w = block
    reg = Regularisation(mesh, weights=w)
    res = invert(
        GravityOperator(g), data, sigma, reg, config=InversionConfig(mode=3, n_lcurve=5, beta=1e3)
    )
    assert len(res.log) == 5 and res.beta in [e.beta for e in res.log[1:-1]]
    comp = CompressedSensitivity.compress(
        g, mesh.shape_cells, weights=w, config=CompressionConfig(rstar=0.02)
    )
    rc = invert(comp, data, sigma, reg, config=InversionConfig(mode=1))
    assert rc.converged and abs(rc.phi_d - data.size) <= 0.02 * data.size


def test_bad_input(block):
    mesh, _, g, data, sigma, _ = block
    reg = Regularisation(mesh)
    with pytest.raises(ValueError, match="> 0"):
        invert(GravityOperator(g), data, -sigma, reg)
    with pytest.raises(ValueError, match="mode 2 needs"):
        InversionConfig(mode=2)
