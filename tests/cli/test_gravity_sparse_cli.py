"""`msinv gravity invert` with v6 sparse-norm lines, an active-cells file, per-iteration output."""

import dataclasses
import json

import numpy as np
from typer.testing import CliRunner

from msinv.cli.main import app
from msinv.gravity.control import read_inversion_control, write_inversion_control

runner = CliRunner()


def _ok(args):
    result = runner.invoke(app, ["gravity", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_sparse_control_file_active_cells_and_outputs(tmp_path):
    from msinv.gravity.ubc import read_mesh, write_model

    ex = tmp_path / "ex"
    _ok(["example", "--out", str(ex)])
    _ok(["weights", str(ex / "pfweight.inp")])
    _ok(["sensitivity", str(ex / "sens.inp"), "--quiet", "--memory", "0.05"])
    assert (ex / "gzsen3d.log").read_text().count("block") >= 1
    assert (ex / "sensitivity.txt").is_file()
    c = read_inversion_control(ex / "inv.inp")
    mesh = read_mesh(ex / "mesh.txt")
    flags = np.ones(mesh.n_cells)
    deep = mesh.cell_centers[:, 2] < mesh.cell_centers[:, 2].min() + 1e-6
    flags[deep] = -1  # the bottom layer fixed at the reference (kept in phi_m)
    write_model(ex / "active.txt", mesh, flags)
    sparse = dataclasses.replace(
        c, norms=(0.0, 1.0, 1.0, 1.0), norm_scaling=(0.5, None, None), active_file=ex / "active.txt"
    )
    write_inversion_control(ex / "inv_sparse.inp", sparse)
    out = _ok(["invert", str(ex / "inv_sparse.inp"), "--quiet", "--every-iteration"])
    record = json.loads((ex / "gzinv3d.json").read_text())
    assert (
        record["converged"] and abs(record["phi_d"] - record["target"]) <= 0.02 * record["target"]
    )
    assert record["irls_iterations"] >= 1 and "phi_d" in out
    log = (ex / "gzinv3d.log").read_text()
    assert "sparse norms" in log and "IRLS" in log and "fixed at the reference" in log
    assert "Lq scaling 0.5: recorded" in log
    n_solves = len((ex / "gzinv3d.out").read_text().splitlines()) - 4
    assert len(list(ex.glob("gzinv3d_*.den"))) == n_solves == len(list(ex.glob("gzinv3d_*.pre")))
    model = np.loadtxt(ex / "gzinv3d.den")
    from msinv.gravity.ubc import read_model

    full = read_model(ex / "gzinv3d.den", mesh)
    below = full != -100
    assert np.all(full[deep & below] == 0.0)  # fixed cells stay at the reference model 0
    assert model.size == mesh.n_cells
    # the same norms with p from a per-cell file (a line 13 item): the same model
    write_model(ex / "p0.txt", mesh, np.zeros(mesh.n_cells))
    per_cell = dataclasses.replace(sparse, norms=(ex / "p0.txt", 1.0, 1.0, 1.0))
    write_inversion_control(ex / "inv_cells.inp", per_cell)
    _ok(["invert", str(ex / "inv_cells.inp"), "--quiet", "--out", str(ex / "cells")])
    np.testing.assert_array_equal(read_model(ex / "cells" / "gzinv3d.den", mesh), full)
    log = (ex / "cells" / "gzinv3d.log").read_text()
    assert "per-cell norms: p from" in log
    # a per-cell value out of range: one line naming the file and its line
    bad = np.zeros(mesh.n_cells)
    bad[5] = 3.0
    write_model(ex / "p0.txt", mesh, bad)
    result = runner.invoke(app, ["gravity", "invert", str(ex / "inv_cells.inp"), "--quiet"])
    assert result.exit_code != 0
    assert "p0.txt: line" in result.output and "norm exponents p in [0, 2]" in result.output
    assert "Traceback" not in result.output
    # coarse-to-fine on the same files (with progress lines: one per level)
    out = _ok(["invert", str(ex / "inv.inp"), "--levels", "2"])
    assert json.loads((ex / "gzinv3d.json").read_text())["converged"]
    assert "level 1: " in out and "level 2: " in out
    log = (ex / "gzinv3d.log").read_text()
    # the example has topography: coarse cells cut by it are not exact on the coarse mesh,
    # so the coarse level uses G P, and the log says so with each level's work
    assert "level 1           : " in log and "level 2           : " in log
    assert "G P (a coarse cell has children that are not parameters)" in log
