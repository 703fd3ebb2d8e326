"""Posterior sampling: K draws of eta | Lambda per datum with the reverse SDE.

Notes
-----
For a datum :math:`\\Lambda` the model computes its conditioning once (F*, then the score
network's conditioning branch), then draws K samples of :math:`\\eta \\mid \\Lambda` with the
reverse SDE (:func:`msinv.learned.diffusion.sampler.sample`) in normalised units, mapped back
to physical units by the stored normalisation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from msinv.core.errors import UserInputError
from msinv.learned.diffusion.sampler import GeneratorBank, sample
from msinv.learned.diffusion.schedule import geometric_levels
from msinv.learned.loading import Loaded


@torch.no_grad()
def posterior(
    loaded: Loaded,
    data: np.ndarray,
    draws: int = 10,
    *,
    seed: int = 0,
    n_levels: int = 256,
    batch: int = 64,
    callback: Callable[[int, int], None] | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Posterior samples (or the deterministic estimate) for each datum, in physical units.

    Parameters
    ----------
    loaded : Loaded
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
        Physical (un-normalised) data.
    draws : int, default 10
        Samples per datum K (a deterministic model returns one).
    seed : int, default 0
        Seed of the initial states and Brownian increments (datum j uses seed + j).
    n_levels : int, default 256
        Noise levels of the sampler (paper: 256).
    batch : int, default 64
        Images computed together. A deterministic model: data per forward pass. Diffusion:
        with ``draws <= batch``, the draws of ``batch // draws`` data at once (each datum
        keeps its own random stream, seeded ``seed + j``); otherwise one datum at a time in
        slices of ``batch`` draws.
    callback : callable, optional
        ``callback(datum_index, draws_done)`` for progress reporting.
    precision : {"fp32", "bf16"}, default 'fp32'
        Precision of the network evaluations (bf16: autocast; the SDE state stays float64).

    Returns
    -------
    (m, K, n, n) float32 numpy.ndarray
    """
    model, norm = loaded.model, loaded.norm
    device = next(model.parameters()).device
    x = torch.from_numpy(norm.data(np.asarray(data))).to(device)
    if model.kind == "deterministic":  # in slices of ``batch`` data (35 MB each at n = 80)
        n = norm.eta_mean.shape[-1]
        out = np.empty((x.shape[0], 1, n, n), dtype=np.float32)
        for j0 in range(0, x.shape[0], batch):
            eta = model(x[j0 : j0 + batch])[:, :1].double().cpu().numpy()
            out[j0 : j0 + batch] = norm.eta_inverse(eta)
        return out
    if draws < 1:
        raise UserInputError(f"draws must be >= 1, got {draws}")
    if precision not in ("fp32", "bf16"):
        raise UserInputError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        return _sample_all(model, norm, x, draws, seed, n_levels, batch, callback)


def _sample_all(model, norm, x, draws, seed, n_levels, batch, callback) -> np.ndarray:
    """The draws of every datum (see :func:`posterior`)."""
    device = x.device
    n = norm.eta_mean.shape[-1]
    sigmas = geometric_levels(n_levels)
    out = np.empty((x.shape[0], draws, n, n), dtype=np.float32)
    if draws <= batch:  # whole data integrated together: batch // draws data at a time
        per = batch // draws
        for j0 in range(0, x.shape[0], per):
            j1 = min(x.shape[0], j0 + per)
            features = model.condition(x[j0:j1]).repeat(draws)  # once per datum
            gens = [torch.Generator(device=device).manual_seed(seed + j) for j in range(j0, j1)]
            bank = GeneratorBank(gens, [draws] * len(gens))
            x_T = bank.randn((len(gens) * draws, 1, n, n), dtype=torch.float64, device=device)
            eta = sample(model, x_T, sigmas, features, generator=bank)
            out[j0:j1] = norm.eta_inverse(eta[:, 0].cpu().numpy()).reshape(j1 - j0, draws, n, n)
            if callback is not None:
                for j in range(j0, j1):
                    callback(j, draws)
        return out
    for j in range(x.shape[0]):
        features = model.condition(x[j : j + 1])  # once per datum
        gen = torch.Generator(device=device).manual_seed(seed + j)
        done = 0
        while done < draws:
            b = min(batch, draws - done)
            x_T = torch.randn((b, 1, n, n), generator=gen, dtype=torch.float64, device=device)
            eta = sample(model, x_T, sigmas, features.expand(b), generator=gen)
            out[j, done : done + b] = norm.eta_inverse(eta[:, 0].cpu().numpy())
            done += b
            if callback is not None:
                callback(j, done)
    return out
