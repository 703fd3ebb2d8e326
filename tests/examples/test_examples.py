"""The demonstration scripts under examples/ run at small size and show what they claim."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_traces_1d_half_period_basins(tmp_path):
    res = _load("traces_1d").run(tmp_path / "traces.png", dt=2e-3)
    assert (tmp_path / "traces.png").stat().st_size > 0
    basin = res["basin_half_width_s"]
    # basin about half a period wide: 0.105 s is inside it at 2 Hz, outside at 5 Hz
    assert 0.15 < basin["2Hz"] <= 0.25 and 0.06 < basin["5Hz"] <= 0.1
    assert basin["5Hz"] < res["true_shift_s"] < basin["2Hz"]
    found = res["found_s"]
    assert found["2Hz alone"] == pytest.approx(0.105, abs=2e-3)
    assert abs(found["5Hz alone"] - 0.105) > 0.1  # cycle-skipped into a side valley
    assert found["2Hz then 5Hz"] == pytest.approx(0.105, abs=2e-3)


def test_deconvolution_naive_blows_up_regularised_do_not(tmp_path):
    res = _load("deconvolution").run(tmp_path / "deconv.png", n=256)
    assert (tmp_path / "deconv.png").stat().st_size > 0
    err = res["relative_error"]
    assert err["naive"] > 10
    assert err["tikhonov"] < 0.2 and err["coarse-to-fine"] < 0.2
    # the continuation stopped before using every band (discrepancy principle)
    assert 0 < len(res["stages_used"]) < 6


def test_cycle_skipping_top_frequency_alone_fails_continuation_does_not(tmp_path):
    # small grid: n = 20, f = 1.5, 3, 6 (about 3 to 13 points per wavelength), 8 sources
    res = _load("cycle_skipping").run(
        tmp_path / "cs.png", n=20, freqs=(1.5, 3.0, 6.0), iterations=8, n_sources=8, path_points=5
    )
    assert (tmp_path / "cs.png").stat().st_size > 0 and (tmp_path / "cs.json").exists()
    low = res["normalised_misfit"]["1.5"]
    assert low[0] > low[1] > low[2] < low[3] < low[4]  # one basin around the truth (index 2)
    rr = res["rrmse"]
    assert rr["continuation"] < 0.5
    assert rr["top alone"] > 2 * rr["continuation"]
