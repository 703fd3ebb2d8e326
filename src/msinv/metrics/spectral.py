"""Radially averaged power spectrum and the mean energy log ratio (MELR)."""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError

from ._arrays import as_numpy, lower_is_better


def radial_bins(shape: tuple[int, int]) -> np.ndarray:
    """(m, n) int array: integer radius of each (``fftshift``-ed) frequency, pysteps-style.

    Centred coordinates ``-floor(m/2) .. ceil(m/2) - 1`` per axis; the radius
    ``sqrt(kx^2 + ky^2)`` is rounded half to even (``numpy.round``), as ``pysteps`` does.
    """
    m, n = shape
    yc = np.arange(m) - m // 2
    xc = np.arange(n) - n // 2
    return np.round(np.hypot(yc[:, None], xc[None, :])).astype(np.int64)


def rapsd(images) -> np.ndarray:
    """Radially averaged power spectral density in the ``pysteps.utils.spectral.rapsd`` convention.

    Parameters
    ----------
    images : (..., m, n) array_like, real
        One or more images.

    Returns
    -------
    (..., L) numpy.ndarray
        ``E(k)`` for the integer radii ``k = 0 .. L-1``, ``L = max(m, n) // 2`` (+1 when odd):
        the mean of ``|fftshift(fft2(image))|^2 / (m n)`` over the frequencies whose rounded
        radius is ``k`` (40 bins at 80 x 80). Frequencies beyond the last radius are ignored.
    """
    x = as_numpy(images, "images")
    if x.ndim < 2:
        raise UserInputError(f"rapsd: expected images (..., m, n), got shape {x.shape}")
    m, n = x.shape[-2:]
    size = max(m, n)
    n_bins = size // 2 + (size % 2)
    radius = radial_bins((m, n)).ravel()
    keep = radius < n_bins
    power = np.abs(np.fft.fftshift(np.fft.fft2(x), axes=(-2, -1))) ** 2 / (m * n)
    flat = power.reshape(-1, m * n)[:, keep]
    counts = np.bincount(radius[keep], minlength=n_bins)
    sums = np.stack([np.bincount(radius[keep], weights=row, minlength=n_bins) for row in flat])
    return (sums / counts).reshape(*x.shape[:-2], n_bins)


@lower_is_better(True)
def melr(pred, target, weighted: bool = False) -> np.ndarray:
    """Mean energy log ratio of the radial power spectra of each image pair.

    Parameters
    ----------
    pred : (..., m, n) array_like
        Reconstructions (``(b, k, m, n)`` for draws).
    target : (..., m, n) array_like
        True images, broadcastable against ``pred``.
    weighted : bool, default False
        ``False``: every radius bin weighs ``1 / L``; ``True``: bin ``k`` weighs
        ``E_ref(k) / sum E_ref`` (energy-weighted).

    Returns
    -------
    numpy.ndarray
        One value per image pair, shape ``broadcast(pred, target).shape[:-2]``.

    Notes
    -----
    :math:`\\mathrm{MELR} = \\sum_k w_k |\\log(E_{pred}(k) / E_{ref}(k))|` with ``E`` from
    :func:`rapsd`, for **each image pair** (each posterior draw against its truth); the
    evaluation then averages over draws and data. This is the reference code's order
    (``Metrics.ipynb`` of the paper's repository: ``mean(|log(rapsd(draw) /
    rapsd(truth))|)`` over bins per draw, then the mean over draws and data), not the log ratio
    of spectra averaged first. The paper's tables report it multiplied by 100. A bin with zero power in
    either spectrum (an all-zero image) is floored at the smallest positive float, so the value
    stays finite but large.
    """
    e_pred, e_ref = rapsd(pred), rapsd(target)
    tiny = np.finfo(np.float64).tiny
    log_ratio = np.abs(np.log(np.maximum(e_pred, tiny)) - np.log(np.maximum(e_ref, tiny)))
    if weighted:
        weights = e_ref / np.sum(e_ref, axis=-1, keepdims=True)
    else:
        weights = np.full(e_ref.shape[-1], 1.0 / e_ref.shape[-1])
    return np.sum(weights * log_ratio, axis=-1)
