"""``msinv scatter invert``: inputs, outputs, errors."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from msinv.cli.main import app
from msinv.cli.scatter_invert import parse_indices, parse_schedule
from msinv.core.errors import UserInputError
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import simulate

GEOM = Geometry(n=16, pml_width=4, n_sources=6, n_receivers=8)


@pytest.fixture(scope="module")
def datum(tmp_path_factory):
    x, y = np.meshgrid(GEOM.x, GEOM.y)
    eta = 0.1 * np.exp(-(x**2 + (y - 0.1) ** 2) / 0.03)
    freqs = [1.0, 2.0]
    path = tmp_path_factory.mktemp("d") / "bump.npz"
    data = simulate(eta, GEOM, freqs)
    np.savez(path, data=data, freqs=freqs, eta=eta, geometry=json.dumps(GEOM.to_dict()))
    return path, eta


@pytest.mark.parametrize("method", ["fwi", "born"])
def test_invert_command_writes_summary_log_and_figure(datum, tmp_path, method):
    path, _ = datum
    out = tmp_path / method
    args = [
        "scatter",
        "invert",
        str(path),
        "--out",
        str(out),
        "--method",
        method,
        "--iterations",
        "5",
        "--no-progress",
        "--schedule",
        "1;2",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    row = summary["data"][0]
    assert {"rrmse", "data_misfit", "iterations", "seconds"} <= set(row)
    assert row["rrmse"] < 0.5 and row["data_misfit"] < 0.5
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log and all("rrmse" in e and "misfit" in e for e in log)
    if method == "fwi":
        assert {e["stage"] for e in log} == {"1", "2"} and row["iterations"] <= 10
    assert np.load(out / "eta_hat.npy").shape == (1, 16, 16)
    assert (out / "datum_bump.png").exists() and "MELR" in (out / "metrics.md").read_text()
    assert {"melr", "sinkhorn_divergence"} <= set(summary["mean"])
    assert summary["provenance"]["config"]["method"] == method


def test_invert_command_bad_input_is_one_line_exit_2(datum, tmp_path):
    path, _ = datum
    runner = CliRunner()
    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        data=np.zeros((2, 3, 3), complex),
        freqs=[1.0, 2.0],
        geometry=json.dumps(GEOM.to_dict()),
    )
    nogeo = tmp_path / "nogeo.npz"
    np.savez(nogeo, data=np.zeros((2, 3, 3), complex), freqs=[1.0, 2.0])
    for args, text in [
        ([str(tmp_path / "nope.npz")], "no such file"),
        ([str(bad)], "field 'data' has shape"),
        ([str(nogeo)], "no field 'geometry'"),
        ([str(path), "--freqs", "7"], "not among the data"),
        ([str(path), "--reg", "l2:1"], "KIND:WEIGHT"),
        ([str(path), "--schedule", "1;;2"], "--schedule"),
    ]:
        r = runner.invoke(app, ["scatter", "invert", *args, "--out", str(tmp_path / "o")])
        assert r.exit_code == 2, r.output
        assert text in r.output and len(r.output.strip().splitlines()) == 1


def test_parsers():
    assert parse_schedule("2.5,5;10") == [[2.5, 5.0], [10.0]]
    assert parse_schedule(None) is None
    assert parse_indices(["3", "5:8", "1,2"], 10) == [3, 5, 6, 7, 1, 2]
    assert parse_indices([], 4) == [0]
    with pytest.raises(UserInputError, match=r"\[0, 4\)"):
        parse_indices(["9"], 4)
