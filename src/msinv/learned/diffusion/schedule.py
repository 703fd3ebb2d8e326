"""The tangent noise schedule sigma(t) and the geometric sampling levels.

Notes
-----
The schedule of the paper (and of swirl-dynamics' ``tangent_noise_schedule``) is

.. math:: \\sigma(t) = \\sigma_{max} \\frac{\\tan(a t)}{\\tan(a)}, \\qquad t \\in [0, 1],

with :math:`\\sigma_{max} = 100` and :math:`a = 1.5`. It is strictly increasing, with inverse
:math:`t(\\sigma) = \\arctan(\\sigma \\tan(a) / \\sigma_{max}) / a` and derivative
:math:`\\dot\\sigma(t) = \\sigma_{max}\\, a / (\\tan(a) \\cos^2(a t))`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from msinv.core.errors import UserInputError


@dataclass(frozen=True)
class TangentSchedule:
    """Invertible noise schedule sigma(t) = sigma_max tan(a t) / tan(a) on t in [0, 1].

    Parameters
    ----------
    sigma_max : float, default 100.0
        sigma(1), the largest noise level (paper: 100).
    a : float, default 1.5
        Slope parameter in (0, pi/2) (paper: 1.5).
    """

    sigma_max: float = 100.0  # sigma(1)
    a: float = 1.5  # tan slope, 0 < a < pi/2

    def __post_init__(self) -> None:
        if not self.sigma_max > 0:
            raise UserInputError(f"sigma_max must be > 0, got {self.sigma_max}")
        if not 0 < self.a < math.pi / 2:
            raise UserInputError(f"a must be in (0, pi/2), got {self.a}")

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise level sigma(t) for t in [0, 1] (any shape, any float dtype)."""
        return self.sigma_max * torch.tan(self.a * t) / math.tan(self.a)

    def inverse(self, sigma: torch.Tensor) -> torch.Tensor:
        """Time t(sigma), the inverse of :meth:`sigma`."""
        return torch.atan(sigma * math.tan(self.a) / self.sigma_max) / self.a

    def derivative(self, t: torch.Tensor) -> torch.Tensor:
        """d sigma / d t at t."""
        return self.sigma_max * self.a / (math.tan(self.a) * torch.cos(self.a * t) ** 2)


def geometric_levels(
    n_levels: int = 256, sigma_max: float = 100.0, ratio: float = 1e-5
) -> torch.Tensor:
    """Sampling noise levels sigma_i = sigma_max * ratio^(i / (n_levels - 1)), decreasing.

    Parameters
    ----------
    n_levels : int, default 256
        Number of levels (paper: 256), at least 2.
    sigma_max : float, default 100.0
        First (largest) level.
    ratio : float, default 1e-05
        sigma_last / sigma_max, in (0, 1) (paper: 1e-5, so the last level is 1e-3).

    Returns
    -------
    (n_levels,) float64 torch.Tensor
    """
    if n_levels < 2:
        raise UserInputError(f"n_levels must be >= 2, got {n_levels}")
    if not 0 < ratio < 1:
        raise UserInputError(f"ratio must be in (0, 1), got {ratio}")
    i = torch.arange(n_levels, dtype=torch.float64)
    return sigma_max * ratio ** (i / (n_levels - 1))
