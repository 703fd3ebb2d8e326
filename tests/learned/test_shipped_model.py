"""The shipped demo checkpoint keeps its measured quality (pins with a tolerance that a real
regression breaks: a model that ignores its data, or a posterior 35% too narrow, fails).

THE PINS LIVE HERE, AND ONLY HERE. After retraining the shipped checkpoint, print new values
with ``python tests/learned/test_shipped_model.py`` (about a minute on a CPU) and paste its
output over ``PINS`` below; the checkpoint's SHA-256 is pinned too, so a new checkpoint with
old pins fails with a message that says so.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from msinv.learned.loading import DEMO_CHECKPOINT, DEMO_EXAMPLE

# ---------------------------------------------------------------------------------- the pins
PINS = {
    "sha256": "fe306542b20f90222f14a9b13a242f067fb1c9c88221828caaef7455eddc644a",
    "demo": {
        "args": {"draws": 8, "n_levels": 32, "seed": 0},
        "rrmse_posterior_mean": 0.09686,
        "mean_posterior_std": 0.0108,
        "data_misfit_posterior_mean": 0.034,
    },
    "reconstruct": {
        "args": ["--draws", "4", "--levels", "16", "--seed", "1"],
        "rrmse_posterior_mean": 0.09046,
        "mean_posterior_std": 0.01204,
    },
}
#: Relative tolerance of every pinned number: wide enough for another CPU's rounding, narrow
#: enough that a 35% narrower posterior or an RRMSE of the training mean (0.68) fails.
RTOL = 0.15
# -------------------------------------------------------------------------------------------

pytestmark = pytest.mark.skipif(not DEMO_CHECKPOINT.exists(), reason="no shipped checkpoint")


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _demo(tmp):
    from msinv.learned.reconstruct import demo

    return demo(tmp, **PINS["demo"]["args"])


def _reconstruct(tmp):
    from typer.testing import CliRunner

    from msinv.cli.main import app

    out = tmp / "rec"
    args = ["learn", "reconstruct", str(DEMO_CHECKPOINT), str(DEMO_EXAMPLE), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, *PINS["reconstruct"]["args"], "--threads", "1"])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def _check(measured: dict, pinned: dict) -> None:
    for key, want in pinned.items():
        if key != "args":
            assert measured[key] == pytest.approx(want, rel=RTOL), (key, measured[key], want)


def test_pins_belong_to_the_shipped_checkpoint():
    assert _sha256(DEMO_CHECKPOINT) == PINS["sha256"], (
        "the shipped checkpoint changed: re-measure the pins with "
        "`python tests/learned/test_shipped_model.py` and update PINS in this file"
    )


def test_the_pins_have_teeth():
    """A model that returns the training mean, or a posterior 35% too narrow, is outside."""
    from msinv.learned.loading import load
    from msinv.metrics import rrmse

    norm = load(DEMO_CHECKPOINT).norm
    with np.load(DEMO_EXAMPLE) as ex:
        eta = ex["eta"]
    mean_model = float(rrmse(norm.eta_mean[None], eta[None])[0])
    pin = PINS["demo"]["rrmse_posterior_mean"]
    assert mean_model > pin * (1 + 3 * RTOL), mean_model
    assert 0.65 < 1 - RTOL  # a 35% narrower posterior std fails the std pin


def test_demo_matches_its_pins(tmp_path):
    summary = _demo(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "figure.png").stat().st_size > 0
    _check(summary, PINS["demo"])


def test_reconstruct_on_the_example_npz_matches_its_pins(tmp_path):
    """``msinv learn reconstruct CHECKPOINT example.npz``: an .npz with data, eta, geometry."""
    summary = _reconstruct(tmp_path)
    assert summary["draws"] == 4 and "data_misfit_posterior_mean" in summary
    assert (tmp_path / "rec" / "posterior.npz").exists()
    _check(summary, PINS["reconstruct"])


if __name__ == "__main__":  # print fresh pins for a new shipped checkpoint
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        demo, rec = _demo(Path(tmp) / "demo"), _reconstruct(Path(tmp))
    fresh = {"sha256": _sha256(DEMO_CHECKPOINT), "demo": dict(PINS["demo"])}
    fresh["reconstruct"] = dict(PINS["reconstruct"])
    for part, measured in (("demo", demo), ("reconstruct", rec)):
        for key in fresh[part]:
            if key != "args":
                fresh[part][key] = round(float(measured[key]), 5)
    print(json.dumps(fresh, indent=4))
