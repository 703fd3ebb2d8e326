"""The compressed sensitivity's reported numbers, recomputed here from their definitions
(written from the survivors of the sampled mutation run, docs/testing.md)."""

import re

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.core.errors import UserInputError
from msinv.gravity.compression import (
    CompressedSensitivity,
    CompressionConfig,
    Wavelet2D,
    _keep,
    assemble,
    wavelet_transform,
)
from msinv.gravity.sensitivity import build_sensitivity
from msinv.gravity.weighting import distance_weighting


@pytest.fixture(scope="module")
def compressed():
    mesh = TensorMesh(
        [np.full(8, 10.0), np.full(8, 10.0), np.full(6, 10.0)], origin=[-40, -40, -60]
    )
    xs, ys = np.meshgrid(np.linspace(-30, 30, 4), np.linspace(-30, 30, 4))
    st = np.column_stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    g = build_sensitivity(mesh, st)
    w = distance_weighting(mesh, st)
    model = np.zeros(mesh.n_cells)
    model[(np.abs(mesh.cell_centers[:, 0]) < 20) & (mesh.cell_centers[:, 2] < -20)] = 0.2
    return g, CompressedSensitivity.compress(g, mesh.shape_cells, weights=w), model


def test_diagnostics_are_what_they_say(compressed):
    g, comp, model = compressed
    sigma = np.full(g.shape[0], 2e-3)
    diag = comp.diagnostics(g, model, sigma=sigma)
    m = comp.matrix
    size = g.shape[0] * g.shape[1]
    nbytes = m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
    err = comp.forward(model) - g @ model
    assert (diag["n_data"], diag["n_active"], diag["nnz"]) == (*g.shape, m.nnz)
    assert diag["compressed_bytes"] == nbytes
    assert diag["ratio_entries"] == pytest.approx(size / m.nnz)
    assert diag["ratio_memory_vs_float64"] == pytest.approx(8 * size / nbytes)
    assert diag["ratio_memory_vs_float32"] == pytest.approx(4 * size / nbytes)
    assert diag["r_min"] <= diag["r_median"] <= diag["r_max"]
    assert (diag["r_min"], diag["r_median"], diag["r_max"]) == (
        comp.r.min(), np.median(comp.r), comp.r.max(),
    )  # fmt: skip
    assert diag["r_percentiles_5_50_95"] == list(np.percentile(comp.r, [5, 50, 95]))
    assert len(set(comp.r)) > 3  # the premise: the statistics differ from one another
    assert diag["data_error_rms"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert diag["data_error_max"] == pytest.approx(np.abs(err).max())
    assert diag["data_relative_error"] == pytest.approx(
        np.linalg.norm(err) / np.linalg.norm(g @ model)
    )
    assert diag["data_error_chi2_per_n"] == pytest.approx(np.mean((err / sigma) ** 2))
    # the exact data given instead of G: the same numbers
    again = comp.diagnostics(None, model, sigma=sigma, exact=g @ model)
    assert again.pop("r_percentiles_5_50_95") == diag.pop("r_percentiles_5_50_95")
    assert again == pytest.approx(diag)


@pytest.mark.parametrize("grid", [(5, 6), (7, 4, 3)])
def test_wavelet_transform_of_a_2d_or_3d_grid_is_orthonormal(rng, grid):
    """wavelet_transform picks the 2-D transform for an (nx, ny) layer and the 3-D one for a
    mesh; either is orthonormal on the zero-padded grid: adjoint(forward(x)) = x and the
    2-norm is kept."""
    w = wavelet_transform(grid, "daub2", level=2)
    assert w.ndim == len(grid)
    assert w.shape_in == (int(np.prod(grid)),)
    assert w.shape_out == (int(np.prod([-(-n // 4) * 4 for n in grid])),)
    x = rng.standard_normal(w.shape_in)
    c = w.forward(x)
    assert np.linalg.norm(c) == pytest.approx(np.linalg.norm(x), rel=1e-12)
    np.testing.assert_allclose(w.adjoint(c), x, atol=1e-12)


def test_config_level_boundary():
    """level >= 1 is the documented range: 1 is accepted, 0 refused."""
    assert CompressionConfig(level=1).level == 1
    with pytest.raises(UserInputError, match="level must be >= 1"):
        CompressionConfig(level=0)


@pytest.mark.parametrize("bad", ["zero", "negative", "short"])
def test_compress_refuses_weights_that_are_not_positive_per_cell(rng, bad):
    """Sensitivity weights divide the model: a zero, a negative or a missing weight is refused
    before any work (not a silent division by zero)."""
    grid = (4, 4, 2)
    g = rng.standard_normal((3, 32))
    w = np.ones(32)
    if bad == "zero":
        w[5] = 0.0
    elif bad == "negative":
        w[5] = -1.0
    else:
        w = w[:-1]
    with pytest.raises(UserInputError, match="weights must be 32 positive values"):
        CompressedSensitivity.compress(g, grid, weights=w)


def test_threshold_rule_keeps_coefficients_at_the_threshold():
    """rule="threshold" keeps ``|c| >= threshold * max|c|`` (documented), the boundary
    included: with threshold 1/2 the coefficient of magnitude max/2 stays."""
    config = CompressionConfig(rule="threshold", threshold=0.5)
    c = np.array([0.25, -1.0, 0.5, 0.0, -0.5, 0.49])
    np.testing.assert_array_equal(_keep(c, config, None, float(c @ c)), [1, 2, 4])


def test_assemble_of_no_rows_is_an_empty_matrix():
    """No rows (e.g. a window without stations) give a valid (0, n_coefficients) matrix."""
    w = wavelet_transform((4, 4, 2), "daub2", level=1)
    m = assemble([], w)
    assert m.shape == (0, w.shape_out[0]) and m.nnz == 0
    assert (m @ np.ones(w.shape_out[0])).shape == (0,)


@pytest.mark.parametrize(
    ("grid", "level"),
    [((40, 40, 6), 1), ((40, 40, 2), 1), ((16, 16, 16), 2), ((64, 64), 4), ((64, 6), 1)],
)
def test_default_level_is_the_deepest_pywavelets_allows_on_the_shortest_axis(grid, level):
    """level=None: the deepest level PyWavelets allows for db2 (filter length 4) on the
    shortest axis, floor(log2(n / 3)), and at least 1 (an axis of 2 cells still gets one)."""
    assert wavelet_transform(grid, "daub2").level == level


def test_three_levels_pad_every_axis_to_a_multiple_of_eight(rng):
    """level L pads each axis to a multiple of 2**L (here 8: 9, 10, 11 -> 16), the smallest
    length on which the periodized transform is orthonormal at that depth."""
    w = wavelet_transform((9, 10, 11), "daub2", level=3)
    assert w.shape_out == (16**3,)
    x = rng.standard_normal(w.shape_in)
    c = w.forward(x)
    assert np.linalg.norm(c) == pytest.approx(np.linalg.norm(x), rel=1e-12)
    np.testing.assert_allclose(w.adjoint(c), x, atol=1e-12)


def test_threshold_rule_default_is_a_thousandth_of_the_largest_coefficient():
    """The documented default threshold, 1e-3: a coefficient at 1e-3 max|c| stays, one just
    below it goes."""
    config = CompressionConfig(rule="threshold")
    c = np.array([1.0, 1e-3, 0.999e-3, -1.0001e-3, 2e-3])
    np.testing.assert_array_equal(_keep(c, config, None, float(c @ c)), [0, 1, 3, 4])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rule": "median"}, "rule must be 'per_row', 'representative' or 'threshold'"),
        ({"threshold": 0.0}, "threshold must be in (0, 1), got 0.0"),
        ({"threshold": 1.0}, "threshold must be in (0, 1), got 1.0"),
        ({"threshold": -1e-3}, "threshold must be in (0, 1)"),
    ],
)
def test_config_refuses_an_unknown_rule_or_a_threshold_outside_0_1(fields, message):
    """The three documented rules only; the threshold rule's fraction of max|c| lies in the
    open interval (0, 1). Anything else is refused in one line naming the field."""
    with pytest.raises(UserInputError, match=re.escape(message)):
        CompressionConfig(**fields)


@pytest.mark.parametrize("rule", ["per_row", "representative", "threshold"])
def test_config_accepts_each_documented_rule_and_a_threshold_inside_0_1(rule):
    config = CompressionConfig(rule=rule, threshold=0.999)
    assert (config.rule, config.threshold) == (rule, 0.999)
    assert CompressionConfig(threshold=1e-9).threshold == 1e-9


@pytest.mark.parametrize("grid", [(4, 4, 2, 2), (8,)])
def test_a_3d_transform_needs_three_cell_counts(grid):
    """Wavelet3D works on (nx, ny, nz) only (wavelet_transform sends a 2-D grid to Wavelet2D):
    a grid of any other length is refused in one line, not transformed on the wrong axes."""
    with pytest.raises(
        ValueError, match=re.escape(f"Wavelet3D: expected 3 cell counts, got {grid}")
    ):
        wavelet_transform(grid)
    with pytest.raises(ValueError, match="Wavelet2D: expected 2 cell counts"):
        Wavelet2D((4, 4, 2))


def test_representative_rule_needs_one_borehole_flag_per_row(rng):
    """GZES's borehole flags split G's rows into a surface and a borehole group: a flag array
    of another length than G's rows is refused (not broadcast or silently truncated)."""
    g = rng.standard_normal((5, 32))
    config = CompressionConfig(rule="representative")
    with pytest.raises(ValueError, match=re.escape("borehole: expected 5 flags, got (4,)")):
        CompressedSensitivity.compress(g, (4, 4, 2), config=config, borehole=np.ones(4, bool))
    one_per_row = CompressedSensitivity.compress(
        g, (4, 4, 2), config=config, borehole=np.array([0, 0, 1, 1, 0], bool)
    )
    assert one_per_row.matrix.shape[0] == 5


@pytest.mark.parametrize("case", ["columns", "active"])
def test_g_must_have_one_column_per_active_cell(rng, case):
    """G's columns are the active cells of the grid: a G with a column too many, or an active
    mask of another size than the grid (even one with as many active cells as G has
    columns), is refused in one line before any transform."""
    grid = (4, 4, 2)
    active = np.ones(32, bool)
    active[:4] = False
    g = rng.standard_normal((3, 28))
    if case == "columns":
        bad = {"g": rng.standard_normal((3, 29)), "active": active}
        message = "G has 29 columns but the grid (4, 4, 2) has 28 active cells"
    else:
        bad = {"g": g, "active": np.append(active, False)}
        message = "active has 33 flags but the grid (4, 4, 2) has 32 cells"
    with pytest.raises(UserInputError, match=re.escape(message)):
        CompressedSensitivity.compress(bad["g"], grid, active=bad["active"])
    assert CompressedSensitivity.compress(g, grid, active=active).matrix.shape[0] == 3


def test_examples_are_the_documented_operators(rng):
    """The examples (the operator registry's dot-product test inputs) are what their docstrings
    say: a 5x6x3 grid padded to 8x8x4 by two levels, a 5x6 layer padded to 8x8, and a 4x5x3
    problem of 6 rows with one inactive cell compressed at r* = 0.2; each passes the
    dot-product test."""
    from msinv.core.operator import dottest
    from msinv.gravity.compression import Wavelet3D

    w3 = Wavelet3D.example(np.random.default_rng(1))
    w2 = Wavelet2D.example(np.random.default_rng(1))
    assert (w3.grid, w2.grid) == ((5, 6, 3), (5, 6))
    assert {Wavelet3D.example(np.random.default_rng(s)).level for s in range(20)} == {1, 2}
    deep3 = next(
        w for s in range(20) if (w := Wavelet3D.example(np.random.default_rng(s))).level == 2
    )
    deep2 = next(
        w for s in range(20) if (w := Wavelet2D.example(np.random.default_rng(s))).level == 2
    )
    assert deep3.shape_out == (8 * 8 * 4,) and deep2.shape_out == (8 * 8,)
    comp = CompressedSensitivity.example(rng)
    assert comp.shape_in == (59,) and comp.shape_out == (6,)
    assert comp.active.sum() == 59 and comp.r.max() <= 0.2
    for op in (w3, w2, comp):
        dottest(op, rng)


def test_threaded_compression_gives_the_rows_of_the_serial_one(rng):
    """compress_rows with several threads keeps the rows in order: the same kept coefficients
    and relative errors as one thread (with or without a callback), and the callback counts
    every row once, in order, however many threads."""
    from msinv.gravity.compression import compress_rows

    transform = wavelet_transform((4, 4, 2), "daub2", level=1)
    g = rng.standard_normal((7, 32))
    w = rng.uniform(0.5, 1.0, 32)
    config = CompressionConfig(rstar=0.2)
    active = np.ones(32, bool)
    seen_serial, seen = [], []
    serial, r1 = compress_rows(
        g, transform, active, w, config, None, workers=1,
        callback=lambda d, n: seen_serial.append((d, n)),
    )  # fmt: skip
    threaded, r2 = compress_rows(
        g, transform, active, w, config, None, workers=3, callback=lambda d, n: seen.append((d, n))
    )
    no_callback, r3 = compress_rows(g, transform, active, w, config, None, workers=3)
    np.testing.assert_array_equal(r1, r3)
    assert [k[0].tolist() for k in no_callback] == [k[0].tolist() for k in serial]
    np.testing.assert_array_equal(r1, r2)
    for (i1, v1), (i2, v2) in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(v1, v2)
    assert seen == seen_serial == [(i + 1, 7) for i in range(7)]


def test_diagnostics_without_sigma_have_no_chi2(compressed):
    """The chi-squared of the compression error needs the data's uncertainties: without sigma
    it is absent (not computed with some default), and every other figure is the same."""
    g, comp, model = compressed
    without = comp.diagnostics(g, model)
    with_sigma = comp.diagnostics(g, model, sigma=np.full(g.shape[0], 2e-3))
    assert "data_error_chi2_per_n" not in without
    assert with_sigma.pop("data_error_chi2_per_n") > 0
    assert without.pop("r_percentiles_5_50_95") == with_sigma.pop("r_percentiles_5_50_95")
    assert without == pytest.approx(with_sigma)


@pytest.mark.parametrize("grid", [(5, 6, 3), (6, 5)])
def test_a_saved_compressed_sensitivity_loads_back_whole(tmp_path, grid):
    """save/load keep every part of the operator, not only what one product reads: the
    sparse matrix (values rounded to float32 as documented), the transform's grid, wavelet
    and level (a non-default wavelet and level here), the active cells (some inactive), the
    weights and the achieved r; the extra arrays and the configuration's provenance are
    stored beside them. A 3-D grid and a 2-D layer."""
    import json

    from msinv.core.provenance import provenance

    rng = np.random.default_rng(8)
    n_cells = int(np.prod(grid))
    active = np.ones(n_cells, bool)
    active[[1, 7]] = False
    g = rng.standard_normal((5, int(active.sum())))
    w = rng.uniform(0.5, 2.0, int(active.sum()))
    config = CompressionConfig("symm4", rstar=0.3, level=1)
    comp = CompressedSensitivity.compress(g, grid, active, w, config)
    path = comp.save(tmp_path / "gzinv3d.mtx", config={"rstar": 0.3}, extra={"mesh": np.ones(4)})
    back = CompressedSensitivity.load(path)
    assert type(back.transform) is type(comp.transform)
    t, u = back.transform, comp.transform
    assert (t.grid, t.wavelet, t.level) == (u.grid, u.wavelet, u.level) == (grid, "sym4", 1)
    for name in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(back.matrix, name), getattr(comp.matrix, name))
    assert back.matrix.shape == comp.matrix.shape
    np.testing.assert_array_equal(back.active, active)
    np.testing.assert_array_equal(back.weights, w)
    np.testing.assert_array_equal(back.r, comp.r)
    with np.load(path) as f:
        np.testing.assert_array_equal(f["mesh"], np.ones(4))
        assert json.loads(str(f["provenance"]))["config"] == provenance({"rstar": 0.3})["config"]


@pytest.mark.parametrize("seed", [17, 29, 39])
@pytest.mark.parametrize("borehole", [False, True])
def test_the_representative_row_keeps_exactly_its_own_per_row_set(seed, borehole):
    """GRAV3D's rule tunes its threshold on the median-norm row (with borehole flags, one per
    group): that row is compressed exactly as the per-row rule compresses it, so it meets r*.
    These seeds are rows where delta * max|c| rounded one ulp above the row's smallest kept
    coefficient, which was then dropped (its r above r*)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((9, 60)) * rng.uniform(0.1, 10, 60)
    flags = np.arange(9) >= 5 if borehole else None

    def compress(rule):
        config = CompressionConfig(rule=rule, rstar=0.1)
        return CompressedSensitivity.compress(g, (5, 4, 3), config=config, borehole=flags)

    rep, per = compress("representative"), compress("per_row")
    groups = [np.arange(9)] if not borehole else [np.arange(5), np.arange(5, 9)]
    for rows in groups:
        i = int(rows[np.argsort(np.linalg.norm(g[rows], axis=1))[rows.size // 2]])
        np.testing.assert_array_equal(rep.matrix[[i]].indices, per.matrix[[i]].indices)
        assert rep.r[i] == per.r[i] <= 0.1


def test_the_representative_rule_on_a_single_station_uses_that_station_s_row(rng):
    """One station: the representative row is its own row, so the representative rule keeps
    exactly what the per-row rule keeps for it (r <= r*), and the threshold is one number."""
    from msinv.gravity.compression import representative_threshold

    g = rng.standard_normal((1, 32))
    w = np.ones(32)
    transform = wavelet_transform((4, 4, 2))
    active = np.ones(32, bool)
    rep = CompressionConfig(rule="representative", rstar=0.1)
    delta = representative_threshold(g, transform, active, w, rep)
    assert isinstance(delta, float) and 0.0 < delta < 1.0
    by_rep = CompressedSensitivity.compress(g, (4, 4, 2), config=rep)
    by_row = CompressedSensitivity.compress(g, (4, 4, 2), config=CompressionConfig(rstar=0.1))
    assert (by_rep.matrix != by_row.matrix).nnz == 0 and by_rep.r[0] <= 0.1


_UNPICKLED: list = []


def _unpickled():
    _UNPICKLED.append(True)
    return 1.0


class _Payload:
    """An object whose unpickling runs code (here: records that it ran)."""

    def __reduce__(self):
        return (_unpickled, ())


def test_loading_a_compressed_sensitivity_never_unpickles(tmp_path, rng):
    """A sensitivity file is data: an object array planted in it (pickled code) is refused on
    loading, and the code in it never runs."""
    path = CompressedSensitivity.example(rng).save(tmp_path / "g.npz")
    with np.load(path) as f:
        fields = {k: f[k] for k in f.files}
    fields["weights"] = np.array([_Payload()], dtype=object)
    np.savez(path, **fields)
    with pytest.raises(ValueError, match="allow_pickle"):
        CompressedSensitivity.load(path)
    assert _UNPICKLED == []


def test_the_per_row_rule_may_drop_exactly_r_star_squared_of_the_energy():
    """rule="per_row" drops the smallest coefficients while the dropped energy stays at or
    below r*^2 of the row's energy (r_i <= r*, the end included): four equal coefficients at
    r* = 1/2 (exact in binary) drop exactly one, not none and not two."""
    c = np.array([1.0, -1.0, 1.0, 1.0])
    kept = _keep(c, CompressionConfig(rstar=0.5), None, float(c @ c))
    assert kept.size == 3
    assert len(_keep(c, CompressionConfig(rstar=0.499), None, float(c @ c))) == 4
