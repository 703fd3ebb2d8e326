"""A two-level U-ViT score network: convolutional residual levels, attention at the coarsest.

Notes
-----
Level 1 at n x n with ``widths[0]`` channels, level 2 at n/2 x n/2 with ``widths[1]`` channels
followed by ``depth`` pre-norm transformer blocks (multi-head self-attention over the
(n/2)^2 tokens, no positional embedding: the circular convolutions carry position), then a
decoder mirroring level 1 with a skip connection. Noise enters every residual block by FiLM of
the embedding of :math:`c_{noise} = \\tfrac14\\ln\\sigma`; alpha enters once, through a
conditioning stem computed once per datum. Needs even n.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from msinv.core.errors import UserInputError
from msinv.learned.networks.cnn import Features, NoiseEmbedding, conditioning_norm, conv3, film


class ResBlock(nn.Module):
    """GroupNorm-swish-conv twice with FiLM noise conditioning and a 1x1 skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(32, c_in // 4), c_in)
        self.conv1 = conv3(c_in, c_out)
        self.norm2 = nn.GroupNorm(min(32, c_out // 4), c_out)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.conv2 = conv3(c_out, c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(film(self.film, self.norm2(h), emb)))
        return (self.skip(x) + h) / math.sqrt(2.0)


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and MLP on (b, tokens, dim)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ScoreUViT(nn.Module):
    """U-ViT score network S(eta, alpha, sigma).

    Parameters
    ----------
    cond_channels : int
        Channels C of alpha.
    widths : tuple of int, default (64, 128)
        Channels of the two levels (spec: 64, 128).
    blocks : int, default 2
        Residual blocks per level and direction.
    depth, heads : int
        Transformer blocks and attention heads at the coarsest level.
    emb_dim : int, default 256
        Noise-embedding width.
    cond_norm : {"image", "channel", "none"}, default 'image'
        Normalisation of alpha at the start of the conditioning stem, as in
        :class:`~msinv.learned.networks.cnn.ScoreCNN` (:func:`conditioning_norm`).
    """

    def __init__(
        self,
        cond_channels: int,
        widths: tuple[int, int] = (64, 128),  # level widths
        blocks: int = 2,  # residual blocks per level
        depth: int = 12,  # transformer blocks at the coarsest level
        heads: int = 4,  # attention heads
        emb_dim: int = 256,  # noise embedding width
        cond_norm: str = "image",  # "image", "channel" (reference, C >= 3) or "none"
    ) -> None:
        super().__init__()
        c1, c2 = widths
        self.stem = nn.Sequential(
            conditioning_norm(cond_norm, cond_channels),
            conv3(cond_channels, c1),
            nn.SiLU(),
            conv3(c1, c1),
        )
        self.embed = NoiseEmbedding(emb_dim)
        self.lift = conv3(1 + c1, c1)
        self.down1 = nn.ModuleList(ResBlock(c1, c1, emb_dim) for _ in range(blocks))
        self.down = conv3(c1, c2, stride=2)
        self.mid = nn.ModuleList(ResBlock(c2, c2, emb_dim) for _ in range(blocks))
        self.attn = nn.ModuleList(TransformerBlock(c2, heads) for _ in range(depth))
        self.up = conv3(c2, c1)
        self.up1 = nn.ModuleList(
            ResBlock(2 * c1 if k == 0 else c1, c1, emb_dim) for k in range(blocks)
        )
        self.out = nn.Sequential(nn.GroupNorm(min(32, c1 // 4), c1), nn.SiLU(), conv3(c1, 1))

    def condition(self, alpha: torch.Tensor) -> Features:
        """Stem features of alpha (b, C, n, n), computed once per datum."""
        return Features(self.stem(alpha))

    def forward(self, eta: torch.Tensor, cond, sigma: torch.Tensor) -> torch.Tensor:
        """(b, 1, n, n) scaled noisy image, alpha or Features, (b,) sigma -> (b, 1, n, n)."""
        if eta.shape[-1] % 2 or eta.shape[-2] % 2:
            raise UserInputError(f"the U-ViT needs an even grid, got {tuple(eta.shape[-2:])}")
        features = cond if isinstance(cond, Features) else self.condition(cond)
        emb = self.embed(sigma)
        h = self.lift(torch.cat([eta, features.tensor], dim=1))
        for block in self.down1:
            h = block(h, emb)
        skip = h
        h = self.down(h)
        for block in self.mid:
            h = block(h, emb)
        b, c, ny, nx = h.shape
        tokens = h.flatten(2).transpose(1, 2)
        for block in self.attn:
            tokens = block(tokens)
        h = tokens.transpose(1, 2).reshape(b, c, ny, nx)
        h = self.up(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = torch.cat([h, skip], dim=1)
        for block in self.up1:
            h = block(h, emb)
        return self.out(h)
