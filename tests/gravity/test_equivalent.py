"""Equivalent sources (GZES): the draped layer's physics, the 2-D compression, the exact solvers
and the estimator against the true field of a synthetic survey."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from msinv.core.errors import MsinvWarning
from msinv.gravity.compression import (
    CompressedSensitivity,
    CompressionConfig,
    Wavelet2D,
    Wavelet3D,
)
from msinv.gravity.equivalent import EquivalentLayer, TikhonovSolver, _hessian
from msinv.gravity.equivalent_example import synthetic_survey
from msinv.gravity.layer import LayerMesh


@pytest.fixture(scope="module")
def survey():
    return synthetic_survey(300, seed=1, size=3000.0, gap_width=200.0)


def _rms(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_layer_forward_matches_harmonica_prisms(rng):
    hm = pytest.importorskip("harmonica")
    st = np.column_stack([rng.uniform(0, 1000, (20, 2)), rng.uniform(30, 60, 20)])
    layer = LayerMesh.draped(st, cell=100.0, depth=10.0, padding=2)
    rho = rng.standard_normal(layer.n_cells)
    oracle = hm.prism_gravity(st.T, layer.prisms(), rho * 1e3, field="g_z")
    np.testing.assert_allclose(layer.gz(st, rho), oracle, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.sensitivity(st) @ rho, oracle, rtol=1e-10, atol=1e-12)
    # draped: every cell top at the stations' surface minus the depth
    centres = layer.cell_centers()
    core = (centres[:, 0] > 100) & (centres[:, 0] < 900) & (centres[:, 1] > 100)
    core &= centres[:, 1] < 900
    assert np.all(layer.prisms()[core, 5] < st[:, 2].max() - 10.0 + 1e-9)


def test_wavelet2d_is_orthonormal(rng):
    w = Wavelet2D((13, 7), "daub2")
    x = rng.standard_normal(13 * 7)
    c = w.forward(x)
    assert np.linalg.norm(c) == pytest.approx(np.linalg.norm(x), rel=1e-12)
    np.testing.assert_allclose(w.adjoint(c), x, atol=1e-12)
    step = 2**w.level
    assert all(p % step == 0 and p >= n for p, n in zip(w.padded, (7, 13), strict=True))


def test_2d_compression_meets_rstar_and_beats_3d(survey):
    layer = LayerMesh.draped(survey.points, cell=100.0, depth=200.0)
    g = layer.sensitivity(survey.points)
    cfg = CompressionConfig("daub2", rstar=0.05)
    c2 = CompressedSensitivity.compress(g, layer.shape, config=cfg)
    c3 = CompressedSensitivity.compress(g, (*layer.shape, 1), config=cfg)
    assert isinstance(c2.transform, Wavelet2D) and type(c3.transform) is Wavelet3D
    assert c2.r.max() <= 0.05 + 1e-12
    assert c3.matrix.nnz > 1.5 * c2.matrix.nnz  # the 2-D transform keeps far fewer
    m = np.ones(layer.n_cells) * 0.1
    assert _rms(c2.forward(m), g @ m) < 0.05 * _rms(g @ m, 0)


def test_representative_rows_one_for_surface_one_for_boreholes(survey):
    layer = LayerMesh.draped(survey.points, cell=100.0, depth=100.0)
    pts = survey.points.copy()
    borehole = np.zeros(len(pts), bool)
    borehole[::3] = True
    pts[borehole, 2] -= 150.0  # below the layer's top: rows of a very different shape
    g = layer.sensitivity(pts)
    cfg = CompressionConfig("daub2", rule="representative", rstar=0.05)
    two = CompressedSensitivity.compress(g, layer.shape, config=cfg, borehole=borehole)
    one = CompressedSensitivity.compress(g, layer.shape, config=cfg)
    # with its own representative row the borehole group is tuned to r*: its median error
    # is near r*, whichever group the single representative row came from
    assert abs(np.median(two.r[borehole]) - 0.05) < abs(np.median(one.r[borehole]) - 0.05) + 1e-3
    assert abs(np.median(two.r[~borehole]) - 0.05) < 0.03


@pytest.mark.parametrize("cells", [4.0, 30.0])  # model space (N > M), data space (N <= M)
def test_exact_solver_matches_the_normal_equations(survey, cells):
    layer = LayerMesh.draped(survey.points, cell=3000.0 / cells, depth=150.0, padding=2)
    g = layer.sensitivity(survey.points)
    est = EquivalentLayer()
    h = _hessian(est._regularisation(layer))
    solver = TikhonovSolver(g, np.full(len(g), survey.sigma), h)
    assert solver.data_space == (len(g) <= layer.n_cells)
    beta = float(np.median(solver.lam))
    m = solver.model(beta, survey.data)
    lhs = g.T @ (g @ m) / survey.sigma**2 + beta * (h @ m)
    rhs = g.T @ survey.data / survey.sigma**2
    np.testing.assert_allclose(lhs, rhs, rtol=1e-6, atol=1e-8 * np.abs(rhs).max())
    target = 2.0 * len(g)
    b = solver.beta_for(target, survey.data)
    assert solver.phi_d(b, survey.data) == pytest.approx(target, rel=1e-3)
    # the spectral misfit and effective number of parameters against direct formulas:
    # φ_d = ‖W_d(Gm − d)‖², tr A with A = B (BᵀB + βR)⁻¹ Bᵀ formed explicitly
    bmat = g / survey.sigma
    direct = np.sum(((g @ m - survey.data) / survey.sigma) ** 2)
    assert solver.phi_d(beta, survey.data) == pytest.approx(direct, rel=1e-6)
    infl = bmat @ np.linalg.solve(bmat.T @ bmat + beta * h.toarray(), bmat.T)
    assert solver.dof(beta) == pytest.approx(np.trace(infl), rel=1e-6)
    n = len(g)
    assert solver.upre(beta, survey.data) == pytest.approx(direct + 2 * np.trace(infl) - n)
    assert solver.gcv(beta, survey.data) == pytest.approx(n * direct / (n - np.trace(infl)) ** 2)
    # the evidence against the Gaussian density of d ~ N(0, diag σ² + G R⁻¹ Gᵀ / β)
    from scipy.stats import multivariate_normal

    cov = np.diag(np.full(n, survey.sigma**2)) + g @ np.linalg.solve(h.toarray(), g.T) / beta
    oracle = multivariate_normal(np.zeros(n), cov).logpdf(survey.data)
    assert solver.log_evidence(beta, survey.data) == pytest.approx(oracle, rel=1e-8)
    assert solver.score("evidence", beta, survey.data) == -solver.log_evidence(beta, survey.data)
    with pytest.raises(ValueError, match="rule: expected"):
        solver.beta_minimising("target", survey.data)
    # the rules' minimisers are minima of their functions (vs a 4x wider and narrower β)
    for rule in ("upre", "gcv", "evidence"):
        best = solver.beta_minimising(rule, survey.data)
        at = [solver.score(rule, b, survey.data) for b in (best, best * 4, best / 4)]
        assert at[0] <= min(at[1:]) + 1e-9 * abs(at[0])


@pytest.mark.parametrize("cells", [4.0, 30.0])  # model space (N > M), data space (N <= M)
def test_exact_solver_with_a_trend_matches_the_augmented_system(survey, cells):
    """Unpenalised columns (a plane) fitted beside the layer: the solution, misfit, tr A and
    the restricted evidence against the augmented normal equations formed explicitly."""
    layer = LayerMesh.draped(survey.points, cell=3000.0 / cells, depth=150.0, padding=2)
    g = layer.sensitivity(survey.points)
    h = _hessian(EquivalentLayer()._regularisation(layer)).toarray()
    n, sigma = len(g), survey.sigma
    d = survey.data + 3.0 + 1e-3 * survey.points[:, 0]  # a regional plane of 3 mGal
    cols = np.column_stack([np.ones(n), survey.points[:, 0] / 1e3, survey.points[:, 1] / 1e3])
    solver = TikhonovSolver(
        g, np.full(n, sigma), _hessian(EquivalentLayer()._regularisation(layer))
    )
    plane = solver.with_columns(cols)
    assert plane.n_columns == 3 and solver.n_columns == 0  # the original is left as it was
    beta = float(np.median(solver.lam))
    bmat, pw, w = g / sigma, cols / sigma, d / sigma
    aug = np.block([[bmat.T @ bmat + beta * h, bmat.T @ pw], [pw.T @ bmat, pw.T @ pw]])
    x = np.linalg.solve(aug, np.r_[bmat.T @ w, pw.T @ w])
    np.testing.assert_allclose(plane.model(beta, d), x[: g.shape[1]], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(plane.coefficients(beta, d), x[g.shape[1] :], rtol=1e-6)
    full = np.hstack([bmat, pw])
    direct = float(np.sum((full @ x - w) ** 2))
    infl = full @ np.linalg.solve(aug, full.T)
    assert plane.phi_d(beta, d) == pytest.approx(direct, rel=1e-6)
    assert plane.dof(beta) == pytest.approx(np.trace(infl), rel=1e-6)
    assert plane.upre(beta, d) == pytest.approx(direct + 2 * np.trace(infl) - n, rel=1e-6)
    np.testing.assert_allclose(plane.phi_d(np.array([beta, 2 * beta]), d)[0], direct, rtol=1e-6)
    # restricted likelihood: d ~ N(P c, C) with c under a flat prior; C = σ²(I + B R⁻¹ Bᵀ/β)
    cw = np.eye(n) + bmat @ np.linalg.solve(h, bmat.T) / beta
    ci = np.linalg.inv(cw)
    s = pw.T @ ci @ pw
    t = pw.T @ ci @ w
    quad = w @ ci @ w - t @ np.linalg.solve(s, t)
    logdet = np.linalg.slogdet(cw)[1] + np.linalg.slogdet(s)[1] - np.linalg.slogdet(pw.T @ pw)[1]
    oracle = -0.5 * (quad + logdet + (n - 3) * np.log(2 * np.pi)) - n * np.log(sigma)
    assert plane.log_evidence(beta, d) == pytest.approx(oracle, rel=1e-8)
    with pytest.raises(ValueError, match="columns: expected linearly independent"):
        solver.with_columns(np.column_stack([cols, cols[:, 1]]))


def test_layer_maximises_the_evidence_and_continues_upward(survey):
    est = EquivalentLayer().fit(survey.points, survey.data, survey.sigma)
    assert est.trade_off_ == "evidence"
    solver = TikhonovSolver(
        est.layer_.sensitivity(survey.points),
        np.full(len(survey.data), survey.sigma),
        _hessian(est._regularisation(est.layer_)),
    )
    assert est.beta_ == pytest.approx(solver.beta_minimising("evidence", survey.data), rel=1e-9)
    best = solver.log_evidence(est.beta_, survey.data)
    assert best >= max(solver.log_evidence(est.beta_ * f, survey.data) for f in (0.8, 1.25))
    # the noise-free field is fitted more closely than the noisy data: χ² below N
    assert est.phi_d_ < len(survey.data)
    up = est.upward(300.0, spacing=100.0)
    true = survey.true_gz(up.points()).reshape(up.gz.shape)
    inner = survey.interior(up.points()).reshape(up.gz.shape)
    assert _rms(up.gz[inner], true[inner]) < 0.02 * np.abs(true).max()
    grid = est.grid(spacing=100.0, height=1.0)
    pts = grid.points()
    mask = survey.interior(pts)
    truth = survey.true_gz(pts[mask])
    assert _rms(grid.gz.ravel()[mask], truth) < 0.05 * np.abs(truth).max()


def test_target_misfit_rule_fits_to_chi2_n(survey):
    est = EquivalentLayer(trade_off="target").fit(survey.points, survey.data, survey.sigma)
    assert est.phi_d_ == pytest.approx(len(survey.data), rel=2e-3)
    for rule in ("target", "evidence", "upre"):
        with pytest.raises(ValueError, match=f"trade_off='{rule}' needs sigma"):
            EquivalentLayer(trade_off=rule).fit(survey.points, survey.data)


def test_compressed_fit_is_finished_with_the_full_g(survey):
    est = EquivalentLayer(wavelet="daub2", rstar=0.1, trade_off="target")
    est.fit(survey.points, survey.data, survey.sigma)
    g = est.layer_.sensitivity(survey.points)
    true_phi = float(np.sum(((g @ est.density_ - survey.data) / survey.sigma) ** 2))
    assert est.phi_d_ == pytest.approx(true_phi, rel=1e-6)
    assert abs(true_phi - len(survey.data)) <= 0.02 * len(survey.data)
    assert est.phi_d_compressed_ is not None


def test_cross_validation_without_sigma(survey):
    est = EquivalentLayer(folds=3).fit(survey.points, survey.data)
    scores = est.cv_scores_["beta"]
    assert len(scores) > 3 and est.beta_ in scores
    assert scores[est.beta_] == min(scores.values())
    up = np.column_stack([survey.points[:, :2], np.full(len(survey.data), 300.0)])
    assert _rms(est.predict(up), survey.true_gz(up)) < 0.05 * np.abs(survey.data).max()


def test_depth_auto_takes_the_candidate_of_greatest_evidence(survey):
    est = EquivalentLayer(depth="auto", depth_factors=(1.0, 2.5))
    est.fit(survey.points, survey.data, survey.sigma)
    scores = est.cv_scores_["depth"]
    assert len(scores) == 2 and est.depth_ == min(scores, key=scores.get)
    # the score is the negative log evidence of the fit at that depth
    alone = EquivalentLayer(depth=est.depth_).fit(survey.points, survey.data, survey.sigma)
    g = alone.layer_.sensitivity(survey.points)
    solver = TikhonovSolver(
        g, np.full(len(g), survey.sigma), _hessian(alone._regularisation(alone.layer_))
    )
    evidence = solver.log_evidence(alone.beta_, survey.data)
    assert scores[est.depth_] == pytest.approx(-evidence, rel=1e-9)
    np.testing.assert_allclose(est.density_, alone.density_, rtol=1e-9, atol=1e-12)


def test_default_layer_is_unpadded_and_of_greater_evidence(survey):
    # padding cells are the cheapest field per unit of the model objective (a cell of area A
    # makes a field ~ A rho at a cost ~ A rho^2): the default layer covers the stations only,
    # and the evidence, the rule that chooses beta, prefers it to the padded layer, as UPRE does
    est = EquivalentLayer()
    layer = est.build_layer(survey.points)
    cell = float(layer.hx.min())
    assert np.all(layer.hx == cell) and np.all(layer.hy == cell)
    x0, y0 = layer.origin
    lo, hi = survey.points[:, :2].min(0), survey.points[:, :2].max(0)
    assert np.all(lo - np.array([x0, y0]) <= cell)
    assert np.all(np.array([x0 + layer.hx.sum(), y0 + layer.hy.sum()]) - hi <= cell)
    sigma = np.full(len(survey.data), survey.sigma)

    def score(padding, rule):
        e = EquivalentLayer(padding=padding)
        lay = e.build_layer(survey.points)
        solver = TikhonovSolver(
            lay.sensitivity(survey.points), sigma, _hessian(e._regularisation(lay))
        )
        return solver.score(rule, solver.beta_minimising(rule, survey.data), survey.data)

    assert score(0, "evidence") < score(4, "evidence")
    assert score(0, "upre") < score(4, "upre")


def test_synthetic_survey_with_a_disc_gap():
    sv = synthetic_survey(400, seed=3, size=3000.0, gap_width=800.0, gap_shape="disc", sources=3)
    x0, y0, radius = sv.gap
    assert (x0, y0, radius) == (1200.0, 1800.0, 400.0) and sv.gap_shape == "disc"
    assert len(sv.prisms) == 3
    dist = np.hypot(sv.points[:, 0] - x0, sv.points[:, 1] - y0)
    assert dist.min() >= radius and not sv.in_gap(sv.points).any()
    assert sv.in_gap(np.array([[x0, y0, 0.0], [x0 + radius * 1.01, y0, 0.0]])).tolist() == [
        True,
        False,
    ]
    with pytest.raises(ValueError, match="gap_shape"):
        synthetic_survey(10, gap_shape="square")


def _regional(points, amplitude=1.0):
    """A regional plane of about ``amplitude`` mGal across the 3 km test survey."""
    return amplitude * (0.4 + (points[:, 0] - 0.3 * points[:, 1]) / 3000.0)


def test_a_regional_plane_is_fitted_beside_the_layer_and_continued(survey):
    up = np.column_stack([survey.points[:, :2], np.full(len(survey.data), 300.0)])
    inner = survey.interior(up)
    true = survey.true_gz(up[inner]) + _regional(up[inner])
    data = survey.data + _regional(survey.points)
    clean = EquivalentLayer().fit(survey.points, survey.data, survey.sigma)
    assert clean.trend_ is None and clean.trend_coefficients_ is None  # none unasked
    err_clean = _rms(clean.predict(up[inner]), survey.true_gz(up[inner]))
    # without the plane the layer under the stations cannot make a field that stays large at
    # its edges: the continued field is wrong by far more than the noise, with χ² near N
    alone = EquivalentLayer(trend=None).fit(survey.points, data, survey.sigma)
    assert alone.trend_ is None
    err_alone = _rms(alone.predict(up[inner]), true)
    for sigma in (survey.sigma, None):  # the trade-off by the evidence, or by k-fold CV
        est = EquivalentLayer().fit(survey.points, data, sigma)
        assert est.trend_ == 1
        assert est.cv_scores_["trend"]["none"] - est.cv_scores_["trend"]["plane"] > 10.0
        err = _rms(est.predict(up[inner]), true)
        # the plane also takes the anomaly's broadest part, which it continues undecayed:
        # one survey cannot tell the two apart, hence 3x the error of the data without it
        assert err < 4.0 * err_clean and err_alone > 20.0 * err
        # mGal/m east and north of the regional (1/3000 and -0.3/3000)
        np.testing.assert_allclose(est.trend_coefficients_[1:], [1 / 3000, -0.1 / 1000], rtol=0.2)
    # with bounds the regional of the exact joint fit is removed first; φ_d is the true one
    bounded = EquivalentLayer(lower=-2.0, upper=2.0).fit(survey.points, data, survey.sigma)
    assert bounded.trend_ == 1
    resid = (bounded.predict(survey.points) - data) / survey.sigma
    assert bounded.phi_d_ == pytest.approx(float(np.sum(resid**2)), rel=1e-6)
    # given, not chosen: a constant only
    const = EquivalentLayer(trend=0).fit(survey.points, survey.data + 3.0, survey.sigma)
    assert const.trend_ == 0 and const.trend_coefficients_.shape == (1,)
    assert const.trend_coefficients_[0] == pytest.approx(3.0, abs=0.1)
    with pytest.raises(ValueError, match="trend: expected"):
        EquivalentLayer(trend=2)


def test_windows_carry_the_regional_in_their_regional_layer(survey):
    data = survey.data + _regional(survey.points)
    est = EquivalentLayer(window=150).fit(survey.points, data, survey.sigma)
    assert est.regional_.trend_ == 1 and est.trend_ == 1
    assert all(layer.trend_ is None for _, layer in est.windows_)
    up = np.column_stack([survey.points[:, :2], np.full(len(survey.data), 300.0)])
    inner = survey.interior(up)
    true = survey.true_gz(up[inner]) + _regional(up[inner])
    assert _rms(est.predict(up[inner]), true) < 0.01


def test_windows_fit_a_survey_piece_by_piece(survey):
    est = EquivalentLayer(window=150).fit(survey.points, survey.data, survey.sigma)
    assert len(est.windows_) >= 4
    # two scales: the regional layer on about 100 block means, the windows on its residual
    assert est.regional_.n_data_ <= 100
    # block means are not point values: no layer of the two scales judges its noise ratio;
    # the whole fit's is the lower bound chi2/N
    assert est.regional_.max_noise_ratio is None and "cell" not in est.regional_.cv_scores_
    assert all(layer.max_noise_ratio is None for _, layer in est.windows_)
    # the misfit is the true one of the blended field (it was summed over each window's own
    # field in its tile's core, 1.3 % off on a 2,000-station survey in windows of 300)
    fitted = est.predict(survey.points)
    np.testing.assert_allclose(est.fitted_, fitted, rtol=1e-10, atol=1e-12)
    true = float(np.sum(((fitted - survey.data) / survey.sigma) ** 2))
    assert est.phi_d_ == pytest.approx(true, rel=1e-10)
    assert est.noise_ratio_ == pytest.approx(est.phi_d_ / len(survey.data))
    # the time of every layer counted: the regional's and the windows' G
    g_time = est.regional_.timings_["sensitivity"]
    g_time += sum(layer.timings_["sensitivity"] for _, layer in est.windows_)
    assert est.timings_["sensitivity"] == pytest.approx(g_time)
    assert est.timings_["regional field"] > 0
    with pytest.raises(ValueError, match="outside the windows"):
        est.predict(survey.points + np.array([5000.0, 0.0, 0.0]))
    resid = survey.data - est.regional_.predict(survey.points)
    assert _rms(est.predict(survey.points), survey.data) < _rms(resid, 0)
    up = np.column_stack([survey.points[:, :2], np.full(len(survey.data), 300.0)])
    inner = survey.interior(up)
    assert (
        _rms(est.predict(up)[inner], survey.true_gz(up[inner])) < 0.05 * np.abs(survey.data).max()
    )


def test_block_means_carry_the_fields_scatter_so_windows_continue_upward_well():
    # 2,000 stations (the benchmark's disc-s1 survey): with the noise alone as the error of
    # a block mean, the regional layer took the field's curvature across the blocks for
    # signal and the windowed field continued to 300 m was 16x less accurate than one
    # layer's (500 blocks of about four stations; 200 of ten now)
    sv = synthetic_survey(
        2000, seed=201, gap_shape="disc", gap_width=1000.0, sources=12, source_tops=(150.0, 600.0)
    )
    up = np.column_stack([sv.points[:, :2], np.full(len(sv.data), 300.0)])
    inner = sv.interior(up)
    true = sv.true_gz(up[inner])
    whole = EquivalentLayer().fit(sv.points, sv.data, sv.sigma)
    windowed = EquivalentLayer(window=500).fit(sv.points, sv.data, sv.sigma)
    assert _rms(windowed.predict(up[inner]), true) < 2.0 * _rms(whole.predict(up[inner]), true)


def test_block_mean_error_is_the_scatter_about_a_plane_or_the_noise(rng):
    from msinv.gravity.equivalent_windows import block_means

    region, noise = (0.0, 100.0, 0.0, 100.0), 0.1
    plane = rng.uniform(1, 49, (6, 2))  # block (0-50, 0-50): data on a plane
    curved = rng.uniform(51, 99, (5, 2))  # block (50-100, 50-100): a plane plus a bump
    few = np.array([[10.0, 80.0], [20.0, 70.0]])  # block (0-50, 50-100): two stations
    xy = np.vstack([plane, curved, few])
    pts = np.column_stack([xy, np.zeros(len(xy))])
    bump = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0, -1.0, 0.5, 3.0, 4.0])
    d = 0.02 * xy[:, 0] - 0.01 * xy[:, 1] + bump
    xyz, dm, sm = block_means(pts, d, np.full(len(d), noise), region, 4)
    order = np.argsort(xyz[:, 0] + 10 * xyz[:, 1])  # plane, few, curved
    xyz, dm, sm = xyz[order], dm[order], sm[order]
    np.testing.assert_allclose(xyz[0, :2], plane.mean(axis=0))
    np.testing.assert_allclose(dm[0], d[:6].mean())
    # a plane is what the mean at the mean position represents: the noise only
    assert sm[0] == pytest.approx(noise / np.sqrt(6))
    # too few stations for a plane: the noise only
    assert sm[1] == pytest.approx(noise / np.sqrt(2))
    # the scatter about the block's own plane, over n - 3, then over n
    a = np.column_stack([np.ones(5), curved])
    rss = np.sum((d[6:11] - a @ np.linalg.lstsq(a, d[6:11], rcond=None)[0]) ** 2)
    assert sm[2] == pytest.approx(np.sqrt(rss / 2 / 5))
    assert sm[2] > noise / np.sqrt(5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="points"):
        EquivalentLayer().fit(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="sigma"):
        EquivalentLayer().fit(np.zeros((5, 3)), np.zeros(5), -1.0)
    with pytest.raises(ValueError, match="sigma: expected a number or 5 values, got shape"):
        EquivalentLayer().fit(np.zeros((5, 3)), np.zeros(5), np.ones(4))
    for data in (np.zeros(4), np.array([0.0, 1.0, np.nan, 0.0, 0.0])):
        with pytest.raises(ValueError, match="data: expected 5 finite values"):
            EquivalentLayer().fit(np.zeros((5, 3)), data, 1.0)
    with pytest.raises(ValueError, match="not fitted"):
        EquivalentLayer().predict(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="depth"):
        EquivalentLayer(depth="deep")
    # without a smallness term R is singular: refused up front, not solved into nonsense
    for alphas in [(0.0, 1.0, 1.0), (-1.0, 1.0, 1.0), (1.0, -1.0, 1.0), (1.0, 1.0)]:
        with pytest.raises(ValueError, match="alphas: expected alpha_s > 0"):
            EquivalentLayer(alphas=alphas)


@pytest.mark.parametrize("cell", [300.0, 100.0])  # fewer cells than data, and more
def test_the_exact_solver_refuses_a_singular_model_objective(survey, cell):
    layer = LayerMesh.draped(survey.points, cell=cell, depth=150.0, padding=0)
    g = layer.sensitivity(survey.points)
    est = EquivalentLayer()
    reg = est._regularisation(layer)
    gradient_only = sum(o.matrix.T @ o.matrix for k, o in reg.operators.items() if k != "s")
    with pytest.raises(ValueError, match="hessian: R is singular"):
        TikhonovSolver(g, np.full(len(g), survey.sigma), gradient_only)
    solver = TikhonovSolver(g, np.full(len(g), survey.sigma), _hessian(reg))  # α_s: accepted
    assert solver.data_space == (cell == 100.0)


def test_grids_refuse_a_spacing_or_region_they_cannot_honour(survey):
    est = EquivalentLayer().fit(survey.points, survey.data, survey.sigma)
    for spacing in (0.0, -5.0):  # 0 used to mean the default spacing, -5 an empty grid
        with pytest.raises(ValueError, match="spacing: expected > 0 m"):
            est.grid(spacing=spacing)
        with pytest.raises(ValueError, match="spacing: expected > 0 m"):
            est.upward(300.0, spacing=spacing)
    with pytest.raises(ValueError, match="region: expected"):
        est.grid(spacing=100.0, region=(1000.0, 0.0, 0.0, 1000.0))  # west and east swapped
    grid = est.grid(spacing=500.0, region=(0.0, 1000.0, 0.0, 500.0))
    assert grid.gz.shape == (2, 3)


def test_the_default_cell_is_the_station_spacing_on_an_area_and_on_a_line():
    est = EquivalentLayer()
    square = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.5, 0.5, 0.0]])
    assert est.default_cell(square) == pytest.approx(np.sqrt(0.25 / 4))  # √(hull area / N)
    x = np.linspace(0.0, 1000.0, 20)  # a profile: no hull area (Qhull refused it before)
    line = np.column_stack([x, 2.0 * x, np.zeros(20)])
    assert est.default_cell(line) == pytest.approx(1000.0 * np.sqrt(5.0) / 19)
    two = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 5.0], [300.0, 400.0, 0.0]])
    assert est.default_cell(two) == pytest.approx(500.0)  # coincident in plan: not a spacing
    for one_place in (two[:1], two[:2]):  # it used to answer 1 m (a million cells per km²)
        with pytest.raises(ValueError, match="points: the stations do not spread"):
            est.default_cell(one_place)


def test_the_compression_error_must_lie_strictly_between_0_and_1():
    for rstar in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="rstar: expected in"):
            EquivalentLayer(rstar=rstar)
    assert EquivalentLayer(rstar=0.999).rstar == 0.999


def test_three_stations_spread_over_a_triangle_give_the_hull_spacing():
    tri = np.array([[0.0, 0.0, 0.0], [300.0, 0.0, 0.0], [0.0, 400.0, 0.0]])
    assert EquivalentLayer().default_cell(tri) == pytest.approx(np.sqrt(60000.0 / 3))


def test_options_are_checked_at_their_edges():
    with pytest.raises(ValueError, match="chifact: expected > 0"):
        EquivalentLayer(chifact=0.0)
    assert EquivalentLayer(folds=2).folds == 2  # the smallest k-fold
    with pytest.raises(ValueError, match="folds: expected >= 2"):
        EquivalentLayer(folds=1)


def test_a_layer_whose_g_fits_the_memory_limit_exactly_is_fitted_whole(survey):
    est = EquivalentLayer()
    cell = 1.5 * est.default_cell(survey.points)
    need = est.build_layer(survey.points, 0.0, cell).sensitivity_memory(len(survey.data))
    whole = EquivalentLayer(memory=need / 2**30).fit(survey.points, survey.data, survey.sigma)
    assert not hasattr(whole, "windows_")
    from msinv.core.memory import MemoryLimitError

    # a byte less and it goes to windows, whose own estimate this tiny limit refuses up front
    with pytest.raises(MemoryLimitError, match="windowed layer"):
        EquivalentLayer(memory=(need - 1) / 2**30).fit(survey.points, survey.data, survey.sigma)


def test_refitting_forgets_the_previous_fit(survey):
    est = EquivalentLayer(lower=-1.0, upper=1.0).fit(survey.points, survey.data, survey.sigma)
    assert est.result_ is not None  # the bounded inversion's record
    est.lower, est.upper = -np.inf, np.inf
    est.fit(survey.points, survey.data, survey.sigma)
    assert est.result_ is None  # solved exactly: no inversion record left from the first fit


def test_depth_by_cross_validation_records_its_scores(survey):
    est = EquivalentLayer(depth="cv", depth_factors=(1.0, 2.5), folds=2)
    est.fit(survey.points, survey.data, survey.sigma)
    scores = est.cv_scores_["depth"]
    assert len(scores) == 2 and est.depth_ == min(scores, key=scores.get)


@pytest.fixture(scope="module")
def quiet_survey():
    """Shallow sources and 0.001 mGal noise: the default 1.5-spacing layer is too coarse."""
    return synthetic_survey(
        300, seed=1, size=3000.0, gap_width=200.0, noise=0.001, source_tops=(100.0, 400.0)
    )


def _errors(est, sv):
    """RMS error against the true field: on the surface outside the gap, and at 300 m."""
    g = np.linspace(0.0, 3000.0, 40)
    e, n = (a.ravel() for a in np.meshgrid(g, g))
    surface = np.column_stack([e, n, sv.surface(e, n) + 1.0])
    surface = surface[sv.interior(surface) & ~sv.in_gap(surface)]
    up = np.column_stack([e, n, np.full(e.size, 300.0)])
    up = up[sv.interior(up)]
    return (
        _rms(est.predict(surface), sv.true_gz(surface)),
        _rms(est.predict(up), sv.true_gz(up)),
    )


def test_a_layer_too_coarse_for_quiet_data_is_refined_while_its_evidence_grows(quiet_survey):
    sv = quiet_survey
    coarse = EquivalentLayer(max_noise_ratio=None).fit(sv.points, sv.data, sv.sigma)
    assert coarse.noise_ratio_ > 4  # the field's short wavelengths are left in the residuals
    assert "cell" not in coarse.cv_scores_
    est = EquivalentLayer().fit(sv.points, sv.data, sv.sigma)
    scores = est.cv_scores_["cell"]
    assert list(scores) == pytest.approx([coarse.cell_, coarse.cell_ / 1.5])
    assert scores[est.cell_] == min(scores.values())  # greater evidence on the finer layer
    assert est.cell_ == pytest.approx(coarse.cell_ / 1.5)
    assert est.noise_ratio_ <= est.max_noise_ratio
    (surface, up), (surface0, up0) = _errors(est, sv), _errors(coarse, sv)
    assert surface < 0.8 * surface0 and up < 0.3 * up0
    # a refit records its own choices, not the previous fit's
    est.max_noise_ratio = None
    est.fit(sv.points, sv.data, sv.sigma)
    assert "cell" not in est.cv_scores_ and est.cell_ == pytest.approx(coarse.cell_)


def test_a_finer_layer_of_lesser_evidence_is_not_kept_and_the_misfit_is_warned(quiet_survey):
    sv = synthetic_survey(
        300, seed=1, size=3000.0, gap_width=200.0, noise=0.0002, source_tops=(100.0, 400.0)
    )
    with pytest.warns(MsinvWarning, match="too coarse for data this accurate"):
        est = EquivalentLayer().fit(sv.points, sv.data, sv.sigma)
    scores = est.cv_scores_["cell"]
    assert len(scores) == 3 and est.cell_ == pytest.approx(list(scores)[1])
    assert scores[est.cell_] == min(scores.values())
    # the state restored is the kept layer's, whole
    assert est.density_.size == est.layer_.n_cells
    resid = (est.predict(sv.points) - sv.data) / sv.sigma
    assert est.phi_d_ == pytest.approx(float(np.sum(resid**2)), rel=1e-8)
    assert est.noise_ratio_ > est.max_noise_ratio


def test_a_given_cell_is_not_refined_but_a_misfit_beyond_the_noise_is_warned(quiet_survey):
    sv = quiet_survey
    cell = EquivalentLayer().default_cell(sv.points) * 1.5
    with pytest.warns(MsinvWarning, match=r"chi2/\(N - tr A\) = [0-9.]+ > max_noise_ratio 1.5"):
        est = EquivalentLayer(cell=cell).fit(sv.points, sv.data, sv.sigma)
    assert est.cell_ == pytest.approx(cell) and "cell" not in est.cv_scores_
    # a fixed damping sets chi2 itself: no noise ratio, no warning
    est = EquivalentLayer(cell=cell, damping=1.0).fit(sv.points, sv.data, sv.sigma)
    assert est.noise_ratio_ is None


def test_an_underestimated_sigma_is_named_when_refining_does_not_help(survey):
    # σ a third of the noise's: the residuals stay about 3x σ on every layer tried, where a
    # layer too coarse for accurate data lowers them several-fold when refined
    with pytest.warns(MsinvWarning, match="sigma is likely underestimated") as caught:
        est = EquivalentLayer().fit(survey.points, survey.data, survey.sigma / 3)
    ratios = list(est.cv_scores_["noise_ratio"].values())
    assert len(ratios) >= 2 and ratios[0] / ratios[1] < 2.0 and est.noise_ratio_ > 4.0
    assert "by about 3" in str(caught[0].message) or "by about 2" in str(caught[0].message)


def test_coarser_deeper_layers_are_kept_only_while_their_evidence_grows(survey):
    # sources 150-1,000 m deep (the fixture): one probe, worse, and the default layer is kept
    est = EquivalentLayer().fit(survey.points, survey.data, survey.sigma)
    (first, default), (_, probe) = est.cv_scores_["deeper"].items()
    assert probe > default and (est.cell_, est.depth_) == first
    # sources 500-1,000 m deep under 3 km: the smooth field is better made by a coarser,
    # deeper layer, which the evidence prefers, and it continues the field more accurately
    sv = synthetic_survey(300, seed=3, size=3000.0, gap_width=200.0, source_tops=(500.0, 1000.0))
    deep = EquivalentLayer().fit(sv.points, sv.data, sv.sigma)
    shallow = EquivalentLayer(deep_factors=()).fit(sv.points, sv.data, sv.sigma)
    assert "deeper" not in shallow.cv_scores_
    assert deep.cell_ == pytest.approx(1.5 * shallow.cell_) and deep.depth_ > shallow.depth_
    assert deep.score_ < shallow.score_  # negative log evidence
    scores = list(deep.cv_scores_["deeper"].values())
    kept = scores.index(deep.score_)
    assert kept >= 1 and all(a > b for a, b in itertools.pairwise(scores[: kept + 1]))
    up = np.column_stack([sv.points[:, :2], np.full(len(sv.data), 300.0)])
    inner = sv.interior(up)
    true = sv.true_gz(up[inner])
    assert _rms(deep.predict(up[inner]), true) < 0.9 * _rms(shallow.predict(up[inner]), true)
    with pytest.raises(ValueError, match="deep_factors: expected"):
        EquivalentLayer(deep_factors=(2.0, -1.0))


def test_data_of_the_stated_noise_keep_the_default_layer(survey):
    est = EquivalentLayer().fit(survey.points, survey.data, survey.sigma)
    assert 0.5 < est.noise_ratio_ < 1.5 and "cell" not in est.cv_scores_
    solver = TikhonovSolver(
        est.layer_.sensitivity(survey.points),
        np.full(len(survey.data), survey.sigma),
        _hessian(est._regularisation(est.layer_)),
    )  # chi2 / (N - tr A), tr A the fit's effective number of parameters
    dof = solver.dof(est.beta_)
    assert 10 < dof < len(survey.data) / 2
    assert est.noise_ratio_ == pytest.approx(est.phi_d_ / (len(survey.data) - dof), rel=1e-9)
    # without sigma there is no noise to compare with (GCV on a misfit measured with σ = 1)
    blind = EquivalentLayer(trade_off="gcv").fit(survey.points, survey.data)
    assert blind.noise_ratio_ is None
    with pytest.raises(ValueError, match="max_noise_ratio: expected > 1 or None, got 1"):
        EquivalentLayer(max_noise_ratio=1)


def test_large_surveys_are_fitted_in_windows_unless_one_layer_is_asked_for(survey, monkeypatch):
    import msinv.gravity.equivalent as equivalent
    from msinv.core.memory import MemoryLimitError

    monkeypatch.setattr(equivalent, "WINDOWS_ABOVE", 200)  # the 300-station survey is "large"
    est = EquivalentLayer().fit(survey.points, survey.data, survey.sigma)
    assert len(est.windows_) >= 1 and est.regional_ is not None
    # no single layer to hand out (it was the first window's under the fit's name)
    for name in ("layer_", "density_", "beta_"):
        with pytest.raises(AttributeError, match=f"{name}: a windowed fit .* window=False"):
            getattr(est, name)
    assert est.cell_ == pytest.approx(est.core_cell(survey.points))
    assert np.all(np.isfinite(est.grid(spacing=500.0).gz))
    # one layer asked for: the same estimator refitted forgets its windows
    est.window = False
    est.fit(survey.points, survey.data, survey.sigma)
    assert not hasattr(est, "windows_") and est.layer_ is not None
    np.testing.assert_allclose(est.predict(survey.points), est.fitted_)
    with pytest.raises(MemoryLimitError, match="window=False"):
        EquivalentLayer(window=False, memory=1e-6).fit(survey.points, survey.data, survey.sigma)
    # windows average stations in blocks: borehole data keep one layer, or are refused
    borehole = np.zeros(len(survey.data), bool)
    borehole[:5] = True
    one = EquivalentLayer().fit(survey.points, survey.data, survey.sigma, borehole=borehole)
    assert not hasattr(one, "windows_")
    with pytest.raises(ValueError, match="borehole: a windowed fit"):
        EquivalentLayer(window=150).fit(survey.points, survey.data, survey.sigma, borehole)
    with pytest.raises(ValueError, match="window: expected"):
        EquivalentLayer(window=True)


def test_a_large_survey_with_a_regional_is_fitted_on_one_layer(survey, monkeypatch):
    # windows split a regional plane from the field less accurately (their regional layer is
    # coarse and deep): 0.0148 against 0.0011 mGal upward on the benchmark's band-regional
    # survey of 5,000 stations
    import msinv.gravity.equivalent as equivalent

    monkeypatch.setattr(equivalent, "WINDOWS_ABOVE", 200)
    data = survey.data + _regional(survey.points)
    est = EquivalentLayer().fit(survey.points, data, survey.sigma)
    assert not hasattr(est, "windows_") and est.trend_ == 1
    assert est.cv_scores_["windows"] == {"trend": 1}  # found by the regional stage
    one = EquivalentLayer(window=False).fit(survey.points, data, survey.sigma)
    np.testing.assert_allclose(est.density_, one.density_)
    assert est.phi_d_ == pytest.approx(one.phi_d_)
    # asked for, windows are kept
    asked = EquivalentLayer(window=150).fit(survey.points, data, survey.sigma)
    assert hasattr(asked, "windows_") and asked.trend_ == 1
