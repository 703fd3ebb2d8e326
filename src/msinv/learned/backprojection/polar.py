"""Polar grid, acquisition rotations and the fixed polar-to-Cartesian interpolation.

The rotation-equivariant back-scattering networks (:mod:`.equinet`, :mod:`.butterfly`) compute
an image on a polar grid centred at the physical origin of the reconstruction grid, one polar
row per rotation of the acquisition, and map it to the Cartesian node grid with a fixed sparse
interpolation. Everything here is built so that a rotation of the acquisition by a quarter turn
is an *exact* symmetry of the discretisation.

Conventions (shared with :mod:`msinv.scattering`)
--------------------------------------------------
* Nodes ``x_i = y_i = -1/2 + i/(n - 1)``, ``i = 0..n-1``; an image is indexed ``eta[iy, ix]``
  (rows = y increasing, columns = x increasing).
* Data ``Lambda[r, s]``: receiver ``r`` on the first axis at angle ``2 pi r / n_sc``, source ``s``
  at ``pi + 2 pi s / n_sc`` on the second.
* Rotating the medium by ``+phi_k = 2 pi k / n_sc`` (counter-clockwise in the x-y plane) rolls
  both data axes by ``+k``: ``Lambda'[r, s] = Lambda[r - k, s - k]``, i.e.
  ``torch.roll(data, (k, k), dims=(-2, -1))``. For ``k = n_sc/4`` the image turns by a quarter
  turn, which is :func:`rotate_image` (``torch.rot90(img, 1, dims=(-1, -2))``).
* Polar row ``i`` is the ray at angle ``theta_i = 2 pi i / n_sc`` from the +x axis; polar column
  ``j`` is the radius ``rho_j = j h / 2`` (half-node steps, ``h = 1/(n - 1)``), so ``n`` radii
  reach ``rho = 1/2``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from msinv.core.errors import UserInputError


def check_grid(n: int, n_sc: int) -> None:
    """Raise a one-line ``ValueError`` unless ``n`` and ``n_sc`` suit the polar construction.

    ``n`` must be even and ``>= 8`` (no node on the axes, so quarter-turn orbits have four
    members) and ``n_sc`` a multiple of 4 and ``>= 8`` (a quarter turn is a whole number of
    acquisition steps).
    """
    if not isinstance(n, int | np.integer) or n < 8 or n % 2:
        raise UserInputError(f"grid size n={n!r}: expected an even integer >= 8 (e.g. 40, 80, 160)")
    if not isinstance(n_sc, int | np.integer) or n_sc < 8 or n_sc % 4:
        raise UserInputError(f"n_sc={n_sc!r}: expected a multiple of 4, >= 8 (e.g. n_sc = n = 80)")


def node_coordinates(n: int) -> np.ndarray:
    """(n,) float64 node coordinates on [-1/2, 1/2], exactly antisymmetric (``x[n-1-i] = -x[i]``)."""
    i = np.arange(n, dtype=np.float64)
    return (2 * i - (n - 1)) / (2 * (n - 1))


def rotate_image(image: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Turn the image content by ``k`` quarter turns counter-clockwise in the x-y plane.

    Parameters
    ----------
    image : (..., n, n) torch.Tensor
        Indexed ``[..., iy, ix]``.
    k : int, default 1
        Number of quarter turns (negative: clockwise).

    Notes
    -----
    The result is ``eta'(x) = eta(R_{-k pi/2} x)``; for ``k = 1``:
    ``eta'[iy, ix] = eta[n-1-ix, iy]``. It is the image counterpart of rolling the data by
    ``k n_sc / 4`` (see the module docstring).
    """
    return torch.rot90(image, k, dims=(-1, -2))


def rotation_stack(data: torch.Tensor) -> torch.Tensor:
    """All ``n_sc`` rotations of the acquisition applied to the data.

    Parameters
    ----------
    data : (..., n_sc, n_sc) torch.Tensor
        ``data[..., r, s]``.

    Returns
    -------
    (..., n_sc, n_sc, n_sc) torch.Tensor
        ``out[..., i, r, s] = data[..., (r + i) % n_sc, (s + i) % n_sc]``: the data the
        medium turned by ``-2 pi i / n_sc`` would produce, so a network evaluated on slice ``i``
        in a fixed frame sees the ray ``theta_i`` of the original medium on its +x axis.
    """
    n_sc = data.shape[-1]
    idx = (torch.arange(n_sc)[:, None] + torch.arange(n_sc)[None, :]) % n_sc  # [i, r]
    return data[..., idx[:, :, None], idx[:, None, :]]


def _keys_weights(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys' cubic convolution (a = -1/2): taps ``floor(u) - 1 .. floor(u) + 2`` and weights."""
    base = np.floor(u)
    t = u - base
    w = np.stack(
        [
            ((-0.5 * t + 1.0) * t - 0.5) * t,
            (1.5 * t - 2.5) * t * t + 1.0,
            ((-1.5 * t + 2.0) * t + 0.5) * t,
            (0.5 * t - 0.5) * t * t,
        ],
        axis=-1,
    )
    taps = base.astype(np.int64)[..., None] + np.arange(-1, 3)
    return taps, w


def polar_to_cartesian_taps(n: int, n_sc: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of the polar-to-Cartesian interpolation (16 taps per node).

    Parameters
    ----------
    n : int
        Nodes per axis of the Cartesian grid (and number of radii of the polar grid).
    n_sc : int
        Number of polar angles (= rotations of the acquisition).

    Returns
    -------
    index : (n * n, 16) int64 numpy.ndarray
        Flat polar index ``i * n + j`` (angle ``i``, radius ``j``) of each tap of node
        ``iy * n + ix``.
    weight : (n * n, 16) float64 numpy.ndarray
        Interpolation weights; each row sums to 1.

    Notes
    -----
    Node ``(x, y)`` has polar coordinates ``(r, phi)``; its fractional polar indices are
    ``u = r / (h/2)`` and ``t = phi n_sc / (2 pi)``. The weights are the tensor product of Keys'
    cubic convolution kernels in ``t`` (periodic) and ``u``; a radial tap ``j < 0`` is the
    point ``(-j, theta + pi)`` (reflection through the origin, exact since ``n_sc`` is even)
    and taps beyond the last radius repeat it (constant extension into the corners).

    The weights are computed only for the nodes of the open quadrant ``x > 0, y > 0``; the three
    other members of each quarter-turn orbit get the same weights with the angle index shifted
    by ``k n_sc / 4``. Hence the matrix commutes exactly with quarter turns:
    ``P2C(roll(p, k n_sc/4, angle)) = rotate_image(P2C(p), k)``.
    """
    check_grid(n, n_sc)
    x = node_coordinates(n)
    half = n // 2
    iy, ix = np.meshgrid(np.arange(half, n), np.arange(half, n), indexing="ij")
    px, py = x[ix], x[iy]
    u = np.hypot(px, py) * 2 * (n - 1)
    t = np.arctan2(py, px) * n_sc / (2 * np.pi)
    t_taps, t_w = _keys_weights(t)
    u_taps, u_w = _keys_weights(u)
    theta = np.broadcast_to(t_taps[..., :, None], (*t.shape, 4, 4)) % n_sc
    rho = np.broadcast_to(u_taps[..., None, :], (*t.shape, 4, 4))
    theta = np.where(rho < 0, (theta + n_sc // 2) % n_sc, theta)
    rho = np.minimum(np.abs(rho), n - 1)
    weight_q = (t_w[..., :, None] * u_w[..., None, :]).reshape(-1, 16)
    theta = theta.reshape(-1, 16)
    rho = rho.reshape(-1, 16)

    index = np.empty((n * n, 16), dtype=np.int64)
    weight = np.empty((n * n, 16), dtype=np.float64)
    ry, rx = iy.ravel(), ix.ravel()
    for k in range(4):
        node = ry * n + rx
        index[node] = ((theta + k * (n_sc // 4)) % n_sc) * n + rho
        weight[node] = weight_q
        ry, rx = rx, n - 1 - ry  # a quarter turn: (x, y) -> (-y, x)
    return index, weight


class PolarToCartesian(nn.Module):
    """Fixed sparse interpolation from the polar grid to the Cartesian node grid.

    Parameters
    ----------
    n : int
        Cartesian nodes per axis (= number of radii).
    n_sc : int
        Number of polar angles.

    Notes
    -----
    Applied as a gather of 16 taps per node and a weighted sum (no learned parameters; the
    index and weight tensors are non-persistent buffers, rebuilt from ``(n, n_sc)``). Summation
    order is the same for all four members of a quarter-turn orbit, so the equivariance holds
    bit for bit.
    """

    def __init__(self, n: int, n_sc: int):
        super().__init__()
        index, weight = polar_to_cartesian_taps(n, n_sc)
        self.n, self.n_sc = n, n_sc
        self.register_buffer("index", torch.from_numpy(index), persistent=False)
        self.register_buffer("weight", torch.from_numpy(weight).float(), persistent=False)

    def forward(self, polar: torch.Tensor) -> torch.Tensor:
        """Interpolate.

        Parameters
        ----------
        polar : (..., n_sc, n) real torch.Tensor
            ``polar[..., i, j]`` at angle ``theta_i``, radius ``rho_j``.

        Returns
        -------
        (..., n, n) torch.Tensor
            Image indexed ``[..., iy, ix]``.
        """
        flat = polar.reshape(*polar.shape[:-2], self.n_sc * self.n)
        taps = flat[..., self.index]  # (..., n*n, 16)
        image = (taps * self.weight.to(polar.dtype)).sum(-1)
        return image.reshape(*polar.shape[:-2], self.n, self.n)


class EquivariantBackProjection(nn.Module):
    """Per-frequency polar networks on the rotated data, then the polar-to-Cartesian map.

    Parameters
    ----------
    polar_nets : list of torch.nn.Module
        One per frequency; each maps rotated data ``(b, n_sc, n_sc, n_sc)`` complex
        (rotation, receiver, source) to a polar image ``(b, n_sc, n)`` (angle, radius),
        treating every rotation with the same weights.
    n, n_sc : int
        Cartesian nodes per axis and number of sources/receivers.

    Notes
    -----
    With ``P_f`` the polar network of frequency ``f`` and ``Q`` the interpolation,
    ``alpha_f = Q P_f(rotation_stack(Lambda_f))``. Rolling the data by ``k`` rolls the rotation
    stack by ``k`` along the rotation axis, hence the polar image by ``k`` along the angle, so
    quarter turns of the acquisition turn ``alpha`` exactly (:func:`rotate_image`).
    """

    def __init__(self, polar_nets: list[nn.Module], n: int, n_sc: int):
        super().__init__()
        check_grid(n, n_sc)
        self.n, self.n_sc, self.n_freq = n, n_sc, len(polar_nets)
        self.nets = nn.ModuleList(polar_nets)
        self.to_cartesian = PolarToCartesian(n, n_sc)

    @property
    def out_channels(self) -> int:
        """One latent channel per frequency."""
        return self.n_freq

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        """Back-project.

        Parameters
        ----------
        data : (b, n_freq, n_sc, n_sc) complex64 (or complex128) torch.Tensor
            Normalised data ``Lambda[b, f, r, s]``, receivers on the first data axis.

        Returns
        -------
        (b, n_freq, n, n) real torch.Tensor
            Latent images ``alpha[b, f, iy, ix]`` in the real dtype matching ``data``.
        """
        check_data(data, self.n_freq, self.n_sc)
        stacked = rotation_stack(data)  # (b, f, i, r, s)
        polar = torch.stack([net(stacked[:, f]) for f, net in enumerate(self.nets)], dim=1)
        return self.to_cartesian(polar)


def check_data(data: torch.Tensor, n_freq: int, n_sc: int) -> None:
    """Raise a one-line ``ValueError`` unless ``data`` is complex ``(b, n_freq, n_sc, n_sc)``."""
    if not torch.is_tensor(data) or not data.is_complex():
        kind = data.dtype if torch.is_tensor(data) else type(data).__name__
        raise UserInputError(f"data: expected a complex torch.Tensor (complex64), got {kind}")
    if data.ndim != 4 or tuple(data.shape[1:]) != (n_freq, n_sc, n_sc):
        raise UserInputError(
            f"data: expected shape (b, {n_freq}, {n_sc}, {n_sc}) = (batch, frequency, receiver, "
            f"source), got {tuple(data.shape)}"
        )
