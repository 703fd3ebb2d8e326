"""The published GRAV3D v6 example: the true model explains the observed data."""

import shutil

import numpy as np
import pytest

from msinv.gravity.forward import gz
from msinv.gravity.ubc import read_mesh, read_model
from msinv.gravity.ubc_data import read_observations


def test_true_model_predicts_the_observations(grav3d_example):
    mesh = read_mesh(grav3d_example / "fwd" / "mesh.txt")
    model = read_model(grav3d_example / "fwd" / "model.den", mesh)
    obs = read_observations(grav3d_example / "inv_L2" / "dobs.grv")
    pred = gz(mesh, obs.locations, model)
    chi2 = float(np.mean(((pred - obs.values) / obs.std) ** 2))
    assert chi2 <= 1.05
    assert pred.max() == pytest.approx(obs.values.max(), abs=3 * obs.std[0])


@pytest.mark.slow
def test_v6_through_the_cli_with_its_own_control_files(grav3d_example, tmp_path):
    """The full GRAV3D workflow (PFWEIGHT, GZSEN3D, GZINV3D) on the example's files (minutes)."""
    import json

    from typer.testing import CliRunner

    from msinv.cli.main import app

    work = tmp_path / "v6"
    shutil.copytree(grav3d_example / "inv_L2", work)
    shutil.copy(grav3d_example / "pfweight" / "pfweight.inp", work / "pfweight.inp")
    runner = CliRunner()
    for args in (
        ["weights", str(work / "pfweight.inp"), "--out", str(work / "w.txt")],
        ["sensitivity", str(work / "sens.inp"), "--quiet"],
        ["invert", str(work / "inv.inp"), "--quiet"],
    ):
        result = runner.invoke(app, ["gravity", *args])
        assert result.exit_code == 0, result.output
    record = json.loads((work / "gzinv3d.json").read_text())
    assert abs(record["phi_d"] - 676) <= 0.02 * 676
