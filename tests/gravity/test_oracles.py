"""Gravity against independent computations: GRAV3D's published v6 data and Harmonica for the
forward, the exact trace ratio for the first beta, the representative-row rule by hand."""

from __future__ import annotations

import numpy as np
import pytest

from msinv.gravity.compression import CompressedSensitivity, CompressionConfig
from msinv.gravity.forward import GravityOperator
from msinv.gravity.inversion import InversionConfig, estimate_beta0, invert
from msinv.gravity.regularisation import Regularisation
from msinv.gravity.sensitivity import build_sensitivity
from msinv.gravity.ubc import ABOVE_TOPOGRAPHY, read_mesh, read_model
from msinv.gravity.ubc_data import read_observations

harmonica = pytest.importorskip("harmonica")


def _harmonica_gz(mesh, stations, rho):
    """g_z (mGal, positive down) of the cells with rho != 0 (g/cc), by Harmonica."""
    keep = np.flatnonzero(rho)
    i, j, k = np.unravel_index(keep, mesh.shape_cells, order="F")
    xn, yn, zn = mesh.nodes_x, mesh.nodes_y, mesh.nodes_z
    prisms = np.column_stack([xn[i], xn[i + 1], yn[j], yn[j + 1], zn[k], zn[k + 1]])
    return harmonica.prism_gravity(stations.T, prisms, rho[keep] * 1000.0, field="g_z")


@pytest.mark.slow
def test_v6_published_data_against_harmonica_and_our_operator(grav3d_example):
    """GRAV3D's own dobs.grv, Harmonica's forward of the true model and our sensitivity
    operator agree: the data fit to the noise (chi^2/N <= 1.05, the published phi_d = N).
    Slow set (about 40 s: the kernel runs over every node of the 76 x 76 x 38 mesh)."""
    mesh = read_mesh(grav3d_example / "fwd" / "mesh.txt")
    model = read_model(grav3d_example / "fwd" / "model.den", mesh)
    rho = np.where(model == ABOVE_TOPOGRAPHY, 0.0, model)
    obs = read_observations(grav3d_example / "inv_L2" / "dobs.grv")
    oracle = _harmonica_gz(mesh, obs.locations, rho)
    assert np.mean(((oracle - obs.values) / obs.std) ** 2) <= 1.05  # the oracle reads the files
    active = rho != 0
    op = GravityOperator(build_sensitivity(mesh, obs.locations, active=active))
    ours = op.forward(rho[active])
    np.testing.assert_allclose(ours, oracle, rtol=1e-8, atol=1e-10 * np.abs(oracle).max())
    assert np.mean(((ours - obs.values) / obs.std) ** 2) <= 1.05
    assert obs.values.max() > 20 * obs.std.max()  # a signal: a wrong sign cannot fit


def test_embedded_example_data_fit_harmonica_to_the_noise(tmp_path):
    from msinv.gravity.example import write_example

    files = write_example(tmp_path)
    mesh = read_mesh(files["mesh"])
    model = read_model(files["model"], mesh)
    obs = read_observations(files["observations"])
    pred = _harmonica_gz(mesh, obs.locations, np.where(model == ABOVE_TOPOGRAPHY, 0.0, model))
    chi2 = np.mean(((pred - obs.values) / obs.std) ** 2)
    assert abs(chi2 - 1.0) < 4 * np.sqrt(2.0 / obs.n_data)  # chi^2/N of N(0, 1) noise
    assert np.abs(pred).max() > 20 * obs.std[0]


def test_first_beta_is_the_trace_ratio(small_survey, rng):
    """beta_0 = tr(G^T W_d^2 G) / tr(sum A^T A), both traces computed exactly here."""
    s = small_survey
    mesh, g, sigma, w = s.mesh, s.g, s.sigma, s.weights
    reg = Regularisation(mesh, weights=w)
    hess = np.column_stack([reg.hessian(e) for e in np.eye(reg.n_active)])
    exact = np.sum((g / sigma[:, None]) ** 2) / np.trace(hess)
    op = GravityOperator(g)
    # Hutchinson: unbiased; 400 probes: about 1% standard error here
    assert estimate_beta0(op, sigma, reg, n_probe=400) == pytest.approx(exact, rel=0.05)
    # the inversion starts at beta_start times the (seeded) estimate
    data = g @ rng.uniform(0, 0.1, g.shape[1])
    first = []
    invert(
        op,
        data,
        sigma,
        reg,
        config=InversionConfig(mode=1, beta_start=10.0, max_beta=1, max_cg=5, max_outer=1),
        callback=lambda e, info: first.append(info["beta"]) if e == "beta" else None,
    )
    assert first[0] == pytest.approx(10.0 * estimate_beta0(op, sigma, reg), rel=1e-12)
    assert 0.5 * exact < first[0] / 10.0 < 2.0 * exact


def test_representative_rule_by_hand(small_survey):
    """GRAV3D's rule: the median-norm scaled row is compressed to r*; its relative threshold
    delta / max|c| is applied to every row."""
    mesh, g, w = small_survey.mesh, small_survey.g, small_survey.weights
    rstar = 0.05
    comp = CompressedSensitivity.compress(
        g, mesh.shape_cells, weights=w, config=CompressionConfig(rule="representative", rstar=rstar)
    )
    transform = comp.transform  # orthonormal: tested on its own in test_compression.py
    rows = g / w
    rep = int(np.argsort(np.linalg.norm(rows, axis=1))[len(rows) // 2])  # the median (25 rows)
    assert rep != int(np.argsort(np.linalg.norm(g, axis=1))[len(rows) // 2])  # w matters here
    c = transform.forward(rows[rep], pad="edge")
    a = np.sort(np.abs(c))  # ascending; drop the smallest while their energy <= r*^2 ||row||^2
    n_drop = int(np.searchsorted(np.cumsum(a**2), rstar**2 * rows[rep] @ rows[rep], side="right"))
    delta_rel = a[n_drop] / a[-1]
    nnz = np.diff(comp.matrix.indptr)
    for i in range(len(rows)):
        ci = transform.forward(rows[i], pad="edge")
        kept = np.flatnonzero(np.abs(ci) >= delta_rel * np.abs(ci).max())
        assert nnz[i] == kept.size, (i, nnz[i], kept.size)
        np.testing.assert_array_equal(
            np.sort(comp.matrix.indices[comp.matrix.indptr[i] :][: nnz[i]]), kept
        )
    assert comp.r[rep] <= rstar and comp.r[rep] > 0.5 * rstar
