"""The translation-equivariant score CNN of Back-Projection Diffusion.

Notes
-----
Architecture (spec, "Score network"), every convolution 3x3 with circular padding so that the
network commutes with circular shifts of (eta, alpha):

* conditioning branch (independent of eta and sigma, computed once per datum): a normalisation
  of alpha (:func:`conditioning_norm`), then ``cond_rounds`` rounds of
  [conv -> k, swish, conv -> k] whose outputs are concatenated DenseNet-style
  (C + rounds k channels);
* noise embedding of :math:`c_{noise} = \\tfrac14\\ln\\sigma`: ``n_freqs`` log-spaced
  frequencies :math:`\\pi e^{\\ell}`, :math:`\\ell \\in [0, \\ln f_{max}]`, sin and cos, Dense
  2d, swish, Dense d;
* trunk: concat(c_in eta, features) -> conv -> width, ``blocks`` squeeze residual blocks
  [GroupNorm, swish, conv width -> bottleneck, GroupNorm, FiLM, swish, conv bottleneck -> width;
  1x1 skip projection; (skip + h)/sqrt 2], conv -> 1. FiLM is the paper's
  ``Affine(Swish(emb))``: (scale, shift) = Dense(swish(emb)), x -> x (1 + scale) + shift.

With the defaults and C = 3 the network has 374,575 parameters, as the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from msinv.core.errors import UserInputError


@dataclass(frozen=True)
class Features:
    """Conditioning features computed once per datum by a score network's ``condition``.

    Parameters
    ----------
    tensor : (b, c, n, n) torch.Tensor
    """

    tensor: torch.Tensor

    def expand(self, b: int) -> Features:
        """The same features repeated to a batch of b (from a batch of 1)."""
        return Features(self.tensor.expand(b, *self.tensor.shape[1:]))

    def repeat(self, k: int) -> Features:
        """Each datum's features repeated k times in a row: (b, ...) -> (b k, ...)."""
        return Features(self.tensor.repeat_interleave(k, dim=0))


class _CircularPad1(torch.autograd.Function):
    """Periodic one-pixel padding of (b, c, h, w) with a backward that folds the ring back once.

    The forward is ``F.pad(x, (1, 1, 1, 1), mode="circular")`` itself. Its backward in torch
    builds and adds full-size zero tensors edge by edge: with it, copies and zero fills took
    about a quarter of the paper-size score CNN's CPU training step
    (``benchmarks/learned_cpu_step.py``, docs/learned.md). Here the gradient is the interior of the padded gradient plus its four edges and four
    corners added onto the opposite borders.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 1, 1, 1), mode="circular")

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        # padded P[i + 1, j + 1] = x[i, j]; row 0 of P is x[h - 1], row h + 1 is x[0], etc.
        gx = g[..., 1:-1, 1:-1].clone()
        gx[..., 0, :].add_(g[..., -1, 1:-1])
        gx[..., -1, :].add_(g[..., 0, 1:-1])
        gx[..., :, 0].add_(g[..., 1:-1, -1])
        gx[..., :, -1].add_(g[..., 1:-1, 0])
        gx[..., -1, -1].add_(g[..., 0, 0])
        gx[..., -1, 0].add_(g[..., 0, -1])
        gx[..., 0, -1].add_(g[..., -1, 0])
        gx[..., 0, 0].add_(g[..., -1, -1])
        return gx


def circular_pad1(x: torch.Tensor) -> torch.Tensor:
    """(b, c, h, w) -> (b, c, h + 2, w + 2), periodic in both image axes (see :class:`_CircularPad1`)."""
    return _CircularPad1.apply(x)


class CircularConv2d(nn.Conv2d):
    """``nn.Conv2d`` with ``padding=1, padding_mode="circular"``, same parameters and outputs,
    padded by :func:`circular_pad1` (a cheaper backward than torch's circular padding)."""

    def _conv_forward(self, x, weight, bias):
        return F.conv2d(circular_pad1(x), weight, bias, self.stride, 0, self.dilation, self.groups)


def conv3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with circular padding (shift-equivariant on the torus)."""
    return CircularConv2d(c_in, c_out, 3, stride=stride, padding=1, padding_mode="circular")


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (b, c, n, n), independently at every pixel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


#: normalisations of alpha before a conditioning branch, see :func:`conditioning_norm`
COND_NORMS = ("image", "channel", "none")


def conditioning_norm(kind: str, channels: int) -> nn.Module:
    r"""The normalisation of alpha (b, C, n, n) that starts a conditioning branch.

    Parameters
    ----------
    kind : {"image", "channel", "none"}
        ``"image"`` (default of the score networks): per datum, over the channels and the
        whole image, :math:`(\alpha - \mu)/\sqrt{s^2 + \epsilon}` with the mean
        :math:`\mu` and variance :math:`s^2` of all C n^2 values, then a learned per-channel
        scale and shift (``GroupNorm(1, C)``, 2C parameters). It removes only one gain and one
        offset per datum, so the features depend on alpha for every C, and it commutes with
        circular shifts. ``"channel"``: the reference code's layer, Flax ``nn.LayerNorm()``
        on channels-last alpha, i.e. over the C channels independently at every pixel (2C
        parameters). It keeps C - 2 degrees of freedom per pixel: its output is constant for
        C = 1 and keeps only the sign of alpha_1 - alpha_2 for C = 2, so it is refused for
        C < 3. ``"none"``: alpha as it is.
    channels : int
        C.

    Returns
    -------
    nn.Module
        (b, C, n, n) -> (b, C, n, n).

    Raises
    ------
    ValueError
        Unknown kind, or ``"channel"`` with fewer than 3 channels.
    """
    if kind not in COND_NORMS:
        raise UserInputError(f"cond_norm must be one of {', '.join(COND_NORMS)}, got {kind!r}")
    if kind == "channel" and channels < 3:
        raise UserInputError(
            f"cond_norm = 'channel' normalises the {channels} channel(s) of alpha at each pixel, "
            "which leaves no information for C = 1 and only a sign for C = 2; use 'image'"
        )
    if kind == "image":
        return nn.GroupNorm(1, channels)
    return ChannelLayerNorm(channels) if kind == "channel" else nn.Identity()


class NoiseEmbedding(nn.Module):
    """Fourier embedding of c_noise = ln(sigma)/4 followed by a two-layer MLP.

    Parameters
    ----------
    dim : int, default 96
        Output width d (spec: 96); uses d/2 frequencies (sin and cos).
    max_freq : float, default 20000.0
        Largest frequency (spec: 2e4).
    """

    def __init__(self, dim: int = 96, max_freq: float = 2e4) -> None:
        super().__init__()
        if dim % 2:
            raise UserInputError(f"embedding dim must be even, got {dim}")
        freqs = math.pi * torch.exp(torch.linspace(0.0, math.log(max_freq), dim // 2))
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, dim))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        """(b,) noise levels -> (b, dim) embedding."""
        c_noise = 0.25 * torch.log(sigma)
        arg = c_noise[:, None] * self.freqs.to(c_noise.dtype)[None, :]
        return self.mlp(torch.cat([torch.sin(arg), torch.cos(arg)], dim=1))


class SqueezeBlock(nn.Module):
    """Residual block width -> bottleneck -> width with FiLM noise conditioning."""

    def __init__(
        self,
        width: int,
        bottleneck: int,
        emb_dim: int,
        groups: tuple[int, int],
        film_swish: bool = True,
    ) -> None:
        super().__init__()
        self.film_swish = film_swish
        self.norm1 = nn.GroupNorm(groups[0], width)
        self.conv1 = conv3(width, bottleneck)
        self.norm2 = nn.GroupNorm(groups[1], bottleneck)
        self.film = nn.Linear(emb_dim, 2 * bottleneck)
        self.conv2 = conv3(bottleneck, width)
        self.skip = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(film(self.film, self.norm2(h), emb, self.film_swish)))
        return (self.skip(x) + h) / math.sqrt(2.0)


def film(affine: nn.Linear, x: torch.Tensor, emb: torch.Tensor, swish: bool = True) -> torch.Tensor:
    """FiLM of (b, c, n, n) by the noise embedding (b, d): the paper's Affine(Swish(emb)).

    (scale, shift) = affine(swish(emb)) with ``affine`` d -> 2c; returns x (1 + scale) + shift.
    ``swish=False`` feeds emb itself (architecture 1, :data:`msinv.learned.models.ARCHITECTURE`).
    """
    scale, shift = affine(F.silu(emb) if swish else emb)[:, :, None, None].chunk(2, dim=1)
    return x * (1 + scale) + shift


class ScoreCNN(nn.Module):
    """Conditional score network S(eta, alpha, sigma) with circular padding.

    Parameters
    ----------
    cond_channels : int
        Channels C of alpha (one per frequency for F*, 2 n_freq for raw data).
    cond_rounds, cond_width : int
        DenseNet rounds and growth of the conditioning branch (spec: 10, 6).
    width, bottleneck, blocks : int
        Trunk width, squeeze width and number of residual blocks (spec: 96, 12, 8).
    emb_dim : int, default 96
        Noise-embedding width (spec: 96).
    groups : tuple of int, default (24, 3)
        GroupNorm groups on the width and bottleneck channels (spec: 24, 3).
    cond_norm : {"image", "channel", "none"}, default 'image'
        Normalisation of alpha before the conditioning branch (:func:`conditioning_norm`):
        over channels and image per datum (default), the reference's LayerNorm over the
        channels at each pixel (C >= 3 only), or none. All three have the same parameter
        count up to the 2C affine weights of the first two.
    film_swish : bool, default True
        FiLM from Swish(emb), the paper's Algorithm 3 (True), or from emb itself (False: only
        to load checkpoints of architecture 1, :data:`msinv.learned.models.ARCHITECTURE`).
    """

    def __init__(
        self,
        cond_channels: int,
        cond_rounds: int = 10,  # DenseNet rounds on alpha
        cond_width: int = 6,  # channels added per round
        width: int = 96,  # trunk channels
        bottleneck: int = 12,  # squeeze channels
        blocks: int = 8,  # residual blocks
        emb_dim: int = 96,  # noise embedding width
        groups: tuple[int, int] = (24, 3),  # GroupNorm groups (width, bottleneck)
        cond_norm: str = "image",  # "image", "channel" (reference, C >= 3) or "none"
        film_swish: bool = True,  # FiLM from Swish(emb) (paper); False: architecture 1
    ) -> None:
        super().__init__()
        if width % groups[0] or bottleneck % groups[1]:
            raise UserInputError(
                f"groups {groups} must divide (width, bottleneck) = {width, bottleneck}"
            )
        self.norm = conditioning_norm(cond_norm, cond_channels)
        self.rounds = nn.ModuleList(
            nn.Sequential(
                conv3(cond_channels + k * cond_width, cond_width),
                nn.SiLU(),
                conv3(cond_width, cond_width),
            )
            for k in range(cond_rounds)
        )
        n_feat = cond_channels + cond_rounds * cond_width
        self.embed = NoiseEmbedding(emb_dim)
        self.lift = conv3(1 + n_feat, width)
        self.blocks = nn.ModuleList(
            SqueezeBlock(width, bottleneck, emb_dim, tuple(groups), film_swish)
            for _ in range(blocks)
        )
        self.out = conv3(width, 1)

    def condition(self, alpha: torch.Tensor) -> Features:
        """Conditioning features of alpha (b, C, n, n) -> Features (b, C + rounds k, n, n)."""
        feats = [self.norm(alpha)]
        for layer in self.rounds:
            feats.append(layer(torch.cat(feats, dim=1)))
        return Features(torch.cat(feats, dim=1))

    def forward(self, eta: torch.Tensor, cond, sigma: torch.Tensor) -> torch.Tensor:
        """Raw network output.

        Parameters
        ----------
        eta : (b, 1, n, n) torch.Tensor
            Scaled noisy image c_in (eta + sigma eps).
        cond : (b, C, n, n) torch.Tensor or Features
            alpha, or features precomputed by :meth:`condition`.
        sigma : (b,) torch.Tensor
            Noise levels, > 0.

        Returns
        -------
        (b, 1, n, n) torch.Tensor
        """
        features = cond if isinstance(cond, Features) else self.condition(cond)
        emb = self.embed(sigma)
        h = self.lift(torch.cat([eta, features.tensor], dim=1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
