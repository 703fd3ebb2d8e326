"""Physics checks of draws, the noise model and likelihood weights, the OOD alarm, the FWI polish."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from msinv.learned.alarm import Alarm, score, store, threshold_from
from msinv.learned.loading import load
from msinv.learned.physics import CheckConfig, NoiseModel, check_draws, importance_weights
from msinv.learned.polish import PolishConfig, polish
from msinv.scattering import Geometry, simulate


@pytest.fixture(scope="module")
def pairs(tiny_store):
    from msinv.learned.data import load_pairs

    return load_pairs(tiny_store, 0, 3)


def test_per_draw_per_frequency_misfits_match_own_resimulation(pairs, rng):
    """Every value equals ||F_f(eta_k) - Lambda_f|| / ||Lambda_f|| from an independent simulate."""
    samples = pairs.eta[:2, None] + 0.05 * rng.standard_normal((2, 3, 16, 16))
    result = check_draws(samples, pairs.data[:2], pairs.spec, pairs.freqs)
    assert result.misfit_freq.shape == (2, 3, 2) and result.misfit.shape == (2, 3)
    for j in range(2):
        for k in range(3):
            pred = simulate(samples[j, k], pairs.geometry, pairs.freqs).astype(np.complex128)
            obs = pairs.data[j].astype(np.complex128)
            for i in range(2):
                want = np.linalg.norm(pred[i] - obs[i]) / np.linalg.norm(obs[i])
                assert result.misfit_freq[j, k, i] == pytest.approx(want, rel=1e-6)
            assert result.misfit[j, k] == pytest.approx(
                np.linalg.norm(pred - obs) / np.linalg.norm(obs), rel=1e-6
            )
    np.testing.assert_allclose(result.weights.sum(axis=1), 1.0)
    assert np.all((result.ess >= 1 - 1e-12) & (result.ess <= 3 + 1e-12))
    assert set(result.summary()["per_frequency"]) == {"2.5", "5"}


def test_truth_explains_its_data_and_another_stencil_does_not_exactly(pairs):
    truth = pairs.eta[:1, None].astype(np.float64)
    same = check_draws(truth, pairs.data[:1], pairs.spec, pairs.freqs)
    with pytest.warns(UserWarning, match="scheme='wide4' overrides the data's forward model"):
        other = check_draws(truth, pairs.data[:1], pairs.spec, pairs.freqs, CheckConfig(scheme=4))
    assert np.all(same.misfit_freq < 1e-5)  # the store's own forward model, float32
    assert np.all(other.misfit_freq > 1e-4)  # wide4: a different operator (no inverse crime)
    assert same.config["scheme"] == pairs.spec.scheme != "wide4"
    assert other.config["scheme"] == "wide4"


def test_unphysical_draw_gets_infinite_misfit_and_zero_weight(pairs):
    samples = np.repeat(pairs.eta[:1, None].astype(np.float64), 2, axis=1)
    samples[0, 1, 3, 3] = -1.5  # 1 + eta < 0: no medium
    with pytest.warns(RuntimeWarning, match="1 of 2 draws have 1 \\+ eta <= 0"):
        result = check_draws(samples, pairs.data[:1], pairs.geometry, pairs.freqs)
    assert np.isinf(result.misfit[0, 1]) and result.misfit[0, 0] < 1e-5
    np.testing.assert_allclose(result.weights[0], [1.0, 0.0])
    assert result.summary()["unphysical_draws"] == 1
    assert np.isfinite(result.summary()["all"]["max"])


def test_noise_model_level_and_likelihood(rng):
    clean = rng.standard_normal((3, 40, 50)) + 1j * rng.standard_normal((3, 40, 50))
    clean *= np.array([1.0, 5.0, 0.1])[:, None, None]
    model = NoiseModel(0.05)
    noisy = model.add(clean, seed=3)
    # the noise has the stated standard deviation at every frequency (2000 entries each)
    achieved = np.sqrt(np.mean(np.abs(noisy - clean) ** 2, axis=(1, 2)))
    np.testing.assert_allclose(achieved, model.sigma(clean), rtol=0.05)
    # E ||eps_f||^2 / sigma_f^2 = entries: -loglik / entries ~ 1 at the clean data
    assert -model.log_likelihood(clean, noisy) / clean.size == pytest.approx(1.0, rel=0.05)
    assert model.log_likelihood(noisy, noisy) == 0.0
    assert np.array_equal(model.add(clean, seed=3), noisy)
    with pytest.raises(ValueError, match="noise level"):
        NoiseModel(0.0)


def test_importance_weights_and_ess():
    w, ess = importance_weights(np.zeros((2, 5)))
    np.testing.assert_allclose(w, 0.2)
    np.testing.assert_allclose(ess, 5.0)
    w, ess = importance_weights(np.array([[0.0, -1000.0, -2000.0], [0.0, np.log(0.5), -np.inf]]))
    np.testing.assert_allclose(w[0], [1, 0, 0])
    assert ess[0] == pytest.approx(1.0)
    np.testing.assert_allclose(w[1], [2 / 3, 1 / 3, 0])
    assert ess[1] == pytest.approx(1 / (4 / 9 + 1 / 9))
    w, ess = importance_weights(np.full((1, 3), -np.inf))  # no draw explains anything
    assert np.all(w == 0) and ess[0] == 0


def test_alarm_threshold_flags_and_checkpoint_round_trip(tmp_path, tiny_store, tiny_checkpoint):
    assert threshold_from(np.arange(101.0), 0.99) == pytest.approx(99.0)
    with pytest.raises(ValueError, match="quantile"):
        threshold_from(np.ones(3), 1.0)
    mis = np.array([[0.01, 0.02, 0.03], [0.2, 0.3, 0.01]])
    np.testing.assert_allclose(score(mis), [0.02, 0.2])
    alarm = Alarm(0.1, 0.99, 3, 8, 2, "x", {}, {})
    assert alarm.flags(mis).tolist() == [False, True]
    ckpt = Path(shutil.copy(tiny_checkpoint, tmp_path / "ckpt.pt"))
    assert load(ckpt).alarm is None
    store(ckpt, alarm)
    assert load(ckpt).alarm == alarm and load(tiny_checkpoint).alarm is None
    with pytest.raises(ValueError, match="1 of 2 calibration data"):
        threshold_from(np.array([0.1, np.inf]), 0.9)
    # calibrate end to end: tests/cli/test_learn_cli.py::test_sample_check_...


def test_storing_an_alarm_in_a_damaged_checkpoint_is_a_one_line_error(tmp_path):
    from msinv.core.errors import FileFormatError

    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(FileFormatError, match=r"checkpoint\.pt: not a readable msinv checkpoint"):
        store(bad, Alarm(0.1, 0.99, 3, 8, 2, "x", {}, {}))
    assert bad.read_bytes() == b"PK\x03\x04 not a zip"  # left as it was


def test_polish_lowers_misfit_and_error_from_a_blurred_start(rng):
    """FWI from a smoothed truth (the role of a posterior draw) gets closer to the truth."""
    from scipy.ndimage import gaussian_filter

    from msinv.metrics import rrmse

    g = Geometry.paper(16)
    y, x = np.mgrid[0:16, 0:16]
    truth = 0.2 * ((abs(x - 7) < 3) & (abs(y - 8) < 3))
    data = simulate(truth, g, [1.0, 2.0], dtype=np.complex128)
    draws = np.stack([gaussian_filter(truth, 1.5), gaussian_filter(truth, 1.2)])
    cfg = PolishConfig(iterations=8, draws=2, schedule=[[1.0, 2.0]])
    out = polish(draws, data, g, [1.0, 2.0], cfg)
    assert out.labels == ["mean", "draw 0", "draw 1"]
    assert np.all(out.misfit_after < 0.5 * out.misfit_before)
    before = rrmse(out.before, np.broadcast_to(truth, out.before.shape))
    after = rrmse(out.after, np.broadcast_to(truth, out.after.shape))
    assert np.all(after < before)
    s = out.summary(truth)
    assert len(s["rrmse_after"]) == 3 and "polished_draws_mean_std" in s
    assert PolishConfig.parse("fwi:7").iterations == 7
    with pytest.raises(ValueError, match="fwi or fwi:ITER"):
        PolishConfig.parse("lbfgs")
