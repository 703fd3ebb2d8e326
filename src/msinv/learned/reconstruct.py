"""Reconstruction of one datum from a checkpoint: the main-job demo on the shipped checkpoint."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from msinv.learned.figures import plot_posterior
from msinv.learned.loading import DEMO_CHECKPOINT, DEMO_EXAMPLE, load
from msinv.learned.physics import resimulate_misfit
from msinv.learned.sampling import posterior


def demo(
    out_dir: str | os.PathLike = "out/learned-demo",
    *,
    draws: int = 8,
    n_levels: int = 32,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    example: str | os.PathLike | None = None,
    threads: int = 1,
) -> dict:
    """Main job: reconstruct the built-in example with uncertainty from the shipped checkpoint.

    Writes ``figure.png`` (truth, posterior mean, standard deviation, error, one sample) and
    ``summary.json`` (RRMSE of the posterior mean, mean posterior standard deviation, data
    misfit of the mean and of each sample) to ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
    draws : int
        Posterior samples.
    n_levels : int
        Sampler noise levels (fewer than the paper's 256 to stay under a minute on a CPU).
    seed : int
    checkpoint : path-like, optional
        Another checkpoint (default: the shipped 32x32 one).
    example : path-like, optional
        A datum in the shipped example's layout (``eta``, ``data``, ``freqs``, ``geometry``),
        on the checkpoint's grid (default: the shipped 32x32 example).
    threads : int
        Torch intra-op threads while sampling (1: robust on a busy machine, where two
        threads on two cores ran several times slower; 0: torch's default).

    Returns
    -------
    dict
        The summary.
    """
    from msinv.metrics import rrmse
    from msinv.scattering import Geometry

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loaded = load(checkpoint or DEMO_CHECKPOINT)
    example = Path(example or DEMO_EXAMPLE)
    with np.load(example) as ex:
        eta, data, freqs = ex["eta"], ex["data"], ex["freqs"]
        geometry = Geometry.from_dict(json.loads(str(ex["geometry"])))
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        samples = posterior(loaded, data[None], draws, seed=seed, n_levels=n_levels)[0]
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    mean, std = samples.mean(axis=0), samples.std(axis=0)
    misfit = resimulate_misfit(
        np.concatenate([mean[None], samples])[None], data[None], geometry, freqs
    )[0]
    summary = {
        "checkpoint": str(checkpoint or DEMO_CHECKPOINT),
        "example": str(example),
        "draws": draws,
        "n_levels": n_levels,
        "rrmse_posterior_mean": float(rrmse(mean[None], eta[None])[0]),
        "mean_posterior_std": float(std.mean()),
        "data_misfit_posterior_mean": float(misfit[0]),
        "data_misfit_samples_mean": float(misfit[1:].mean()),
        "sampling_seconds": round(seconds, 2),
        "figure": str(out / "figure.png"),
    }
    plot_posterior(eta, samples, out / "figure.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
