"""GZES's programs through the CLI: GZSENES and GZINVES control files, es-predict outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from msinv.cli.main import app
from msinv.gravity.equivalent_example import synthetic_survey
from msinv.gravity.ubc_data import GravityData, read_predicted, write_data, write_topography


def _run(*args):
    return CliRunner().invoke(app, ["gravity", *map(str, args)])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A one-layer mesh (NZ = 1) over a 300-station synthetic, its topography and controls."""
    from discretize import TensorMesh

    from msinv.gravity.ubc import write_mesh

    folder = tmp_path_factory.mktemp("gzes")
    sv = synthetic_survey(300, seed=1, size=3000.0, gap_width=200.0)
    write_data(folder / "obs.grv", GravityData(sv.points, sv.data, np.full(len(sv.data), sv.sigma)))
    e = np.linspace(-1000, 4000, 60)
    ge, gn = (a.ravel() for a in np.meshgrid(e, e))
    write_topography(folder / "topo.txt", np.column_stack([ge, gn, sv.surface(ge, gn)]))
    pad = 250.0 * 1.5 ** np.arange(1, 4)
    h = np.r_[pad[::-1], np.full(12, 250.0), pad]
    write_mesh(folder / "mesh.txt", TensorMesh([h, h, [250.0]], origin=(-pad.sum(), -pad.sum(), 0)))
    (folder / "sens.inp").write_text(
        "mesh.txt ! mesh\nobs.grv ! data\ntopo.txt ! topography\ndaub2 ! wavelet\n1 0.05 ! itol eps\n"
    )
    (folder / "inv.inp").write_text(
        "1 ! mode\n1.0 0.02 ! chifact tolc\nobs.grv\ngzinves.mtx\nVALUE -10\nVALUE 10\n"
        "1.6e-5 1 1 ! alpha_s alpha_x alpha_y (GZES's three-alpha form)\ngzinves_full.mtx\n"
    )
    return folder, sv


def test_gzsenes_gzinves_and_predict_upward(project):
    folder, sv = project
    r = _run("es-sensitivity", folder / "sens.inp", "--depth", "600", "--quiet")
    assert r.exit_code == 0, r.output
    assert "2-D daub2 compression" in (folder / "gzsenes.log").read_text()
    r = _run("es-invert", folder / "inv.inp")
    assert r.exit_code == 0, r.output
    record = json.loads((folder / "gzinves.json").read_text())
    n = len(sv.data)
    assert abs(record["phi_d"] - n) <= 0.02 * n  # the true misfit, after the full-G finish
    assert record["phi_d_compressed"] is not None
    pre = read_predicted(folder / "gzinves.pre")
    phi = float(np.sum(((pre.values - sv.data) / sv.sigma) ** 2))
    assert phi == pytest.approx(record["phi_d"], rel=1e-3)
    out = folder / "up"
    r = _run(
        "es-predict", folder / "gzinves_layer.npz", "--spacing", "100",
        "--region", "300,2700,300,2700", "--elevation", "300", "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    grid = np.load(out.with_suffix(".npz"))
    assert out.with_suffix(".png").is_file()
    pts = np.column_stack(
        [*(a.ravel() for a in np.meshgrid(grid["easting"], grid["northing"])), np.full(625, 300.0)]
    )
    true = sv.true_gz(pts)
    rms = np.sqrt(np.mean((grid["gz"].ravel() - true) ** 2))
    assert rms < 0.03 * np.abs(true).max()
    r = _run("es-predict", folder / "gzinves_layer.npz", "--points", folder / "obs.grv",
             "--out", folder / "at_obs")  # fmt: skip
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(read_predicted(folder / "at_obs.pre").values, pre.values, rtol=1e-6)


def test_four_alphas_and_uneven_meshes_are_refused(project, tmp_path):
    folder, _ = project
    bad = tmp_path / "inv.inp"
    bad.write_text((folder / "inv.inp").read_text().replace("1.6e-5 1 1", "1e-4 1 1 1"))
    r = _run("es-invert", bad)
    assert r.exit_code == 2 and "line 7" in r.output
    from discretize import TensorMesh

    from msinv.gravity.ubc import write_mesh

    write_mesh(tmp_path / "mesh.txt", TensorMesh([[10.0] * 3, [10.0] * 3, [5.0, 10.0]]))
    r = _run("es-sensitivity", "--mesh", tmp_path / "mesh.txt", "--data", folder / "obs.grv")
    assert r.exit_code == 2 and "equal thicknesses" in r.output


def test_gzines_and_gzsenes_readers(tmp_path):
    from msinv.gravity.control import (
        read_layer_inversion_control,
        read_layer_sensitivity_control,
    )

    (tmp_path / "inv.inp").write_text(
        "2\n0.5 0\nobs.grv\ngzinves.mtx\nnull\nVALUE 3\n100 200 ! Le Ln\nnull\n"
    )
    c = read_layer_inversion_control(tmp_path / "inv.inp")
    assert (c.mode, c.par, c.tolc) == (2, 0.5, 0.02)
    assert c.alphas == pytest.approx((1e-4, 1.0, 4.0)) and c.full_file is None
    assert c.lower == -np.inf and c.upper == 3.0
    (tmp_path / "sens.inp").write_text("mesh.txt\nobs.grv\nnull\nNONE\n2 1e-3\n")
    s = read_layer_sensitivity_control(tmp_path / "sens.inp")
    assert s.wavelet is None and (s.itol, s.eps) == (2, 1e-3) and s.topography_file is None


def test_es_fit_makes_every_choice_and_carries_the_regional_to_es_predict(project, tmp_path):
    _, sv = project
    regional = 1.5 + 0.4e-3 * sv.points[:, 0] - 0.2e-3 * sv.points[:, 1]  # mGal, a plane
    obs = tmp_path / "obs.grv"
    write_data(obs, GravityData(sv.points, sv.data + regional, np.full(len(sv.data), sv.sigma)))
    r = _run("es-fit", obs, "--out", tmp_path / "fit")
    assert r.exit_code == 0, r.output
    assert "regional: " in r.output and "regional: none" not in r.output
    record = json.loads((tmp_path / "fit" / "gzinves.json").read_text())
    assert record["trend"] == 1 and record["trade_off"] == "evidence"
    assert "git" in json.dumps(record) or "version" in json.dumps(record)  # provenance
    pre = read_predicted(tmp_path / "fit" / "gzinves.pre")
    phi = float(np.sum(((pre.values - sv.data - regional) / sv.sigma) ** 2))
    assert phi == pytest.approx(record["phi_d"], rel=1e-6)  # the true misfit, plane included
    up = tmp_path / "up"
    r = _run("es-predict", tmp_path / "fit" / "gzinves_layer.npz", "--spacing", "100",
             "--region", "300,2700,300,2700", "--elevation", "300", "--out", up)  # fmt: skip
    assert r.exit_code == 0, r.output
    grid = np.load(up.with_suffix(".npz"))
    pts = np.column_stack(
        [*(a.ravel() for a in np.meshgrid(grid["easting"], grid["northing"])), np.full(625, 300.0)]
    )
    true = sv.true_gz(pts) + 1.5 + 0.4e-3 * pts[:, 0] - 0.2e-3 * pts[:, 1]
    assert np.sqrt(np.mean((grid["gz"].ravel() - true) ** 2)) < 0.01  # mGal: 0.0026; 0.27 alone
    # at the stations es-predict gives what es-fit wrote
    r = _run("es-predict", tmp_path / "fit" / "gzinves_layer.npz", "--points", obs,
             "--out", tmp_path / "at_obs")  # fmt: skip
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(
        read_predicted(tmp_path / "at_obs.pre").values, pre.values, rtol=1e-9
    )
    # without the regional term the same files give a layer alone, and say so
    r = _run("es-fit", obs, "--trend", "none", "--out", tmp_path / "alone")
    assert r.exit_code == 0 and "regional: none" in r.output
    # refused before any work: a G over the memory limit, a bad option
    r = _run("es-fit", obs, "--one-layer", "--memory", "0.0001", "--out", tmp_path / "big")
    assert r.exit_code != 0 and "GiB for G, over --memory" in r.output
    assert not (tmp_path / "big").exists()
    r = _run("es-fit", obs, "--memory", "0.0001", "--out", tmp_path / "big")  # windows too
    assert r.exit_code != 0 and "windowed layer" in r.output and "memory limit" in r.output
    assert not (tmp_path / "big").exists()
    r = _run("es-fit", obs, "--trend", "quadratic", "--out", tmp_path / "bad")
    assert r.exit_code != 0 and "--trend: expected auto, none, 0 or 1" in r.output


def test_es_fit_writes_windows_and_es_predict_reads_them(project, tmp_path, monkeypatch):
    import msinv.gravity.equivalent as equivalent

    _, sv = project
    monkeypatch.setattr(equivalent, "WINDOWS_ABOVE", 100)  # the test survey is "large"
    monkeypatch.setattr("msinv.gravity.equivalent_windows.DEFAULT_WINDOW", 120)
    obs = tmp_path / "obs.grv"
    write_data(obs, GravityData(sv.points, sv.data, np.full(len(sv.data), sv.sigma)))
    r = _run("es-fit", obs, "--out", tmp_path / "fit")
    assert r.exit_code == 0, r.output
    assert "windows of" in r.output
    layer_file = tmp_path / "fit" / "gzinves_layer.npz"
    with np.load(layer_file) as f:
        assert str(f["format"]) == "msinv-equivalent-windows-1" and len(f["cores"]) >= 2
    record = json.loads((tmp_path / "fit" / "gzinves.json").read_text())
    assert record["windows"] >= 2
    # es-predict at the stations gives the windowed fit's field, whose misfit was reported
    r = _run("es-predict", layer_file, "--points", obs, "--out", tmp_path / "at_obs")
    assert r.exit_code == 0, r.output
    at_obs = read_predicted(tmp_path / "at_obs.pre").values
    np.testing.assert_allclose(at_obs, read_predicted(tmp_path / "fit" / "gzinves.pre").values,
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    phi = float(np.sum(((at_obs - sv.data) / sv.sigma) ** 2))
    assert phi == pytest.approx(record["phi_d"], rel=1e-6)
    # a grid draped above the windows' layers, and continued upward
    r = _run(
        "es-predict", layer_file, "--spacing", "200", "--height", "50", "--out", tmp_path / "g"
    )
    assert r.exit_code == 0, r.output
    r = _run("es-predict", layer_file, "--spacing", "100", "--region", "300,2700,300,2700",
             "--elevation", "300", "--out", tmp_path / "up")  # fmt: skip
    assert r.exit_code == 0, r.output
    grid = np.load((tmp_path / "up").with_suffix(".npz"))
    pts = np.column_stack(
        [*(a.ravel() for a in np.meshgrid(grid["easting"], grid["northing"])), np.full(625, 300.0)]
    )
    assert np.sqrt(np.mean((grid["gz"].ravel() - sv.true_gz(pts)) ** 2)) < 0.01
    # far outside the survey: refused with the reason
    far = tmp_path / "far.loc"
    far.write_text("1\n90000 90000 100\n")
    r = _run("es-predict", layer_file, "--points", far, "--out", tmp_path / "far")
    assert r.exit_code != 0 and "outside the windows" in r.output
    # one layer on request
    r = _run("es-fit", obs, "--one-layer", "--out", tmp_path / "one")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "one" / "gzinves_layer.npz") as f:
        assert str(f["format"]) == "msinv-equivalent-layer-1"


def test_es_invert_takes_options_instead_of_a_control_file(project, tmp_path):
    folder, _ = project
    if not (folder / "gzinves.mtx").exists():
        assert (
            _run("es-sensitivity", folder / "sens.inp", "--depth", "600", "--quiet").exit_code == 0
        )
    r = _run("es-invert", folder / "inv.inp", "--out", tmp_path / "file")
    assert r.exit_code == 0, r.output
    r = _run(
        "es-invert", "--data", folder / "obs.grv", "--matrix", folder / "gzinves.mtx",
        "--chifact", "1", "--lower", "-10", "--upper", "10", "--alphas", "1.6e-5 1 1",
        "--full-matrix", folder / "gzinves_full.mtx", "--out", tmp_path / "options",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    a, b = (json.loads((tmp_path / k / "gzinves.json").read_text()) for k in ("file", "options"))
    assert (a["beta"], a["phi_d"]) == (b["beta"], b["phi_d"])
    den = [np.loadtxt(tmp_path / k / "gzinves.den") for k in ("file", "options")]
    np.testing.assert_array_equal(*den)
    base = ["es-invert", "--data", folder / "obs.grv", "--matrix", folder / "gzinves.mtx"]
    for extra, message in (
        (["--chifact", "1", "--beta", "2"], "--chifact (mode 1) or --beta (mode 2), not both"),
        (["--alphas", "1e-4 1 1 1"], "--alphas: expected 'alpha_s alpha_x alpha_y'"),
        (["--lower", "nofile.den"], "--lower: expected a number or a model file"),
    ):
        r = _run(*base, *extra, "--out", tmp_path / "bad")
        assert r.exit_code != 0 and message in r.output, r.output
    r = _run("es-invert", "--data", folder / "obs.grv", "--out", tmp_path / "bad")
    assert r.exit_code != 0 and "or --data and --matrix" in r.output
