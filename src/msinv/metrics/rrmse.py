"""Relative root-mean-square error of reconstructed images."""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError

from ._arrays import as_numpy, lower_is_better


@lower_is_better(True)
def rrmse(pred, target) -> np.ndarray:
    """Relative error ``||pred - target||_F / ||target||_F`` of each image.

    Parameters
    ----------
    pred : (..., n, n) array_like
        Reconstructions, e.g. ``(b, n, n)`` or posterior draws ``(b, k, n, n)``.
    target : (..., n, n) array_like
        True images, broadcastable against ``pred`` (pass ``target[:, None]`` for draws).

    Returns
    -------
    numpy.ndarray
        One value per image, shape ``broadcast(pred, target).shape[:-2]``.

    Notes
    -----
    :math:`\\mathrm{RRMSE}(\\hat\\eta, \\eta) = \\|\\hat\\eta - \\eta\\|_F / \\|\\eta\\|_F`; the paper's
    RRMSE is the mean of these values over test data (and draws). The reference's deterministic
    baselines reported the root of the mean *squared* relative error instead, a different
    statistic: aggregate these per-image values with the mean.
    """
    p, t = as_numpy(pred, "pred"), as_numpy(target, "target")
    if p.ndim < 2 or t.ndim < 2:
        raise UserInputError(f"rrmse: expected images (..., n, n), got {p.shape} and {t.shape}")
    norm = np.sqrt(np.sum(np.abs(t) ** 2, axis=(-2, -1)))
    if np.any(norm == 0):
        raise UserInputError("rrmse: a target image is identically zero (relative error undefined)")
    return np.sqrt(np.sum(np.abs(p - t) ** 2, axis=(-2, -1))) / norm
