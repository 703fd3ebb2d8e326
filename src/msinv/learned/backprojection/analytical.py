"""The fixed asymptotic Born back-projection ``alpha = (F^omega)^H Lambda`` (no learned weights)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from msinv.core.errors import UserInputError

from .polar import check_data, check_grid, node_coordinates


def acquisition(n: int, geometry: Any = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Source angles, receiver angles and receiver radius of ``geometry`` (default: the paper's).

    ``geometry`` is anything with ``source_angles``, ``receiver_angles`` and
    ``receiver_radius`` (e.g. :class:`msinv.scattering.geometry.Geometry`); ``None`` means
    ``Geometry.paper(n)``. Raises a one-line ``ValueError`` unless there are as many sources as
    receivers, a multiple of 4.
    """
    if geometry is None:
        from msinv.scattering.geometry import Geometry

        geometry = Geometry.paper(n)
    src = np.asarray(geometry.source_angles, dtype=np.float64)
    rec = np.asarray(geometry.receiver_angles, dtype=np.float64)
    if src.size != rec.size:
        raise UserInputError(
            f"geometry: expected as many sources as receivers, got {src.size} and {rec.size}"
        )
    check_grid(n, src.size)
    return src, rec, float(geometry.receiver_radius)


def adjoint_amplitude(omega, radius: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Modulus and phase of the conjugate Born prefactor
    :math:`\\overline{\\omega^2 h^2 e^{i(\\pi/4 + \\omega R)} / \\sqrt{8\\pi\\omega R}}`, ``h = 1/(n-1)``."""
    omega = np.asarray(omega, dtype=np.float64)
    scale = omega**2 / (n - 1) ** 2 / np.sqrt(8 * np.pi * omega * radius)
    return scale, -(np.pi / 4 + omega * radius)


class AnalyticalBackProjection(nn.Module):
    """Apply the adjoint of the far-field Born operator of each frequency to the data.

    Parameters
    ----------
    n : int
        Nodes per axis of the reconstruction grid on [-1/2, 1/2] (even, >= 8).
    freqs : sequence of float
        Ordinary frequencies ``f`` (``omega = 2 pi f``, wave speed 1), one per data channel.
    geometry : object, optional
        Anything with ``source_angles``, ``receiver_angles`` (radians) and ``receiver_radius``
        (e.g. :class:`msinv.scattering.geometry.Geometry`); defaults to
        ``Geometry.paper(n)`` (``n`` sources at ``pi + 2 pi s/n``, ``n`` receivers at
        ``2 pi r/n`` on the radius 1/2).

    Notes
    -----
    Far-field Born model (``e^{-i omega t}``, incident ``e^{i omega s.x}``, free-space Green's
    function :math:`\\frac{i}{4}H_0^{(1)}` and its large-argument asymptotics at radius ``R``):

    .. math::
        (F^\\omega \\eta)(r, s) = \\omega^2 \\frac{e^{i\\pi/4} e^{i\\omega R}}{\\sqrt{8\\pi\\omega R}}
        \\, h^2 \\sum_{y} e^{i\\omega(\\hat s - \\hat r)\\cdot y}\\, \\eta(y),

    with the sum over the grid nodes ``y`` (``h = 1/(n-1)``). The module returns
    ``alpha = (F^omega)^H Lambda`` evaluated in factored form,
    :math:`\\alpha(y) = \\bar c \\sum_r e^{i\\omega\\hat r\\cdot y} \\sum_s \\Lambda(r, s)
    e^{-i\\omega\\hat s\\cdot y}` (``O(n_sc^2 n^2)`` per frequency, no dense matrix).
    ``out_channels = 2 n_freq``, ordered ``[Re alpha_1, Im alpha_1, Re alpha_2, ...]``.
    For equispaced angles it is exactly rotation-equivariant: rolling the data by ``n_sc/4``
    turns ``alpha`` by a quarter turn (up to rounding of the cosines).
    """

    def __init__(self, n: int, freqs, geometry: Any = None):
        super().__init__()
        freqs = [float(f) for f in np.atleast_1d(np.asarray(freqs, dtype=float))]
        if not freqs or not all(math.isfinite(f) and f > 0 for f in freqs):
            raise UserInputError(f"freqs={freqs!r}: expected one or more positive frequencies")
        src, rec, radius = acquisition(n, geometry)
        self.n, self.n_sc, self.n_freq = n, src.size, len(freqs)
        self.freqs = tuple(freqs)

        x = node_coordinates(n)
        yy, xx = np.meshgrid(x, x, indexing="ij")
        pts = np.stack([xx.ravel(), yy.ravel()])  # (2, n*n), node iy * n + ix
        omega = 2 * np.pi * np.asarray(freqs)
        scale, phase = adjoint_amplitude(omega, radius, n)
        buffers = {
            "omega": omega,
            "scale": scale,
            "phase": phase,
            "src_dot": np.cos(src)[:, None] * pts[0] + np.sin(src)[:, None] * pts[1],
            "rec_dot": np.cos(rec)[:, None] * pts[0] + np.sin(rec)[:, None] * pts[1],
        }
        for name, value in buffers.items():  # float64; phases are formed in forward
            self.register_buffer(name, torch.from_numpy(np.asarray(value)), persistent=False)

    @property
    def out_channels(self) -> int:
        """Two channels (real, imaginary part) per frequency."""
        return 2 * self.n_freq

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        """Back-project.

        Parameters
        ----------
        data : (b, n_freq, n_sc, n_sc) complex64 (or complex128) torch.Tensor
            ``Lambda[b, f, r, s]``, receivers on the first data axis.

        Returns
        -------
        (b, 2 n_freq, n, n) real torch.Tensor
            ``[Re alpha_f, Im alpha_f]`` for each frequency, indexed ``[..., iy, ix]``.
        """
        check_data(data, self.n_freq, self.n_sc)
        omega = self.omega[:, None, None]
        src = torch.polar(torch.ones_like(self.src_dot), -omega * self.src_dot)  # (f, s, n*n)
        rec = torch.polar(
            self.scale[:, None, None], omega * self.rec_dot + self.phase[:, None, None]
        )
        inner = torch.matmul(data, src.to(data.dtype))  # (b, f, r, n*n)
        alpha = (inner * rec.to(data.dtype)).sum(-2)  # (b, f, n*n)
        out = torch.stack([alpha.real, alpha.imag], dim=2)
        return out.reshape(data.shape[0], 2 * self.n_freq, self.n, self.n)
