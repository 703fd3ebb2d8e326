"""The model registry build(name, n, n_freq): every name, sub-modules, parameter counts."""

import pytest
import torch

from msinv.learned.models import MODELS, build

TINY = {"score": {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": (3, 3)}}

pytestmark = pytest.mark.usefixtures("no_grad")


def _count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", ["equinet-cnn", "b-equinet-cnn", "analytical-cnn", "none-cnn"])
def test_diffusion_models_have_score_and_backprojection(name):
    n, nf = 16, 2
    model = build(name, n=n, n_freq=nf, freqs=[1.0, 2.0], **TINY)
    assert model.kind == "diffusion"
    assert hasattr(model, "backprojection")
    g = torch.Generator().manual_seed(0)
    data = torch.randn(2, nf, n, n, dtype=torch.complex64, generator=g)
    alpha = model.backprojection(data)
    assert alpha.shape == (2, model.backprojection.out_channels, n, n)
    out = model.score(torch.randn(2, 1, n, n, generator=g), alpha, torch.tensor([0.5, 2.0]))
    assert out.shape == (2, 1, n, n)
    loss = model.training_loss(torch.randn(2, 1, n, n, generator=g), data, g)
    assert loss.shape == (2,) and bool(torch.isfinite(loss).all())


def test_deterministic_model():
    model = build("equinet", n=16, n_freq=2, head={"rounds": 2})
    assert model.kind == "deterministic" and hasattr(model, "backprojection")
    data = torch.randn(
        3, 2, 16, 16, dtype=torch.complex64, generator=torch.Generator().manual_seed(1)
    )
    assert model(data).shape == (3, 1, 16, 16)


def test_none_front_end_resamples_raw_data():
    model = build(
        "none-uvit",
        n=16,
        n_freq=3,
        score={"widths": (16, 32), "blocks": 1, "depth": 1, "heads": 2, "emb_dim": 32},
    )
    data = torch.randn(
        1, 3, 12, 12, dtype=torch.complex64, generator=torch.Generator().manual_seed(2)
    )
    assert model.backprojection(data).shape == (1, 6, 16, 16)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="equinet-cnn"):
        build("resnet")


def test_registry_names_are_the_issue_list():
    assert set(MODELS) == {
        "equinet-cnn",
        "b-equinet-cnn",
        "analytical-cnn",
        "switchnet-cnn",
        "widebnet-cnn",
        "none-cnn",
        "equinet-uvit",
        "none-uvit",
        "equinet",
        "b-equinet",
        "switchnet",
        "widebnet",
    }


def test_parameter_counts_at_80_match_paper():
    """EquiNet-CNN 530,095 and B-EquiNet-CNN 434,479 in the reference (within 1%)."""
    for name, ref in [("equinet-cnn", 530_095), ("b-equinet-cnn", 434_479)]:
        count = _count(build(name, n=80, n_freq=3, freqs=[2.5, 5.0, 10.0]))
        assert abs(count - ref) <= 0.01 * ref, (name, count, ref)
