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


def test_metrics_import_without_torch():
    code = "import sys, msinv.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
