"""Score networks and deterministic heads: shapes, translation equivariance, parameter counts."""

import pytest
import torch

from msinv.learned.networks.cnn import ScoreCNN
from msinv.learned.networks.deterministic import DenseHead
from msinv.learned.networks.uvit import ScoreUViT

pytestmark = pytest.mark.usefixtures("no_grad")


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_score_cnn_parameter_count_matches_reference():
    assert _count(ScoreCNN(3)) == 374_575  # reference CNN of EquiNet-CNN: 374,575


@pytest.mark.parametrize("cond_norm", ["image", "channel", "none"])
@pytest.mark.parametrize("shift", [(3, 0), (0, 5), (7, 11)])
def test_score_cnn_translation_equivariant(shift, cond_norm):
    torch.manual_seed(0)
    net = ScoreCNN(
        3, cond_rounds=2, width=24, bottleneck=6, blocks=2, groups=(6, 3), cond_norm=cond_norm
    ).double()
    g = torch.Generator().manual_seed(1)
    eta = torch.randn(2, 1, 20, 20, generator=g, dtype=torch.float64)
    alpha = torch.randn(2, 3, 20, 20, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.05, 7.0], dtype=torch.float64)
    out = net(eta, alpha, sigma)
    rolled = net(torch.roll(eta, shift, (2, 3)), torch.roll(alpha, shift, (2, 3)), sigma)
    torch.testing.assert_close(rolled, torch.roll(out, shift, (2, 3)), rtol=0, atol=1e-12)
    # and it is not trivially constant
    assert float((out[0] - out[0].mean()).abs().max()) > 1e-3


def test_conditioning_norms_invariances_and_counts():
    """ "channel" (the reference's Flax LayerNorm) forgets a per-pixel gain and offset of alpha's
    channel vector; "image" only one gain and offset per datum; "none" nothing."""
    g = torch.Generator().manual_seed(4)
    alpha = torch.randn(1, 3, 8, 8, generator=g)
    per_pixel = alpha * (1 + torch.rand(1, 1, 8, 8, generator=g)) + torch.randn(1, 1, 8, 8)
    global_affine = alpha * 5.0 + 2.0
    nets = {k: ScoreCNN(3, cond_rounds=1, cond_norm=k) for k in ("image", "channel", "none")}

    def feats(kind, a):
        return nets[kind].condition(a).tensor

    # up to the norms' eps on pixels of small variance
    torch.testing.assert_close(
        feats("channel", alpha), feats("channel", per_pixel), atol=2e-3, rtol=0
    )
    torch.testing.assert_close(
        feats("image", alpha), feats("image", global_affine), atol=1e-4, rtol=0
    )
    assert (feats("image", alpha) - feats("image", per_pixel)).abs().max() > 0.1
    assert (feats("none", alpha) - feats("none", global_affine)).abs().max() > 0.1
    # image statistics: zero mean and unit variance over channels and pixels, before the affine
    normed = nets["image"].norm(alpha)
    assert abs(float(normed.mean())) < 1e-6 and abs(float(normed.var(unbiased=False)) - 1) < 1e-4
    counts = {k: _count(v) for k, v in nets.items()}
    assert counts["image"] == counts["channel"] == counts["none"] + 6  # 2C affine weights


def test_conditioning_norm_refuses_channel_norm_below_three_channels_and_unknown_names():
    with pytest.raises(ValueError, match="only a sign for C = 2"):
        ScoreCNN(2, cond_norm="channel")
    with pytest.raises(ValueError, match="only a sign for C = 2"):
        ScoreUViT(1, cond_norm="channel")
    with pytest.raises(ValueError, match="cond_norm must be one of image, channel, none"):
        ScoreCNN(3, cond_norm="layer")


def _film_reference(block_film, x, emb):
    """The paper's Algorithm 3 FiLM: (scale, shift) = Affine(Swish(emb)); x (1 + scale) + shift."""
    p = torch.nn.functional.silu(emb) @ block_film.weight.T + block_film.bias
    scale, shift = p[:, : x.shape[1], None, None], p[:, x.shape[1] :, None, None]
    return x * (1 + scale) + shift


@pytest.mark.parametrize("name", ["equinet-cnn", "equinet-uvit"])
def test_film_applies_swish_to_the_noise_embedding(name):
    from msinv.learned.models import build

    score = {
        "cnn": {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": (3, 3)},
        "uvit": {"widths": (16, 32), "blocks": 1, "depth": 1, "heads": 2, "emb_dim": 32},
    }
    model = build(name, n=16, n_freq=3, score=score[name.split("-")[1]])
    block = model.score.blocks[0] if name.endswith("cnn") else model.score.down1[0]
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, block.conv1.in_channels, 16, 16, generator=g)
    emb = model.score.embed(torch.tensor([0.01, 30.0]))
    assert float(emb.min()) < -0.1  # the Swish matters
    h = block.conv1(torch.nn.functional.silu(block.norm1(x)))
    h = block.conv2(torch.nn.functional.silu(_film_reference(block.film, block.norm2(h), emb)))
    torch.testing.assert_close(block(x, emb), (block.skip(x) + h) / 2**0.5)


def test_score_cnn_precomputed_features_equal_alpha_path():
    net = ScoreCNN(2, cond_rounds=2, width=12, bottleneck=6, blocks=1, groups=(3, 3))
    g = torch.Generator().manual_seed(2)
    eta, alpha = torch.randn(3, 1, 16, 16, generator=g), torch.randn(1, 2, 16, 16, generator=g)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    feats = net.condition(alpha).expand(3)
    torch.testing.assert_close(net(eta, feats, sigma), net(eta, alpha.expand(3, -1, -1, -1), sigma))


def test_uvit_shapes_even_shift_equivariance_and_odd_grid_error():
    torch.manual_seed(0)
    net = ScoreUViT(3, widths=(16, 32), blocks=1, depth=1, heads=2, emb_dim=32).double()
    g = torch.Generator().manual_seed(3)
    eta = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64)
    alpha = torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.3, 3.0], dtype=torch.float64)
    out = net(eta, alpha, sigma)
    assert out.shape == (2, 1, 16, 16)
    rolled = net(torch.roll(eta, (2, 4), (2, 3)), torch.roll(alpha, (2, 4), (2, 3)), sigma)
    torch.testing.assert_close(rolled, torch.roll(out, (2, 4), (2, 3)), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="even grid"):
        net(eta[..., :15, :15], alpha[..., :15, :15], sigma)


def test_dense_head_equivariant():
    head = DenseHead(3, rounds=3).double()
    a = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(
        head(torch.roll(a, (1, 2), (2, 3))), torch.roll(head(a), (1, 2), (2, 3))
    )
