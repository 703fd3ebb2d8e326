"""Out-of-distribution alarm: a data-misfit threshold calibrated on held-out in-family data.

A model trained on one family of media explains data of that family: its posterior draws,
re-simulated, reproduce the datum up to a small misfit. Data it cannot explain (another family,
heavy noise, another acquisition) leave every draw far from the datum. The alarm scores a datum by

.. math::

    s(\\Lambda) = \\operatorname{median}_k \\, m_k, \\qquad
    m_k = \\|\\mathcal F(\\hat\\eta_k) - \\Lambda\\| / \\|\\Lambda\\|,

the median over the K draws of their relative data misfit (:mod:`msinv.learned.physics`),
and raises the flag when :math:`s(\\Lambda)` exceeds a threshold: the ``quantile`` (e.g. 0.99)
of the scores of held-out in-family data, computed once by :func:`calibrate` and stored in the
checkpoint under ``"ood_alarm"`` (with the draws, noise levels, re-simulation settings and data it
was calibrated with, and provenance). The expected false-alarm rate on in-family data is about
``1 - quantile``; measure it on data not used for the calibration.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from msinv.core.errors import UserInputError

#: Checkpoint key of the calibrated alarm.
KEY = "ood_alarm"
#: What the score is, recorded with the alarm.
STATISTIC = "median over the draws of the relative data misfit over all frequencies"


def score(misfit: np.ndarray) -> np.ndarray:
    """Alarm score of each datum: the median of its draws' misfits, (m, K) -> (m,)."""
    return np.median(np.asarray(misfit, dtype=np.float64), axis=-1)


@dataclass(frozen=True)
class Alarm:
    """A calibrated threshold on :func:`score`.

    Attributes
    ----------
    threshold : float
        Scores above it raise the flag.
    quantile : float
        Quantile of the calibration scores that defined it.
    draws, n_levels : int
        Sampler settings of the calibration (use the same when scoring).
    count : int
        Held-out data behind it.
    data : str
        Store (and range) of the calibration data.
    check : dict
        Re-simulation settings, with the effective scheme and receiver reader
        (:meth:`msinv.learned.physics.CheckConfig.to_dict`).
    scores : dict
        Minimum, median and maximum of the calibration scores.
    statistic : str
    provenance : dict
    """

    threshold: float
    quantile: float
    draws: int
    n_levels: int
    count: int
    data: str
    check: dict
    scores: dict
    statistic: str = STATISTIC
    provenance: dict | None = None

    def flags(self, misfit: np.ndarray) -> np.ndarray:
        """Boolean flag of each datum from its draws' misfits (m, K) -> (m,)."""
        return score(misfit) > self.threshold

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Alarm:
        return cls(**d)


def threshold_from(scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of in-family ``scores`` (linear interpolation between order statistics)."""
    if not 0 < quantile < 1:
        raise UserInputError(f"quantile={quantile!r}: expected a number in (0, 1)")
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        raise UserInputError("threshold_from: no calibration scores")
    bad = int(np.sum(~np.isfinite(s)))
    if bad:
        raise UserInputError(
            f"{bad} of {s.size} calibration data have no finite score (most draws unphysical): "
            "the model does not explain its own family; no threshold"
        )
    return float(np.quantile(s, quantile))


def store(checkpoint: str | os.PathLike, alarm: Alarm) -> Path:
    """Write ``alarm`` into ``checkpoint`` under :data:`KEY` (atomically: temp file + rename)."""
    import torch

    from msinv.learned.checkpoint_file import read_checkpoint

    path = Path(checkpoint)
    ckpt = read_checkpoint(path)  # a damaged or foreign file: one FileFormatError naming it
    ckpt[KEY] = alarm.to_dict()
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def calibrate(
    checkpoint: str | os.PathLike,
    store_path: str | os.PathLike,
    *,
    start: int = 0,
    count: int | None = None,
    draws: int = 8,
    n_levels: int = 256,
    quantile: float = 0.99,
    seed: int = 0,
    check=None,
    device: str = "cpu",
    write: bool = True,
) -> Alarm:
    """Calibrate the alarm of ``checkpoint`` on held-out in-family data and store it there.

    Parameters
    ----------
    checkpoint : path-like
        A checkpoint written by the trainer (or exported); it is rewritten with the alarm.
    store_path : path-like
        Held-out data of the training family (never the training pairs).
    start, count : int
        Range of the calibration data in the store.
    draws, n_levels, seed : int
        Sampler settings (:func:`msinv.learned.sampling.posterior`).
    quantile : float, default 0.99
        Quantile of the scores taken as the threshold.
    check : msinv.learned.physics.CheckConfig, optional
        Re-simulation settings (default: the store's own forward model).
    device : str, default 'cpu'
    write : bool, default True
        Store the alarm in the checkpoint (False: only return it).

    Returns
    -------
    Alarm
    """
    from msinv.core.provenance import provenance
    from msinv.learned.data import load_pairs
    from msinv.learned.loading import load
    from msinv.learned.physics import CheckConfig, check_draws
    from msinv.learned.sampling import posterior

    check = check or CheckConfig()
    threshold_from(np.zeros(1), quantile)  # validate before any work
    loaded = load(checkpoint, device=device)
    pairs = load_pairs(store_path, start, count)
    samples = posterior(loaded, pairs.data, draws, seed=seed, n_levels=n_levels)
    result = check_draws(samples, pairs.data, pairs.spec or pairs.geometry, pairs.freqs, check)
    s = score(result.misfit)
    m = len(s)
    settings = {"draws": int(samples.shape[1]), "n_levels": n_levels, "quantile": quantile}
    alarm = Alarm(
        threshold=threshold_from(s, quantile),
        quantile=quantile,
        draws=int(samples.shape[1]),
        n_levels=n_levels,
        count=m,
        data=f"{store_path}[{start}:{start + m}]",
        check=result.config,
        scores={"min": float(s.min()), "median": float(np.median(s)), "max": float(s.max())},
        provenance=provenance(settings),
    )
    if write:
        store(checkpoint, alarm)
    return alarm
