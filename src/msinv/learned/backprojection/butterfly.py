"""B-EquiNet: EquiNet with its kernels compressed by a butterfly factorisation.

The polar network applies a two-sided ("bilinear") butterfly to each rotated data matrix and
reads the diagonal of the result: ``p_i(rho) = [B(Lambda^{(i)})]_{rho rho}``, where ``B`` is
a chain of block layers acting on both matrix axes. Its parameter count grows like
``O(sqrt(N) log N)`` (``N = n^2``) against ``O(N)`` for EquiNet.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from msinv.core.errors import UserInputError

from .polar import EquivariantBackProjection, check_grid


def butterfly_levels(n: int, min_leaf: int = 5) -> tuple[int, int]:
    """Levels ``L`` and leaf size ``s`` with ``n = 2**L * s``: the most levels with ``s >= min_leaf``.

    40 -> (3, 5), 60 -> (2, 15), 80 -> (4, 5), 120 -> (3, 15), 160 -> (5, 5).
    """
    if not isinstance(n, int) or n < 2 * min_leaf or n % 2:
        raise UserInputError(
            f"butterfly size n={n!r}: expected an even integer >= {2 * min_leaf} with "
            f"n = 2**L * s, L >= 1, s >= {min_leaf} (e.g. 40, 60, 80, 120, 160)"
        )
    levels = 0
    while n % 2 ** (levels + 1) == 0 and n // 2 ** (levels + 1) >= min_leaf:
        levels += 1
    return levels, n // 2**levels


class BilinearBlockLayer(nn.Module):
    """Block-diagonal two-sided map of a (real, imaginary) pair of block matrices.

    Parameters
    ----------
    blocks : int
        Number of diagonal blocks ``G`` (on each axis).
    size_in, size_out : int
        Block sizes ``p`` and ``q``.
    gain : float
        Initial weight variance relative to the variance-preserving one (``_bilinear_init``).

    Notes
    -----
    With ``X = (X_re, X_im)`` stored block-first as ``(G, p, batch, G, p)`` (row block, row,
    batch, column block, column) and weights ``W_k`` of shape ``(G, p, q)`` acting as
    :math:`(W^T X W)_{gh} = W_g^T X_{gh} W_h`:

    .. math::
        Y_{re} = W_1^T X_{re} W_1 + W_2^T X_{re} W_2 + W_3^T X_{im} W_4 + W_4^T X_{im} W_3,\\\\
        Y_{im} = W_5^T X_{im} W_5 + W_6^T X_{im} W_6 + W_7^T X_{re} W_8 + W_8^T X_{re} W_7,

    the layer of the published B-EquiNet. Eight weight tensors: ``8 G p q`` parameters.
    The block-first layout makes each side one batched matmul over the ``G`` blocks with the
    batch folded into the columns (tiny per-sample matmuls are overhead-bound on CPUs).
    """

    #: (first factors on X_re, first factors on X_im, second factors) of Y_re and of Y_im
    _RE = ((0, 1), (2, 3), (0, 1, 3, 2))
    _IM = ((6, 7), (4, 5), (7, 6, 4, 5))

    def __init__(self, blocks: int, size_in: int, size_out: int, gain: float = 1.0):
        super().__init__()
        self.weight = _bilinear_init(8, blocks, size_in, size_out, gain=gain)

    def forward(self, x_re: torch.Tensor, x_im: torch.Tensor):
        """Apply; inputs ``(G, p, batch, G, p)`` real, outputs ``(G, q, batch, G, q)``."""
        return self._half(x_re, x_im, *self._RE), self._half(x_re, x_im, *self._IM)

    def _half(self, x_re, x_im, on_re, on_im, second):
        g, p, b, _, _ = x_re.shape
        w = self.weight
        q = w.shape[-1]

        def rows(x, idx):  # W_a^T X for the listed a, one bmm over row blocks: (G, 2q, b G p)
            first = w[list(idx)].permute(1, 0, 3, 2).reshape(g, len(idx) * q, p)
            return torch.bmm(first, x.reshape(g, p, b * g * p))

        left = torch.cat([rows(x_re, on_re), rows(x_im, on_im)], dim=1)  # 4 terms
        # sum_t (W_a^T X)_t W_{b,t}: the 4 terms stacked on the contracted axis, one bmm over
        # column blocks: (G_h, G_g q b, 4p) @ (G_h, 4p, q)
        left = left.reshape(g, 4, q, b, g, p).permute(4, 0, 2, 3, 1, 5).reshape(g, -1, 4 * p)
        right = w[list(second)].permute(1, 0, 2, 3).reshape(g, 4 * p, q)
        y = torch.bmm(left, right).reshape(g, g, q, b, q)  # (col block, row block, row, b, col)
        return y.permute(1, 2, 3, 0, 4).contiguous()


def _bilinear_init(*shape: int, gain: float = 1.0) -> nn.Parameter:
    """Normal weights of variance ``gain / (2 p)`` (``p = shape[-2]``, the contracted size).

    Each output entry of a two-sided layer is a sum of four terms of ``p^2`` products of two
    weights, so this variance keeps unit-variance inputs at unit variance (the published code
    used Glorot-uniform, whose outputs grow by about 4x per layer, ~1e4 after the chain).
    """
    std = math.sqrt(gain / (2 * shape[-2]))
    return nn.Parameter(torch.randn(*shape) * std)


def _merge(x: torch.Tensor, level: int, levels: int) -> torch.Tensor:
    """Regroup blocks for the butterfly step from ``level`` to ``level + 1`` (both axes).

    The block index is ``a 2^level + c`` (``a``: input-tree node at depth ``levels - level``,
    ``c``: output-tree node at depth ``level``); the two input children ``a = 2A + alpha`` of
    each ``(A, c)`` are gathered into one block of twice the rank.
    """
    _, r, b, _, _ = x.shape
    half, width = 2 ** (levels - level - 1), 2**level
    x = x.reshape(half, 2, width, r, b, half, 2, width, r)
    x = x.permute(0, 2, 1, 3, 4, 5, 7, 6, 8)
    return x.reshape(half * width, 2 * r, b, half * width, 2 * r)


def _split(x: torch.Tensor) -> torch.Tensor:
    """Inverse bookkeeping: a block ``(A, c)`` of size ``2r`` becomes children ``(A, 2c + gamma)``."""
    g, r2, b, _, _ = x.shape
    return x.reshape(2 * g, r2 // 2, b, 2 * g, r2 // 2)


class ButterflyPolar(nn.Module):
    """Single-frequency B-EquiNet kernel: rotated data -> polar image.

    Parameters
    ----------
    n : int
        Number of sources = receivers = radii, ``n = 2**levels * leaf``.
    rank : int
        Rank ``r`` of the butterfly blocks.
    n_residual : int
        Number of residual block-diagonal layers at the middle level.
    min_leaf : int
        Smallest admissible leaf size (see :func:`butterfly_levels`).

    Notes
    -----
    Layers: ``V`` (leaf ``s`` -> rank ``r`` on each of the ``2^L`` leaves), ``L`` butterfly
    levels (pairs of blocks mixed by ``2r x 2r`` matrices: ``floor(L/2)`` before the middle,
    ``ceil(L/2)`` after), ``n_residual`` block-diagonal ``r x r`` layers with
    ``x + relu(M x)`` at the middle, ``U`` (rank ``r`` -> leaf ``s``, real part only), then the
    diagonal of the ``n x n`` result. Every layer is a :class:`BilinearBlockLayer`.
    Parameters per frequency: ``8 (2 * 2^L s r + L 2^(L+1) r^2 + n_residual 2^L r^2)``,
    19,968 at ``n = 80`` (``L = 4, s = 5, r = 3``, 6 residual layers), as the reference.
    """

    def __init__(self, n: int, rank: int = 3, n_residual: int = 6, min_leaf: int = 5):
        super().__init__()
        self.levels, self.leaf = butterfly_levels(n, min_leaf)
        blocks = 2**self.levels
        self.rank = rank
        self.v = BilinearBlockLayer(blocks, self.leaf, rank)
        self.mix = nn.ModuleList(
            BilinearBlockLayer(blocks // 2, 2 * rank, 2 * rank) for _ in range(self.levels)
        )
        self.middle = nn.ModuleList(  # small residual branches: x + relu(M x) stays O(x)
            BilinearBlockLayer(blocks, rank, rank, gain=0.25) for _ in range(n_residual)
        )
        self.u = _bilinear_init(8, blocks, rank, self.leaf)

    def forward(self, rotated: torch.Tensor) -> torch.Tensor:
        """Apply the kernel.

        Parameters
        ----------
        rotated : (b, n, n, n) complex torch.Tensor
            Rotated data ``[b, i, r, s]`` (:func:`~.polar.rotation_stack`).

        Returns
        -------
        (b, n, n) real torch.Tensor
            Polar image ``[b, i, rho]``.
        """
        b, n_rot, n, _ = rotated.shape
        blocks, s = 2**self.levels, self.leaf
        x = rotated.reshape(b * n_rot, blocks, s, blocks, s).permute(1, 2, 0, 3, 4)
        x_re, x_im = self.v(x.real.contiguous(), x.imag.contiguous())
        for level, layer in enumerate(self.mix):
            if level == self.levels // 2:
                x_re, x_im = self._residual(x_re, x_im)
            x_re, x_im = layer(_merge(x_re, level, self.levels), _merge(x_im, level, self.levels))
            x_re, x_im = _split(x_re), _split(x_im)
        # diagonal blocks of U^T X U: only the (c, c) blocks contribute to the diagonal
        idx = torch.arange(blocks)
        d_re, d_im = x_re[idx, :, :, idx, :], x_im[idx, :, :, idx, :]  # (blocks, r, b', r)
        w = self.u
        pairs = ((d_re, 0, 1), (d_re, 2, 3), (d_im, 4, 5), (d_im, 6, 7))
        diag = sum(torch.einsum("cpbq,cpk,cqk->bck", d, w[i], w[j]) for d, i, j in pairs)
        return diag.reshape(b, n_rot, n)

    def _residual(self, x_re, x_im):
        for layer in self.middle:
            y_re, y_im = layer(x_re, x_im)
            x_re, x_im = x_re + torch.relu(y_re), x_im + torch.relu(y_im)
        return x_re, x_im


class BEquiNet(EquivariantBackProjection):
    """B-EquiNet for ``n_freq`` frequencies: one :class:`ButterflyPolar` each.

    Parameters
    ----------
    n : int
        Nodes per axis; also the number of sources/receivers (``n = 2**L s``, ``s >= 5``,
        ``n`` a multiple of 4).
    n_freq : int
        Number of frequencies.
    rank, n_residual : int
        Butterfly rank and number of middle residual layers (3 and 6 as published).

    Notes
    -----
    Input ``(b, n_freq, n, n)`` complex64, output ``(b, n_freq, n, n)`` float32
    (``out_channels = n_freq``); 19,968 parameters per frequency at ``n = 80``.
    """

    def __init__(self, n: int, n_freq: int, rank: int = 3, n_residual: int = 6):
        check_grid(n, n)
        super().__init__([ButterflyPolar(n, rank, n_residual) for _ in range(n_freq)], n, n)
