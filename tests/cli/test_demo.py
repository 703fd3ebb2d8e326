"""The main job runs end to end and writes what the README promises."""

import json

from typer.testing import CliRunner

from msinv.cli.main import app


def test_demo_writes_figures_and_summaries(tmp_path):
    result = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path), "--n", "24", "--freqs", "1.5", "--draws", "2"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n"] == 24 and summary["freqs"] == [1.5]
    assert (tmp_path / "scatter.png").stat().st_size > 0
    learned = json.loads((tmp_path / "learned" / "summary.json").read_text())
    assert 0 < learned["rrmse_posterior_mean"] < 1 and learned["draws"] == 2
    assert (tmp_path / "learned" / "figure.png").stat().st_size > 0
    assert "RRMSE of the mean" in result.output
