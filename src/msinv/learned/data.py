"""Training pairs from a scattering dataset store, and their normalisation statistics.

Notes
-----
Normalisation (spec): :math:`\\hat\\eta = (\\eta - \\bar\\eta) / s_\\eta` with the per-pixel
training mean :math:`\\bar\\eta` and one scalar :math:`s_\\eta` (the standard deviation of the
centred images over all pixels and samples); data per frequency f,
:math:`\\hat\\Lambda_f = (\\Lambda_f - m_f(1 + i)) / s_f` where :math:`m_f` and :math:`s_f` are
the mean and standard deviation of the real and imaginary parts taken together.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from msinv.core.errors import UserInputError


@dataclass(frozen=True)
class Normalisation:
    """Normalisation statistics of a training set (stored with every model).

    Parameters
    ----------
    eta_mean : (n, n) float64 numpy.ndarray
        Per-pixel mean of the training images.
    eta_std : float
        Scalar standard deviation of the centred training images.
    data_mean, data_std : (n_freq,) float64 numpy.ndarray
        Per-frequency mean and standard deviation of real and imaginary parts together.
    """

    eta_mean: np.ndarray
    eta_std: float
    data_mean: np.ndarray
    data_std: np.ndarray

    def __post_init__(self) -> None:
        if not self.eta_std > 0 or not np.all(np.asarray(self.data_std) > 0):
            raise UserInputError(
                "normalisation standard deviations must be > 0 (constant training set?)"
            )

    @classmethod
    def fit(cls, eta: np.ndarray, data: np.ndarray, chunk: int = 512) -> Normalisation:
        """Statistics of eta (N, n, n) and data (N, n_freq, n_rec, n_src) complex.

        Two streaming passes over chunks of ``chunk`` samples with float64 accumulators (the
        mean, then the sum of squared deviations from it): no float64 copy of the arrays is
        made, so the extra memory is that of one chunk.
        """
        n_samples = len(eta)
        if n_samples == 0 or len(data) != n_samples:
            raise ValueError(f"need as many (>= 1) images as data, got {len(eta)}, {len(data)}")
        chunks = [slice(i, min(n_samples, i + chunk)) for i in range(0, n_samples, chunk)]
        n_freq = data.shape[1]
        per_freq = 2 * n_samples * int(np.prod(data.shape[2:]))  # real and imaginary parts
        eta_sum, data_sum = np.zeros(eta.shape[1:]), np.zeros(n_freq)
        for c in chunks:
            eta_sum += np.asarray(eta[c], dtype=np.float64).sum(axis=0)
            d = data[c]
            data_sum += d.real.sum(axis=(0, 2, 3), dtype=np.float64) + d.imag.sum(
                axis=(0, 2, 3), dtype=np.float64
            )
        eta_mean, data_mean = eta_sum / n_samples, data_sum / per_freq
        eta_sq, data_sq = 0.0, np.zeros(n_freq)
        m = data_mean[None, :, None, None]
        for c in chunks:
            eta_sq += float(((np.asarray(eta[c], dtype=np.float64) - eta_mean) ** 2).sum())
            d = data[c]
            data_sq += ((d.real - m) ** 2).sum(axis=(0, 2, 3)) + ((d.imag - m) ** 2).sum(
                axis=(0, 2, 3)
            )
        return cls(
            eta_mean=eta_mean,
            eta_std=float(np.sqrt(eta_sq / eta.size)),
            data_mean=data_mean,
            data_std=np.sqrt(data_sq / per_freq),
        )

    def eta(self, eta: np.ndarray) -> np.ndarray:
        """Normalise images (..., n, n) -> float32."""
        return ((eta - self.eta_mean) / self.eta_std).astype(np.float32)

    def eta_inverse(self, eta_hat):
        """Physical images from normalised ones (NumPy or torch, (..., n, n))."""
        if isinstance(eta_hat, torch.Tensor):
            mean = torch.as_tensor(self.eta_mean, dtype=eta_hat.dtype, device=eta_hat.device)
            return eta_hat * self.eta_std + mean
        return eta_hat * self.eta_std + self.eta_mean

    def data(self, data: np.ndarray) -> np.ndarray:
        """Normalise data (..., n_freq, n_rec, n_src) complex -> complex64."""
        m = self.data_mean[:, None, None]
        s = self.data_std[:, None, None]
        return ((data.real - m) / s + 1j * (data.imag - m) / s).astype(np.complex64)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint (``torch.load(weights_only=True)`` reads them)."""
        return {
            "eta_mean": torch.as_tensor(self.eta_mean, dtype=torch.float64),
            "eta_std": torch.tensor(self.eta_std, dtype=torch.float64),
            "data_mean": torch.as_tensor(self.data_mean, dtype=torch.float64),
            "data_std": torch.as_tensor(self.data_std, dtype=torch.float64),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Normalisation:
        """Inverse of :meth:`state_dict`."""
        return cls(
            eta_mean=state["eta_mean"].cpu().numpy(),
            eta_std=float(state["eta_std"]),
            data_mean=state["data_mean"].cpu().numpy(),
            data_std=state["data_std"].cpu().numpy(),
        )


@dataclass(frozen=True)
class Pairs:
    """Physical pairs read from a store, with what is needed to build and check a model.

    Attributes
    ----------
    eta : (N, n, n) float32 numpy.ndarray
        Training targets.
    data : (N, n_freq, n_rec, n_src) complex64 numpy.ndarray
    freqs : (n_freq,) float64 numpy.ndarray
    geometry : msinv.scattering.Geometry
    spec : msinv.scattering.spec.ForwardSpec, optional
        The store's forward model (scheme, receiver reader, precision): re-simulation uses it.
    """

    eta: np.ndarray
    data: np.ndarray
    freqs: np.ndarray
    geometry: object
    spec: object = None

    @property
    def n(self) -> int:
        return int(self.eta.shape[-1])


#: ``why`` of :func:`load_pairs` when the frequencies are a model's
TRAINED_ON = "the model was trained on them"


def load_pairs(
    path: str | os.PathLike,
    start: int = 0,
    count: int | None = None,
    freqs: list[float] | None = None,
    why: str = "asked",
) -> Pairs:
    """Read samples ``start .. start + count`` of a dataset store into memory.

    Parameters
    ----------
    path : path-like
        A store made by ``msinv scatter generate``.
    start : int, default 0
        First sample.
    count : int, optional
        Number of samples (default: all from ``start``).
    freqs : list of float, optional
        Keep only these frequencies of the data, in this order (default: all), e.g. ``[10.0]``
        for the paper's single-frequency experiment.
    why : str, default 'asked'
        Why these frequencies, for the error when the store lacks one.

    Raises
    ------
    UserInputError
        If the store is missing, incomplete in the asked range, too short, or lacks one of
        ``freqs``.
    """
    from msinv.scattering import open_dataset

    if not os.path.exists(path):
        raise UserInputError(f"{path}: dataset not found (make one with `msinv scatter generate`)")
    ds = open_dataset(path)
    total = len(ds)
    stop = total if count is None else start + count
    if start < 0 or stop > total or stop <= start:
        raise UserInputError(
            f"{path}: asked for samples {start}..{stop - 1} but the store holds {total}"
        )
    if not ds.complete[start:stop].all():
        raise UserInputError(
            f"{path}: samples {start}..{stop - 1} are not all computed; complete the store first"
        )
    keep = slice(None)
    if freqs is not None:
        stored = [float(f) for f in ds.freqs]
        missing = [f for f in freqs if not any(abs(f - g) <= 1e-9 * max(1.0, g) for g in stored)]
        if missing or not freqs:
            raise UserInputError(
                f"{path}: holds frequencies {stored}, not {missing or freqs} ({why})"
            )
        keep = [min(range(len(stored)), key=lambda i, f=f: abs(stored[i] - f)) for f in freqs]
    eta, data = ds[start:stop]
    return Pairs(
        eta.astype(np.float32),
        data[:, keep].astype(np.complex64),
        np.asarray(ds.freqs)[keep],
        ds.geometry,
        ds.spec,
    )


def concat_pairs(parts: list[Pairs]) -> Pairs:
    """Pairs of several stores together (mixed training); they must share grid and frequencies.

    Raises
    ------
    UserInputError
        When the stores differ in grid size, acquisition or frequencies.
    """
    first = parts[0]
    for other in parts[1:]:
        if (
            other.eta.shape[1:] != first.eta.shape[1:]
            or other.data.shape[1:] != first.data.shape[1:]
        ):
            raise UserInputError(
                f"mixed training needs one grid and acquisition: images {first.eta.shape[1:]} "
                f"and data {first.data.shape[1:]} vs {other.eta.shape[1:]} and {other.data.shape[1:]}"
            )
        if not np.allclose(other.freqs, first.freqs):
            raise UserInputError(
                f"mixed training needs the same frequencies: {list(first.freqs)} vs "
                f"{list(other.freqs)}"
            )
    if len(parts) == 1:
        return first
    return Pairs(
        np.concatenate([p.eta for p in parts]),
        np.concatenate([p.data for p in parts]),
        first.freqs,
        first.geometry,
        first.spec,
    )


def store_slice(path: str | os.PathLike, start: int = 0, count: int | None = None) -> dict:
    """The record of a slice of pairs of a store, as checkpoints keep their training data.

    Parameters
    ----------
    path : path-like
        A dataset store.
    start : int, default 0
        First pair.
    count : int, optional
        Number of pairs (default: all from ``start``).

    Returns
    -------
    dict
        ``path`` (resolved), ``start``, ``stop`` (exclusive), ``stream`` (a digest of what
        decides the images: family, its parameters, seed, grid size; two stores with the same
        ``stream`` hold the same image at the same index, since sample i depends only on
        (seed, i), whatever the frequencies, scheme or solver of their data; None for a store
        without a seed, e.g. an HDF5 import), ``target_blur`` (pixels of the targets' blur).
    """
    from msinv.scattering import open_dataset

    if not os.path.exists(path):
        raise UserInputError(f"{path}: dataset not found (make one with `msinv scatter generate`)")
    ds = open_dataset(path)
    stop = len(ds) if count is None else start + count
    config = ds.attrs["config"]
    stream = None
    if config.get("seed") is not None:
        images = {k: config.get(k) for k in ("family", "family_params", "seed")}
        images["n"] = ds.geometry.n
        digest = hashlib.sha256(json.dumps(images, sort_keys=True, default=str).encode())
        stream = digest.hexdigest()[:16]
    return {
        "path": str(Path(path).resolve()),
        "start": int(start),
        "stop": int(stop),
        "stream": stream,
        "target_blur": float(config.get("target_blur", 0.0)),
    }


def check_held_out(trained: dict | list | None, test: dict, what: str = "evaluate") -> None:
    """Refuse to use pairs a model was trained on.

    Parameters
    ----------
    trained : dict, list of dict or None
        :func:`store_slice` record(s) of the training data, one per training store
        (checkpoints without one: None, not checked; records of older checkpoints may lack
        ``stream``: the paths are compared).
    test : dict
        :func:`store_slice` record of the pairs about to be used.
    what : str, default 'evaluate'
        The command, for the message.

    Raises
    ------
    UserInputError
        When the two slices of the same pair stream overlap.
    """
    if trained is None:
        return
    if isinstance(trained, list):
        for one in trained:
            check_held_out(one, test, what)
        return
    same = trained["path"] == test["path"] or (
        trained.get("stream") is not None and trained.get("stream") == test["stream"]
    )
    lo, hi = max(trained["start"], test["start"]), min(trained["stop"], test["stop"])
    if same and lo < hi:
        raise UserInputError(
            f"{test['path']}: pairs {lo}..{hi - 1} were used to train this model (its training "
            f"slice is {trained['path']} pairs {trained['start']}..{trained['stop'] - 1}); "
            f"{what} on held-out pairs: another store (another seed) or a slice outside it"
        )


class PairDataset(torch.utils.data.Dataset):
    """Normalised (eta, data) pairs as tensors: ((1, n, n) float32, (n_freq, n_rec, n_src) c64)."""

    def __init__(self, pairs: Pairs, norm: Normalisation) -> None:
        self.eta = torch.from_numpy(norm.eta(pairs.eta))[:, None]
        self.data = torch.from_numpy(norm.data(pairs.data))

    def __len__(self) -> int:
        return self.eta.shape[0]

    def __getitem__(self, index):
        return self.eta[index], self.data[index]
