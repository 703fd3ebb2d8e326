"""The weighted denoising loss with stratified noise levels (owns its noise distribution).

Notes
-----
For a batch of clean images :math:`\\eta_j` and noise levels :math:`\\sigma_j = \\sigma(t_j)`,

.. math::
    L = \\frac1b \\sum_j \\lambda(\\sigma_j)\\, \\operatorname{mean}_{pixels}
        \\left(D(\\eta_j + \\sigma_j \\varepsilon_j, \\sigma_j) - \\eta_j\\right)^2,\\qquad
    \\lambda(\\sigma) = \\frac{\\sigma^2 + \\sigma_d^2}{\\sigma^2 \\sigma_d^2},

with :math:`t_j = t_{min} + (1 - t_{min})(j + u_j)/b`, :math:`u_j \\sim U[0, 1)` (one draw per
stratum) and :math:`t_{min} = \\sigma^{-1}(\\sigma_{min})`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from msinv.core.errors import UserInputError
from msinv.learned.diffusion.schedule import TangentSchedule


@dataclass(frozen=True)
class DenoisingLoss:
    """Weighted EDM loss lambda(sigma) ||D - eta||^2 with stratified t.

    Parameters
    ----------
    schedule : TangentSchedule
        Maps t in [t_min, 1] to sigma.
    sigma_min : float, default 0.0001
        Smallest training noise level (paper: 1e-4).
    sigma_data : float, default 1.0
        Standard deviation of the normalised images.
    """

    schedule: TangentSchedule = field(default_factory=TangentSchedule)
    sigma_min: float = 1e-4  # smallest noise level drawn
    sigma_data: float = 1.0  # std of normalised eta

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.schedule.sigma_max:
            raise UserInputError(
                f"sigma_min must be in (0, {self.schedule.sigma_max}), got {self.sigma_min}"
            )

    def sample_sigma(self, b: int, generator: torch.Generator, device=None) -> torch.Tensor:
        """Stratified noise levels for a batch of b, shape (b,), float32."""
        t_min = float(self.schedule.inverse(torch.tensor(self.sigma_min, dtype=torch.float64)))
        u = torch.rand(b, generator=generator, dtype=torch.float64, device=generator.device)
        j = torch.arange(b, dtype=torch.float64, device=generator.device)
        t = t_min + (1.0 - t_min) * (j + u) / b
        return self.schedule.sigma(t).to(device=device, dtype=torch.float32)

    def weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """lambda(sigma) = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2

    def __call__(
        self, denoiser, eta: torch.Tensor, cond, generator: torch.Generator
    ) -> torch.Tensor:
        """Per-sample loss, shape (b,).

        Parameters
        ----------
        denoiser : callable
            ``denoiser(eta_noisy, cond, sigma)`` -> (b, 1, n, n).
        eta : (b, 1, n, n) torch.Tensor
            Clean normalised images.
        cond : torch.Tensor
            Conditioning passed to the denoiser.
        generator : torch.Generator
            Generator of sigma and the noise; a CPU generator gives the same numbers on any
            device, one on the training device avoids a host-to-device copy per step.
        """
        b = eta.shape[0]
        sigma = self.sample_sigma(b, generator, eta.device)
        eps = torch.randn(eta.shape, generator=generator, device=generator.device).to(eta.device)
        noisy = eta + sigma.reshape(-1, 1, 1, 1) * eps
        err = (denoiser(noisy, cond, sigma) - eta) ** 2
        return self.weight(sigma) * err.flatten(1).mean(dim=1)
