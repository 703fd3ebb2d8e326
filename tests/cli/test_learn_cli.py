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
            "--start",
            "4",
            "--count",
            "2",
            "--levels",
            "6",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads((trained / "table" / "t.json").read_text())
    row = result["rows"][0]
    assert row["test_pairs"] == 2 and row["test_start"] == 4
    assert row["rrmse"] > 0 and row["data_misfit"] > 0
    assert len(row["data_misfit_per_frequency"]) == 2 and row["freqs"] == [2.5, 5.0]
    assert row["sd_paper"] == pytest.approx(2 * row["sd"]) and row["crps_fair"] > 0
    # the paper's reference SD: the checkpoint's training slice (pairs 0..3) against the test
    ref = result["references"]["squares"]
    assert ref["train_pairs"] == 4 and ref["test_pairs"] == 2 and ref["sd_reference"] > 0
    md = (trained / "table" / "t.md").read_text()
    assert "| tiny |" in md and "reference SD (training vs test truths)" in md
    assert (trained / "table" / "t.csv").exists() and (
        trained / "table" / "t-tiny-squares.png"
    ).exists()
    with np.load(trained / "table" / "t-tiny-squares.npz") as f:
        assert f["rrmse"].shape == (2, 2) and list(f["index"]) == [4, 5]
        assert f["data_misfit"].shape == (2, 1, 3) and f["crps_fair"].shape == (2,)


def test_commands_refuse_pairs_the_checkpoint_was_trained_on(trained, tmp_path):
    """The checkpoint records its store and slice (pairs 0..3); a copy of the store is
    recognised by its generation settings."""
    import shutil

    ckpt = str(trained / "run" / "checkpoint.pt")
    store = trained / "tiny.zarr"
    args = ["-m", f"tiny={ckpt}", "--levels", "4", "--draws", "1", "--out", str(tmp_path / "t")]
    r = runner.invoke(app, ["learn", "evaluate", "-d", f"squares={store}", *args])  # all pairs
    assert r.exit_code == 2 and "pairs 0..3 were used to train this model" in r.output
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    r = runner.invoke(app, ["learn", "evaluate", "-d", f"squares={copy}", "--start", "3", *args])
    assert r.exit_code == 2 and "pairs 3..3 were used to train" in r.output
    assert not (tmp_path / "t.json").exists()  # refused before any work
    r = runner.invoke(
        app, ["learn", "sample", ckpt, str(store), "--count", "2", "--out", str(tmp_path / "s.npz")]
    )
    assert r.exit_code == 2 and "sample on held-out pairs" in r.output
    r = runner.invoke(app, ["learn", "reconstruct", ckpt, f"{store}:1", "--levels", "4"])
    assert r.exit_code == 2 and "reconstruct on held-out pairs" in r.output
    r = runner.invoke(
        app,
        [
            "learn",
            "reconstruct",
            ckpt,
            f"{store}:1",
            "--levels",
            "4",
            "--draws",
            "1",
            "--allow-training-data",
            "--out",
            str(tmp_path / "rec"),
        ],
    )
    assert r.exit_code == 0, r.output


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
