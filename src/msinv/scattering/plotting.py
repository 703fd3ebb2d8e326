"""Figures of the scattering engine (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError


def plot_eta_and_data(eta: np.ndarray, data: np.ndarray, freqs, path) -> Path:
    """Write a figure of the contrast and of ``|Lambda|`` per frequency.

    Parameters
    ----------
    eta : (n, n) float numpy.ndarray
        Contrast ``eta[iy, ix]`` on [-0.5, 0.5]^2 (drawn with y upwards).
    data : (n_freq, n_receivers, n_sources) complex numpy.ndarray
        Output of :func:`msinv.scattering.simulate` for ``eta``.
    freqs : sequence of float
        The ``n_freq`` frequencies, for the panel titles.
    path : str or pathlib.Path
        Output file (format from the suffix, e.g. ``.png``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freqs = list(np.atleast_1d(freqs))
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[0] != len(freqs):
        raise UserInputError(
            f"data has shape {data.shape}: expected (n_freq={len(freqs)}, n_receivers, n_sources)"
        )
    path = Path(path)
    fig, axes = plt.subplots(1, 1 + len(freqs), figsize=(3.2 * (1 + len(freqs)), 3.2))
    im = axes[0].imshow(eta, origin="lower", extent=(-0.5, 0.5, -0.5, 0.5), cmap="viridis")
    axes[0].set(title="contrast η", xlabel="x", ylabel="y")
    fig.colorbar(im, ax=axes[0], fraction=0.046)
    for ax, f, d in zip(axes[1:], freqs, data, strict=True):
        im = ax.imshow(np.abs(d), origin="lower", cmap="magma", aspect="auto")
        ax.set(title=f"|Λ|, f = {f:g}", xlabel="source index", ylabel="receiver index")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
