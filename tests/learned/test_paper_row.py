"""The one-command Table-1 row, end to end at toy size on the CPU (fd solver)."""

import json

import numpy as np
import pytest

from msinv.learned.paper_row import PaperRowConfig, plan, run

TINY_SCORE = {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]}


def _cfg(out, **kw):
    base = dict(
        out=str(out),
        device="cpu",
        n=16,
        freqs=(2.5, 5.0),
        train_count=8,
        test_count=3,
        steps=4,
        batch=4,
        draws=2,
        levels=4,
        score=TINY_SCORE,
        solver="fd",
        sample_batch=4,
    )
    base.update(kw)
    return PaperRowConfig(**base)


def test_paper_row_end_to_end_and_resume(tmp_path):
    cfg = _cfg(tmp_path / "row")
    state = run(cfg, log=lambda s: None)
    report = json.loads((tmp_path / "row" / "row.json").read_text())
    row = report["row"]
    assert row["test_data"] == 3 and row["draws"] == 2
    assert report["steps"] == 4 and report["train_pairs"] == 8
    assert report["paper"]["rrmse_pct"] == 1.744  # squares, beside ours
    for key in ("rrmse_pct", "rrmse_mean_pct", "melr_x100", "crps_x1e4", "mean_std"):
        assert np.isfinite(row[key]) and row[key] >= 0, key
    lo, hi = row["rrmse_pct_ci95"]
    assert lo <= row["rrmse_pct"] <= hi
    assert set(report["timings"]) >= {"data_test_s", "data_train_s", "train_s", "sampling_s"}
    assert report["config"]["family"] == "squares" and "msinv_version" in report["provenance"]
    assert (tmp_path / "row" / "row.md").read_text().count("|") > 10
    assert (tmp_path / "row" / "row-figure.png").stat().st_size > 0
    # the samples are what the posterior of the trained model gives on the test data
    blocks = sorted((tmp_path / "row" / "samples").glob("block-*.npz"))
    samples = np.concatenate([np.load(b)["samples"] for b in blocks])
    assert samples.shape == (3, 2, 16, 16)
    # run again: every stage resumes, nothing is recomputed (same samples, same steps)
    mtimes = [b.stat().st_mtime_ns for b in blocks]
    again = run(cfg, log=lambda s: None)
    assert [b.stat().st_mtime_ns for b in blocks] == mtimes
    assert again["steps"] == state["steps"] == 4


def test_budget_cuts_steps_and_pairs(tmp_path):
    cfg = _cfg(tmp_path / "b", train_count=100_000, steps=10_000_000, budget_minutes=0.8)
    state = run(cfg, ["data", "train"], log=lambda s: None)
    assert state["train_count"] < 100_000  # the data share of 48 s cannot hold them all
    assert 1 <= state["steps"] < 10_000_000
    assert state["train_steps_per_s_probe"] > 0


def test_config_changes_are_refused_on_resume(tmp_path):
    run(_cfg(tmp_path / "c"), ["data"], log=lambda s: None)
    with pytest.raises(ValueError, match="another configuration"):
        run(_cfg(tmp_path / "c", draws=3), ["data"], log=lambda s: None)


def test_plan_projects_every_stage(tmp_path):
    result = plan(_cfg(tmp_path / "p", budget_minutes=5), log=lambda s: None)
    assert set(result["projected_s"]) == {"data_s", "train_s", "sampling_s"}
    assert all(v > 0 for v in result["projected_s"].values())
    assert result["under_budget"]["steps"] >= 1
    assert not (tmp_path / "p" / "plan-scratch").exists()


@pytest.mark.parametrize(
    "field, value", [("family", "circles"), ("steps", 0), ("solver", "gpu"), ("draws", True)]
)
def test_bad_options_are_one_line_errors(tmp_path, field, value):
    with pytest.raises(ValueError, match=field if field != "family" else "circles"):
        _cfg(tmp_path, **{field: value})


@pytest.mark.parametrize(("option", "blur"), [([], 0.5), (["--target-blur", "0"], 0.0)])
def test_cli_target_blur_reaches_the_stores(tmp_path, option, blur):
    """paper-row's stores carry the published 0.5-pixel target blur unless told otherwise."""
    from typer.testing import CliRunner

    from msinv.cli.main import app
    from msinv.scattering import open_dataset

    out = tmp_path / "row"
    args = ["learn", "paper-row", "--out", str(out), "--n", "16", "--device", "cpu"]
    args += ["--train-count", "2", "--test-count", "1", "--stages", "data", *option]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("test.zarr", "train.zarr"):
        ds = open_dataset(out / name)
        assert ds.config["target_blur"] == blur
        same = np.array_equal(np.asarray(ds.target[:]), np.asarray(ds.eta[:]))
        assert same == (blur == 0)


def test_a_damaged_checkpoint_in_a_run_is_a_one_line_error(tmp_path):
    from msinv.core.errors import FileFormatError
    from msinv.learned.paper_row import _steps_done

    assert _steps_done(tmp_path) == 0  # no checkpoint yet: nothing trained
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"checkpoint\.pt: the file is empty"):
        _steps_done(tmp_path)
