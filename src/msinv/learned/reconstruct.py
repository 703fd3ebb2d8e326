"""Reconstruction of one datum: posterior draws, their physics check, the OOD flag, FWI polish.

:func:`reconstruct` draws K posterior samples of a datum (:mod:`msinv.learned.sampling`),
re-simulates the posterior mean and every draw at every frequency
(:mod:`msinv.learned.physics`), flags the datum when the checkpoint's calibrated alarm says its
draws cannot explain it (:mod:`msinv.learned.alarm`), and optionally polishes the mean and a few
draws with FWI (:mod:`msinv.learned.polish`). :func:`demo` is the main job on the shipped
checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from msinv.core.errors import UserInputError
from msinv.core.outputs import atomic_path, write_text
from msinv.learned.figures import plot_misfits, plot_polish, plot_posterior
from msinv.learned.loading import DEMO_CHECKPOINT, DEMO_EXAMPLE, Loaded, load
from msinv.learned.physics import CheckConfig, PhysicsCheck, check_draws, resimulate_misfit
from msinv.learned.polish import PolishConfig, Polished, polish
from msinv.learned.sampling import posterior


@dataclass(frozen=True)
class ReconstructConfig:
    """How one datum is reconstructed.

    Parameters
    ----------
    draws : int, default 20
        Posterior samples K.
    n_levels : int, default 256
        Noise levels of the reverse SDE.
    seed : int, default 0
        Sampler seed.
    check : CheckConfig
        Forward model and noise model of the physics check.
    polish : PolishConfig, optional
        FWI polish of the posterior mean and ``polish.draws`` draws (None: no polish).
    """

    draws: int = 20
    n_levels: int = 256
    seed: int = 0
    check: CheckConfig = field(default_factory=CheckConfig)
    polish: PolishConfig | None = None


@dataclass(frozen=True)
class Reconstruction:
    """The reconstruction of one datum.

    Attributes
    ----------
    samples : (K, n, n) numpy.ndarray
        Posterior draws (physical units).
    check : PhysicsCheck or None
        Per-draw, per-frequency misfits and weights of the draws (None without a geometry).
    mean_check : PhysicsCheck or None
        The same for the posterior mean.
    flagged : bool or None
        The out-of-distribution flag (None: no check, or no calibrated alarm).
    polished : Polished or None
    config : ReconstructConfig
    """

    samples: np.ndarray
    check: PhysicsCheck | None
    mean_check: PhysicsCheck | None
    flagged: bool | None
    polished: Polished | None
    config: ReconstructConfig
    alarm: object = None

    @property
    def mean(self) -> np.ndarray:
        return self.samples.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.samples.std(axis=0)

    def summary(self, truth: np.ndarray | None = None, *, detail: bool = False) -> dict:
        """JSON summary; ``detail`` adds every draw's misfits, weights and the Table 5 summary.

        Keys: ``draws``, ``mean_posterior_std``; with a check, ``data_misfit_posterior_mean``,
        ``data_misfit_samples_mean`` and ``ood`` (when the checkpoint holds an alarm); with a
        truth, ``rrmse_posterior_mean``; with a polish, ``polish``.
        """
        out: dict = {
            "draws": int(self.samples.shape[0]),
            "mean_posterior_std": float(self.std.mean()),
        }
        if self.check is not None:
            out["data_misfit_posterior_mean"] = float(self.mean_check.misfit[0, 0])
            out["data_misfit_samples_mean"] = float(self.check.misfit.mean())
            out["ess"] = float(self.check.ess[0])
        if self.alarm is not None and self.check is not None:
            from msinv.learned.alarm import score

            out["ood"] = {
                "flagged": bool(self.flagged),
                "score": float(score(self.check.misfit)[0]),
                "threshold": self.alarm.threshold,
                "quantile": self.alarm.quantile,
                "statistic": self.alarm.statistic,
                "calibrated_on": self.alarm.data,
            }
        if truth is not None:
            from msinv.metrics import rrmse

            out["rrmse_posterior_mean"] = float(rrmse(self.mean[None], truth[None])[0])
        if detail and self.check is not None:
            out["check"] = self.check.summary()
            out["data_misfit_draws"] = self.check.misfit[0].tolist()
            out["data_misfit_draws_freq"] = self.check.misfit_freq[0].tolist()
            out["data_misfit_posterior_mean_freq"] = self.mean_check.misfit_freq[0, 0].tolist()
            out["weights"] = self.check.weights[0].tolist()
        if self.polished is not None:
            out["polish"] = self.polished.summary(truth)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays to store: draws, mean, std, and the check's and polish's arrays."""
        out = {"samples": self.samples, "mean": self.mean, "std": self.std}
        if self.check is not None:
            out.update(
                {k: v[0] if k != "check_freqs" else v for k, v in self.check.arrays().items()}
            )
        if self.polished is not None:
            out["polish_start"] = self.polished.before
            out["polish_result"] = self.polished.after
        return out


def reconstruct(
    loaded: Loaded,
    data: np.ndarray,
    forward=None,
    freqs=None,
    config: ReconstructConfig | None = None,
    *,
    callback=None,
) -> Reconstruction:
    """Posterior draws of one datum, their physics check, the OOD flag and the FWI polish.

    Parameters
    ----------
    loaded : Loaded
    data : (n_freq, n_rec, n_src) complex numpy.ndarray
    forward : msinv.scattering.spec.ForwardSpec or msinv.scattering.Geometry, optional
        Forward model (or bare geometry) of ``data``; without it (and ``freqs``) nothing is
        re-simulated.
    freqs : sequence of float, optional
    config : ReconstructConfig, optional
    callback : callable, optional
        Progress of the sampler, ``callback(datum_index, draws_done)``.

    Returns
    -------
    Reconstruction
    """
    config = config or ReconstructConfig()
    if config.polish is not None and forward is None:
        raise UserInputError("the FWI polish needs the data's geometry and frequencies")
    data = np.asarray(data)
    samples = posterior(
        loaded, data[None], config.draws, seed=config.seed, n_levels=config.n_levels
    )
    samples = samples[0]
    check = mean_check = flagged = polished = None
    if forward is not None:
        check = check_draws(samples[None], data[None], forward, freqs, config.check)
        mean = samples.mean(axis=0)[None, None]
        mean_check = check_draws(mean, data[None], forward, freqs, config.check)
        if loaded.alarm is not None:
            flagged = bool(loaded.alarm.flags(check.misfit)[0])
            _warn_if_alarm_differs(loaded.alarm, check, config.draws)
    if config.polish is not None:
        polished = polish(samples, data, forward, freqs, config.polish, check=config.check)
    return Reconstruction(samples, check, mean_check, flagged, polished, config, loaded.alarm)


def _warn_if_alarm_differs(alarm, check: PhysicsCheck, draws: int) -> None:
    """The alarm's threshold holds for the settings it was calibrated with: say when they differ."""
    import warnings

    keys = ("scheme", "receiver_interpolation")
    now = {k: check.config.get(k) for k in keys}
    then = {k: alarm.check.get(k) for k in keys}
    if now != then or draws < alarm.draws:
        warnings.warn(
            f"the OOD alarm was calibrated with {then} and {alarm.draws} draws; this check uses "
            f"{now} and {draws} draws: its score is not on the same scale",
            UserWarning,
            stacklevel=3,
        )


def write(rec: Reconstruction, out_dir, truth=None, *, detail=False, extra=None) -> dict:
    """Write ``posterior.npz``, ``summary.json`` and figures of a reconstruction to ``out_dir``.

    Figures: ``figure.png`` (with a truth), ``misfits.png`` (with ``detail`` and a check),
    ``polish.png`` (with a polish). Returns the summary (``extra`` entries first).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = dict(extra or {})
    summary.update(rec.summary(truth, detail=detail))
    if truth is not None:
        with atomic_path(out / "figure.png") as tmp:
            plot_posterior(truth, rec.samples, tmp)
        summary["figure"] = str(out / "figure.png")
    if detail and rec.check is not None:
        threshold = rec.alarm.threshold if rec.alarm is not None else None
        with atomic_path(out / "misfits.png") as tmp:
            plot_misfits(rec.check, tmp, threshold=threshold)
        summary["misfit_figure"] = str(out / "misfits.png")
    if rec.polished is not None:
        with atomic_path(out / "polish.png") as tmp:
            plot_polish(rec.polished, tmp, truth)
        summary["polish_figure"] = str(out / "polish.png")
    with atomic_path(out / "posterior.npz") as tmp:
        np.savez_compressed(tmp, **rec.arrays())
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


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
    out_dir : path-like, default 'out/learned-demo'
    draws : int, default 8
        Posterior samples.
    n_levels : int, default 32
        Sampler noise levels (fewer than the paper's 256 to stay under a minute on a CPU).
    seed : int, default 0
    checkpoint : path-like, optional
        Another checkpoint (default: the shipped 32x32 one).
    example : path-like, optional
        A datum in the shipped example's layout (``eta``, ``data``, ``freqs``, ``geometry``),
        on the checkpoint's grid (default: the shipped 32x32 example).
    threads : int, default 1
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
