"""The diffusion loss and the preconditioner against their formulas, at every noise level.

A loss test on zero images with a zero denoiser is 0 whatever the weight or the noise scale;
here the denoiser records what it is given, so the noise scale, the sigma handed to the network,
the weight lambda(sigma) and the input scaling c_in are each checked against an analytic value.
"""

import math

import pytest
import torch

from msinv.learned.diffusion.loss import DenoisingLoss
from msinv.learned.diffusion.precond import EDMDenoiser


class _Recorder:
    """A denoiser that returns a fixed fraction of its input and remembers its arguments."""

    def __init__(self, keep=1.0):
        self.keep, self.calls = keep, []

    def __call__(self, noisy, cond, sigma):
        self.calls.append((noisy.clone(), sigma.clone()))
        return self.keep * noisy


@pytest.mark.parametrize("sigma_data", [1.0, 0.5])
def test_loss_noise_scale_and_weight_are_analytic(sigma_data):
    loss = DenoisingLoss(sigma_data=sigma_data)
    b, n = 64, 32
    gen = torch.Generator().manual_seed(7)
    eta = torch.randn(b, 1, n, n, generator=torch.Generator().manual_seed(8)) * 0.3
    den = _Recorder(keep=1.0)
    per = loss(den, eta, None, gen)
    ((noisy, sigma),) = den.calls
    # the noise added to each image has standard deviation sigma_j (1024 pixels: ~2% error)
    eps = (noisy - eta).flatten(1) / sigma[:, None]
    assert float(eps.mean().abs()) < 0.01
    torch.testing.assert_close(eps.std(dim=1), torch.ones(b), rtol=0, atol=0.1)
    assert float((eps.std(dim=1) - 1).abs().mean()) < 0.03
    # sigma covers [sigma_min, sigma_max] of the schedule (stratified in t)
    assert float(sigma.min()) < 0.2 and float(sigma.max()) > 20 and bool(torch.all(sigma > 0))
    # the identity denoiser's error is sigma * eps: per-sample loss = lambda(sigma) sigma^2 <eps^2>
    lam = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    expected = (
        lam * sigma**2 * ((noisy - eta) / sigma.reshape(-1, 1, 1, 1)).flatten(1).pow(2).mean(1)
    )
    torch.testing.assert_close(per, expected, rtol=1e-4, atol=0)
    # ... whose expectation over the noise is (sigma^2 + sigma_d^2) / sigma_d^2
    ratio = per / ((sigma**2 + sigma_data**2) / sigma_data**2)
    assert float((ratio - 1).abs().max()) < 0.2 and abs(float(ratio.mean()) - 1) < 0.02


def test_loss_of_a_scaled_denoiser_has_the_closed_form():
    """D(x) = k x on clean images eta: error (k-1) eta + k sigma eps, so the expected loss is
    lambda(sigma) ((k-1)^2 <eta^2> + k^2 sigma^2); checked sample by sample to 3 standard errors."""
    loss = DenoisingLoss()
    b, n, k = 32, 48, 0.7
    eta = torch.full((b, 1, n, n), 0.8)
    den = _Recorder(keep=k)
    per = loss(den, eta, None, torch.Generator().manual_seed(11))
    sigma = den.calls[0][1]
    expect = loss.weight(sigma) * ((k - 1) ** 2 * 0.64 + k**2 * sigma**2)
    # relative spread of the pixel mean of a chi-square-like term: at most sqrt(2 / n^2) * 3
    torch.testing.assert_close(per / expect, torch.ones(b), rtol=0, atol=3 * 2 * math.sqrt(2) / n)


def test_weight_formula_with_sigma_data_not_one():
    sigma = torch.tensor([1e-3, 0.3, 1.0, 7.0, 80.0], dtype=torch.float64)
    for sd in (1.0, 0.5, 2.0):
        got = DenoisingLoss(sigma_data=sd).weight(sigma)
        torch.testing.assert_close(got, 1 / sigma**2 + 1 / sd**2, rtol=1e-12, atol=0)


class _RawRecorder(torch.nn.Module):
    """Score network stand-in: returns a fixed image, remembers its scaled input."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.seen = None

    def forward(self, x, cond, sigma):
        self.seen = (x.clone(), sigma.clone())
        return self.out.expand_as(x) + self.w


@pytest.mark.parametrize("sigma_data", [1.0, 0.5])
def test_preconditioner_scales_input_and_output_at_large_sigma(sigma_data):
    """At sigma = 40 the network must see eta / sqrt(sigma^2 + sigma_d^2), not eta."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 1, 5, 5, dtype=torch.float64, generator=g) * 40
    raw = torch.randn(1, 1, 5, 5, dtype=torch.float64, generator=g)
    net = _RawRecorder(raw)
    den = EDMDenoiser(net, sigma_data=sigma_data)
    sigma = torch.tensor([40.0, 3.0, 0.2], dtype=torch.float64)
    out = den(x, None, sigma)
    s = sigma.reshape(-1, 1, 1, 1)
    sd2 = sigma_data**2
    torch.testing.assert_close(net.seen[0], x / torch.sqrt(s**2 + sd2))
    torch.testing.assert_close(net.seen[1], sigma)
    expected = sd2 / (s**2 + sd2) * x + s * sigma_data / torch.sqrt(s**2 + sd2) * raw
    torch.testing.assert_close(out, expected)
    # the scaled input has about unit variance when eta ~ N(0, sigma^2 + sigma_d^2)
    assert abs(float(net.seen[0][0].std()) - 1.0) < 0.35
