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


SMALL_SCORE = {
    "cnn": {"cond_rounds": 2, "width": 12, "bottleneck": 6, "blocks": 1, "groups": (3, 3)},
    "uvit": {"widths": (16, 32), "blocks": 1, "depth": 1, "heads": 2, "emb_dim": 32},
}


@pytest.mark.parametrize("n_freq", [1, 2, 3])
@pytest.mark.parametrize("name", [k for k, v in MODELS.items() if v[1] is not None])
def test_conditioning_features_depend_on_the_data(name, n_freq):
    """At a typical pixel the conditioning features respond to a change of the data.

    Measured in float64 as the median over pixels of |f(d + eps delta) - f(d)| / eps (norm over
    the feature channels), with d scaled so that alpha = F*(d) has unit RMS and |delta| = |d|.
    A LayerNorm over alpha's channels at each pixel (the reference's layer) makes this 0 for
    C = 1 (constant output) and 0.02 to 0.12 for C = 2 (only the sign of alpha_1 - alpha_2
    survives; what responds are the convolutions next to the few pixels where
    alpha_1 ~ alpha_2); data-carrying conditioning gives 0.5 to 2.4.
    """
    n = 16
    torch.manual_seed(0)
    model = build(
        name,
        n=n,
        n_freq=n_freq,
        freqs=[1.0, 2.0, 4.0][:n_freq],
        score=SMALL_SCORE[MODELS[name][1]],
    ).double()
    g = torch.Generator().manual_seed(1)
    data = torch.randn(2, n_freq, n, n, dtype=torch.complex128, generator=g)
    delta = torch.randn(2, n_freq, n, n, dtype=torch.complex128, generator=g)
    data = data / model.backprojection(data).pow(2).mean().sqrt()
    delta = delta * data.norm() / delta.norm()
    eps = 1e-6
    f0, f1 = (model.condition(data + t * delta).tensor for t in (0.0, eps))
    response = ((f1 - f0).norm(dim=1) / eps).median()
    assert float(response) > 0.25, (name, n_freq, float(response))


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


def test_architecture_1_rebuilds_checkpoints_trained_before_the_film_and_norm_fixes():
    from msinv.learned.models import ARCHITECTURE
    from msinv.learned.networks.cnn import ChannelLayerNorm

    assert ARCHITECTURE == 2
    old = build("equinet-cnn", n=16, n_freq=3, score=dict(SMALL_SCORE["cnn"]), architecture=1)
    assert isinstance(old.score.norm, ChannelLayerNorm)  # its default was the "layer" norm
    assert not old.score.blocks[0].film_swish
    new = build("equinet-cnn", n=16, n_freq=3, score=dict(SMALL_SCORE["cnn"]))
    assert isinstance(new.score.norm, torch.nn.GroupNorm) and new.score.blocks[0].film_swish
    assert _count(old) == _count(new)  # same weights, so old state dicts load
    with pytest.raises(ValueError, match="only a sign"):  # degenerate old models are refused
        build("equinet-cnn", n=16, n_freq=2, score=dict(SMALL_SCORE["cnn"]), architecture=1)
    with pytest.raises(ValueError, match="retrain"):
        build("equinet-uvit", n=16, n_freq=3, score=dict(SMALL_SCORE["uvit"]), architecture=1)
