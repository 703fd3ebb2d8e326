"""EDM preconditioning: the denoiser D built from a raw score network S.

Notes
-----
With the data standard deviation :math:`\\sigma_d` (1 for our normalised images),

.. math::
    D(\\eta, \\sigma) = c_{skip}\\,\\eta + c_{out}\\, S(c_{in}\\,\\eta, \\alpha, \\sigma),\\quad
    c_{skip} = \\frac{\\sigma_d^2}{\\sigma^2 + \\sigma_d^2},\\;
    c_{out} = \\frac{\\sigma\\sigma_d}{\\sqrt{\\sigma^2 + \\sigma_d^2}},\\;
    c_{in} = \\frac{1}{\\sqrt{\\sigma^2 + \\sigma_d^2}}.

The network receives sigma itself and embeds :math:`c_{noise} = \\tfrac14 \\ln \\sigma`.
"""

from __future__ import annotations

import torch
from torch import nn


class EDMDenoiser(nn.Module):
    """D(eta, sigma | alpha) = c_skip eta + c_out S(c_in eta, alpha, sigma).

    Parameters
    ----------
    score : nn.Module
        Raw network called as ``score(eta_scaled, cond, sigma)`` -> (b, 1, n, n).
    sigma_data : float, default 1.0
        Standard deviation of the (normalised) images.
    """

    def __init__(
        self,
        score: nn.Module,
        sigma_data: float = 1.0,  # std of normalised eta
    ) -> None:
        super().__init__()
        self.score = score
        self.sigma_data = float(sigma_data)

    def coefficients(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, c_in) for sigma of shape (b,), each shaped (b, 1, 1, 1)."""
        s = sigma.reshape(-1, 1, 1, 1)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (s**2 + sd2)
        c_out = s * self.sigma_data / torch.sqrt(s**2 + sd2)
        c_in = 1.0 / torch.sqrt(s**2 + sd2)
        return c_skip, c_out, c_in

    def forward(self, eta: torch.Tensor, cond, sigma: torch.Tensor) -> torch.Tensor:
        """Denoised estimate of eta.

        Parameters
        ----------
        eta : (b, 1, n, n) torch.Tensor
            Noisy image eta + sigma * eps.
        cond : torch.Tensor or object
            Conditioning passed unchanged to the score network (alpha, or its precomputed
            features).
        sigma : (b,) torch.Tensor
            Noise levels, > 0.

        Returns
        -------
        (b, 1, n, n) torch.Tensor, dtype of eta
        """
        c_skip, c_out, c_in = self.coefficients(sigma.to(eta.dtype))
        dtype = next(self.score.parameters()).dtype
        raw = self.score((c_in * eta).to(dtype), cond, sigma.to(dtype))
        return c_skip * eta + c_out * raw.to(eta.dtype)
