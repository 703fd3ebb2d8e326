"""Figures of a posterior: truth, mean, standard deviation, error, zoom."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_posterior(
    truth: np.ndarray, samples: np.ndarray, path: Path, zoom: tuple[slice, slice] | None = None
) -> Path:
    """Figure: truth, posterior mean, standard deviation, |error|, a zoom on the mean.

    Parameters
    ----------
    truth : (n, n) numpy.ndarray
    samples : (K, n, n) numpy.ndarray
    path : Path
        PNG to write.
    zoom : (slice, slice), optional
        Region of the zoom panel (default: the central half).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = truth.shape[-1]
    zoom = zoom or (slice(n // 4, 3 * n // 4), slice(n // 4, 3 * n // 4))
    mean, std = samples.mean(axis=0), samples.std(axis=0)
    panels = [
        ("truth", truth),
        ("posterior mean", mean),
        ("posterior std", std),
        ("|mean - truth|", np.abs(mean - truth)),
        ("zoom: mean", mean[zoom]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    lo, hi = float(truth.min()), float(truth.max())
    for ax, (title, img) in zip(axes, panels, strict=True):
        shared = title in ("truth", "posterior mean", "zoom: mean")
        im = ax.imshow(
            img,
            origin="lower",
            cmap="viridis",
            vmin=lo if shared else None,
            vmax=hi if shared else None,
        )
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_misfit_distribution(misfit: np.ndarray, freqs, path: Path) -> Path:
    """Histograms of the data misfits of the posterior draws of one datum (the paper's Table 5).

    Parameters
    ----------
    misfit : (K, 1 + n_freq) numpy.ndarray
        Relative misfit of each draw over all frequencies, then per frequency
        (:func:`msinv.learned.physics.resimulate_misfit` with ``per_frequency=True``).
    freqs : sequence of float
    path : Path
        PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["all frequencies"] + [f"f = {f:g}" for f in freqs]
    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.0))
    for ax, label, values in zip(np.atleast_1d(axes), labels, misfit.T, strict=True):
        ax.hist(100 * values, bins=min(50, max(5, len(values) // 10)))
        ax.set_title(f"{label}: mean {100 * values.mean():.2f}%")
        ax.set_xlabel("data misfit (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
