"""Continuous ranked probability score of an ensemble of posterior draws."""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError

from ._arrays import as_numpy, lower_is_better


@lower_is_better(True)
def crps(draws, target) -> np.ndarray:
    """Ensemble CRPS per pixel, averaged over the pixels of each datum.

    Parameters
    ----------
    draws : (b, k, ...) array_like, real
        ``k`` posterior draws per datum (``k >= 1``), e.g. ``(b, k, n, n)``.
    target : (b, ...) array_like, real
        True values, e.g. ``(b, n, n)``.

    Returns
    -------
    (b,) numpy.ndarray

    Notes
    -----
    For every pixel, with draws :math:`X_1..X_k` and truth :math:`y`,

    .. math::
        \\mathrm{CRPS} = \\frac1k \\sum_i |X_i - y| - \\frac{1}{2k^2} \\sum_{i,j} |X_i - X_j|,

    the standard ensemble estimator (the one of ``properscoring.crps_ensemble``); the pair sum
    is evaluated in ``O(k log k)`` from the sorted draws,
    :math:`\\sum_{i,j}|X_i - X_j| = 2 \\sum_i (2i - k - 1) X_{(i)}` (``i = 1..k``).
    """
    x, y = as_numpy(draws, "draws"), as_numpy(target, "target")
    if x.ndim < 2 or x.shape[:1] + x.shape[2:] != y.shape:
        raise UserInputError(
            f"crps: expected draws (b, k, ...) and target (b, ...), got {x.shape} and {y.shape}"
        )
    k = x.shape[1]
    skill = np.mean(np.abs(x - y[:, None]), axis=1)
    ranks = (2 * np.arange(1, k + 1) - k - 1).reshape((1, k) + (1,) * (x.ndim - 2))
    spread = 2 * np.sum(ranks * np.sort(x, axis=1), axis=1) / k**2
    per_pixel = skill - 0.5 * spread
    return per_pixel.reshape(per_pixel.shape[0], -1).mean(axis=1)
