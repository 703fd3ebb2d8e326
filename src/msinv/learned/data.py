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

import os
from dataclasses import dataclass

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
    def fit(cls, eta: np.ndarray, data: np.ndarray) -> Normalisation:
        """Statistics of eta (N, n, n) and data (N, n_freq, n_rec, n_src) complex."""
        eta = np.asarray(eta, dtype=np.float64)
        mean = eta.mean(axis=0)
        parts = np.stack([data.real, data.imag], axis=1).astype(np.float64)  # (N, 2, f, r, s)
        return cls(
            eta_mean=mean,
            eta_std=float((eta - mean).std()),
            data_mean=parts.mean(axis=(0, 1, 3, 4)),
            data_std=parts.std(axis=(0, 1, 3, 4)),
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


def load_pairs(path: str | os.PathLike, start: int = 0, count: int | None = None) -> Pairs:
    """Read samples ``start .. start + count`` of a dataset store into memory.

    Parameters
    ----------
    path : path-like
        A store made by ``msinv scatter generate``.
    start : int
        First sample.
    count : int, optional
        Number of samples (default: all from ``start``).

    Raises
    ------
    UserInputError
        If the store is missing, incomplete in the asked range, or too short.
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
    eta, data = ds[start:stop]
    return Pairs(eta.astype(np.float32), data.astype(np.complex64), ds.freqs, ds.geometry, ds.spec)


class PairDataset(torch.utils.data.Dataset):
    """Normalised (eta, data) pairs as tensors: ((1, n, n) float32, (n_freq, n_rec, n_src) c64)."""

    def __init__(self, pairs: Pairs, norm: Normalisation) -> None:
        self.eta = torch.from_numpy(norm.eta(pairs.eta))[:, None]
        self.data = torch.from_numpy(norm.data(pairs.data))

    def __len__(self) -> int:
        return self.eta.shape[0]

    def __getitem__(self, index):
        return self.eta[index], self.data[index]
