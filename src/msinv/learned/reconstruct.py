"""Posterior sampling and evaluation helpers, and the main-job demo on the shipped checkpoint.

Notes
-----
For a datum :math:`\\Lambda` the model computes its conditioning once (F*, then the score
network's conditioning branch), then draws K samples of :math:`\\eta \\mid \\Lambda` with the
reverse SDE (:func:`msinv.learned.diffusion.sampler.sample`) in normalised units, mapped back
to physical units by the stored normalisation. Each sample can be re-simulated with the
forward solver: its data misfit is :math:`\\|\\mathcal F(\\hat\\eta) - \\Lambda\\| / \\|\\Lambda\\|`.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from msinv.core.errors import FileFormatError, UserInputError
from msinv.learned.data import Normalisation
from msinv.learned.diffusion.sampler import sample
from msinv.learned.diffusion.schedule import geometric_levels

#: The shipped reduced-configuration checkpoint and its built-in example datum.
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DEMO_CHECKPOINT = CHECKPOINTS / "equinet-cnn-squares32.pt"
DEMO_EXAMPLE = CHECKPOINTS / "example-squares32.npz"


@dataclass(frozen=True)
class Loaded:
    """A model ready for inference.

    Attributes
    ----------
    model : nn.Module
        In eval mode, on the requested device.
    norm : Normalisation
    config : msinv.learned.train.TrainConfig
        The resolved training configuration.
    step : int
        Training steps behind the weights.
    """

    model: nn.Module
    norm: Normalisation
    config: object
    step: int

    @property
    def kind(self) -> str:
        return self.model.kind


def load(checkpoint: str | os.PathLike, *, weights: str = "ema", device: str = "cpu") -> Loaded:
    """Load a checkpoint written by the trainer.

    Parameters
    ----------
    checkpoint : path-like
    weights : {"ema", "model", "init"}
        The EMA weights (for sampling), the raw trained weights, or the initial weights of
        the run (rebuilt from its seed).
    device : str
        Torch device.
    """
    from msinv.learned.checkpoint_file import check_device, load_weights, read_checkpoint
    from msinv.learned.train import TrainConfig, build_from_config

    if weights not in ("ema", "model", "init"):
        raise UserInputError(f"weights must be 'ema', 'model' or 'init', got {weights!r}")
    device = check_device(str(device))
    path = Path(checkpoint)
    ckpt = read_checkpoint(path, device=device)
    try:
        config = TrainConfig.from_dict(tomllib.loads(ckpt["config"]), str(path))
        norm = Normalisation.from_state_dict(ckpt["normalisation"])
    except (tomllib.TOMLDecodeError, TypeError, KeyError, AttributeError) as exc:
        raise FileFormatError(
            f"{path}: damaged checkpoint, its config or normalisation ({exc})"
        ) from None
    torch.manual_seed(config.seed)
    model = build_from_config(config.model).to(device)
    if weights == "model":
        if "model" not in ckpt:
            raise UserInputError(f"{path}: an exported checkpoint holds only the EMA weights")
        load_weights(model, ckpt["model"], path, "model")
    elif weights == "ema":
        state = {k.removeprefix("module."): v for k, v in ckpt["ema"].items() if k != "n_averaged"}
        load_weights(model, state, path, "EMA")
    model.eval()
    return Loaded(model, norm, config, int(ckpt["step"]))


def check_fits(loaded: Loaded, data: np.ndarray, freqs=None, source: str = "data") -> None:
    """Refuse data that the model was not trained for (grid, frequencies, acquisition).

    Parameters
    ----------
    loaded : Loaded
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
    freqs : sequence of float, optional
        Frequencies of the data; compared with the training frequencies when given.
    source : str
        Where the data came from, for the message.
    """
    m = loaded.config.model
    shape = tuple(np.shape(data)[1:])
    want = (m.n_freq, m.n_sc, m.n_sc)
    if None not in want and shape != want:
        raise UserInputError(
            f"{source}: data of shape {shape} (n_freq, n_rec, n_src), but the model was trained "
            f"on {want}; use a checkpoint trained on this acquisition"
        )
    if freqs is not None and m.freqs is not None:
        if len(freqs) != len(m.freqs) or not np.allclose(freqs, m.freqs, rtol=1e-6):
            raise UserInputError(
                f"{source}: frequencies {[float(f) for f in freqs]}, but the model was trained "
                f"at {list(m.freqs)}"
            )


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
) -> np.ndarray:
    """Posterior samples (or the deterministic estimate) for each datum, in physical units.

    Parameters
    ----------
    loaded : Loaded
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
        Physical (un-normalised) data.
    draws : int
        Samples per datum K (a deterministic model returns one).
    seed : int
        Seed of the initial states and Brownian increments (datum j uses seed + j).
    n_levels : int
        Noise levels of the sampler (paper: 256).
    batch : int
        Draws integrated together.
    callback : callable, optional
        ``callback(datum_index, draws_done)`` for progress reporting.

    Returns
    -------
    (m, K, n, n) float32 numpy.ndarray
    """
    model, norm = loaded.model, loaded.norm
    device = next(model.parameters()).device
    x = torch.from_numpy(norm.data(np.asarray(data))).to(device)
    n = norm.eta_mean.shape[-1]
    if model.kind == "deterministic":
        eta = model(x)[:, :1]
        return norm.eta_inverse(eta.double().cpu().numpy()).astype(np.float32)
    if draws < 1:
        raise UserInputError(f"draws must be >= 1, got {draws}")
    sigmas = geometric_levels(n_levels)
    out = np.empty((x.shape[0], draws, n, n), dtype=np.float32)
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


def resimulate_misfit(samples: np.ndarray, data: np.ndarray, geometry, freqs) -> np.ndarray:
    """Data misfit of every sample, re-simulated with the forward solver.

    Parameters
    ----------
    samples : (m, K, n, n) float numpy.ndarray
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
    geometry : msinv.scattering.Geometry
    freqs : sequence of float

    Returns
    -------
    (m, K) float64 numpy.ndarray
        ||F(eta_k) - Lambda|| / ||Lambda|| per datum and sample.
    """
    from msinv.metrics import data_misfit
    from msinv.scattering import simulate

    m, k = samples.shape[:2]
    pred = simulate(samples.reshape(m * k, *samples.shape[2:]), geometry, list(freqs))
    obs = np.repeat(np.asarray(data), k, axis=0)
    return np.asarray(data_misfit(pred, obs), dtype=np.float64).reshape(m, k)


def evaluate(
    checkpoints: dict[str, str | os.PathLike],
    datasets: dict[str, str | os.PathLike],
    *,
    draws: int = 10,
    count: int | None = None,
    n_levels: int = 256,
    misfit: str = "mean",
    seed: int = 0,
    device: str = "cpu",
    out: str | os.PathLike | None = None,
) -> dict:
    """Evaluate models on held-out data in the layout of the paper's Table 1.

    Parameters
    ----------
    checkpoints : dict
        Row label -> checkpoint.
    datasets : dict
        Column label (family) -> test store.
    draws : int
        Posterior samples per datum (deterministic models: 1).
    count : int, optional
        Use the first ``count`` test pairs (default: all).
    n_levels : int
        Sampler noise levels.
    misfit : {"mean", "samples", "none"}
        Re-simulate the posterior mean of each datum, every sample, or nothing, and report
        the relative data misfit.
    seed : int
    device : str
    out : path-like, optional
        Prefix of ``.json``, ``.csv`` and ``.md`` tables and ``-<model>-<family>.png``
        figures (truth, mean, std, error, zoom of the first test datum).

    Returns
    -------
    dict
        ``{"rows": [...], "markdown": str}``; each row holds per-model, per-family means of
        RRMSE (over data and draws), RRMSE of the posterior mean, MELR (unweighted and
        energy-weighted), SD (debiased Sinkhorn divergence between one draw per datum and
        the truths; ``sd_reference``: the paper's reported variant), CRPS, data misfit, and the sampling time.

    Notes
    -----
    The metric definitions are those of :mod:`msinv.metrics`.
    """
    from msinv import metrics
    from msinv.learned.data import load_pairs

    if misfit not in ("mean", "samples", "none"):
        raise UserInputError(f"misfit must be 'mean', 'samples' or 'none', got {misfit!r}")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, ckpt in checkpoints.items():
        loaded = load(ckpt, device=device)
        for family, store in datasets.items():
            pairs = load_pairs(store, 0, count)
            check_fits(loaded, pairs.data, pairs.freqs, f"{store}")
            t0 = time.perf_counter()
            samples = posterior(loaded, pairs.data, draws, seed=seed, n_levels=n_levels)
            seconds = time.perf_counter() - t0
            m, k = samples.shape[:2]
            truth = pairs.eta.astype(np.float64)
            flat = samples.reshape(m * k, *truth.shape[1:]).astype(np.float64)
            rep = np.repeat(truth, k, axis=0)
            mean = samples.mean(axis=1).astype(np.float64)
            row = {
                "model": label,
                "family": family,
                "checkpoint": str(ckpt),
                "test_pairs": m,
                "draws": k,
                "rrmse": float(np.mean(metrics.rrmse(flat, rep))),
                "rrmse_mean": float(np.mean(metrics.rrmse(mean, truth))),
                "melr": float(np.mean(metrics.melr(flat, rep))),
                "melr_weighted": float(np.mean(metrics.melr(flat, rep, weighted=True))),
                "sd": _sd(metrics.sinkhorn_divergence, samples[:, 0], truth),
                "sd_reference": _sd(metrics.sinkhorn_cost_reference, samples[:, 0], truth),
                "crps": float(np.mean(metrics.crps(samples, truth))),
                "mean_std": float(samples.std(axis=1).mean()) if k > 1 else 0.0,
                "sampling_seconds": round(seconds, 2),
            }
            if misfit != "none":
                chosen = mean[:, None] if misfit == "mean" else samples
                row["data_misfit"] = float(
                    resimulate_misfit(chosen, pairs.data, pairs.geometry, pairs.freqs).mean()
                )
            rows.append(row)
            if out is not None:
                plot_posterior(truth[0], samples[0], Path(f"{out}-{label}-{family}.png"))
    md = table_markdown(rows)
    if out is not None:
        import csv

        Path(f"{out}.json").write_text(
            json.dumps({"rows": rows, "provenance": _provenance()}, indent=2)
        )
        Path(f"{out}.md").write_text(md)
        with open(f"{out}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return {"rows": rows, "markdown": md}


def _sd(fn, x: np.ndarray, y: np.ndarray) -> float:
    """A Sinkhorn value between the flattened sets, NaN (and a warning) if it does not converge."""
    import warnings

    try:
        return float(fn(x.reshape(len(x), -1), y.reshape(len(y), -1)))
    except RuntimeError as exc:
        warnings.warn(f"SD left out: {exc}", RuntimeWarning, stacklevel=2)
        return float("nan")


def _provenance() -> dict:
    from msinv.core.provenance import provenance

    return provenance()


def table_markdown(rows: list[dict]) -> str:
    """Table 1 layout: one row per model, one column per family, cells RRMSE / MELR / SD,
    followed by a detail table with every metric."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cell = {(r["model"], r["family"]): r for r in rows}
    lines = [
        "| model | " + " | ".join(f"{f}: RRMSE / MELR×100 / SD" for f in families) + " |",
        "|---|" + "---|" * len(families),
    ]
    for m in models:
        vals = []
        for f in families:
            r = cell.get((m, f))
            vals.append(
                ""
                if r is None
                else f"{100 * r['rrmse']:.3f}% / {100 * r['melr']:.3f} / {r['sd']:.3f}"
            )
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    lines += [
        "",
        "| model | family | RRMSE | RRMSE of mean | MELR×100 | MELR_w×100 | SD | CRPS×10⁴ | mean std | data misfit | draws | sampling s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mis = f"{100 * r['data_misfit']:.2f}%" if "data_misfit" in r else "-"
        lines.append(
            f"| {r['model']} | {r['family']} | {100 * r['rrmse']:.3f}% | {100 * r['rrmse_mean']:.3f}% | "
            f"{100 * r['melr']:.3f} | {100 * r['melr_weighted']:.3f} | {r['sd']:.4f} | {1e4 * r['crps']:.3f} | "
            f"{r['mean_std']:.4f} | {mis} | {r['draws']} | {r['sampling_seconds']} |"
        )
    return "\n".join(lines) + "\n"


def demo(
    out_dir: str | os.PathLike = "out/learned-demo",
    *,
    draws: int = 8,
    n_levels: int = 32,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
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
        Another checkpoint trained on the same grid (default: the shipped one).
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
    with np.load(DEMO_EXAMPLE) as ex:
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
        "example": str(DEMO_EXAMPLE),
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
