"""Back-scattering networks: exact rotation equivariance, parameter counts, shapes, gradients."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from msinv.learned.backprojection import NAMES, build_backprojection, rotate_image
from msinv.learned.backprojection.butterfly import BilinearBlockLayer, butterfly_levels
from msinv.learned.backprojection.polar import (
    PolarToCartesian,
    node_coordinates,
    polar_to_cartesian_taps,
)
from msinv.learned.backprojection.widebnet import morton_order

FREQS = (2.5, 5.0, 10.0)


def _data(rng, b, n_freq, n_sc, dtype=torch.complex128):
    z = rng.standard_normal((b, n_freq, n_sc, n_sc, 2))
    return torch.from_numpy(z[..., 0] + 1j * z[..., 1]).to(dtype)


def _build(name, n, n_freq=1):
    torch.manual_seed(0)
    return build_backprojection(name, n, n_freq, freqs=FREQS[:n_freq])


def _roll(data, k):
    shift = k * data.shape[-1] // 4
    return torch.roll(data, (shift, shift), dims=(-2, -1))


# ---------------------------------------------------------------- equivariance


@pytest.mark.parametrize("name", ["equinet", "b-equinet", "analytical"])
def test_quarter_turns_of_the_acquisition_turn_the_image(name, rng):
    model = _build(name, 20, n_freq=2).double()
    data = _data(rng, 2, 2, 20)
    alpha = model(data)
    scale = alpha.abs().max()
    for k in (1, 2, 3):
        err = (model(_roll(data, k)) - rotate_image(alpha, k)).abs().max() / scale
        assert err < 1e-12, (name, k, float(err))
    # the opposite turn is not a symmetry: the check above can fail
    wrong = (model(_roll(data, 1)) - rotate_image(alpha, -1)).abs().max() / scale
    assert wrong > 1e-2


def test_equivariance_in_float32_to_rounding(rng):
    model = _build("equinet", 40, n_freq=1)
    data = _data(rng, 1, 1, 40, torch.complex64)
    alpha = model(data)
    err = (model(_roll(data, 1)) - rotate_image(alpha, 1)).abs().max() / alpha.abs().max()
    assert err < 1e-6


def test_baselines_are_not_equivariant(rng):
    model = _build("switchnet", 20).double()
    data = _data(rng, 1, 1, 20)
    err = (model(_roll(data, 1)) - rotate_image(model(data), 1)).abs().max()
    assert err > 1e-3


def test_rotate_image_turns_counter_clockwise_with_rows_y():
    n = 8
    x = node_coordinates(n)
    img = torch.zeros(n, n)
    img[n // 2, n - 1] = 1.0  # the node on the +x side, just above the axis
    turned = rotate_image(img, 1)
    iy, ix = np.argwhere(turned.numpy() == 1.0)[0]
    # (x, y) -> (-y, x): the bump moves to the +y side, just left of the axis
    assert x[iy] == pytest.approx(x[n - 1]) and x[ix] == pytest.approx(-x[n // 2])


# ---------------------------------------------------------------- polar grid


def test_polar_to_cartesian_is_exactly_equivariant(rng):
    n, n_sc = 16, 12
    op = PolarToCartesian(n, n_sc).double()
    polar = torch.from_numpy(rng.standard_normal((3, n_sc, n)))
    image = op(polar)
    for k in (1, 2, 3):
        assert torch.equal(op(torch.roll(polar, k * n_sc // 4, dims=-2)), rotate_image(image, k))


def test_polar_to_cartesian_interpolates_a_smooth_field():
    n = 40
    index, weight = polar_to_cartesian_taps(n, n)
    np.testing.assert_allclose(weight.sum(1), 1.0, atol=1e-12)

    def field(x, y):
        return np.exp(-((x - 0.1) ** 2 + (y + 0.05) ** 2) / 0.02)

    theta = 2 * np.pi * np.arange(n) / n
    rho = np.arange(n) / (2 * (n - 1))
    polar = field(rho[None] * np.cos(theta[:, None]), rho[None] * np.sin(theta[:, None]))
    image = (polar.ravel()[index] * weight).sum(1).reshape(n, n)
    x = node_coordinates(n)
    exact = field(x[None, :], x[:, None])  # rows = y
    inside = np.hypot(x[None, :], x[:, None]) < 0.45
    assert np.abs(image - exact)[inside].max() < 5e-3
    assert np.abs(image - exact)[inside].max() > 0  # interpolation, not a copy


def test_grid_size_errors_are_one_line():
    with pytest.raises(ValueError, match="even integer"):
        build_backprojection("equinet", 41, 1)
    with pytest.raises(ValueError, match="multiple of 4"):
        build_backprojection("equinet", 40, 1, n_sc=42)
    with pytest.raises(ValueError, match="expected one of"):
        build_backprojection("unet", 40, 1)
    with pytest.raises(ValueError, match="freqs"):
        build_backprojection("analytical", 40, 3)
    with pytest.raises(ValueError, match="butterfly size"):
        butterfly_levels(6)


def test_data_errors_name_the_expected_layout():
    model = _build("equinet", 16)
    with pytest.raises(ValueError, match="complex"):
        model(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(b, 1, 16, 16\)"):
        model(torch.zeros(1, 2, 16, 16, dtype=torch.complex64))


# ---------------------------------------------------------------- counts and shapes


def test_parameter_counts_at_n80_three_frequencies():
    counts = {
        name: sum(p.numel() for p in build_backprojection(name, 80, 3, freqs=FREQS).parameters())
        for name in NAMES
    }
    assert counts["equinet"] == 3 * 8 * (80 + 80 * 80) == 155_520
    assert counts["b-equinet"] == 3 * 19_968 == 59_904
    # with the reference CNN (374,575): 530,095 and 434,479 exactly, as published
    assert counts["equinet"] + 374_575 == 530_095
    assert counts["b-equinet"] + 374_575 == 434_479
    assert counts["switchnet"] == 3 * 3_109_120
    assert counts["widebnet"] == 1_820_160
    assert counts["analytical"] == 0


@pytest.mark.parametrize("n", [40, 60, 80, 120, 160])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_for_the_paper_grid_sizes(name, n, rng):
    model = _build(name, n)
    with torch.no_grad():
        out = model(_data(rng, 1, 1, n, torch.complex64))
    assert out.shape == (1, model.out_channels, n, n)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert model.out_channels == {"analytical": 2}.get(name, 1)


def test_butterfly_levels_fit_the_paper_sizes():
    assert [butterfly_levels(n) for n in (40, 60, 80, 120, 160)] == [
        (3, 5), (2, 15), (4, 5), (3, 15), (5, 5),
    ]  # fmt: skip


# ---------------------------------------------------------------- internals and gradients


def _layer_ref(w, x_re, x_im):
    """The published two-sided layer on natural (batch, G, p, G, p) block matrices."""

    def two(x, a, c):
        return torch.einsum("gpk,bgphq,hql->bgkhl", w[a], x, w[c])

    y_re = two(x_re, 0, 0) + two(x_re, 1, 1) + two(x_im, 2, 3) + two(x_im, 3, 2)
    y_im = two(x_im, 4, 4) + two(x_im, 5, 5) + two(x_re, 6, 7) + two(x_re, 7, 6)
    return y_re, y_im


def _pair_layout(x_re, x_im):  # natural (batch, G, p, G, p) pair -> (G, 2, p, G, p, batch)
    return torch.stack([x_re, x_im], 0).permute(2, 0, 3, 4, 5, 1)


@pytest.mark.parametrize("split", [False, True])
def test_bilinear_block_layer_matches_its_formula(rng, split):
    layer = BilinearBlockLayer(3, 4, 2).double()
    x_re, x_im = (torch.from_numpy(rng.standard_normal((2, 3, 4, 3, 4))) for _ in range(2))
    ref_re, ref_im = _layer_ref(layer.weight, x_re, x_im)
    got = layer(_pair_layout(x_re, x_im), split=split)
    want = _pair_layout(
        ref_re.transpose(1, 3).transpose(2, 4), ref_im.transpose(1, 3).transpose(2, 4)
    )
    if split:  # block g of size 2 becomes blocks 2g, 2g + 1 of size 1 on both axes
        want = want.reshape(3, 2, 2, 1, 3, 2, 1, 2).transpose(1, 2).reshape(6, 2, 1, 6, 1, 2)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)  # the layer returns Y^T
    if not split:  # the transposition is real: Y itself differs
        assert not torch.allclose(got, _pair_layout(ref_re, ref_im))


def _butterfly_ref(net, rotated):
    """ButterflyPolar written out on natural (batch, G, r, G, r) block matrices."""
    b, n_rot, n, _ = rotated.shape
    blocks, s, levels = 2**net.levels, net.leaf, net.levels
    x_re = rotated.real.reshape(b * n_rot, blocks, s, blocks, s)
    x_im = rotated.imag.reshape(b * n_rot, blocks, s, blocks, s)
    x_re, x_im = _layer_ref(net.v.weight, x_re, x_im)

    def merge(x, level):
        nb, _, r, _, _ = x.shape
        half, width = 2 ** (levels - level - 1), 2**level
        x = x.reshape(nb, half, 2, width, r, half, 2, width, r).permute(0, 1, 3, 2, 4, 5, 7, 6, 8)
        return x.reshape(nb, half * width, 2 * r, half * width, 2 * r)

    for level, layer in enumerate(net.mix):
        if level == levels // 2:
            for middle in net.middle:
                y_re, y_im = _layer_ref(middle.weight, x_re, x_im)
                x_re, x_im = x_re + torch.relu(y_re), x_im + torch.relu(y_im)
        x_re, x_im = _layer_ref(layer.weight, merge(x_re, level), merge(x_im, level))
        nb, g, r2 = x_re.shape[:3]
        x_re, x_im = (x.reshape(nb, 2 * g, r2 // 2, 2 * g, r2 // 2) for x in (x_re, x_im))
    idx = torch.arange(blocks)
    d_re, d_im = x_re[:, idx, :, idx], x_im[:, idx, :, idx]  # (blocks, batch, r, r)
    u = net.u
    diag = sum(
        torch.einsum("cbpq,cpk,cqk->bck", d, u[i], u[j])
        for d, i, j in ((d_re, 0, 1), (d_re, 2, 3), (d_im, 4, 5), (d_im, 6, 7))
    )
    return diag.reshape(b, n_rot, n)


@pytest.mark.parametrize(("n", "n_residual"), [(20, 6), (40, 3), (24, 1), (80, 2)])
def test_butterfly_polar_equals_the_layer_by_layer_formula(rng, n, n_residual):
    from msinv.learned.backprojection.butterfly import ButterflyPolar

    torch.manual_seed(0)
    net = ButterflyPolar(n, n_residual=n_residual).double()
    rotated = torch.from_numpy(
        rng.standard_normal((2, 3, n, n)) + 1j * rng.standard_normal((2, 3, n, n))
    )
    with torch.no_grad():
        got, want = net(rotated), _butterfly_ref(net, rotated)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10 * float(want.abs().max()))


def test_analytical_equals_the_dense_born_adjoint(rng):
    n, n_sc, freq, radius = 8, 8, 3.0, 0.7
    geom = SimpleNamespace(
        source_angles=np.pi + 2 * np.pi * np.arange(n_sc) / n_sc,
        receiver_angles=2 * np.pi * np.arange(n_sc) / n_sc,
        receiver_radius=radius,
    )
    model = build_backprojection("analytical", n, 1, freqs=[freq], geometry=geom).double()
    data = _data(rng, 1, 1, n_sc)
    out = model(data)[0].numpy()
    # dense F[(r, s), y] written out independently
    omega, h = 2 * np.pi * freq, 1 / (n - 1)
    x = np.linspace(-0.5, 0.5, n)
    yy, xx = np.meshgrid(x, x, indexing="ij")
    sd = np.stack([np.cos(geom.source_angles), np.sin(geom.source_angles)], 1)
    rd = np.stack([np.cos(geom.receiver_angles), np.sin(geom.receiver_angles)], 1)
    diff = sd[None, :, :] - rd[:, None, :]  # (r, s, 2)
    phase = diff[..., 0, None] * xx.ravel() + diff[..., 1, None] * yy.ravel()
    amp = omega**2 * np.exp(1j * (np.pi / 4 + omega * radius)) / np.sqrt(8 * np.pi * omega * radius)
    dense = (amp * h**2 * np.exp(1j * omega * phase)).reshape(n_sc * n_sc, n * n)
    alpha = (dense.conj().T @ data[0, 0].numpy().ravel()).reshape(n, n)
    np.testing.assert_allclose(out[0], alpha.real, rtol=1e-10, atol=1e-12 * np.abs(alpha).max())
    np.testing.assert_allclose(out[1], alpha.imag, rtol=1e-10, atol=1e-12 * np.abs(alpha).max())


def test_morton_order_visits_quadrants_in_z_order():
    order = morton_order(1, 2)  # 4 x 4, leaves of 2 x 2
    assert order.tolist() == [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    assert sorted(morton_order(3, 5).tolist()) == list(range(40 * 40))


@pytest.mark.parametrize("name", ["b-equinet", "equinet", "widebnet"])
def test_gradients_flow_gradcheck_float64(name, rng):
    n = 20
    model = _build(name, n).double()
    data = _data(rng, 1, 1, n).requires_grad_(True)
    assert torch.autograd.gradcheck(model, (data,), fast_mode=True, eps=1e-6, atol=1e-5)
    model(data.detach()).square().sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


def test_equinet_from_born_reproduces_the_analytical_back_projection(rng):
    # low frequency, inside the disk the polar grid covers: interpolation error only
    n, freq = 40, 1.0
    equinet = build_backprojection("equinet", n, 1)
    born = type(equinet).from_born(n, [freq]).double()
    analytical = build_backprojection("analytical", n, 1, freqs=[freq]).double()
    data = _data(rng, 2, 1, n)
    with torch.no_grad():
        ours, ref = born(data)[:, 0], analytical(data)[:, 0]  # channel 0: real part
    x = node_coordinates(n)
    inside = torch.from_numpy(np.hypot(x[None, :], x[:, None]) < 0.45)
    err = (ours - ref).abs()[:, inside].max() / ref.abs().max()
    assert err < 1e-2
    # the imaginary part is a different image: the comparison discriminates
    other = analytical(data)[:, 1]
    assert (ours - other).abs()[:, inside].max() / ref.abs().max() > 0.1
