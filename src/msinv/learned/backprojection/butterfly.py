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
    gain : float, default 1.0
        Initial weight variance relative to the variance-preserving one (``_bilinear_init``).

    Notes
    -----
    With ``X = (X_re, X_im)`` and weights ``W_k`` of shape ``(G, p, q)`` acting as
    :math:`(W^T X W)_{gh} = W_g^T X_{gh} W_h`:

    .. math::
        Y_{re} = W_1^T X_{re} W_1 + W_2^T X_{re} W_2 + W_3^T X_{im} W_4 + W_4^T X_{im} W_3,\\
        Y_{im} = W_5^T X_{im} W_5 + W_6^T X_{im} W_6 + W_7^T X_{re} W_8 + W_8^T X_{re} W_7,

    the layer of the published B-EquiNet. Eight weight tensors: ``8 G p q`` parameters.

    Layout: a pair is stored block-first with the batch last, ``(G, 2, p, G, p, batch)`` (row
    block, part, row, column block, column, batch). The eight terms ``W_a^T X_c`` come from one
    batched matmul over row blocks, one transposition brings the column blocks first, and one
    batched matmul over column blocks applies the right factors and sums the terms. The result
    is left transposed: the layer returns :math:`Y^T` in the same layout. Since every term
    pair above is symmetric under transposition, :math:`L(X^T) = L(X)^T`, so a chain of
    layers can run on alternately transposed matrices (the caller tracks the parity); this
    saves the transposition back that a row-first result would cost (most of the CPU time of
    these tiny-rank matmuls is moving memory).
    """

    #: (left factor a, input part c, right factor b, output part o) of each term W_a^T X_c W_b
    TERMS = (
        (0, 0, 0, 0),
        (1, 0, 1, 0),
        (2, 1, 3, 0),
        (3, 1, 2, 0),
        (6, 0, 7, 1),
        (7, 0, 6, 1),
        (4, 1, 4, 1),
        (5, 1, 5, 1),
    )

    def __init__(self, blocks: int, size_in: int, size_out: int, gain: float = 1.0):
        super().__init__()
        self.weight = _bilinear_init(8, blocks, size_in, size_out, gain=gain)

    def forward(self, x: torch.Tensor, split: bool = False) -> torch.Tensor:
        """Apply to ``x`` ``(G, 2, p, G, p, batch)``; returns :math:`Y^T`, ``(G, 2, q, G, q, batch)``.

        ``split=True`` also regroups each output block of size ``q = 2r`` into its two halves
        (the inverse bookkeeping of :func:`_merge`: block ``(A, c)`` becomes the children
        ``(A, 2c + gamma)``, i.e. block ``g`` becomes blocks ``2g`` and ``2g + 1`` of size
        ``r``): ``(2G, 2, r, 2G, r, batch)``, at no cost (the output rows are ordered for it).
        """
        g, _, p, _, _, nb = x.shape
        w = self.weight
        q = w.shape[-1]
        zero = w.new_zeros(g, q, p)
        # left factors of the 8 terms, each on its input part: (G, 8q, 2p)
        left = torch.stack(
            [
                torch.cat(
                    (w[a].transpose(1, 2), zero) if c == 0 else (zero, w[a].transpose(1, 2)), 2
                )
                for a, c, _, _ in self.TERMS
            ],
            1,
        ).reshape(g, 8 * q, 2 * p)
        y = torch.bmm(left, x.reshape(g, 2 * p, g * p * nb))  # (g, t, q, h, k, batch)
        y = y.reshape(g, 8, q, g, p, nb).permute(3, 1, 4, 0, 2, 5).reshape(g, 8 * p, g * q * nb)
        # right factors, summed per output part: (G, 2q, 8p), rows (part, column)
        zero = w.new_zeros(g, q, p)
        right = torch.stack(
            [
                torch.cat(
                    [w[b].transpose(1, 2) if o == part else zero for _, _, b, o in self.TERMS], 2
                )
                for part in (0, 1)
            ],
            1,
        )
        if split:  # rows (half, part, row) so that the halves become blocks by a reshape
            right = right.reshape(g, 2, 2, q // 2, 8 * p).transpose(1, 2)
            z = torch.bmm(right.reshape(g, 2 * q, 8 * p), y)
            return z.reshape(2 * g, 2, q // 2, 2 * g, q // 2, nb)
        z = torch.bmm(right.reshape(g, 2 * q, 8 * p), y)  # (h, o, l, g, q, batch): Y^T
        return z.reshape(g, 2, q, g, q, nb)


def transpose(x: torch.Tensor) -> torch.Tensor:
    """The transposed pair of block matrices, same layout ``(G, 2, p, G, p, batch)``."""
    return x.permute(3, 1, 4, 0, 2, 5).contiguous()


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
    each ``(A, c)`` are gathered into one block of twice the rank. Layout
    ``(G, 2, r, G, r, batch)`` -> ``(G/2, 2, 2r, G/2, 2r, batch)``.
    """
    _, _, r, _, _, nb = x.shape
    half, width = 2 ** (levels - level - 1), 2**level
    x = x.reshape(half, 2, width, 2, r, half, 2, width, r, nb)
    x = x.permute(0, 2, 3, 1, 4, 5, 7, 6, 8, 9)
    return x.reshape(half * width, 2, 2 * r, half * width, 2 * r, nb)


class ButterflyPolar(nn.Module):
    """Single-frequency B-EquiNet kernel: rotated data -> polar image.

    Parameters
    ----------
    n : int
        Number of sources = receivers = radii, ``n = 2**levels * leaf``.
    rank : int, default 3
        Rank ``r`` of the butterfly blocks.
    n_residual : int, default 6
        Number of residual block-diagonal layers at the middle level.
    min_leaf : int, default 5
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
        # [b, i, r, s] -> (row block, part, row, column block, column, b i)
        x = torch.view_as_real(rotated).reshape(b * n_rot, blocks, s, blocks, s, 2)
        x = x.permute(1, 5, 2, 3, 4, 0).contiguous()
        x = self.v(x)
        transposed = True  # every layer returns the transpose of its result
        for level, layer in enumerate(self.mix):
            if level == self.levels // 2:
                for middle in self.middle:  # x + relu(M x), the transpose of both sides
                    x = transpose(x) + torch.relu(middle(x))
                transposed ^= len(self.middle) % 2 == 1
            x = layer(_merge(x, level, self.levels), split=True)
            transposed = not transposed
        # diagonal blocks of U^T X U: only the (c, c) blocks contribute to the diagonal
        idx = torch.arange(blocks)
        d = x[idx, :, :, idx]  # (blocks, part, r, r, b i): rows and columns, or swapped
        w = self.u
        pairs = ((0, 0, 1), (0, 2, 3), (1, 4, 5), (1, 6, 7))
        spec = "cqpb,cpk,cqk->bck" if transposed else "cpqb,cpk,cqk->bck"
        diag = sum(torch.einsum(spec, d[:, part], w[i], w[j]) for part, i, j in pairs)
        return diag.reshape(b, n_rot, n)


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
