"""FWI polish of posterior draws: adjoint-state FWI started from the learned reconstruction.

The learned posterior supplies the large scales (a start inside the basin of attraction of the
top frequency); FWI (:func:`msinv.scattering.invert` with ``eta0``: L-BFGS-B with box bounds,
the same regularisation options, frequency continuation) supplies the last digits. Polishing
several draws, not only the posterior mean, keeps a spread: the standard deviation over the
polished draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.interrupts import worker_pool

#: ``--polish`` method names.
METHODS = ("fwi",)


@dataclass(frozen=True)
class PolishConfig:
    """Options of the FWI polish (those of :func:`msinv.scattering.invert`).

    Parameters
    ----------
    iterations : int, default 20
        L-BFGS-B iterations per stage.
    draws : int, default 0
        Number of posterior draws polished besides the posterior mean (0: the mean only).
    schedule : list of lists of float, optional
        Frequency groups, one continuation stage each; default one stage per frequency, low to
        high (``[[f_max]]``: the top frequency alone).
    reg : str, optional
        ``"tv:W"``, ``"gradient:W"``, ``"tikhonov:W"``.
    bounds : (lo, hi)
        Box bounds on eta (default ``(-0.9, None)``).
    scheme : str or int, optional
        Scheme of the inversion's solver (default that of :func:`~msinv.scattering.invert`,
        which differs from the data's default scheme: no inverse crime).
    workers : int, default 1
        Processes over the starting models.
    """

    iterations: int = 20
    draws: int = 0
    schedule: list[list[float]] | None = None
    reg: str | None = None
    bounds: tuple[float | None, float | None] = (-0.9, None)
    scheme: str | int | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.iterations, int | np.integer) or self.iterations < 1:
            raise UserInputError(f"polish iterations={self.iterations!r}: expected an integer >= 1")
        if not isinstance(self.draws, int | np.integer) or self.draws < 0:
            raise UserInputError(f"polish draws={self.draws!r}: expected an integer >= 0")

    @classmethod
    def parse(cls, text: str, **options) -> PolishConfig:
        """``"fwi"`` or ``"fwi:ITER"`` (iterations per stage) plus the other fields."""
        method, sep, iters = text.partition(":")
        if method not in METHODS or (sep and not iters.isdigit()) or (sep and int(iters) < 1):
            raise UserInputError(f"--polish {text!r}: expected fwi or fwi:ITER (ITER >= 1)")
        if sep:
            options["iterations"] = int(iters)
        return cls(**options)

    def to_dict(self) -> dict:
        return {
            "method": "fwi",
            "iterations": int(self.iterations),
            "draws": int(self.draws),
            "schedule": self.schedule,
            "reg": self.reg,
            "bounds": list(self.bounds),
            "scheme": self.scheme,
        }


def _fwi_one(task) -> tuple[np.ndarray, float]:
    from msinv.scattering import invert

    start, data, geometry, freqs, config = task
    t0 = time.perf_counter()
    model = invert(
        data,
        geometry,
        list(freqs),
        method="fwi",
        schedule=config.schedule,
        iterations=int(config.iterations),
        reg=config.reg,
        bounds=config.bounds,
        eta0=start,
        scheme=config.scheme,
    )
    return model, time.perf_counter() - t0


def fwi_from(
    starts: np.ndarray, data: np.ndarray, geometry, freqs, config: PolishConfig
) -> tuple[np.ndarray, np.ndarray]:
    """FWI of one datum from each starting model.

    Parameters
    ----------
    starts : (S, n, n) float numpy.ndarray
        Starting models (zeros: plain FWI).
    data : (n_freq, n_rec, n_src) complex numpy.ndarray
    geometry : msinv.scattering.Geometry or msinv.scattering.spec.ForwardSpec
        The data's forward model (its receiver reader is used by the inversion).
    freqs : sequence of float
    config : PolishConfig

    Returns
    -------
    models : (S, n, n) float64 numpy.ndarray
    seconds : (S,) float64 numpy.ndarray
        Wall time of each run.
    """
    tasks = [(np.asarray(s, dtype=np.float64), data, geometry, freqs, config) for s in starts]
    if config.workers > 1 and len(tasks) > 1:
        with worker_pool(min(config.workers, len(tasks))) as pool:  # Ctrl-C stops it at once
            results = list(pool.map(_fwi_one, tasks))
    else:
        results = [_fwi_one(t) for t in tasks]
    return np.stack([r[0] for r in results]), np.array([r[1] for r in results])


@dataclass(frozen=True)
class Polished:
    """The polish of one datum.

    Attributes
    ----------
    labels : list of str
        ``"mean"``, then ``"draw 0"``, ``"draw 1"``, ...
    before, after : (S, n, n) numpy.ndarray
        Starting models and polished models.
    misfit_before, misfit_after : (S,) numpy.ndarray
        Relative data misfits, re-simulated with the data's forward model.
    seconds : (S,) numpy.ndarray
    config : PolishConfig
    """

    labels: list[str]
    before: np.ndarray
    after: np.ndarray
    misfit_before: np.ndarray
    misfit_after: np.ndarray
    seconds: np.ndarray
    config: PolishConfig

    def summary(self, truth: np.ndarray | None = None) -> dict:
        """Misfits (and RRMSE against ``truth``) before and after, and the polished spread."""
        from msinv.metrics import rrmse

        out = {
            "config": self.config.to_dict(),
            "starts": self.labels,
            "data_misfit_before": self.misfit_before.tolist(),
            "data_misfit_after": self.misfit_after.tolist(),
            "seconds": np.round(self.seconds, 2).tolist(),
        }
        draws = self.after[1:]
        if len(draws) > 1:
            out["polished_draws_mean_std"] = float(draws.std(axis=0).mean())
            out["unpolished_draws_mean_std"] = float(self.before[1:].std(axis=0).mean())
        if truth is not None:
            t = np.broadcast_to(truth, self.after.shape)
            out["rrmse_before"] = np.asarray(rrmse(self.before, t)).tolist()
            out["rrmse_after"] = np.asarray(rrmse(self.after, t)).tolist()
        return out


def polish(
    samples: np.ndarray,
    data: np.ndarray,
    geometry,
    freqs,
    config: PolishConfig,
    *,
    check=None,
) -> Polished:
    """FWI from the posterior mean and from the first ``config.draws`` draws of one datum.

    Parameters
    ----------
    samples : (K, n, n) float numpy.ndarray
        Posterior draws of the datum.
    data : (n_freq, n_rec, n_src) complex numpy.ndarray
    geometry : msinv.scattering.Geometry or msinv.scattering.spec.ForwardSpec
        The data's forward model.
    freqs : sequence of float
    config : PolishConfig
    check : msinv.learned.physics.CheckConfig, optional
        Re-simulation of the before/after misfits (default: the data's own forward model).

    Returns
    -------
    Polished
    """
    from msinv.learned.physics import CheckConfig, check_draws

    if config.draws > len(samples):
        raise UserInputError(f"polish draws={config.draws}: only {len(samples)} draws were sampled")
    starts = np.concatenate([samples.mean(axis=0)[None], samples[: config.draws]])
    labels = ["mean"] + [f"draw {i}" for i in range(config.draws)]
    after, seconds = fwi_from(starts, data, geometry, freqs, config)
    check = check or CheckConfig()
    mis = check_draws(np.stack([starts, after]), np.stack([data, data]), geometry, freqs, check)
    return Polished(labels, starts, after, mis.misfit[0], mis.misfit[1], seconds, config)
