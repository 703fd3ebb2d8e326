"""msinv learn: train -> sample -> evaluate -> reconstruct on a tiny store, and input errors."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from msinv.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("learn")
    generate(
        root / "tiny.zarr",
        family="squares",
        count=6,
        geometry=Geometry.paper(16),
        freqs=[2.5, 5.0],
        seed=0,
        progress=False,
    )
    (root / "tiny.toml").write_text(
        'seed = 0\n[data]\ntrain = "tiny.zarr"\ncount = 4\n'
        '[model]\nname = "equinet-cnn"\n[model.score]\ncond_rounds = 1\nwidth = 12\n'
        "bottleneck = 6\nblocks = 1\ngroups = [3, 3]\nemb_dim = 16\n"
        '[run]\nsteps = 4\nbatch = 2\nema = 0.5\nout = "run"\ndevice = "cpu"\nprogress = false\n'
    )
    result = runner.invoke(app, ["learn", "train", str(root / "tiny.toml")])
    assert result.exit_code == 0, result.output
    return root


def test_sample_writes_samples_mean_std_config(trained):
    threads_before = torch.get_num_threads()
    torch.set_num_threads(2)  # --threads 1 below must bring it to 1
    out = trained / "post.npz"
    r = runner.invoke(
        app,
        [
            "learn",
            "sample",
            str(trained / "run" / "checkpoint.pt"),
            str(trained / "tiny.zarr"),
            "--draws",
            "3",
            "--out",
            str(out),
            "--start",
            "4",
            "--count",
            "2",
            "--levels",
            "8",
            "--misfit",
            "--threads",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads_before)
    with np.load(out) as f:
        assert f["samples"].shape == (2, 3, 16, 16)
        np.testing.assert_allclose(f["mean"], f["samples"].mean(axis=1), rtol=1e-6)
        assert f["data_misfit"].shape == (2, 3) and np.all(f["data_misfit"] > 0)
        assert 'name = "equinet-cnn"' in str(f["config"])


def test_evaluate_writes_table_and_figures(trained):
    out = trained / "table" / "t"
    r = runner.invoke(
        app,
        [
            "learn",
            "evaluate",
            "-m",
            f"tiny={trained / 'run' / 'checkpoint.pt'}",
            "-d",
            f"squares={trained / 'tiny.zarr'}",
            "--draws",
            "2",
            "--count",
            "3",
            "--levels",
            "6",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = json.loads((trained / "table" / "t.json").read_text())["rows"]
    assert rows[0]["test_pairs"] == 3 and rows[0]["rrmse"] > 0 and rows[0]["data_misfit"] > 0
    assert "| tiny |" in (trained / "table" / "t.md").read_text()
    assert (trained / "table" / "t.csv").exists() and (
        trained / "table" / "t-tiny-squares.png"
    ).exists()


def test_reconstruct_one_datum(trained):
    r = runner.invoke(
        app,
        [
            "learn",
            "reconstruct",
            str(trained / "run" / "checkpoint.pt"),
            f"{trained / 'tiny.zarr'}:5",
            "--draws",
            "2",
            "--levels",
            "6",
            "--out",
            str(trained / "rec"),
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((trained / "rec" / "summary.json").read_text())
    assert {"rrmse_posterior_mean", "mean_posterior_std", "data_misfit_posterior_mean"} <= set(
        summary
    )
    assert (trained / "rec" / "figure.png").exists()


def test_errors_are_one_line_exit_2(trained, tmp_path):
    r = runner.invoke(app, ["learn", "reconstruct", str(tmp_path / "none.pt"), "x.npz"])
    assert r.exit_code == 2 and "checkpoint not found" in r.output
    r = runner.invoke(
        app, ["learn", "reconstruct", str(trained / "run" / "checkpoint.pt"), "nowhere:3"]
    )
    assert r.exit_code == 2 and "expected STORE.zarr:INDEX" in r.output
    r = runner.invoke(app, ["learn", "evaluate", "-m", "oops", "-d", "a=b"])
    assert r.exit_code == 2 and "expected LABEL=PATH" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ntrain = "x"\n[model]\nname = "resnet"\n[run]\nsteps = 1\nout = "o"\n')
    r = runner.invoke(app, ["learn", "train", str(bad)])
    assert r.exit_code == 2 and "model.name must be one of" in r.output
