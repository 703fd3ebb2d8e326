"""WideBNet (Li, Zepeda-Núñez, Demanet): a wide-band butterfly network on Morton-ordered data.

A baseline, not rotation-equivariant. Unlike the other back-scattering modules it is *one*
network for all frequencies: the highest frequency enters at the leaves of a quadtree
butterfly and each lower one is injected one level higher.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .butterfly import butterfly_levels
from .polar import check_data


def morton_order(levels: int, leaf: int) -> np.ndarray:
    """(n*n,) int64: ``morton = natural[order]`` for an ``n x n`` array, ``n = 2**levels * leaf``.

    The ``4**levels`` leaves of ``leaf x leaf`` entries are visited in Z order (quadrant digit
    ``2 * row_bit + col_bit``, coarsest digit first); entries inside a leaf stay row-major.
    """
    n = 2**levels * leaf
    blocks = np.arange(2**levels)
    code = np.zeros((2**levels, 2**levels), dtype=np.int64)
    for bit in range(levels):
        row = (blocks[:, None] >> bit) & 1
        col = (blocks[None, :] >> bit) & 1
        code += (2 * row + col) * 4**bit
    block_of = np.argsort(code.ravel())  # block (I, J) flat index at each Morton position
    i_blk, j_blk = np.divmod(block_of, 2**levels)
    ii, jj = np.divmod(np.arange(leaf * leaf), leaf)
    rows = i_blk[:, None] * leaf + ii[None, :]
    cols = j_blk[:, None] * leaf + jj[None, :]
    return (rows * n + cols).ravel()


class ComplexBlockLinear(nn.Module):
    """Block-diagonal linear map of a (real, imaginary) pair, as in the published WideBNet.

    ``y_re = x_re W_1 + x_im W_2``, ``y_im = x_re W_3 + x_im W_4`` with ``W_k`` of shape
    ``(G, p, q)`` acting on ``(batch, G, p)`` slabs (``4 G p q`` parameters); with
    ``real_only`` only ``y_re`` is formed (``2 G p q``). Normal initialisation of variance
    ``1/(2p)`` keeps unit-variance inputs at unit variance (the published code: Glorot).
    """

    def __init__(self, blocks: int, size_in: int, size_out: int, real_only: bool = False):
        super().__init__()
        count = 2 if real_only else 4
        # variance 1/(2p): each output is two sums of p products, so unit variance is preserved
        std = math.sqrt(1.0 / (2 * size_in))
        self.weight = nn.Parameter(torch.randn(count, blocks, size_in, size_out) * std)

    def forward(self, x_re: torch.Tensor, x_im: torch.Tensor):
        """``(batch, G, p)`` pair -> ``(batch, G, q)`` pair (or one real tensor)."""
        w = self.weight
        y_re = torch.einsum("bgp,gpq->bgq", x_re, w[0]) + torch.einsum("bgp,gpq->bgq", x_im, w[1])
        if w.shape[0] == 2:
            return y_re
        y_im = torch.einsum("bgp,gpq->bgq", x_re, w[2]) + torch.einsum("bgp,gpq->bgq", x_im, w[3])
        return y_re, y_im


def _merge(x: torch.Tensor, level: int, levels: int) -> torch.Tensor:
    """Gather the four input children of each (input parent, output node) pair at ``level``."""
    b, _, r = x.shape
    parents, width = 4 ** (levels - level - 1), 4**level
    x = x.reshape(b, parents, 4, width, r).transpose(2, 3)
    return x.reshape(b, parents * width, 4 * r)


class WideBNet(nn.Module):
    """Wide-band butterfly back-scattering: all frequencies -> one latent image.

    Parameters
    ----------
    n : int
        Nodes per axis, also the number of sources/receivers (``n = 2**L s``, ``s >= 5``).
    n_freq : int
        Number of frequencies; the data channels are ordered from low to high frequency.
    rank : int, default 3
        Butterfly rank ``r`` per frequency (3 as published).
    n_residual : int, default 2
        Residual blocks ``x + M relu(M x)`` at the switch (2 as published; the last has no skip).

    Notes
    -----
    Data and image are Morton-ordered into ``4^L`` leaves of ``s x s`` (:func:`morton_order`).
    ``V`` maps each leaf of the highest-frequency data to ``r`` numbers. Then ``L`` butterfly
    levels each mix the four children of every (input parent, output node) pair with a square
    matrix; before level ``d = 1, 2, ...`` (up to the middle, ``ceil(L/2)``) the next-lower
    frequency is injected: its data in ``4^(L-d)`` coarse blocks are mapped to ``r`` numbers,
    copied to the children and appended to the rank (frequencies beyond the middle all enter
    there). The residual blocks sit at the middle; ``U`` maps each output leaf to its ``s^2``
    pixels (real part). Input ``(b, n_freq, n, n)`` complex64, output ``(b, 1, n, n)`` float32
    (``out_channels = 1``); 1,820,160 parameters at ``n = 80``, three frequencies (the
    reference's 1.94 M includes its CNN head and two unused ``U`` weights).
    """

    def __init__(self, n: int, n_freq: int, rank: int = 3, n_residual: int = 2):
        super().__init__()
        self.levels, self.leaf = butterfly_levels(n)
        levels, leaf = self.levels, self.leaf
        self.n, self.n_freq, self.n_residual = n, n_freq, n_residual
        self.middle_level = levels - levels // 2
        # frequency k (0 = lowest) enters before level inject_at[k]; the highest at the leaves
        self.inject_at = [min(n_freq - 1 - k, self.middle_level) for k in range(n_freq)]
        self.inputs = nn.ModuleList(
            ComplexBlockLinear(4 ** (levels - d), 4**d * leaf * leaf, rank) for d in self.inject_at
        )
        ranks = [rank * sum(1 for d in self.inject_at if d <= level + 1) for level in range(levels)]
        self.mix = nn.ModuleList(
            ComplexBlockLinear(4 ** (levels - 1), 4 * rho, 4 * rho) for rho in ranks
        )
        full = rank * n_freq
        self.middle = nn.ModuleList(
            ComplexBlockLinear(4**levels, full, full) for _ in range(2 * n_residual)
        )
        self.u = ComplexBlockLinear(4**levels, full, leaf * leaf, real_only=True)
        order = torch.from_numpy(morton_order(levels, leaf))
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)

    @property
    def out_channels(self) -> int:
        """One latent channel for all frequencies together."""
        return 1

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        """``(b, n_freq, n, n)`` complex (receivers first) -> ``(b, 1, n, n)`` real."""
        check_data(data, self.n_freq, self.n)
        b, levels = data.shape[0], self.levels
        morton = data.reshape(b, self.n_freq, -1)[..., self.order]  # (b, f, n*n)

        def injected(k: int):
            d = self.inject_at[k]
            x = morton[:, k].reshape(b, 4 ** (levels - d), -1)
            y_re, y_im = self.inputs[k](x.real, x.imag)
            reps = 4**levels // y_re.shape[1]
            return y_re.repeat_interleave(reps, 1), y_im.repeat_interleave(reps, 1)

        x_re, x_im = injected(self.n_freq - 1)
        for level, layer in enumerate(self.mix):
            new = [injected(k) for k in range(self.n_freq - 1) if self.inject_at[k] == level + 1]
            if new:
                x_re = torch.cat([x_re, *(p[0] for p in new)], dim=-1)
                x_im = torch.cat([x_im, *(p[1] for p in new)], dim=-1)
            if level == self.middle_level:
                x_re, x_im = self._residual(x_re, x_im)
            x_re, x_im = layer(_merge(x_re, level, levels), _merge(x_im, level, levels))
            x_re = x_re.reshape(b, 4**levels, -1)
            x_im = x_im.reshape(b, 4**levels, -1)
        if self.middle_level == levels:
            x_re, x_im = self._residual(x_re, x_im)
        image = self.u(x_re, x_im).reshape(b, -1)[:, self.inverse]
        return image.reshape(b, 1, self.n, self.n)

    def _residual(self, x_re, x_im):
        for i in range(self.n_residual):
            y_re, y_im = self.middle[2 * i](x_re, x_im)
            y_re, y_im = self.middle[2 * i + 1](torch.relu(y_re), torch.relu(y_im))
            last = i == self.n_residual - 1
            x_re, x_im = (y_re, y_im) if last else (x_re + y_re, x_im + y_im)
        return x_re, x_im
