"""Physics checks of posterior draws: re-simulation with the forward solver and data misfits.

Each draw :math:`\\hat\\eta` can be re-simulated with the forward solver: its data misfit is
:math:`\\|\\mathcal F(\\hat\\eta) - \\Lambda\\| / \\|\\Lambda\\|`.
"""

from __future__ import annotations

import numpy as np


def resimulate_misfit(
    samples: np.ndarray, data: np.ndarray, geometry, freqs, *, per_frequency: bool = False
) -> np.ndarray:
    """Data misfit of every sample, re-simulated with the forward solver.

    Parameters
    ----------
    samples : (m, K, n, n) float numpy.ndarray
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
    geometry : msinv.scattering.Geometry or msinv.scattering.spec.ForwardSpec
        The data's forward model (a store's ``spec``: its scheme and receiver reader are
        used), or a bare geometry (the default forward model).
    freqs : sequence of float
    per_frequency : bool
        Also the misfit of each frequency on its own (the paper's Table 5).

    Returns
    -------
    (m, K) float64 numpy.ndarray, or (m, K, 1 + n_freq) with ``per_frequency``
        ||F(eta_k) - Lambda|| / ||Lambda|| per datum and sample over all frequencies
        (``[..., 0]``), then ||F_f(eta_k) - Lambda_f|| / ||Lambda_f|| per frequency f.
    """
    from msinv.metrics import data_misfit
    from msinv.scattering import simulate

    m, k = samples.shape[:2]
    pred = simulate(samples.reshape(m * k, *samples.shape[2:]), geometry, list(freqs))
    obs = np.repeat(np.asarray(data), k, axis=0)
    total = np.asarray(data_misfit(pred, obs), dtype=np.float64).reshape(m, k)
    if not per_frequency:
        return total
    each = np.asarray(data_misfit(pred, obs, ndim=2), dtype=np.float64).reshape(m, k, -1)
    return np.concatenate([total[..., None], each], axis=-1)
