"""SwitchNet (Khoo & Ying 2019): a low-rank "switch" factorisation of the data-to-image map.

A baseline, not rotation-equivariant. One :class:`SwitchNetKernel` per frequency.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from msinv.core.errors import UserInputError

from .polar import check_data


def _uniform(*shape: int, fan_in: int) -> nn.Parameter:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class SwitchNetKernel(nn.Module):
    """Single-frequency SwitchNet: complex data ``(b, n_sc, n_sc)`` -> real image ``(b, n, n)``.

    Parameters
    ----------
    n : int
        Nodes per axis of the image (a multiple of ``blocks``).
    n_sc : int
        Number of sources = receivers (a multiple of ``blocks``).
    blocks : int, default 4
        Number of square blocks per axis on both sides (4 as published).
    rank : int, default 10
        Channels per (data block, image block) pair (10 as published).

    Notes
    -----
    Three layers with biases, as in the published SwitchNet:

    1. each of the ``P = blocks^2`` data blocks (real and imaginary parts, ``2 (n_sc/blocks)^2``
       numbers) is mapped to ``P rank`` coefficients, one ``rank``-vector per image block;
    2. the *switch*: the coefficients are regrouped by image block, and every
       (data block, image block) pair applies its own ``rank x rank`` matrix;
    3. each image block gathers its ``P rank`` coefficients and maps them to its
       ``(n/blocks)^2`` pixels.

    ``P (2 w^2 + 1) P r + P^2 (r^2 + r) + P (P r + 1) v^2`` parameters with ``w = n_sc/blocks``,
    ``v = n/blocks``: 3,109,120 at ``n = n_sc = 80``.
    """

    def __init__(self, n: int, n_sc: int, blocks: int = 4, rank: int = 10):
        super().__init__()
        if n % blocks or n_sc % blocks:
            raise UserInputError(
                f"SwitchNet: n={n} and n_sc={n_sc} must be multiples of blocks={blocks}"
            )
        p = blocks * blocks
        w, v = n_sc // blocks, n // blocks
        self.n, self.n_sc, self.blocks, self.rank = n, n_sc, blocks, rank
        self.w1 = _uniform(p, 2 * w * w, p * rank, fan_in=2 * w * w)
        self.b1 = nn.Parameter(torch.zeros(p, p * rank))
        self.w2 = _uniform(p * p, rank, rank, fan_in=rank)
        self.b2 = nn.Parameter(torch.zeros(p * p, rank))
        self.w3 = _uniform(p, p * rank, v * v, fan_in=p * rank)
        self.b3 = nn.Parameter(torch.zeros(p, v * v))

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        """Apply.

        Parameters
        ----------
        data : (b, n_sc, n_sc) complex torch.Tensor
            ``Lambda[b, r, s]``.

        Returns
        -------
        (b, n, n) real torch.Tensor
        """
        b, k = data.shape[0], self.blocks
        p, w, v, r = k * k, self.n_sc // k, self.n // k, self.rank
        x = torch.stack([data.real, data.imag], dim=-1)  # (b, r, s, 2)
        x = x.reshape(b, k, w, k, w, 2).permute(0, 1, 3, 2, 4, 5).reshape(b, p, 2 * w * w)
        x = torch.einsum("bpi,pio->bpo", x, self.w1) + self.b1  # (b, data block, img block * r)
        x = x.reshape(b, p, p, r).transpose(1, 2).reshape(b, p * p, r)  # switch
        x = torch.einsum("bqi,qio->bqo", x, self.w2) + self.b2  # (b, img block * data block, r)
        x = x.reshape(b, p, p * r)
        x = torch.einsum("bqi,qio->bqo", x, self.w3) + self.b3  # (b, img block, v*v)
        return x.reshape(b, k, k, v, v).permute(0, 1, 3, 2, 4).reshape(b, self.n, self.n)


class SwitchNet(nn.Module):
    """SwitchNet back-scattering for ``n_freq`` frequencies, one kernel each.

    Parameters
    ----------
    n : int
        Nodes per axis of the image (multiple of 4).
    n_freq : int
        Number of frequencies.
    n_sc : int, optional
        Number of sources = receivers (multiple of 4); defaults to ``n``.

    Notes
    -----
    Input ``(b, n_freq, n_sc, n_sc)`` complex64, output ``(b, n_freq, n, n)`` float32
    (``out_channels = n_freq``); about 3.1 M parameters per frequency at ``n = 80``.
    """

    def __init__(self, n: int, n_freq: int, n_sc: int | None = None):
        super().__init__()
        n_sc = n if n_sc is None else n_sc
        self.n, self.n_sc, self.n_freq = n, n_sc, n_freq
        self.nets = nn.ModuleList(SwitchNetKernel(n, n_sc) for _ in range(n_freq))

    @property
    def out_channels(self) -> int:
        """One latent channel per frequency."""
        return self.n_freq

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        """``(b, n_freq, n_sc, n_sc)`` complex -> ``(b, n_freq, n, n)`` real."""
        check_data(data, self.n_freq, self.n_sc)
        return torch.stack([net(data[:, f]) for f, net in enumerate(self.nets)], dim=1)
