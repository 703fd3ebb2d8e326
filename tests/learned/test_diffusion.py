"""Schedule invariants, preconditioning, loss, EMA and the sampler against an exact posterior."""

import math

import pytest
import torch

from msinv.learned.diffusion.ema import ema_decay, ema_model
from msinv.learned.diffusion.loss import DenoisingLoss
from msinv.learned.diffusion.precond import EDMDenoiser
from msinv.learned.diffusion.sampler import sample
from msinv.learned.diffusion.schedule import TangentSchedule, geometric_levels


def test_schedule_monotone_inverse_derivative():
    sch = TangentSchedule()
    t = torch.linspace(0.0, 1.0, 1001, dtype=torch.float64)
    s = sch.sigma(t)
    assert s[0] == 0 and math.isclose(float(s[-1]), 100.0, rel_tol=1e-12)
    assert bool(torch.all(s[1:] > s[:-1]))
    torch.testing.assert_close(sch.inverse(s), t, rtol=0, atol=1e-12)
    sig = torch.logspace(-6, 2, 50, dtype=torch.float64)
    torch.testing.assert_close(sch.sigma(sch.inverse(sig)), sig, rtol=1e-12, atol=0)
    h = 1e-6
    tt = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    fd = (sch.sigma(tt + h) - sch.sigma(tt - h)) / (2 * h)
    torch.testing.assert_close(sch.derivative(tt), fd, rtol=1e-7, atol=0)


def test_schedule_rejects_bad_parameters():
    with pytest.raises(ValueError, match="a must be in"):
        TangentSchedule(a=2.0)


def test_geometric_levels_match_paper():
    lv = geometric_levels()
    assert lv.shape == (256,)
    assert math.isclose(float(lv[0]), 100.0) and math.isclose(float(lv[-1]), 1e-3, rel_tol=1e-12)
    assert bool(torch.all(lv[1:] < lv[:-1]))


class _Ident(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, cond, sigma):
        return self.w * x


def test_precond_coefficients_edm():
    den = EDMDenoiser(_Ident())
    sigma = torch.tensor([1e-3, 1.0, 50.0], dtype=torch.float64)
    c_skip, c_out, c_in = den.coefficients(sigma)
    torch.testing.assert_close(c_skip.flatten(), 1 / (1 + sigma**2))
    torch.testing.assert_close(c_out.flatten(), sigma / torch.sqrt(1 + sigma**2))
    torch.testing.assert_close(c_in.flatten(), 1 / torch.sqrt(1 + sigma**2))
    # the skip connection carries eta at small sigma
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = den(x, None, sigma)
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=2e-3 * float(x.abs().max()))


def test_loss_stratified_sigma_and_weight():
    loss = DenoisingLoss()
    g = torch.Generator().manual_seed(1)
    sig = loss.sample_sigma(64, g).double()
    t = loss.schedule.inverse(sig)
    t_min = float(loss.schedule.inverse(torch.tensor(1e-4, dtype=torch.float64)))
    edges = t_min + (1 - t_min) * torch.arange(65, dtype=torch.float64) / 64
    assert bool(torch.all((t >= edges[:-1] - 1e-6) & (t <= edges[1:] + 1e-6)))  # one per stratum
    # the exact denoiser of a point mass at 0 has zero loss; the identity has lambda*sigma^2
    eta = torch.zeros(64, 1, 4, 4)
    per = loss(lambda x, c, s: torch.zeros_like(x), eta, None, torch.Generator().manual_seed(2))
    assert per.shape == (64,) and float(per.abs().max()) == 0.0


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_rule(warmup):
    lin = torch.nn.Linear(2, 1, bias=False)
    ema = ema_model(lin, 0.9, warmup=warmup)
    w = [lin.weight.detach().clone()]
    ema.update_parameters(lin)  # first update copies
    torch.testing.assert_close(ema.module.weight, w[0])
    expected = w[0]
    for k in range(1, 40):
        with torch.no_grad():
            lin.weight.add_(float(k))
        ema.update_parameters(lin)
        d = min(0.9, (1 + k) / (10 + k)) if warmup else 0.9
        expected = d * expected + (1 - d) * lin.weight.detach()
        torch.testing.assert_close(ema.module.weight, expected)
    # the warm-up forgets the initial weights much faster than the plain rule
    assert ema_decay(0.999, 10) == 11 / 20 and ema_decay(0.999, 10, warmup=False) == 0.999
    assert ema_decay(0.999, 10**6) == 0.999
    with pytest.raises(ValueError, match="decay"):
        ema_model(lin, 1.0)


def test_ema_copies_integer_buffers():
    """Models hold integer index buffers (the polar interpolation): copied, not averaged."""
    net = torch.nn.Linear(2, 1)
    net.register_buffer("index", torch.arange(4))
    ema = ema_model(net, 0.999)
    ema.update_parameters(net)
    net.index.add_(1)
    ema.update_parameters(net)
    assert torch.equal(ema.module.index, torch.arange(1, 5))


def test_sampler_reproduces_gaussian_posterior():
    """Prior eta ~ N(mu0, v0) per pixel, data y = a eta + N(0, r): the posterior is Gaussian
    N(m, v) and the exact denoiser is D(x, sigma) = m + v / (v + sigma^2) (x - m). The draws
    follow N(m, v), and so does every intermediate state of the scaled SDE: at level sigma,
    x = s (eta + sigma eps) with s = 1 / sqrt(1 + sigma^2) is N(s m, s^2 (v + sigma^2)) (a
    drift wrong at large sigma is forgotten by the end, not along the way)."""
    g = torch.Generator().manual_seed(3)
    n_pix = 16
    mu0 = torch.linspace(-0.5, 0.5, n_pix, dtype=torch.float64)
    v0 = torch.linspace(0.3, 1.5, n_pix, dtype=torch.float64)
    a, r = 1.3, 0.4
    y = a * (mu0 + v0.sqrt() * torch.randn(n_pix, generator=g, dtype=torch.float64))
    v = 1.0 / (1.0 / v0 + a * a / r)
    m = v * (mu0 / v0 + a * y / r)

    def denoiser(x, cond, sigma):
        s2 = sigma.reshape(-1, 1, 1, 1) ** 2
        mm, vv = m.reshape(1, 1, 1, -1), v.reshape(1, 1, 1, -1)
        return mm + vv / (vv + s2) * (x - mm)

    draws, levels, states = 4000, geometric_levels(), {}

    def keep(i, x):
        if i in (20, 60, 100, 140):  # sigma about 39, 6.4, 1.05, 0.17 after the step
            states[float(levels[i + 1])] = x.reshape(draws, n_pix).clone()

    x_T = torch.randn(draws, 1, 1, n_pix, generator=g, dtype=torch.float64)
    out = sample(denoiser, x_T, levels, None, generator=g, callback=keep).reshape(draws, n_pix)
    states[0.0] = out
    assert len(states) == 5
    for sigma, x in states.items():
        s2 = 1.0 / (1.0 + sigma**2)
        mean_exact, var_exact = math.sqrt(s2) * m, s2 * (v + sigma**2)
        mean, var = x.mean(0), x.var(0)
        # 5 standard errors of the sample mean and sample variance (Gaussian)
        z = (mean - mean_exact) / torch.sqrt(var_exact / draws)
        assert bool(torch.all(z.abs() < 5)), (sigma, z)
        ratio = var / var_exact
        assert bool(torch.all((ratio - 1).abs() < 5 * math.sqrt(2 / (draws - 1)))), (sigma, ratio)


def test_sampler_rejects_increasing_levels():
    with pytest.raises(ValueError, match="decreasing"):
        sample(
            lambda x, c, s: x,
            torch.zeros(1, 1, 2, 2),
            torch.tensor([1.0, 2.0]),
            None,
            generator=torch.Generator(),
        )
