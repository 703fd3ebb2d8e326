"""The score networks' circular 3x3 convolution: torch's outputs and gradients, a cheap backward.

:class:`msinv.learned.networks.cnn.CircularConv2d` pads with its own autograd function whose
backward folds the padded gradient back in one pass; torch's circular padding builds and adds
full-size zero tensors edge by edge (about two thirds of a 96-channel convolution's CPU time).
"""

import pytest
import torch
from torch import nn

from msinv.learned.networks.cnn import CircularConv2d, ScoreCNN, circular_pad1, conv3


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 1, 2, 2), (3, 4, 9, 9)])
def test_circular_pad_and_its_gradient_equal_torch(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="circular")
    up = torch.randn(y.shape, generator=g, dtype=torch.float64)
    (want,) = torch.autograd.grad(y, x, up)
    mine = circular_pad1(x)
    (got,) = torch.autograd.grad(mine, x, up)
    assert torch.equal(mine, y)
    mine = mine.detach()
    torch.testing.assert_close(got, want, rtol=1e-15, atol=1e-15)
    # the adjoint identity <P x, u> = <x, P^T u> with the padding operator P
    assert float((mine * up).sum()) == pytest.approx(float((x.detach() * got).sum()), rel=1e-13)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv3_equals_torch_circular_conv_in_outputs_and_gradients(stride):
    torch.manual_seed(0)
    mine = conv3(6, 4, stride=stride)
    ref = nn.Conv2d(6, 4, 3, stride=stride, padding=1, padding_mode="circular")
    ref.load_state_dict(mine.state_dict())  # same parameters, same names
    x = torch.randn(2, 6, 10, 10, requires_grad=True)
    out, want = mine(x), ref(x)
    assert torch.equal(out, want)
    up = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, mine.weight, mine.bias], up)
    exp = torch.autograd.grad(want, [x, ref.weight, ref.bias], up)
    for a, b in zip(got, exp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_score_cnn_training_step_is_torch_circular_padding_exactly():
    """The whole score CNN: outputs bit for bit, gradients to float32 rounding."""
    torch.manual_seed(0)
    net = ScoreCNN(3, cond_rounds=2, width=24, bottleneck=6, blocks=2, groups=(6, 3))
    g = torch.Generator().manual_seed(1)
    eta, alpha = torch.randn(2, 1, 12, 12, generator=g), torch.randn(2, 3, 12, 12, generator=g)
    sigma = torch.tensor([0.05, 7.0])

    def step():
        net.zero_grad()
        out = net(eta, alpha, sigma)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    out, grads = step()
    for m in net.modules():  # back to torch's own circular padding, same weights
        if isinstance(m, CircularConv2d):
            m.__class__ = nn.Conv2d
    ref_out, ref_grads = step()
    assert torch.equal(out, ref_out)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding_mode", ["mine", "torch"])
def test_conv3_backward_fills_no_full_size_zero_tensor(padding_mode):
    """torch's circular padding zero-fills full-size gradients edge by edge in its backward
    (six here); ours folds the padded gradient back with one copy and no fill."""
    from torch.profiler import ProfilerActivity, profile

    conv = conv3(8, 2)
    if padding_mode == "torch":
        conv.__class__ = nn.Conv2d
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    out = conv(x)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        out.sum().backward()
    fills = sum(
        e.count
        for e in prof.key_averages(group_by_input_shape=True)
        if e.key in ("aten::fill_", "aten::zero_")
        and e.input_shapes
        and torch.Size(e.input_shapes[0]).numel() >= x.numel()
    )
    if padding_mode == "torch":  # the oracle of what this test detects
        assert fills >= 4, fills
    else:
        assert fills == 0, fills
