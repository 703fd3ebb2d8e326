"""Inversion internals stated by their definitions (written from the survivors of the sampled
mutation run, docs/testing.md)."""

import itertools
import re

import numpy as np
import pytest
import scipy.sparse as sp
from discretize import TensorMesh

from msinv.core.errors import UserInputError
from msinv.core.operator import Diagonal
from msinv.gravity.forward import GravityOperator
from msinv.gravity.inversion import (
    InversionConfig,
    SparseConfig,
    _preconditioner,
    finish,
    gcv_score,
    invert,
)
from msinv.gravity.regularisation import Regularisation
from msinv.gravity.sensitivity import build_sensitivity
from msinv.gravity.weighting import distance_weighting


@pytest.mark.parametrize("n_data", [5, 64, 150])
def test_jacobi_preconditioner_is_the_inverse_diagonal_of_the_normal_matrix(rng, n_data):
    """M^-1 r = r / diag(G^T W_d^2 G + beta R), however many 64-row blocks G spans."""
    g = rng.standard_normal((n_data, 30)).astype(np.float32)
    wd2 = rng.uniform(0.5, 2.0, n_data)
    reg_h = sp.diags(rng.uniform(1.0, 3.0, 30))
    beta = 0.7
    r = rng.standard_normal(30)
    g64 = g.astype(np.float64)
    diag = np.einsum("ij,i,ij->j", g64, wd2, g64) + beta * reg_h.diagonal()
    m_inv = _preconditioner("jacobi", reg_h, GravityOperator(g), wd2)(beta)
    np.testing.assert_allclose(m_inv(r), r / diag, rtol=1e-10)


def test_jacobi_preconditioner_of_a_matrix_free_g_is_the_regularisation_diagonal(rng):
    """Without a dense G (a compressed or matrix-free operator) the diagonal of G^T W_d^2 G is
    unknown: M^-1 r = r / (beta diag R), nothing added for the data term."""
    reg_h = sp.diags(rng.uniform(1.0, 3.0, 30))
    r = rng.standard_normal(30)
    m_inv = _preconditioner("jacobi", reg_h, Diagonal(rng.uniform(1, 2, 30)), np.ones(30))(0.7)
    np.testing.assert_allclose(m_inv(r), r / (0.7 * reg_h.diagonal()), rtol=1e-12)


@pytest.fixture(scope="module")
def small():
    """A 6 x 6 x 4 mesh, 25 stations, a buried sphere, 2% noise: (mesh, G, data, sigma, reg)."""
    rng = np.random.default_rng(1717)
    mesh = TensorMesh(
        [np.full(6, 20.0), np.full(6, 20.0), np.full(4, 20.0)], origin=[-60, -60, -80]
    )
    xs, ys = np.meshgrid(np.linspace(-50, 50, 5), np.linspace(-50, 50, 5))
    st = np.column_stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    g = build_sensitivity(mesh, st)
    true = np.where(np.linalg.norm(mesh.cell_centers - [0, 0, -40], axis=1) < 30, 0.3, 0.0)
    sigma = np.full(st.shape[0], 0.02 * np.abs(g @ true).max())
    data = g @ true + sigma * rng.standard_normal(st.shape[0])
    return mesh, g, data, sigma, distance_weighting(mesh, st)


@pytest.mark.parametrize("mode", [1, 2])
def test_finish_with_the_exact_g(small, mode):
    """finish() re-solves with the exact G: in mode 1 the β search restarts and lands on the
    target misfit (which the approximate G's model misses), in mode 2 the β is kept; φ_d is
    the true misfit of the returned model and phi_d_approximate what the approximate G said."""
    mesh, g, data, sigma, w = small
    reg = Regularisation(mesh, weights=w)
    config = InversionConfig(mode=mode, tolc=0.02, beta=None if mode == 1 else 1e-3)
    approx = invert(GravityOperator(1.15 * g), data, sigma, reg, config=config)
    approx.levels = [{"level": 1, "cells": 18}, {"level": 0, "cells": 144}]  # as multilevel
    out = finish(GravityOperator(g), approx, data, sigma, reg, config=config)
    assert out.levels == approx.levels  # the coarse-to-fine summary survives the finish
    assert out.log[: len(approx.log)] == approx.log and len(out.log) > len(approx.log)

    def phi_d(m):
        return float(np.sum(((g @ m - data) / sigma) ** 2))

    assert out.phi_d == pytest.approx(phi_d(out.model))
    assert out.phi_d_approximate == approx.phi_d
    target = data.size
    if mode == 1:
        assert abs(phi_d(approx.model) - target) > 0.02 * target  # finishing has work to do
        assert out.converged and abs(out.phi_d - target) <= 0.02 * target
    else:
        assert out.beta == approx.beta


@pytest.mark.parametrize("mode", [1, 2])
def test_finish_keeps_both_bounds(small, mode):
    """finish() solves with the bounds it is given: a lower bound that the unbounded exact
    solution would cross (it goes negative here) and an upper one both hold cell by cell, as
    they did in the approximate inversion."""
    mesh, g, data, sigma, w = small
    reg = Regularisation(mesh, weights=w)
    config = InversionConfig(mode=mode, tolc=0.02, beta=None if mode == 1 else 1e-3)
    free = invert(GravityOperator(g), data, sigma, reg, config=config)
    lower = 0.25 * float(free.model.max())
    upper = 0.8 * float(free.model.max())
    assert free.model.min() < lower and free.model.max() > upper  # both bounds bite
    approx = invert(GravityOperator(1.15 * g), data, sigma, reg, lower=lower, upper=upper,
                    config=config)  # fmt: skip
    out = finish(GravityOperator(g), approx, data, sigma, reg, lower=lower, upper=upper,
                 config=config)  # fmt: skip
    assert out.model.min() >= lower and out.model.max() <= upper


def test_the_starting_model_is_the_reference_by_default_and_projected_onto_the_bounds(small):
    """invert's ``initial``: None starts from the reference model of the active cells, a
    number is that value in every cell, an array is taken cell by cell, and whatever is given
    is clipped to [lower, upper] first. With one CG iteration per solve the result depends on
    the start, so equal results mean equal starts."""
    mesh, g, data, sigma, w = small
    ref = np.linspace(0.0, 0.2, mesh.n_cells)
    reg = Regularisation(mesh, weights=w, reference=ref)
    config = InversionConfig(mode=2, beta=1e-3, max_cg=1, max_outer=1)

    def run(initial, upper=np.inf):
        return invert(GravityOperator(g), data, sigma, reg, initial=initial, upper=upper,
                      config=config).model  # fmt: skip

    zero = run(0.0)
    assert np.isfinite(zero).all() and not np.allclose(zero, run(0.1))  # the start shows
    np.testing.assert_array_equal(run(None), run(ref[reg.active]))
    np.testing.assert_array_equal(run(0.1), run(np.full(reg.n_active, 0.1)))
    high = np.full(reg.n_active, 0.5)
    high[::2] = 0.02
    np.testing.assert_array_equal(run(high, upper=0.3), run(np.minimum(high, 0.3), upper=0.3))


def test_an_integer_trade_off_step_sweeps_the_same_betas(small):
    """Mode 3's sweep beta0 * step^-k with step given as the integer 4 (as a Python caller or a
    control file may write it) is the sweep of 4.0, not NumPy's refusal of integers to
    negative integer powers."""
    mesh, g, data, sigma, w = small
    runs = [
        invert(GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
               config=InversionConfig(mode=3, n_lcurve=3, beta=1e-2, lcurve_step=step))
        for step in (4, 4.0)
    ]  # fmt: skip
    assert [e.beta for e in runs[0].log] == [e.beta for e in runs[1].log]
    assert [e.beta for e in runs[1].log] == [1e-2, 1e-2 / 4, 1e-2 / 16]


def test_the_callback_gets_every_log_field_and_the_model_of_each_beta(small):
    """callback("beta", info) after each β solve: info holds every BetaLog field of the log
    line that solve wrote, and "model", the model it reached (the returned model for the last
    β of a fixed-β run); callback("cg", {"iterations": k}) once per CG iteration, k counting
    within the solve."""
    import dataclasses

    mesh, g, data, sigma, w = small
    events = []
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=3, n_lcurve=3, beta=1e-2), callback=lambda e, i: events.append((e, i)),
    )  # fmt: skip
    betas = [i for e, i in events if e == "beta"]
    assert len(betas) == len(res.log) == 3
    for info, line in zip(betas, res.log, strict=True):
        assert {k: v for k, v in info.items() if k != "model"} == dataclasses.asdict(line)
        assert info["model"].shape == res.model.shape
    chosen = next(i for i in betas if i["beta"] == res.beta)
    np.testing.assert_array_equal(chosen["model"], res.model)
    cg = [i["iterations"] for e, i in events if e == "cg"]
    assert len(cg) == sum(line.cg_iterations for line in res.log)
    assert cg[0] == 1 and all(b in (a + 1, 1) for a, b in itertools.pairwise(cg))


def test_irls_is_on_its_floor_when_the_cooled_eps_equals_it_exactly(small):
    """The re-weighting stops at the first iteration whose cooled ε, start / cooling**(k+1),
    are all at or below their floors (with any change accepted, tol = 1): floors set to
    exactly a quarter of each term's start (cooling 2, exact in binary) stop it after the
    second re-weighting, not the third."""
    mesh, g, data, sigma, w = small
    config = InversionConfig(mode=2, beta=1e-3)
    reg = Regularisation(mesh, weights=w)
    l2 = invert(GravityOperator(g), data, sigma, reg, config=config).model
    start = {k: float(np.abs(reg.model_quantity(l2, k)).max()) for k in reg.terms_}
    grad = max(v for k, v in start.items() if k != "s")
    sparse = SparseConfig(norms=(1.0, 1.0, 1.0, 1.0), eps=start["s"] / 4, eps_grad=grad / 4,
                          cooling=2.0, tol=1.0, max_irls=10)  # fmt: skip
    res = invert(GravityOperator(g), data, sigma, reg, config=config, sparse=sparse)
    assert sorted({e.irls for e in res.log if e.irls > 0}) == [1, 2]


def test_the_first_beta_estimate_is_reproducible_for_its_seed(small):
    """estimate_beta0 draws its Rademacher probes from default_rng(seed): the same seed gives
    the same β bit for bit, another seed (or another probe count) another estimate of the
    same trace ratio (G is not diagonal here, so the probes matter)."""
    from msinv.gravity.inversion import estimate_beta0

    mesh, g, _, sigma, w = small
    reg = Regularisation(mesh, weights=w)
    op = GravityOperator(g)
    first = estimate_beta0(op, sigma, reg, seed=3)
    assert estimate_beta0(op, sigma, reg, seed=3) == first
    assert estimate_beta0(op, sigma, reg) == estimate_beta0(op, sigma, reg, seed=0) != first
    assert estimate_beta0(op, sigma, reg, n_probe=1, seed=3) != first


def test_finish_after_a_sweep_solves_once_at_the_chosen_beta_and_keeps_the_gcv_curve(small):
    """Mode 3: the sweep is not run again with the exact G, one solve at the β it chose is
    (every new log line has that β), and the result keeps the approximate run's GCV values
    (the exact G computed none), its levels and, in phi_d_approximate, its claimed misfit."""
    mesh, g, data, sigma, w = small
    reg = Regularisation(mesh, weights=w)
    config = InversionConfig(mode=3, n_lcurve=3, beta=1e-2, cg_tol=1e-6)
    approx = invert(GravityOperator(1.15 * g), data, sigma, reg, config=config)
    assert approx.gcv is not None and len(approx.gcv) == 3  # the test's premise
    out = finish(GravityOperator(g), approx, data, sigma, reg, config=config)
    new = out.log[len(approx.log) :]
    assert new and {e.beta for e in new} == {approx.beta}
    assert out.beta == approx.beta and out.gcv == approx.gcv
    assert out.phi_d_approximate == approx.phi_d and out.levels == approx.levels is None


ACCEPTED = [
    {"scale": 0.0},
    {"scale": 0.5},
    {"scale": 1.0},
    {"scale": np.array([0.0, 0.3, 1.0])},
    {"norms": (0.0, 2.0, 1.0, 0.5)},
    {"eps": 1e-6, "eps_grad": 1e-9},
    {"max_irls": 1, "cooling": 1.01, "tol": 1e-9},
    {"cg_tol": 0.5},
    {"misfit_tolerance": 0.0},
    {"misfit_tolerance": 0.5},
]
REFUSED = [
    {"scale": -0.1},
    {"scale": 1.1},
    {"scale": np.array([0.5, 1.2, 0.5])},  # every cell's scale is checked, not just one
    {"norms": (2.1, 2.0, 2.0, 2.0)},
    {"norms": (2.0, 2.0, 2.0, -0.5)},
    {"norms": (2.0, 2.0, 2.0)},
    {"eps": 0.0},
    {"eps_grad": -1.0},
    {"max_irls": 0},
    {"cooling": 1.0},
    {"tol": 0.0},
    {"cg_tol": 0.0},
    {"cg_tol": 1.0},
    {"misfit_tolerance": 1.0},
    {"misfit_tolerance": -0.1},
]


@pytest.mark.parametrize("fields", ACCEPTED)
def test_sparse_config_accepts_its_documented_range(fields):
    config = SparseConfig(**fields)
    assert all(np.all(getattr(config, k) == v) for k, v in fields.items())


@pytest.mark.parametrize("fields", REFUSED)
def test_sparse_config_refuses_values_outside_it(fields):
    with pytest.raises(UserInputError):
        SparseConfig(**fields)


def test_irls_cools_eps_by_the_cooling_factor(small):
    """Each IRLS iteration divides ε of every term by ``cooling`` until its floor (SparseConfig):
    the logged ε of consecutive iterations have the ratio 1 / cooling."""
    mesh, g, data, sigma, w = small
    cooling = 1.5
    sparse = SparseConfig(
        norms=(1.0, 1.0, 1.0, 1.0), eps=1e-9, eps_grad=1e-12, cooling=cooling, max_irls=4
    )
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=1, tolc=0.05), sparse=sparse,
    )  # fmt: skip
    eps = {e.irls: e.eps for e in res.log if e.irls > 0}
    assert len(eps) >= 3
    for k in sorted(eps)[1:]:
        for key, value in eps[k].items():
            assert value == pytest.approx(eps[k - 1][key] / cooling, rel=1e-12), (k, key)


def test_default_eps_floor_is_a_tenth_of_the_l2_models_98th_percentile(small):
    """eps = None: each term's ε floor is the 98th percentile of |f| of the L2 model divided by
    10 (SparseConfig); with a strong cooling the last IRLS iterations sit on that floor."""
    mesh, g, data, sigma, w = small
    config = InversionConfig(mode=1, tolc=0.05)
    l2 = invert(GravityOperator(g), data, sigma, Regularisation(mesh, weights=w), config=config)
    sparse = SparseConfig(norms=(1.0, 1.0, 1.0, 1.0), cooling=1e6, max_irls=3)
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w), config=config,
        sparse=sparse,
    )  # fmt: skip
    last = [e.eps for e in res.log if e.irls > 0][-1]
    reg = Regularisation(mesh, weights=w)
    for key, value in last.items():
        f = np.abs(reg.model_quantity(l2.model, key))
        assert value == pytest.approx(max(np.percentile(f, 98) / 10, 1e-12), rel=1e-9), key


def test_gcv_of_a_diagonal_problem_is_the_exact_formula():
    """For G = diag(g) and R = diag(r) the influence matrix is diagonal, so every Rademacher
    probe gives its trace exactly: V = N phi_d / (N - tr A)^2 with
    A_ii = (g_i / s_i)^2 / ((g_i / s_i)^2 + beta r_i) on the cells strictly inside the bounds
    and 0 on the cells at a bound (fixed, as in the bounded solve)."""
    rng = np.random.default_rng(5)
    n = 12
    g, s, r = rng.uniform(0.5, 2.0, n), rng.uniform(0.1, 0.3, n), rng.uniform(1.0, 3.0, n)
    lower, upper = np.zeros(n), np.ones(n)
    model = rng.uniform(0.1, 0.9, n)
    model[[1, 4]] = 0.0  # at the lower bound
    model[7] = 1.0  # at the upper bound
    beta, phi_d = 0.3, 4.2
    config = InversionConfig(mode=3, cg_tol=1e-12)
    score = gcv_score(Diagonal(g), s, sp.diags(r), beta, phi_d, model, lower, upper, config)
    free = np.ones(n, bool)
    free[[1, 4, 7]] = False
    w = (g / s) ** 2
    trace = float(np.sum((w / (w + beta * r))[free]))
    assert score == pytest.approx(n * phi_d / (n - trace) ** 2, rel=1e-9)


def test_reweighting_solves_use_the_sparse_cg_tolerance(small, monkeypatch):
    """SparseConfig.cg_tol is the tolerance of the bounded CG solves during the re-weighting;
    the L2 solves before it use the inversion's cg_tol."""
    import msinv.gravity.inversion as inversion

    tols = []
    real = inversion.projected_cg

    def spy(*args, **kwargs):
        tols.append(kwargs["tol"])
        return real(*args, **kwargs)

    monkeypatch.setattr(inversion, "projected_cg", spy)
    mesh, g, data, sigma, w = small
    invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=1, tolc=0.05, cg_tol=1e-4),
        sparse=SparseConfig(norms=(1.0, 1.0, 1.0, 1.0), max_irls=2, cg_tol=0.05),
    )  # fmt: skip
    assert set(tols) == {1e-4, 0.05}
    first_sparse = tols.index(0.05)
    assert first_sparse > 0 and set(tols[:first_sparse]) == {1e-4}


def test_regularisation_and_g_must_count_the_same_cells(small):
    """A regularisation over another set of active cells than G's columns is refused in one
    line, before any solve."""
    mesh, g, data, sigma, w = small
    with pytest.raises(UserInputError, match="regularisation has 144 active cells, G has 143"):
        invert(GravityOperator(g[:, :-1]), data, sigma, Regularisation(mesh, weights=w))


INVERSION_ACCEPTED = [
    {"mode": 3, "n_lcurve": 3},
    {"lcurve_step": 1.001},
    {"cg_tol": 1e-12},
    {"cg_tol": 0.999},
    {"tolc": 0.999},
    {"max_cg": 1, "max_outer": 1, "max_beta": 1},
    {"n_gcv_probe": 1},
    {"mode3": "gcv"},
    {"mode3": "lcurve"},
]
INVERSION_REFUSED = [
    {"n_lcurve": 2},
    {"lcurve_step": 1.0},
    {"cg_tol": 0.0},
    {"cg_tol": 1.0},
    {"tolc": 0.0},
    {"tolc": 1.0},
    {"chifact": 0.0},
    {"max_cg": 0},
    {"max_outer": 0},
    {"max_beta": 0},
    {"mode": 4},
    {"mode": 2},  # without its fixed beta
    {"beta": 0.0},
    {"beta_start": 0.0},
    {"beta_slope": 0.0},
    {"preconditioner": "ilu"},
    {"mode3": "aic"},
    {"n_gcv_probe": 0},
]


@pytest.mark.parametrize("fields", INVERSION_ACCEPTED)
def test_inversion_config_accepts_its_documented_range(fields):
    config = InversionConfig(**fields)
    assert all(getattr(config, k) == v for k, v in fields.items())


@pytest.mark.parametrize("fields", INVERSION_REFUSED)
def test_inversion_config_refuses_values_outside_it(fields):
    with pytest.raises(UserInputError):
        InversionConfig(**fields)


def test_gcv_solves_are_preconditioned_by_the_inverse_regularisation_diagonal(monkeypatch):
    """Without a preconditioner from the inversion, GCV's CG solves use the documented one:
    the inverse of beta times the regularisation's diagonal on the free cells (the identity on
    the cells at a bound). A wrong one changes only the work, so it is checked directly."""
    import scipy.sparse.linalg as spla

    rng = np.random.default_rng(9)
    n = 10
    g, s, r = rng.uniform(0.5, 2.0, n), rng.uniform(0.1, 0.3, n), rng.uniform(1.0, 30.0, n)
    model = rng.uniform(0.1, 0.9, n)
    model[3] = 0.0  # at the lower bound
    beta = 0.7
    seen = []
    real_cg = spla.cg

    def spy(a, b, **kwargs):
        seen.append(kwargs["M"])
        return real_cg(a, b, **kwargs)

    monkeypatch.setattr(spla, "cg", spy)
    config = InversionConfig(mode=3, n_gcv_probe=1)
    gcv_score(Diagonal(g), s, sp.diags(r), beta, 1.0, model, np.zeros(n), np.ones(n), config)
    expected = 1.0 / (beta * r)
    expected[3] = 1.0
    np.testing.assert_allclose(seen[0].matvec(np.ones(n)), expected, rtol=1e-12)


def test_given_eps_go_to_their_own_terms(small):
    """SparseConfig.eps is the smallness term's ε, eps_grad the gradient terms' (each the
    floor of its cooling): a strong cooling puts every logged ε on its own floor."""
    mesh, g, data, sigma, w = small
    sparse = SparseConfig(norms=(1.0, 1.0, 1.0, 1.0), eps=3e-4, eps_grad=7e-6, cooling=1e6,
                          max_irls=2)  # fmt: skip
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=1, tolc=0.05), sparse=sparse,
    )  # fmt: skip
    last = [e.eps for e in res.log if e.irls > 0][-1]
    assert last.pop("s") == 3e-4
    assert last and set(last.values()) == {7e-6}


def test_irls_stops_at_the_first_iteration_on_the_floor(small):
    """With any model change accepted (tol = 1), the re-weighting stops at the first
    iteration whose ε are all on their floors: that ε is logged once, never twice."""
    mesh, g, data, sigma, w = small
    sparse = SparseConfig(norms=(1.0, 1.0, 1.0, 1.0), eps=1e-5, eps_grad=1e-7, cooling=10.0,
                          tol=1.0, max_irls=30)  # fmt: skip
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=1, tolc=0.05), sparse=sparse,
    )  # fmt: skip
    eps = [e.eps for e in sorted({e.irls: e for e in res.log if e.irls > 0}.values(),
                                 key=lambda e: e.irls)]  # fmt: skip
    floors = {k: (1e-5 if k == "s" else 1e-7) for k in eps[-1]}
    assert eps[-1] == floors
    assert len(eps) >= 2 and eps[-2] != floors


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode3": "LCURVE"}, "mode3 must be 'gcv' or 'lcurve', got 'LCURVE'"),
        ({"n_gcv_probe": 0}, "n_gcv_probe must be >= 1, got 0"),
    ],
)
def test_mode3_choice_and_gcv_probes_are_refused_as_user_input(fields, message):
    """mode3 and n_gcv_probe are settings the user gives: a bad one is a UserInputError (one
    line on the command line, no traceback) that names the field and what it must be."""
    with pytest.raises(UserInputError, match=re.escape(message)):
        InversionConfig(**fields)


@pytest.mark.parametrize("short", ["data", "sigma"])
def test_data_and_sigma_need_one_value_per_row_of_g(small, short):
    """data and sigma each hold one value per station (row of G): one missing in either is
    refused in one line before any solve."""
    mesh, g, data, sigma, w = small
    given = {"data": data, "sigma": sigma}
    given[short] = given[short][:-1]
    with pytest.raises(UserInputError, match="data and sigma must have 25 values"):
        invert(GravityOperator(g), given["data"], given["sigma"], Regularisation(mesh, weights=w))


def test_mode3_lcurve_picks_the_corner_of_the_logged_curve(small):
    """mode 3 with mode3="lcurve" solves at n_lcurve betas and keeps the corner of the
    L-curve: the interior point of (log phi_d, log phi_m) farthest from the chord joining the
    two ends. The result is that beta's model and misfit; no GCV values are reported."""
    mesh, g, data, sigma, w = small
    config = InversionConfig(mode=3, mode3="lcurve", n_lcurve=7, lcurve_step=4.0)
    res = invert(GravityOperator(g), data, sigma, Regularisation(mesh, weights=w), config=config)
    assert len(res.log) == 7 and res.gcv is None
    pts = np.log([[e.phi_d, e.phi_m] for e in res.log])
    chord = pts[-1] - pts[0]
    rel = pts - pts[0]
    dist = np.abs(rel[:, 0] * chord[1] - rel[:, 1] * chord[0])
    corner = int(np.argmax(dist))
    assert corner == 4 and dist[corner] > 1.02 * np.sort(dist)[-2]  # a clear corner, off-centre
    assert res.beta == res.log[corner].beta
    assert res.phi_d == res.log[corner].phi_d
    assert res.phi_d == pytest.approx(float(np.sum(((g @ res.model - data) / sigma) ** 2)))


def test_sparse_norms_with_a_fixed_beta_reweight_at_that_beta(small):
    """mode 2 with sparse norms: no beta search; every IRLS iteration solves again at the fixed
    beta with its new weights (one logged solve per iteration, all at that beta), and the
    sparse model is the last of them, not the L2 one."""
    mesh, g, data, sigma, w = small
    beta = 1e-3
    config = InversionConfig(mode=2, beta=beta)
    sparse = SparseConfig(norms=(1.0, 1.0, 1.0, 1.0), max_irls=3, cooling=2.0)
    reg = Regularisation(mesh, weights=w)
    l2 = invert(GravityOperator(g), data, sigma, Regularisation(mesh, weights=w), config=config)
    res = invert(GravityOperator(g), data, sigma, reg, config=config, sparse=sparse)
    assert [e.irls for e in res.log] == [0, 1, 2, 3]
    assert {e.beta for e in res.log} == {beta} and res.beta == beta and res.converged
    assert res.phi_d == res.log[-1].phi_d
    assert res.phi_d == pytest.approx(float(np.sum(((g @ res.model - data) / sigma) ** 2)))
    assert np.abs(res.model - l2.model).max() > 1e-3 * np.abs(l2.model).max()


def test_no_preconditioner_is_none_at_every_beta(small):
    """preconditioner="none" gives the CG solves no preconditioner (None) whatever beta; the
    inversion with it reaches the model of the Jacobi-preconditioned one (within the CG
    tolerance), in more CG iterations (the distance weights spread the diagonal)."""
    mesh, g, data, sigma, w = small
    reg = Regularisation(mesh, weights=w)
    for_beta = _preconditioner("none", reg.normal_matrix(), GravityOperator(g), 1 / sigma**2)
    assert for_beta(1e-3) is None and for_beta(10.0) is None
    runs = [
        invert(
            GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
            config=InversionConfig(mode=2, beta=1e3, preconditioner=kind, cg_tol=1e-8),
        )
        for kind in ("none", "jacobi")
    ]  # fmt: skip
    scale = np.abs(runs[1].model).max()
    np.testing.assert_allclose(runs[0].model, runs[1].model, rtol=0, atol=1e-5 * scale)
    assert runs[0].log[0].cg_iterations > 1.5 * runs[1].log[0].cg_iterations


def test_each_beta_solve_logs_the_seconds_it_took(small):
    """A β solve's log entry holds its own elapsed time: >= 0, and together no more than the
    wall time of the whole inversion."""
    import time

    mesh, g, data, sigma, w = small
    t0 = time.perf_counter()
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=1, tolc=0.02),
    )  # fmt: skip
    wall = time.perf_counter() - t0
    assert len(res.log) >= 2
    assert all(e.seconds >= 0 for e in res.log)
    assert sum(e.seconds for e in res.log) <= wall


def test_a_regularisation_used_by_a_sparse_inversion_starts_the_next_one_from_least_squares(
    small,
):
    """IRLS leaves its weights on the Regularisation; the next invert() with it removes them
    (the same model as with a fresh one), while finish() keeps them to solve the sparse
    inversion's last re-weighted problem with the exact G."""
    mesh, g, data, sigma, w = small
    config = InversionConfig(mode=2, beta=1e-3)
    reg = Regularisation(mesh, weights=w)
    sparse = SparseConfig(norms=(0.0, 1.0, 1.0, 1.0), max_irls=3)
    first = invert(GravityOperator(g), data, sigma, reg, config=config, sparse=sparse)
    again = invert(GravityOperator(g), data, sigma, reg, config=config)
    fresh = invert(GravityOperator(g), data, sigma, Regularisation(mesh, weights=w), config=config)
    np.testing.assert_allclose(again.model, fresh.model, rtol=1e-10, atol=1e-14)
    # finish() after the sparse inversion solves the re-weighted problem, not least squares
    first = invert(GravityOperator(g), data, sigma, reg, config=config, sparse=sparse)
    done = finish(GravityOperator(g), first, data, sigma, reg, config=config)
    assert np.abs(done.model - first.model).max() < 1e-3 * np.abs(first.model).max()
    assert np.abs(done.model - fresh.model).max() > 1e-2 * np.abs(fresh.model).max()


def test_gcv_makes_one_cg_solve_per_probe_two_by_default(monkeypatch):
    """Hutchinson's trace estimate in gcv_score takes n_gcv_probe Rademacher probes, each one CG
    solve: two by default (the documented cost of each β of mode 3's sweep), k when set."""
    import scipy.sparse.linalg as spla

    rng = np.random.default_rng(4)
    n = 6
    g, s, r = rng.uniform(0.5, 2.0, n), rng.uniform(0.1, 0.3, n), rng.uniform(1.0, 30.0, n)
    model = rng.uniform(0.1, 0.9, n)
    calls = []
    real_cg = spla.cg

    def counting(a, b, **kwargs):
        calls.append(1)
        return real_cg(a, b, **kwargs)

    monkeypatch.setattr(spla, "cg", counting)
    for config, solves in (
        (InversionConfig(mode=3), 2),
        (InversionConfig(mode=3, n_gcv_probe=5), 5),
    ):
        calls.clear()
        gcv_score(Diagonal(g), s, sp.diags(r), 0.7, 1.0, model, np.zeros(n), np.ones(n), config)
        assert len(calls) == solves


def test_the_default_eps_floor_never_falls_to_zero(small):
    """eps = None on data that carry nothing (all zero): the L2 model is the reference, every
    term's |f| is 0, and the floor of each ε is the safeguard 1e-12 (not 0, which would make
    the Lawson weights infinite); the sparse model stays the reference, finite."""
    mesh, g, _, sigma, w = small
    data = np.zeros(g.shape[0])
    sparse = SparseConfig(norms=(1.0, 1.0, 1.0, 1.0), max_irls=2)
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=2, beta=1e-3), sparse=sparse,
    )  # fmt: skip
    eps = [e.eps for e in res.log if e.irls > 0]
    assert eps  # one re-weighted solve: on the floor and no change, IRLS stops
    for entry in eps:
        assert entry and all(value == 1e-12 for value in entry.values()), entry
    assert np.all(res.model == 0.0) and res.phi_d == 0.0


def test_the_beta_searches_of_the_reweighting_bracket_by_a_factor_of_two(small):
    """After each re-weighting β is searched again from the last β, which is close to the
    target: a trial that misses is followed by β x 2 or β / 2 (not the L2 search's factor
    of 10), so the second trial of every re-weighted search is exactly twice or half its
    first."""
    mesh, g, data, sigma, w = small
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w),
        config=InversionConfig(mode=1, tolc=0.01),
        sparse=SparseConfig(norms=(0.0, 1.0, 1.0, 1.0), max_irls=4, misfit_tolerance=0.0),
    )  # fmt: skip
    ratios = []
    for k in range(1, 5):
        betas = [e.beta for e in res.log if e.irls == k]
        if len(betas) >= 2:
            ratios.append(betas[1] / betas[0])
    assert ratios, "no re-weighted search needed a second trial"
    for r in ratios:
        assert r == pytest.approx(2.0, rel=1e-12) or r == pytest.approx(0.5, rel=1e-12), ratios


def test_an_unreachable_target_stops_after_twenty_beta_trials_by_default(small):
    """Bounds that fix every cell (lower = upper = 0) leave the misfit the same at every β, far
    above chifact·N: the mode-1 search gives up, unconverged, after max_beta trials, 20 by
    default (InversionConfig)."""
    mesh, g, data, sigma, w = small
    res = invert(
        GravityOperator(g), data, sigma, Regularisation(mesh, weights=w), lower=0.0, upper=0.0
    )
    assert InversionConfig().max_beta == 20
    assert len(res.log) == 20 and not res.converged
    assert res.phi_d == pytest.approx(float(np.sum((data / sigma) ** 2)))
    assert res.phi_d > 2 * data.size and np.all(res.model == 0.0)
