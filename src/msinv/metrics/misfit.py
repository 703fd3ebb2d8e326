"""Relative data misfit of a reconstruction re-simulated with the forward solver."""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError

from ._arrays import as_numpy, lower_is_better


@lower_is_better(True)
def data_misfit(pred_data, data, ndim: int = 3) -> np.ndarray:
    """Relative misfit ``||F(eta_hat) - Lambda|| / ||Lambda||`` of each datum.

    Parameters
    ----------
    pred_data : (..., n_freq, n_rec, n_src) array_like, complex
        Data simulated from the reconstruction (e.g. one per posterior draw, ``(b, k, ...)``).
    data : (..., n_freq, n_rec, n_src) array_like, complex
        Measured data, broadcastable against ``pred_data`` (``data[:, None]`` for draws).
    ndim : int, default 3
        Number of trailing axes that make one datum (3: frequency, receiver, source).

    Returns
    -------
    numpy.ndarray
        One value per datum, shape ``broadcast(pred_data, data).shape[:-ndim]``.

    Notes
    -----
    Euclidean (Frobenius) norms over all frequencies, receivers and sources together, as in the
    paper's Section 5.7; re-simulate with :func:`msinv.scattering.simulate`.
    """
    p, d = as_numpy(pred_data, "pred_data"), as_numpy(data, "data")
    if ndim < 1 or p.ndim < ndim or d.ndim < ndim:
        raise UserInputError(
            f"data_misfit: need >= {ndim} axes per datum, got {p.shape} and {d.shape}"
        )
    axes = tuple(range(-ndim, 0))
    norm = np.sqrt(np.sum(np.abs(d) ** 2, axis=axes))
    if np.any(norm == 0):
        raise UserInputError("data_misfit: a datum is identically zero (relative misfit undefined)")
    return np.sqrt(np.sum(np.abs(p - d) ** 2, axis=axes)) / norm
