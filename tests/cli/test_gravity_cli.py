"""The gravity CLI end to end on the embedded example, and its one-line errors."""

import json

import numpy as np
from typer.testing import CliRunner

from msinv.cli.main import app

runner = CliRunner()


def _ok(args):
    result = runner.invoke(app, ["gravity", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_example_weights_sensitivity_invert_predict_forward(tmp_path):
    ex = tmp_path / "ex"
    _ok(["example", "--out", str(ex)])
    _ok(["weights", str(ex / "pfweight.inp")])
    assert (ex / "distance_weight.txt").is_file()
    out = _ok(["sensitivity", str(ex / "sens.inp"), "--quiet", "--diagnostics"])
    assert "compression" in out
    diag = json.loads((ex / "sens_diagnostics.json").read_text())
    assert diag["r_max"] <= 0.05
    out = _ok(["invert", str(ex / "inv.inp"), "--quiet"])
    record = json.loads((ex / "gzinv3d.json").read_text())
    assert (
        record["converged"] and abs(record["phi_d"] - record["target"]) <= 0.02 * record["target"]
    )
    for name in ("gzinv3d.den", "gzinv3d.pre", "gzinv3d.out", "gzinv3d.vtk"):
        assert (ex / name).is_file()
    model = np.loadtxt(ex / "gzinv3d.den")
    assert np.all((model == -100) | ((model >= -1) & (model <= 1)))  # bounds of inv.inp
    _ok(
        [
            "predict",
            str(ex / "gzinv3d.mtx"),
            str(ex / "dobs.grv"),
            str(ex / "gzinv3d.den"),
            "--out",
            str(ex / "pre.grv"),
        ]
    )
    pre = np.loadtxt(ex / "pre.grv", skiprows=2)[:, 3]
    inv_pre = np.loadtxt(ex / "gzinv3d.pre", skiprows=2)[:, 3]
    # the inversion finished with the exact G, so its .pre is exact; predict uses the
    # compressed G (r* = 5 %)
    assert np.linalg.norm(pre - inv_pre) <= 0.05 * np.linalg.norm(inv_pre)
    _ok(
        ["forward", str(ex / "mesh.txt"), str(ex / "dobs.grv"), str(ex / "gzinv3d.den"),
         "--out", str(ex / "exact.grv")]
    )  # fmt: skip
    exact = np.loadtxt(ex / "exact.grv", skiprows=2)[:, 3]
    np.testing.assert_allclose(inv_pre, exact, rtol=1e-5, atol=1e-6 * np.abs(exact).max())
    _ok(
        [
            "forward",
            str(ex / "mesh.txt"),
            str(ex / "survey.loc"),
            str(ex / "model.den"),
            str(ex / "topo.txt"),
            "--out",
            str(ex / "fwd.grv"),
        ]
    )
    obs = np.loadtxt(ex / "dobs.grv", skiprows=2)
    fwd = np.loadtxt(ex / "fwd.grv", skiprows=2)[:, 3]
    assert np.mean(((fwd - obs[:, 3]) / obs[:, 4]) ** 2) < 2.0  # true model fits its data


def test_options_instead_of_control_files_and_dense(tmp_path):
    ex = tmp_path / "ex"
    _ok(["example", "--out", str(ex)])
    _ok(
        [
            "weights",
            "--mesh",
            str(ex / "mesh.txt"),
            "--data",
            str(ex / "dobs.grv"),
            "--kind",
            "depth",
            "--out",
            str(ex / "w.txt"),
        ]
    )
    _ok(
        [
            "sensitivity",
            "--mesh",
            str(ex / "mesh.txt"),
            "--data",
            str(ex / "dobs.grv"),
            "--topography",
            str(ex / "topo.txt"),
            "--weights",
            str(ex / "w.txt"),
            "--wavelet",
            "NONE",
            "--out",
            str(ex / "dense.mtx"),
            "--quiet",
        ]
    )
    assert (ex / "dense.mtx").stat().st_size > 0


def test_errors_are_one_line(tmp_path):
    bad = tmp_path / "sens.inp"
    bad.write_text("mesh.txt\ndobs.grv\nnull\nnull\nwavelet9\n1 0.05\n0\n1\n")
    result = runner.invoke(app, ["gravity", "sensitivity", str(bad)])
    assert result.exit_code == 2
    assert "line 5" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["gravity", "weights"])
    assert result.exit_code == 2 and "control file" in result.output
    junk = tmp_path / "junk.mtx"
    junk.write_text("not a sensitivity")
    result = runner.invoke(app, ["gravity", "predict", str(junk), str(junk), str(junk)])
    assert result.exit_code == 2 and "not a sensitivity file" in result.output
