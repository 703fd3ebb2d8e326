"""Posterior sampling: the variance-preserving reverse SDE by Euler--Maruyama in float64.

Notes
-----
With :math:`x = s(t)\\,\\tilde\\eta` and :math:`s(t) = 1/\\sqrt{1 + \\sigma(t)^2}`, the forward
process :math:`\\tilde\\eta_t = \\eta + \\sigma(t)\\varepsilon` becomes variance preserving and
its reverse-time SDE (Anderson 1982; Karras et al. 2022, eq. 6) reads

.. math::
    dx = \\Big[\\big(2\\tfrac{\\dot\\sigma}{\\sigma} + \\tfrac{\\dot s}{s}\\big) x
         - 2\\tfrac{\\dot\\sigma}{\\sigma}\\, s\\, D(x/s, \\sigma)\\Big] dt
         + s\\sqrt{2\\dot\\sigma\\sigma}\\; d\\bar w,

integrated from :math:`t(\\sigma_0)` down to :math:`t(\\sigma_{L-1})` by Euler--Maruyama on the
given levels, started from :math:`x \\sim N(0, 1)`, and finished with one denoising call
:math:`\\hat\\eta = D(x/s, \\sigma_{L-1})`. The state is float64; the denoiser decides its own
precision (:class:`~msinv.learned.diffusion.precond.EDMDenoiser` runs the network in float32).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from msinv.core.errors import UserInputError
from msinv.learned.diffusion.schedule import TangentSchedule


class GeneratorBank:
    """Independent random streams for consecutive blocks of one batch.

    Block ``j`` (``sizes[j]`` rows) draws from ``generators[j]`` only, so that each datum's
    draws do not depend on which other data share the batch.

    Parameters
    ----------
    generators : sequence of torch.Generator
        One per block, all on the device of the batch.
    sizes : sequence of int
        Rows of each block.
    """

    def __init__(self, generators, sizes) -> None:
        if len(generators) != len(sizes):
            raise UserInputError("one generator per block is needed")
        self.generators = list(generators)
        self.sizes = [int(s) for s in sizes]

    def randn(self, shape, *, dtype, device) -> torch.Tensor:
        """Standard normal (sum(sizes), *shape[1:]) drawn block by block."""
        if shape[0] != sum(self.sizes):
            raise UserInputError(f"batch of {shape[0]} rows but the blocks hold {sum(self.sizes)}")
        parts = [
            torch.randn((s, *shape[1:]), generator=g, dtype=dtype, device=device)
            for g, s in zip(self.generators, self.sizes, strict=True)
        ]
        return torch.cat(parts)


def _randn(generator, shape, *, dtype, device) -> torch.Tensor:
    if isinstance(generator, GeneratorBank):
        return generator.randn(shape, dtype=dtype, device=device)
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def sample(
    denoiser: Callable,
    x_T: torch.Tensor,
    sigmas: torch.Tensor,
    cond,
    *,
    generator: torch.Generator,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    schedule: TangentSchedule | None = None,
) -> torch.Tensor:
    """Draw posterior samples by integrating the reverse VP SDE.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(eta, cond, sigma)`` with eta (b, 1, n, n) and sigma (b,) -> (b, 1, n, n);
        the conditional denoiser D(eta, sigma | alpha).
    x_T : (b, 1, n, n) float64 torch.Tensor
        Initial state, standard normal.
    sigmas : (L,) torch.Tensor
        Decreasing noise levels (e.g. :func:`~msinv.learned.diffusion.schedule.geometric_levels`).
    cond : torch.Tensor or object
        Conditioning, computed once per datum and passed unchanged to every denoiser call.
    generator : torch.Generator or GeneratorBank
        Generator on the device of x_T for the Brownian increments (a bank: one stream per
        block of rows).
    callback : callable, optional
        ``callback(i, x)`` after step i (progress bars, trajectories).
    schedule : TangentSchedule, optional
        sigma(t) used to map levels to times (default: the paper's tangent schedule).

    Returns
    -------
    (b, 1, n, n) float64 torch.Tensor
        Samples eta in the denoiser's (normalised) units.
    """
    schedule = schedule or TangentSchedule()
    sigmas = sigmas.to(device=x_T.device, dtype=torch.float64)
    if sigmas.ndim != 1 or sigmas.numel() < 2 or not bool(torch.all(sigmas[1:] < sigmas[:-1])):
        raise UserInputError("sigmas must be a strictly decreasing 1-D tensor of at least 2 levels")
    times = schedule.inverse(sigmas)
    x = x_T.to(torch.float64)
    b = x.shape[0]

    def denoise(x: torch.Tensor, sigma: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return denoiser(x / scale, cond, sigma.expand(b)).to(torch.float64)

    for i in range(sigmas.numel() - 1):
        sigma, t = sigmas[i], times[i]
        dt = times[i + 1] - t
        dsigma = schedule.derivative(t)
        scale = 1.0 / torch.sqrt(1.0 + sigma**2)
        dlog_scale = -sigma * dsigma / (1.0 + sigma**2)
        drift = (2.0 * dsigma / sigma + dlog_scale) * x - 2.0 * dsigma / sigma * scale * denoise(
            x, sigma, scale
        )
        noise = _randn(generator, x.shape, dtype=torch.float64, device=x.device)
        x = x + drift * dt + scale * torch.sqrt(2.0 * dsigma * sigma * (-dt)) * noise
        if callback is not None:
            callback(i, x)
    sigma = sigmas[-1]
    return denoise(x, sigma, 1.0 / torch.sqrt(1.0 + sigma**2))
