"""EquiNet: the uncompressed rotation-equivariant learned back-projection.

One :class:`EquiNetPolar` per frequency maps the rotated data to a polar image with four
separable bilinear terms; :class:`~.polar.EquivariantBackProjection` interpolates it to the grid.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .analytical import acquisition, adjoint_amplitude
from .polar import EquivariantBackProjection, check_grid


class EquiNetPolar(nn.Module):
    """Single-frequency EquiNet kernel: rotated data -> polar image.

    Parameters
    ----------
    n_sc : int
        Number of sources = receivers = polar angles.
    n_rho : int
        Number of radii of the polar image (the Cartesian grid size ``n``).

    Notes
    -----
    The Born back-projection at the point ``y = rho (cos theta_i, sin theta_i)`` is
    :math:`\\sum_{r,s} e^{-i\\omega (\\hat s - \\hat r)\\cdot y} \\Lambda(r, s)`; after rotating the
    acquisition by ``-theta_i`` the point sits on the +x axis and the phase separates as
    :math:`e^{i\\omega\\rho\\cos\\theta_r} e^{-i\\omega\\rho\\cos\\theta_s}`. Expanding the real
    part into cosines and sines gives four separable bilinear terms, each learned here:

    .. math::
        p_i(\\rho) = \\sum_{t=1}^{4} \\sum_{r} b_t(r) K^{(2)}_t(r, \\rho)
                     \\sum_{s} X_t^{(i)}(r, s)\\, a_t(s) K^{(1)}_t(s, \\rho),

    with :math:`X_{1,2} = \\operatorname{Re}\\Lambda^{(i)}`, :math:`X_{3,4} =
    \\operatorname{Im}\\Lambda^{(i)}` (``i``-th rotation). Linear in the data, no bias:
    ``8 (n_sc + n_sc n_rho)`` parameters (51,840 at ``n_sc = n_rho = 80``).
    """

    def __init__(self, n_sc: int, n_rho: int):
        super().__init__()
        self.pre = nn.Parameter(torch.ones(4, n_sc))  # a_t(s), on the source axis
        self.post = nn.Parameter(torch.ones(4, n_sc))  # b_t(r), on the receiver axis
        scale = 1.0 / math.sqrt(n_sc)
        self.kernel_src = nn.Parameter(torch.randn(4, n_sc, n_rho) * scale)  # K1_t(s, rho)
        self.kernel_rec = nn.Parameter(torch.randn(4, n_sc, n_rho) * scale)  # K2_t(r, rho)

    def forward(self, rotated: torch.Tensor) -> torch.Tensor:
        """Apply the kernel.

        Parameters
        ----------
        rotated : (b, n_sc, n_sc, n_sc) complex torch.Tensor
            Rotated data ``[b, i, r, s]`` (:func:`~.polar.rotation_stack`).

        Returns
        -------
        (b, n_sc, n_rho) real torch.Tensor
            Polar image ``[b, i, rho]``.
        """
        re, im = rotated.real, rotated.imag
        x = torch.stack([re, re, im, im], dim=1)  # (b, t, i, r, s)
        src = self.pre[:, :, None] * self.kernel_src  # (t, s, rho)
        rec = self.post[:, :, None] * self.kernel_rec  # (t, r, rho)
        inner = torch.matmul(x, src[None, :, None])  # (b, t, i, r, rho)
        return torch.einsum("btirp,trp->bip", inner, rec)

    @torch.no_grad()
    def set_born(self, freq: float, source_angles, receiver_angles, radius: float, n: int) -> None:
        """Set the weights so that the polar image is ``Re((F^omega)^H Lambda)`` at the polar nodes.

        Parameters
        ----------
        freq : float
            Ordinary frequency (``omega = 2 pi freq``).
        source_angles, receiver_angles : (n_sc,) array_like
            Acquisition angles in radians (equispaced, same step ``2 pi / n_sc``).
        radius : float
            Receiver radius ``R``.
        n : int
            Cartesian grid size (radii ``rho_j = j / (2 (n - 1))``).

        Notes
        -----
        On the ray ``theta = 0`` the Born adjoint factorises: with
        :math:`A_r(\\rho) = \\bar c\\, e^{i\\omega\\rho\\cos\\theta_r}` and
        :math:`B_s(\\rho) = e^{-i\\omega\\rho\\cos\\theta_s}` (``c`` the Born prefactor of
        :class:`~.analytical.AnalyticalBackProjection`),
        :math:`\\operatorname{Re}\\sum_{r,s} A_r B_s \\Lambda_{rs} =
        \\sum \\Lambda^{re}(A^{re}B^{re} - A^{im}B^{im}) - \\Lambda^{im}(A^{re}B^{im} + A^{im}B^{re})`,
        four separable terms: exactly the four EquiNet terms with ``a = b = 1``.
        """
        n_rho = self.kernel_src.shape[2]
        omega = 2 * np.pi * float(freq)
        scale, phase = adjoint_amplitude(omega, radius, n)
        rho = np.arange(n_rho) / (2 * (n - 1))
        a = scale * np.exp(1j * (phase + omega * np.cos(receiver_angles)[:, None] * rho))
        b = np.exp(-1j * omega * np.cos(source_angles)[:, None] * rho)
        rec = np.stack([a.real, -a.imag, -a.real, -a.imag])
        src = np.stack([b.real, b.imag, b.imag, b.real])
        self.kernel_rec.copy_(torch.from_numpy(rec))
        self.kernel_src.copy_(torch.from_numpy(src))
        self.pre.fill_(1.0)
        self.post.fill_(1.0)


class EquiNet(EquivariantBackProjection):
    """EquiNet for ``n_freq`` frequencies: one :class:`EquiNetPolar` each, no weight sharing.

    Parameters
    ----------
    n : int
        Nodes per axis of the reconstruction grid (even, >= 8).
    n_freq : int
        Number of frequencies (>= 1).
    n_sc : int, optional
        Number of sources = receivers (multiple of 4); defaults to ``n``.

    Notes
    -----
    Input ``(b, n_freq, n_sc, n_sc)`` complex64, output ``(b, n_freq, n, n)`` float32
    (``out_channels = n_freq``). ``8 (n_sc + n_sc n)`` parameters per frequency.
    """

    def __init__(self, n: int, n_freq: int, n_sc: int | None = None):
        n_sc = n if n_sc is None else n_sc
        check_grid(n, n_sc)
        super().__init__([EquiNetPolar(n_sc, n) for _ in range(n_freq)], n, n_sc)

    @classmethod
    def from_born(cls, n: int, freqs, geometry: Any = None) -> EquiNet:
        """An EquiNet whose weights reproduce the Born back-projection (a physics-based start).

        Parameters
        ----------
        n : int
            Nodes per axis.
        freqs : sequence of float
            One ordinary frequency per data channel.
        geometry : object, optional
            Acquisition (see :func:`~.analytical.acquisition`); default ``Geometry.paper(n)``.

        Returns
        -------
        EquiNet
            Output channel ``f`` equals the real part of
            :class:`~.analytical.AnalyticalBackProjection`'s channel ``f``, up to the
            polar-to-Cartesian interpolation error.
        """
        src, rec, radius = acquisition(n, geometry)
        model = cls(n, len(freqs), src.size)
        for net, freq in zip(model.nets, freqs, strict=True):
            net.set_born(freq, src, rec, radius, n)
        return model
