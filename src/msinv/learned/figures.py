"""Figures of a posterior: truth, mean, std, error, zoom; misfit distributions; FWI polish."""

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


def plot_misfits(check, path: Path, *, threshold: float | None = None) -> Path:
    """Figure: the distribution of the draws' relative data misfits, per frequency and overall.

    One histogram per frequency and one over all frequencies (every draw of every datum in
    ``check``), in the manner of the paper's Figure 13; a dashed line marks the OOD alarm's
    ``threshold`` on the overall panel when given.

    Parameters
    ----------
    check : msinv.learned.physics.PhysicsCheck
    path : Path
        PNG to write.
    threshold : float, optional
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"f = {f:g}", check.misfit_freq[..., i]) for i, f in enumerate(check.freqs)]
    panels.append(("all frequencies", check.misfit))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), sharey=True)
    for ax, (title, values) in zip(axes, panels, strict=True):
        v = 100 * np.asarray(values).ravel()
        v = v[np.isfinite(v)]  # unphysical draws (misfit inf) are left out
        ax.hist(v, bins=max(5, min(40, v.size // 3)), color="tab:blue", alpha=0.8)
        ax.axvline(np.median(v), color="k", lw=1, label=f"median {np.median(v):.2f}%")
        if threshold is not None and title == "all frequencies":
            ax.axvline(100 * threshold, color="tab:red", ls="--", label="OOD threshold")
        ax.set_title(title)
        ax.set_xlabel("relative data misfit (%)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("draws")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_polish(polished, path: Path, truth: np.ndarray | None = None) -> Path:
    """Figure: each start of the FWI polish and its result (and the truth when known).

    Parameters
    ----------
    polished : msinv.learned.polish.Polished
    path : Path
        PNG to write.
    truth : (n, n) numpy.ndarray, optional
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = len(polished.labels)
    rows = [("start", polished.before, polished.misfit_before)]
    rows.append(("polished", polished.after, polished.misfit_after))
    cols = s + (truth is not None)
    fig, axes = plt.subplots(2, cols, figsize=(2.8 * cols, 5.6), squeeze=False)
    ref = truth if truth is not None else polished.after[0]
    lo, hi = float(ref.min()), float(ref.max())
    for r, (name, models, misfits) in enumerate(rows):
        for c in range(s):
            ax = axes[r, c]
            ax.imshow(models[c], origin="lower", cmap="viridis", vmin=lo, vmax=hi)
            ax.set_title(f"{name} {polished.labels[c]}\nmisfit {100 * misfits[c]:.2f}%", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        if truth is not None:
            ax = axes[r, s]
            ax.imshow(truth, origin="lower", cmap="viridis", vmin=lo, vmax=hi)
            ax.set_title("truth", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
