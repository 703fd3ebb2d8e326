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


def test_sample_check_stores_per_frequency_misfits_and_ood_flags(trained):
    from msinv.scattering import open_dataset

    ckpt = trained / "run" / "checkpoint.pt"
    r = runner.invoke(
        app,
        [
            *("learn", "calibrate", str(ckpt), str(trained / "tiny.zarr"), "--start", "4"),
            *("--count", "2", "--draws", "2", "--levels", "4", "--quantile", "0.9"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "OOD alarm: threshold" in r.output
    out = trained / "checked.npz"
    r = runner.invoke(
        app,
        [
            *("learn", "sample", str(ckpt), str(trained / "tiny.zarr"), "-k", "3", "-o", str(out)),
            *("--start", "4", "--count", "2", "--levels", "4", "--check", "--check-scheme", "6"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "ESS" in r.output and "OOD flags" in r.output
    stored = open_dataset(trained / "tiny.zarr").spec.scheme
    assert (
        f"warning: scheme='wide6' overrides the data's forward model (scheme='{stored}')"
        in r.output
    )
    with np.load(out) as f:
        assert f["data_misfit_freq"].shape == (2, 3, 2) and f["data_misfit"].shape == (2, 3)
        np.testing.assert_allclose(f["weights"].sum(axis=1), 1.0)
        assert f["ood_flag"].shape == (2,) and f["ess"].shape == (2,)
        assert '"scheme": "wide6"' in str(f["provenance"])
    summary = json.loads((trained / "checked-check.json").read_text())
    assert summary["config"]["scheme"] == "wide6" and set(summary["per_frequency"]) == {"2.5", "5"}
    assert summary["config"]["receiver_interpolation"] == "representation"
    assert (trained / "checked-misfits.png").exists()


def test_reconstruct_check_and_polish(trained):
    out = trained / "polished"
    r = runner.invoke(
        app,
        [
            *("learn", "reconstruct", str(trained / "run" / "checkpoint.pt")),
            *(f"{trained / 'tiny.zarr'}:5", "-k", "2", "--levels", "4", "--out", str(out)),
            *("--check", "--polish", "fwi:2", "--polish-draws", "1", "--schedule", "5"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "FWI polish (misfit before -> after): mean" in r.output
    s = json.loads((out / "summary.json").read_text())
    assert len(s["data_misfit_draws_freq"]) == 2 and len(s["data_misfit_draws_freq"][0]) == 2
    p = s["polish"]
    assert p["starts"] == ["mean", "draw 0"] and p["config"]["schedule"] == [[5.0]]
    assert all(a < b for a, b in zip(p["data_misfit_after"], p["data_misfit_before"], strict=True))
    with np.load(out / "posterior.npz") as f:
        assert f["polish_result"].shape == (2, 16, 16)
    assert (out / "polish.png").exists() and (out / "misfits.png").exists()


def test_check_and_polish_errors_are_one_line(trained):
    ckpt, datum = str(trained / "run" / "checkpoint.pt"), f"{trained / 'tiny.zarr'}:5"
    for extra, message in [
        (["--polish", "lbfgs"], "expected fwi or fwi:ITER"),
        (["--polish", "fwi", "--polish-draws", "5"], "only 2 draws are sampled"),
        (["--polish", "fwi", "--schedule", "7"], "frequencies [7.0] are not in the data"),
        (["--polish", "fwi", "--reg", "tv"], "--reg tv"),
        (["--check-scheme", "wide5"], "--check-scheme wide5"),
        (["--polish", "fwi", "--scheme", "3"], "--scheme 3"),
    ]:
        r = runner.invoke(app, ["learn", "reconstruct", ckpt, datum, "-k", "2", *extra])
        assert r.exit_code == 2 and message in r.output, (extra, r.output)
