"""RRMSE, data misfit and CRPS: hand-computed cases and properscoring."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import properscoring
import pytest
import torch

from msinv.metrics import crps, data_misfit, rrmse


def test_rrmse_hand_case_and_broadcast_over_draws(rng):
    target = rng.standard_normal((3, 5, 5))
    np.testing.assert_allclose(rrmse(1.1 * target, target), 0.1, rtol=1e-12)
    draws = target[:, None] + np.array([0.0, 0.5])[None, :, None, None] * target[:, None]
    np.testing.assert_allclose(rrmse(draws, target[:, None]), [[0.0, 0.5]] * 3, atol=1e-12)
    assert rrmse.lower_is_better


def test_rrmse_accepts_torch_and_rejects_bad_input(rng):
    target = torch.from_numpy(rng.standard_normal((2, 4, 4)))
    assert rrmse(target * 0.5, target) == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="identically zero"):
        rrmse(np.ones((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        rrmse(np.full((1, 4, 4), np.nan), np.ones((1, 4, 4)))


def test_data_misfit_hand_case_complex(rng):
    data = rng.standard_normal((2, 3, 4, 4)) + 1j * rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(data_misfit(2 * data, data), 1.0, rtol=1e-12)
    np.testing.assert_allclose(data_misfit(data * (1 + 0.1j), data), 0.1, rtol=1e-12)
    draws = np.stack([data, 0.5 * data], axis=1)
    np.testing.assert_allclose(data_misfit(draws, data[:, None]), [[0, 0.5]] * 2, atol=1e-12)


def test_crps_hand_cases():
    # one draw: |x - y|; two draws {0, 1} and y = 0: 1/2 - (1/2)(2/4) = 1/4
    assert crps(np.array([[[2.0]]]), np.array([[0.5]])) == pytest.approx([1.5])
    assert crps(np.array([[[0.0], [1.0]]]), np.array([[0.0]])) == pytest.approx([0.25])


def test_crps_matches_properscoring(rng):
    draws = rng.standard_normal((3, 7, 4, 5))
    target = rng.standard_normal((3, 4, 5))
    ours = crps(draws, target)
    ref = properscoring.crps_ensemble(target, np.moveaxis(draws, 1, -1)).reshape(3, -1).mean(1)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    with pytest.raises(ValueError, match=r"draws \(b, k, \.\.\.\)"):
        crps(draws, target[:, :2])


def test_fair_crps_hand_case_and_brute_force(rng):
    # two draws {0, 1}, y = 0: 1/2 - (1/(2*2*1)) * 2 = 0
    assert crps(np.array([[[0.0], [1.0]]]), np.array([[0.0]]), fair=True) == pytest.approx([0.0])
    draws, target = rng.standard_normal((2, 5, 3, 3)), rng.standard_normal((2, 3, 3))
    k = draws.shape[1]
    skill = np.abs(draws - target[:, None]).mean(axis=1)
    pairs = np.abs(draws[:, :, None] - draws[:, None, :]).sum(axis=(1, 2))
    brute = (skill - pairs / (2 * k * (k - 1))).reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(crps(draws, target, fair=True), brute, rtol=1e-12)
    with pytest.raises(ValueError, match="fair estimator needs >= 2 draws"):
        crps(draws[:, :1], target, fair=True)


def test_fair_crps_is_unbiased_for_the_gaussian_crps_and_the_paper_estimator_is_not(rng):
    """CRPS(N(0, 1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1/sqrt(pi) (Gneiting and Raftery 2007);
    with k = 3 draws the paper's estimator is high by E|X - X'| / (2k) = 1/(k sqrt(pi))."""
    from scipy.stats import norm

    y = np.array([-1.0, 0.3, 2.0])
    exact = y * (2 * norm.cdf(y) - 1) + 2 * norm.pdf(y) - 1 / np.sqrt(np.pi)
    trials, k = 40_000, 3
    draws = rng.standard_normal((trials, k, 3))
    target = np.broadcast_to(y, (trials, 3))

    def per_y(values):  # crps averages over the "pixels" (the three y): undo it per y
        return np.array([values(j).mean() for j in range(3)])

    fair = per_y(lambda j: crps(draws[:, :, j : j + 1], target[:, j : j + 1], fair=True))
    paper = per_y(lambda j: crps(draws[:, :, j : j + 1], target[:, j : j + 1]))
    np.testing.assert_allclose(fair, exact, atol=0.01)
    np.testing.assert_allclose(paper - exact, 1 / (k * np.sqrt(np.pi)), atol=0.01)


def test_data_misfit_per_frequency(rng):
    data = rng.standard_normal((2, 3, 4, 4)) + 1j * rng.standard_normal((2, 3, 4, 4))
    pred = data * np.array([1.1, 1.2, 1.3])[None, :, None, None]
    np.testing.assert_allclose(data_misfit(pred, data, ndim=2), [[0.1, 0.2, 0.3]] * 2, rtol=1e-12)


def test_metrics_import_without_torch():
    code = "import sys, msinv.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
