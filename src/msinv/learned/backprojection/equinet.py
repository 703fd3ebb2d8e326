"""EquiNet: the uncompressed rotation-equivariant learned back-projection.

One :class:`EquiNetPolar` per frequency maps the rotated data to a polar image with four
separable bilinear terms; :class:`~.polar.EquivariantBackProjection` interpolates it to the grid.
"""

from __future__ import annotations

import math

import torch
from torch import nn

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
