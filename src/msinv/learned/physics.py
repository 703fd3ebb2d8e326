"""Physics checks of posterior draws: re-simulation, per-frequency data misfits, likelihood weights.

Every draw :math:`\\hat\\eta_k` of a datum :math:`\\Lambda` is re-simulated with the forward
solver at each frequency :math:`f` (:func:`msinv.scattering.simulate`: one sparse LU per draw
and frequency, all sources as right-hand sides of that one factorisation, draws and frequencies
spread over ``workers`` processes). Its relative data misfits are

.. math::

    m_{k,f} = \\frac{\\|\\mathcal F_f(\\hat\\eta_k) - \\Lambda_f\\|}{\\|\\Lambda_f\\|},
    \\qquad
    m_k = \\frac{\\|\\mathcal F(\\hat\\eta_k) - \\Lambda\\|}{\\|\\Lambda\\|}

(Frobenius norms over receivers and sources, and over frequencies too for :math:`m_k`).

Under the stated noise model :class:`NoiseModel` (additive circular complex Gaussian noise,
independent per entry, of standard deviation :math:`\\sigma_f` at frequency f) the
log-likelihood of a draw is

.. math::

    \\log p(\\Lambda \\mid \\hat\\eta_k) = -\\sum_f
    \\frac{\\|\\mathcal F_f(\\hat\\eta_k) - \\Lambda_f\\|^2}{\\sigma_f^2} + \\text{const},

and the self-normalised importance weights :math:`w_k \\propto p(\\Lambda \\mid \\hat\\eta_k)`
rank the draws by how well they explain the data; the effective sample size is
:math:`\\mathrm{ESS} = 1 / \\sum_k w_k^2` (between 1 and K). These are the weights that turn draws
of the *prior* into draws of the posterior; for draws of the learned posterior they are a
diagnostic: an ESS near K says every draw is compatible with the data at the stated noise
level, an ESS near 1 that one draw explains the data far better than the others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from msinv.core.errors import UserInputError


@dataclass(frozen=True)
class NoiseModel:
    """Additive Gaussian noise relative to the data's standard deviation, per frequency.

    At frequency f the noise is :math:`\\varepsilon_f \\sim \\mathcal{CN}(0, \\sigma_f^2 I)`
    (real and imaginary parts independent, each of variance :math:`\\sigma_f^2/2`) with
    :math:`\\sigma_f = \\ell\\, s_f`, :math:`\\ell` = ``level`` and :math:`s_f` the standard
    deviation of the entries of :math:`\\Lambda_f`,
    :math:`s_f^2 = \\operatorname{mean}|\\Lambda_f - \\bar\\Lambda_f|^2` (the paper's "noise of
    40% of the data's standard deviation" is ``level=0.4``).

    Parameters
    ----------
    level : float
        :math:`\\ell > 0`.
    """

    level: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.level) or self.level <= 0:
            raise UserInputError(f"noise level={self.level!r}: expected a finite number > 0")

    def sigma(self, data: np.ndarray) -> np.ndarray:
        """:math:`\\sigma_f` of ``data`` (..., n_freq, n_rec, n_src) -> (..., n_freq)."""
        d = np.asarray(data)
        centred = d - d.mean(axis=(-2, -1), keepdims=True)
        return self.level * np.sqrt(np.mean(np.abs(centred) ** 2, axis=(-2, -1)))

    def add(self, data: np.ndarray, seed: int = 0) -> np.ndarray:
        """``data`` plus one draw of the noise (seeded), in the dtype of ``data``."""
        d = np.asarray(data)
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((*d.shape, 2)) @ np.array([1.0, 1j]) / np.sqrt(2.0)
        return (d + self.sigma(d)[..., None, None] * eps).astype(d.dtype)

    def log_likelihood(self, pred: np.ndarray, data: np.ndarray) -> np.ndarray:
        """:math:`-\\sum_f \\|\\mathrm{pred}_f - \\Lambda_f\\|^2 / \\sigma_f^2`, σ from ``data``.

        Parameters
        ----------
        pred : (..., n_freq, n_rec, n_src) complex numpy.ndarray
        data : (..., n_freq, n_rec, n_src) complex numpy.ndarray
            Broadcastable against ``pred``.

        Returns
        -------
        numpy.ndarray
            Shape ``broadcast(pred, data).shape[:-3]``.
        """
        sq = np.sum(np.abs(np.asarray(pred) - np.asarray(data)) ** 2, axis=(-2, -1))
        return -np.sum(sq / self.sigma(data) ** 2, axis=-1)


def importance_weights(log_likelihood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Self-normalised weights over the last axis and their effective sample size.

    Parameters
    ----------
    log_likelihood : (..., K) numpy.ndarray

    Returns
    -------
    weights : (..., K) numpy.ndarray
        Non-negative, summing to one over the last axis.
    ess : (...) numpy.ndarray
        :math:`1 / \\sum_k w_k^2`.
    """
    ll = np.asarray(log_likelihood, dtype=np.float64)
    top = ll.max(axis=-1, keepdims=True)
    none = ~np.isfinite(top)  # no draw with a finite likelihood: weights 0, ESS 0
    w = np.exp(ll - np.where(none, 0.0, top))
    w = np.where(none, 0.0, w / np.where(none, 1.0, w.sum(axis=-1, keepdims=True)))
    total = np.sum(w**2, axis=-1)
    return w, np.where(total > 0, 1.0 / np.where(total > 0, total, 1.0), 0.0)


def resimulate(
    samples: np.ndarray,
    forward,
    freqs,
    *,
    scheme=None,
    receiver_interpolation: str | None = None,
    workers: int = 1,
) -> np.ndarray:
    """Data of every draw, re-simulated with the forward solver.

    Parameters
    ----------
    samples : (m, K, n, n) float numpy.ndarray
    forward : msinv.scattering.Geometry or msinv.scattering.spec.ForwardSpec
        The data's forward model (a store's ``spec``) or a bare geometry (default model).
    freqs : sequence of float
    scheme, receiver_interpolation, workers
        As in :func:`msinv.scattering.simulate` (``None``: the forward model's own).

    Returns
    -------
    (m, K, n_freq, n_rec, n_src) complex numpy.ndarray
    """
    from msinv.scattering import simulate

    m, k = samples.shape[:2]
    pred = simulate(
        np.asarray(samples, dtype=np.float64).reshape(m * k, *samples.shape[2:]),
        forward,
        list(freqs),
        scheme=scheme,
        receiver_interpolation=receiver_interpolation,
        workers=workers,
    )
    return pred.reshape(m, k, *pred.shape[1:])


def resimulate_misfit(samples: np.ndarray, data: np.ndarray, geometry, freqs) -> np.ndarray:
    """Data misfit of every sample, re-simulated with the forward solver.

    Parameters
    ----------
    samples : (m, K, n, n) float numpy.ndarray
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
    geometry : msinv.scattering.Geometry or msinv.scattering.spec.ForwardSpec
        The data's forward model (a store's ``spec``: its scheme and receiver reader are
        used), or a bare geometry (the default forward model).
    freqs : sequence of float

    Returns
    -------
    (m, K) float64 numpy.ndarray
        ||F(eta_k) - Lambda|| / ||Lambda|| per datum and sample.
    """
    from msinv.metrics import data_misfit

    pred = resimulate(samples, geometry, freqs)
    return np.asarray(data_misfit(pred, np.asarray(data)[:, None]), dtype=np.float64)


@dataclass(frozen=True)
class CheckConfig:
    """How draws are checked against their data.

    Parameters
    ----------
    noise : NoiseModel
        The stated noise model of the likelihood weights (default: 5% of the data's std).
    scheme : str or int, optional
        Scheme of the re-simulation; default the data's own (a store's spec), another one
        (e.g. ``"wide6"``) to avoid the inverse crime.
    receiver_interpolation : str, optional
        Receiver reader of the re-simulation; default the data's own.
    workers : int, default 1
        Processes over (draw, frequency) pairs.
    """

    noise: NoiseModel = field(default_factory=lambda: NoiseModel(0.05))
    scheme: str | int | None = None
    receiver_interpolation: str | None = None
    workers: int = 1

    def forward(self, forward):
        """The forward model of the check: ``forward`` (a spec or a geometry) with this
        config's choices, with a warning for each that differs from the data's own."""
        from msinv.scattering.spec import as_spec

        return as_spec(forward).override(
            what="the data's forward model",
            scheme=self.scheme,
            receiver_interpolation=self.receiver_interpolation,
        )

    def to_dict(self, forward=None) -> dict:
        """The settings; with ``forward``, the effective scheme and receiver reader."""
        out = {
            "noise_level": self.noise.level,
            "noise_model": "additive circular complex Gaussian, sigma_f = level * std(Lambda_f)",
            "scheme": self.scheme,
            "receiver_interpolation": self.receiver_interpolation,
        }
        if forward is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the check itself has already said so
                spec = self.forward(forward)
            out.update(scheme=spec.scheme, receiver_interpolation=spec.receiver_interpolation)
        return out


@dataclass(frozen=True)
class PhysicsCheck:
    """Per-draw, per-frequency data misfits of a set of draws and their likelihood weights.

    Attributes
    ----------
    freqs : (n_freq,) numpy.ndarray
    misfit_freq : (m, K, n_freq) numpy.ndarray
        Relative misfit of each draw at each frequency, :math:`m_{k,f}`.
    misfit : (m, K) numpy.ndarray
        Relative misfit over all frequencies, :math:`m_k`.
    log_likelihood : (m, K) numpy.ndarray
        Under ``config.noise``, up to a constant.
    weights : (m, K) numpy.ndarray
        Self-normalised importance weights.
    ess : (m,) numpy.ndarray
        Effective sample size of the weights.
    config : dict
        :meth:`CheckConfig.to_dict` with the effective scheme and receiver reader.
    """

    freqs: np.ndarray
    misfit_freq: np.ndarray
    misfit: np.ndarray
    log_likelihood: np.ndarray
    weights: np.ndarray
    ess: np.ndarray
    config: dict

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store beside the draws (``data_misfit`` is :attr:`misfit`)."""
        return {
            "data_misfit": self.misfit,
            "data_misfit_freq": self.misfit_freq,
            "log_likelihood": self.log_likelihood,
            "weights": self.weights,
            "ess": self.ess,
            "check_freqs": np.asarray(self.freqs, dtype=np.float64),
        }

    def summary(self) -> dict:
        """The misfit distribution over data and draws (the paper's Table 5 layout).

        Returns
        -------
        dict
            ``{"per_frequency": {f: stats}, "all": stats, "ess": {...}, "config": {...}}`` where
            stats holds the mean, standard deviation, minimum, median, 90th percentile and
            maximum of the relative misfits over every draw of every datum (unphysical draws,
            counted in ``unphysical_draws``, left out).
        """

        def stats(x: np.ndarray) -> dict[str, float]:
            x = np.asarray(x, dtype=np.float64).ravel()
            x = x[np.isfinite(x)] if np.isfinite(x).any() else np.full(1, np.nan)
            return {
                "mean": float(x.mean()),
                "std": float(x.std()),
                "min": float(x.min()),
                "median": float(np.median(x)),
                "p90": float(np.quantile(x, 0.9)),
                "max": float(x.max()),
            }

        m, k = self.misfit.shape
        return {
            "data": m,
            "draws": k,
            "unphysical_draws": int(np.sum(~np.isfinite(self.misfit))),
            "per_frequency": {
                f"{f:g}": stats(self.misfit_freq[..., i]) for i, f in enumerate(self.freqs)
            },
            "all": stats(self.misfit),
            "ess": {"mean": float(self.ess.mean()), "min": float(self.ess.min()), "of": k},
            "config": self.config,
        }


def check_draws(
    samples: np.ndarray,
    data: np.ndarray,
    forward,
    freqs,
    config: CheckConfig | None = None,
) -> PhysicsCheck:
    """Re-simulate every draw at every frequency and compare it with its datum.

    Parameters
    ----------
    samples : (m, K, n, n) float numpy.ndarray
        Draws (physical units), K per datum.
    data : (m, n_freq, n_rec, n_src) complex numpy.ndarray
        The data the draws were conditioned on.
    forward : msinv.scattering.spec.ForwardSpec or msinv.scattering.Geometry
        The data's forward model (a store's ``spec``, see
        :attr:`msinv.learned.data.Pairs.spec`) or a bare geometry (the default model).
    freqs : sequence of float
        Frequencies of ``data``.
    config : CheckConfig, optional

    Returns
    -------
    PhysicsCheck
        A draw with :math:`1 + \\eta \\le 0` somewhere is no physical medium: it is not
        simulated, its misfits are ``inf``, its weight 0 (with a warning).
    """
    from msinv.metrics import data_misfit

    config = config or CheckConfig()
    data = np.asarray(data)
    if samples.ndim != 4 or data.ndim != 4 or samples.shape[0] != data.shape[0]:
        raise UserInputError(
            f"check_draws: samples {samples.shape} and data {data.shape}: expected "
            "(m, K, n, n) and (m, n_freq, n_rec, n_src)"
        )
    if data.shape[1] != len(freqs):
        raise UserInputError(
            f"check_draws: data hold {data.shape[1]} frequencies, freqs {len(freqs)}"
        )
    spec = config.forward(forward)
    m, k = samples.shape[:2]
    valid = np.all(1.0 + np.asarray(samples) > 0, axis=(-2, -1))  # (m, K)
    misfit_freq = np.full((m, k, len(freqs)), np.inf)
    misfit = np.full((m, k), np.inf)
    ll = np.full((m, k), -np.inf)
    if not valid.all():
        warnings.warn(
            f"{int((~valid).sum())} of {m * k} draws have 1 + eta <= 0 somewhere (no physical "
            "medium): their misfit is inf and their weight 0",
            RuntimeWarning,
            stacklevel=2,
        )
    if valid.any():
        pred = resimulate(np.asarray(samples)[valid][:, None], spec, freqs, workers=config.workers)[
            :, 0
        ].astype(np.complex128)
        obs = data.astype(np.complex128)[np.nonzero(valid)[0]]
        misfit_freq[valid] = data_misfit(pred, obs, ndim=2)
        misfit[valid] = data_misfit(pred, obs)
        ll[valid] = config.noise.log_likelihood(pred, obs)
    weights, ess = importance_weights(ll)
    return PhysicsCheck(
        freqs=np.asarray(freqs, dtype=np.float64),
        misfit_freq=misfit_freq,
        misfit=misfit,
        log_likelihood=ll,
        weights=weights,
        ess=ess,
        config=config.to_dict(spec),
    )
