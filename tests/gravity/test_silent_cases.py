"""No silently wrong answer: each case of the gravity engine that used to run and return a wrong
result now does the right thing or stops with one line (issue 12's list)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from msinv.cli.main import app
from msinv.gravity.example import write_example
from msinv.gravity.forward import gz
from msinv.gravity.ubc import read_mesh, read_model
from msinv.gravity.ubc_data import (
    GravityData,
    ObjectiveWeights,
    read_observations,
    read_predicted,
    write_data,
    write_weights,
)


def _run(*args):
    return CliRunner().invoke(app, ["gravity", *map(str, args)])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The embedded example with distance weights and both a dense and a compressed G."""
    folder = tmp_path_factory.mktemp("silent")
    write_example(folder)
    assert _run("weights", folder / "pfweight.inp").exit_code == 0
    r = _run("sensitivity", folder / "sens.inp", "--quiet")
    assert r.exit_code == 0, r.output
    dense = _run(
        "sensitivity",
        "--mesh", folder / "mesh.txt", "--data", folder / "dobs.grv",
        "--topography", folder / "topo.txt", "--weights", folder / "distance_weight.txt",
        "--wavelet", "NONE", "--out", folder / "dense.mtx", "--quiet",
    )  # fmt: skip
    assert dense.exit_code == 0, dense.output
    return folder


def _control(project, tmp_path, replace: dict[int, str]):
    """A copy of the example's inv.inp with some items (0-based) replaced, in ``tmp_path``."""
    lines = [ln for ln in (project / "inv.inp").read_text().splitlines() if ln.strip()]
    for index, text in replace.items():
        lines[index] = text
    for name in ("dobs.grv", "gzinv3d.mtx", "dense.mtx", "mesh.txt"):
        if not (tmp_path / name).exists():
            shutil.copy(project / name, tmp_path / name)
    path = tmp_path / "inv.inp"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_weights_file_of_line_12_changes_the_model(project, tmp_path):
    mesh = read_mesh(project / "mesh.txt")
    nx, ny, nz = mesh.shape_cells
    ones = ObjectiveWeights(
        np.ones((nx, ny, nz)),
        np.ones((nx - 1, ny, nz)),
        np.ones((nx, ny - 1, nz)),
        np.ones((nx, ny, nz - 1)),
    )
    heavy = ObjectiveWeights(ones.s * 1e6, ones.x, ones.y, ones.z)
    write_weights(tmp_path / "ones.txt", ones)
    write_weights(tmp_path / "heavy.txt", heavy)
    models = {}
    for name in ("ones", "heavy", None):
        run = tmp_path / str(name)
        run.mkdir()
        fixed = {0: "2", 1: "1.0 0", 3: "../dense.mtx", 11: f"../{name}.txt" if name else "null"}
        ctl = _control(project, run, fixed)
        shutil.copy(project / "dense.mtx", tmp_path / "dense.mtx")
        for w in ("ones", "heavy"):
            shutil.copy(tmp_path / f"{w}.txt", run / f"{w}.txt")
        r = _run("invert", ctl, "--quiet")
        assert r.exit_code == 0, r.output
        models[name] = read_model(run / "gzinv3d.den", mesh)
    # unit weights are no weights; 1e6 on the smallness pulls the model to the reference (0)
    np.testing.assert_allclose(models["ones"], models[None], rtol=1e-8, atol=1e-12)
    below = models[None] != -100
    assert np.linalg.norm(models["heavy"][below]) < 0.5 * np.linalg.norm(models[None][below])


def test_missing_weights_file_is_refused(project, tmp_path):
    ctl = _control(project, tmp_path, {11: "no_such_weights.txt"})
    r = _run("invert", ctl, "--quiet")
    assert r.exit_code == 2
    assert "line 12" in r.output and "no_such_weights.txt" in r.output


def test_three_alphas_gzes_form_is_refused_not_read_as_lengths(project, tmp_path):
    ctl = _control(project, tmp_path, {9: "1e-4 1 1"})
    r = _run("invert", ctl, "--quiet")
    assert r.exit_code == 2, r.output
    assert "length scales" in r.output and "four" in r.output and "line 10" in r.output


def test_compressed_inversion_reports_the_true_misfit(project, tmp_path):
    """The misfit written is that of the model written, computed with the exact forward."""
    mesh = read_mesh(project / "mesh.txt")
    obs = read_observations(project / "dobs.grv")
    for finish in ("--full-finish", "--no-full-finish"):
        run = tmp_path / finish
        run.mkdir()
        ctl = _control(project, run, {})
        r = _run("invert", ctl, "--quiet", finish)
        assert r.exit_code == 0, r.output
        record = json.loads((run / "gzinv3d.json").read_text())
        model = read_model(run / "gzinv3d.den", mesh)
        true = gz(mesh, obs.locations, np.where(model == -100, 0.0, model))
        phi_true = float(np.sum(((true - obs.values) / obs.std) ** 2))
        assert record["phi_d"] == pytest.approx(phi_true, rel=1e-4)
        assert record["phi_d_compressed"] is not None
        if finish == "--full-finish":  # finished with the exact G: on target
            assert abs(phi_true - record["target"]) <= 0.02 * record["target"]


def test_air_cells_are_inactive_without_the_topography(project, tmp_path):
    with_topo, without = tmp_path / "a.grv", tmp_path / "b.grv"
    base = [project / "mesh.txt", project / "survey.loc", project / "model.den"]
    assert _run("forward", *base, project / "topo.txt", "--out", with_topo).exit_code == 0
    r = _run("forward", *base, "--out", without)
    assert r.exit_code == 0 and "-100" in r.output
    a, b = (read_predicted(p).values for p in (with_topo, without))
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def test_predict_refuses_stations_that_are_not_the_sensitivitys(project, tmp_path):
    obs = read_observations(project / "dobs.grv")
    moved = obs.locations.copy()
    moved[5, 0] += 10.0
    write_data(tmp_path / "moved.grv", GravityData(moved, obs.values, obs.std))
    r = _run("predict", project / "gzinv3d.mtx", tmp_path / "moved.grv", project / "model.den")
    assert r.exit_code == 2 and "station 6" in r.output
    ctl = _control(project, tmp_path, {2: "moved.grv"})
    r = _run("invert", ctl, "--quiet")
    assert r.exit_code == 2 and "station 6" in r.output
    ok = _run(
        "predict", project / "gzinv3d.mtx", project / "dobs.grv", project / "model.den",
        "--out", tmp_path / "p.grv",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output


def test_large_requests_are_refused_up_front(project, tmp_path):
    n = 200_000
    rng = np.random.default_rng(0)
    st = np.column_stack([rng.uniform(-200, 200, (n, 2)), np.full(n, 50.0)])
    write_data(tmp_path / "many.loc", GravityData(st))
    r = _run(
        "sensitivity", "--mesh", project / "mesh.txt", "--data", tmp_path / "many.loc",
        "--wavelet", "NONE", "--memory", "1", "--out", tmp_path / "g.mtx",
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "200000 data x" in r.output and "allowed 1.00 GiB" in r.output
    r = _run(
        "forward", project / "mesh.txt", tmp_path / "many.loc", project / "model.den",
        "--memory", "0.001", "--out", tmp_path / "f.grv",
    )  # fmt: skip
    assert r.exit_code == 2 and "forward of 200000 stations" in r.output
    assert not (tmp_path / "g.mtx").exists()


def test_directory_as_model_file_is_one_line(project, tmp_path):
    r = _run("forward", project / "mesh.txt", project / "survey.loc", tmp_path)
    assert r.exit_code == 2
    assert "expected a file, found a directory" in r.output
    assert "Traceback" not in r.output


def test_mode_3_uses_gcv_and_lands_near_the_noise_level(project, tmp_path):
    """GCV picks a misfit near N on the example; the L-curve (main's mode 3) was far above."""
    obs = read_observations(project / "dobs.grv")
    ctl = _control(project, tmp_path, {0: "3", 3: "dense.mtx"})
    r = _run("invert", ctl, "--quiet")
    assert r.exit_code == 0, r.output
    phi = json.loads((tmp_path / "gzinv3d.json").read_text())["phi_d"]
    assert 0.3 * obs.n_data < phi < 3 * obs.n_data
