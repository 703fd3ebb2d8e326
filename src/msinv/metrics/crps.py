"""Continuous ranked probability score of an ensemble of posterior draws."""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError

from ._arrays import as_numpy, lower_is_better


@lower_is_better(True)
def crps(draws, target, fair: bool = False) -> np.ndarray:
    """Ensemble CRPS per pixel, averaged over the pixels of each datum.

    Parameters
    ----------
    draws : (b, k, ...) array_like, real
        ``k`` posterior draws per datum (``k >= 1``), e.g. ``(b, k, n, n)``.
    target : (b, ...) array_like, real
        True values, e.g. ``(b, n, n)``.
    fair : bool, default False
        ``False``: the paper's estimator (below); ``True``: the fair (unbiased) estimator,
        whose spread term divides by :math:`2k(k-1)` instead of :math:`2k^2` (needs k >= 2).

    Returns
    -------
    (b,) numpy.ndarray

    Raises
    ------
    UserInputError
        On shapes other than these, non-numeric arrays, or ``fair`` with a single draw.

    Notes
    -----
    For every pixel, with draws :math:`X_1..X_k` and truth :math:`y`,

    .. math::
        \\mathrm{CRPS} = \\frac1k \\sum_i |X_i - y| - \\frac{1}{2k^2} \\sum_{i,j} |X_i - X_j|,

    the standard ensemble estimator (the one of ``properscoring.crps_ensemble`` and of the
    reference code, ``swirl_dynamics.lib.metrics.crps``; the paper's). It is the CRPS of the
    empirical distribution of the draws, biased upwards for small k; the fair estimator

    .. math::
        \\mathrm{CRPS}_{fair} = \\frac1k \\sum_i |X_i - y|
            - \\frac{1}{2k(k-1)} \\sum_{i \\ne j} |X_i - X_j|

    is unbiased for the CRPS of the distribution the draws come from. The pair sum
    is evaluated in ``O(k log k)`` from the sorted draws,
    :math:`\\sum_{i,j}|X_i - X_j| = 2 \\sum_i (2i - k - 1) X_{(i)}` (``i = 1..k``).
    """
    x, y = as_numpy(draws, "draws"), as_numpy(target, "target")
    if x.ndim < 2 or x.shape[:1] + x.shape[2:] != y.shape:
        raise UserInputError(
            f"crps: expected draws (b, k, ...) and target (b, ...), got {x.shape} and {y.shape}"
        )
    k = x.shape[1]
    if fair and k < 2:
        raise UserInputError(f"crps: the fair estimator needs >= 2 draws, got {k}")
    skill = np.mean(np.abs(x - y[:, None]), axis=1)
    ranks = (2 * np.arange(1, k + 1) - k - 1).reshape((1, k) + (1,) * (x.ndim - 2))
    spread = 2 * np.sum(ranks * np.sort(x, axis=1), axis=1) / (k * (k - 1) if fair else k**2)
    per_pixel = skill - 0.5 * spread
    return per_pixel.reshape(per_pixel.shape[0], -1).mean(axis=1)
