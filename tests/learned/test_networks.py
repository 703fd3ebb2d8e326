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


@pytest.mark.parametrize("cond_norm", ["layer", "none"])
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


def test_score_cnn_conditioning_norm():
    """The paper's LayerNorm keeps only the direction of alpha's channel vector at a pixel."""
    g = torch.Generator().manual_seed(4)
    alpha = torch.randn(1, 3, 8, 8, generator=g)
    scaled = alpha * 5.0 + 2.0  # per-pixel affine change of the 3-vector
    layer, plain = ScoreCNN(3, cond_rounds=1), ScoreCNN(3, cond_rounds=1, cond_norm="none")
    torch.testing.assert_close(  # up to LayerNorm's eps on pixels of small channel variance
        layer.condition(alpha).tensor, layer.condition(scaled).tensor, rtol=0, atol=2e-3
    )
    assert not torch.allclose(plain.condition(alpha).tensor, plain.condition(scaled).tensor)
    assert _count(layer) - _count(plain) == 6  # the LayerNorm's affine weights
    with pytest.raises(ValueError, match="cond_norm must be"):
        ScoreCNN(3, cond_norm="batch")


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
