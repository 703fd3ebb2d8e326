"""Percentile bootstrap confidence interval of a mean over test data."""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError

from ._arrays import as_numpy


def bootstrap_ci(values, reps: int = 2000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval of the mean of per-datum values.

    Parameters
    ----------
    values : (m,) array_like
        One value per test datum (e.g. a metric averaged over posterior draws and seeds).
    reps : int, default 2000
        Resamples of the m data, drawn with replacement.
    seed : int, default 0
        Seed of the resampling (``numpy.random.default_rng``).
    level : float, default 0.95
        Coverage of the interval, in (0, 1).

    Returns
    -------
    [low, high] : list of float
        The ``(1 - level)/2`` and ``(1 + level)/2`` percentiles of the ``reps`` resampled means.
        It covers the sampling error of the test set only, not that of training seeds.
    """
    v = as_numpy(values, "values").astype(np.float64).ravel()
    if v.size == 0 or reps < 1 or not 0 < level < 1:
        raise UserInputError(
            f"bootstrap_ci: need >= 1 value, reps >= 1 and 0 < level < 1; got {v.size} values, "
            f"reps={reps}, level={level}"
        )
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(reps, v.size))].mean(axis=1)
    tail = round(50 * (1 - level), 12)  # 2.5 for 95%
    return [float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))]
