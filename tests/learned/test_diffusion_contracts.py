"""Contracts of the diffusion pieces: randomness only from the given generator, the validated
ranges at their exact boundaries, the sampling levels' formula, the generator bank's blocks."""

import math

import pytest
import torch

from msinv.learned.diffusion.loss import DenoisingLoss
from msinv.learned.diffusion.sampler import GeneratorBank, sample
from msinv.learned.diffusion.schedule import TangentSchedule, geometric_levels


def _identity(x, cond, sigma):
    return 0.5 * x


def test_loss_randomness_comes_from_its_generator_only():
    loss = DenoisingLoss()
    eta = torch.zeros(6, 1, 4, 4)
    torch.manual_seed(1)
    a = loss(_identity, eta, None, torch.Generator().manual_seed(9))
    torch.manual_seed(2)  # the global stream must not matter
    b = loss(_identity, eta, None, torch.Generator().manual_seed(9))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = loss(_identity, eta, None, torch.Generator().manual_seed(10))
    assert not torch.equal(a, c)
    torch.manual_seed(3)
    s1 = loss.sample_sigma(6, torch.Generator().manual_seed(4))
    torch.manual_seed(4)
    s2 = loss.sample_sigma(6, torch.Generator().manual_seed(4))
    assert torch.equal(s1, s2) and s1.dtype == torch.float32 and s1.device.type == "cpu"


def test_sampler_randomness_comes_from_its_generator_only():
    sig = geometric_levels(5)
    x_T = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(1)
    a = sample(_identity, x_T, sig, None, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(2)
    b = sample(_identity, x_T, sig, None, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    c = sample(_identity, x_T, sig, None, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)


def test_generator_bank_blocks_are_independent_of_their_neighbours():
    bank = GeneratorBank([torch.Generator().manual_seed(s) for s in (1, 2)], [2, 3])
    x = bank.randn((5, 4), dtype=torch.float64, device="cpu")
    torch.testing.assert_close(
        x[:2], torch.randn((2, 4), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    )
    torch.testing.assert_close(
        x[2:], torch.randn((3, 4), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    )
    # a datum's draws do not depend on the other data of the batch
    alone = GeneratorBank([torch.Generator().manual_seed(2)], [3])
    sig, x_T = geometric_levels(4), torch.zeros(5, 1, 1, 1, dtype=torch.float64)
    both = sample(
        _identity,
        x_T,
        sig,
        None,
        generator=GeneratorBank(
            [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)], [2, 3]
        ),
    )
    one = sample(_identity, x_T[2:], sig, None, generator=alone)
    torch.testing.assert_close(both[2:], one)
    with pytest.raises(Exception, match="one generator per block"):
        GeneratorBank([torch.Generator()], [1, 2])
    with pytest.raises(Exception, match="5 rows"):
        GeneratorBank([torch.Generator()], [2]).randn((5, 1), dtype=torch.float64, device="cpu")


def test_sampler_accepts_two_levels_and_reports_every_step():
    seen = []
    x_T = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    out = sample(
        _identity,
        x_T,
        torch.tensor([10.0, 1.0]),
        None,
        generator=torch.Generator().manual_seed(0),
        callback=lambda i, x: seen.append(i),
    )
    assert out.shape == (2, 1, 2, 2) and seen == [0]
    seen.clear()
    sample(
        _identity,
        x_T,
        geometric_levels(6),
        None,
        generator=torch.Generator(),
        callback=lambda i, x: seen.append(i),
    )
    assert seen == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="decreasing"):
        sample(_identity, x_T, torch.tensor([1.0]), None, generator=torch.Generator())
    # strictly: a repeated level (a zero step) or an increasing pair is refused too
    for bad in ([1.0, 0.5, 0.5, 0.1], [1.0, 0.5, 0.6], [[1.0, 0.5]]):
        with pytest.raises(ValueError, match="strictly decreasing"):
            sample(_identity, x_T, torch.tensor(bad), None, generator=torch.Generator())


def test_validated_ranges_at_their_boundaries():
    TangentSchedule(sigma_max=0.5, a=0.5)  # valid
    for bad in (dict(sigma_max=0.0), dict(a=0.0), dict(a=math.pi / 2)):
        with pytest.raises(ValueError, match="must be"):
            TangentSchedule(**bad)
    DenoisingLoss(sigma_min=99.0)  # valid, below sigma_max = 100
    for bad in (0.0, 100.0):
        with pytest.raises(ValueError, match=r"sigma_min must be in \(0, 100"):
            DenoisingLoss(sigma_min=bad)


def test_geometric_levels_formula_and_limits():
    lv = geometric_levels(3, sigma_max=8.0, ratio=0.25)
    torch.testing.assert_close(lv, torch.tensor([8.0, 4.0, 2.0], dtype=torch.float64))
    assert geometric_levels(2).shape == (2,)
    for kwargs in (dict(n_levels=1), dict(ratio=1.0), dict(ratio=0.0)):
        with pytest.raises(ValueError, match="must be"):
            geometric_levels(**kwargs)


def test_sampler_hands_the_conditioning_to_every_denoiser_call():
    """The exact denoiser of N(m, v) given the conditioning m: the draws centre on m."""
    m = torch.tensor([[[[2.0, -1.0]]]], dtype=torch.float64)
    v = 0.04

    def denoiser(x, cond, sigma):
        s2 = sigma.reshape(-1, 1, 1, 1) ** 2
        return cond + v / (v + s2) * (x - cond)

    x_T = torch.randn(400, 1, 1, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = sample(denoiser, x_T, geometric_levels(64), m, generator=torch.Generator().manual_seed(1))
    assert float((out.mean(0) - m[0]).abs().max()) < 5 * math.sqrt(v / 400)


def test_the_denoiser_gets_one_noise_level_per_sample():
    """Each denoiser call gets sigma of shape (b,), one level per sample of the batch, all
    equal to the step's level (networks embed sigma per sample: a (1,) tensor would only
    broadcast by luck)."""
    seen = []

    def denoiser(x, cond, sigma):
        seen.append((tuple(sigma.shape), float(sigma.min()), float(sigma.max())))
        return torch.zeros_like(x)

    x_T = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    levels = geometric_levels(5)
    sample(denoiser, x_T, levels, None, generator=torch.Generator().manual_seed(1))
    assert len(seen) >= levels.numel() - 1 and all(s[0] == (3,) for s in seen)
    assert all(lo == hi for _, lo, hi in seen)


def test_denoiser_sees_the_vp_state_divided_by_its_scale_at_every_level():
    """The VP state is x = s(sigma) (eta + sigma n) with s = 1 / sqrt(1 + sigma^2): each
    denoiser call gets x / s(sigma) at its level, so the first sees x_T sqrt(1 + sigma_0^2)
    and call i > 0 the state after step i - 1 times sqrt(1 + sigma_i^2) (the last included)."""
    sigmas = geometric_levels(12)
    seen, states = [], []

    def denoiser(x, cond, sigma):
        seen.append((x.clone(), float(sigma[0])))
        return 0.3 * x

    x_T = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sample(
        denoiser,
        x_T,
        sigmas,
        None,
        generator=torch.Generator().manual_seed(4),
        callback=lambda i, x: states.append(x.clone()),
    )
    assert [s for _, s in seen] == pytest.approx(sigmas.tolist(), rel=1e-12)
    for i, (x_in, sigma) in enumerate(seen):
        before = x_T if i == 0 else states[i - 1]
        torch.testing.assert_close(x_in, before * math.sqrt(1 + sigma**2), rtol=1e-12, atol=0)


def test_default_schedule_and_loss_are_the_papers():
    """sigma(t) = 100 tan(1.5 t) / tan(1.5), training noise from sigma = 1e-4 up (the paper's
    recipe, spec learned.md), and 256 sampling levels 100 (1e-5)^(i/255)."""
    from msinv.learned.diffusion.loss import DenoisingLoss

    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    expected = 100 * torch.tan(1.5 * t) / math.tan(1.5)
    torch.testing.assert_close(TangentSchedule().sigma(t), expected, rtol=1e-14, atol=0)
    loss = DenoisingLoss()
    assert loss.sigma_min == 1e-4 and loss.schedule == TangentSchedule()
    # and the images it sees are normalised to unit standard deviation (Normalisation)
    assert loss.sigma_data == 1.0
    levels = geometric_levels()
    i = torch.arange(256, dtype=torch.float64)
    torch.testing.assert_close(levels.double(), 100 * 1e-5 ** (i / 255), rtol=1e-6, atol=0)


def test_a_loss_on_another_schedule_draws_its_levels_from_that_schedule():
    """DenoisingLoss(schedule=S) uses S both for its range check (sigma_min below S's
    sigma_max: 20 is a valid floor under the default sigma_max 100, not under 10) and for the
    levels it draws, one per stratum of t in [S^-1(sigma_min), 1]: the largest level drawn
    tends to S's sigma_max, not the default's."""
    small = TangentSchedule(sigma_max=10.0, a=1.2)
    DenoisingLoss(sigma_min=20.0)  # valid under the default schedule
    with pytest.raises(ValueError, match=r"sigma_min must be in \(0, 10\.0\), got 20\.0"):
        DenoisingLoss(schedule=small, sigma_min=20.0)
    loss = DenoisingLoss(schedule=small, sigma_min=1e-3)
    sig = loss.sample_sigma(200, torch.Generator().manual_seed(3)).double()
    t = small.inverse(sig)
    t_min = float(small.inverse(torch.tensor(1e-3, dtype=torch.float64)))
    edges = t_min + (1 - t_min) * torch.arange(201, dtype=torch.float64) / 200
    assert bool(torch.all((t >= edges[:-1] - 1e-6) & (t <= edges[1:] + 1e-6)))
    assert 9.0 < float(sig.max()) <= 10.0 and float(sig.min()) >= 1e-3 * (1 - 1e-6)


def test_the_sampler_maps_levels_to_times_with_the_schedule_it_is_given():
    """sample(schedule=S) integrates in S's time: the levels go through S.inverse and the
    drift through S.derivative at those times (seen by a wrapper around S), and the draws
    differ from those of the default schedule with the same levels and noise."""
    small = TangentSchedule(sigma_max=10.0, a=1.2)
    seen = []

    class Spy:
        def inverse(self, sigma):
            seen.append(("inverse", sigma.clone()))
            return small.inverse(sigma)

        def derivative(self, t):
            seen.append(("derivative", float(t)))
            return small.derivative(t)

    levels = geometric_levels(4, sigma_max=8.0, ratio=0.5).double()
    x_T = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def run(schedule):
        gen = torch.Generator().manual_seed(1)
        return sample(_identity, x_T, levels, None, generator=gen, schedule=schedule)

    with_spy = run(Spy())
    torch.testing.assert_close(with_spy, run(small), rtol=0, atol=0)
    assert not torch.allclose(with_spy, run(None))
    assert seen[0][0] == "inverse" and torch.equal(seen[0][1], levels)
    times = small.inverse(levels)
    assert [v for k, v in seen if k == "derivative"] == pytest.approx(times[:-1].tolist())


def test_the_sampler_integrates_in_double_precision_whatever_the_levels_dtype():
    """Levels given in float32 are used as their float64 values: the same draws as the
    float64 levels, to the last bit, and the denoiser is handed float64 noise levels."""
    levels = geometric_levels(12).to(torch.float32)
    seen = []

    def denoiser(x, cond, sigma):
        seen.append(sigma.dtype)
        return 0.5 * x

    x_T = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    runs = [
        sample(denoiser, x_T, lv, None, generator=torch.Generator().manual_seed(2))
        for lv in (levels, levels.to(torch.float64))
    ]
    assert torch.equal(runs[0], runs[1])
    assert set(seen) == {torch.float64}


def test_a_bank_of_one_block_draws_what_its_generator_draws():
    """The Brownian increments are float64 standard normals from the generator: a bank of one
    block over the whole batch gives the plain generator's samples to the bit."""
    x_T = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    levels = geometric_levels(8)
    plain = sample(_identity, x_T, levels, None, generator=torch.Generator().manual_seed(5))
    bank = GeneratorBank([torch.Generator().manual_seed(5)], [3])
    assert torch.equal(sample(_identity, x_T, levels, None, generator=bank), plain)
