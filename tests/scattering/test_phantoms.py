"""Perturbation families: shapes, support, determinism, counting rules and the Shepp-Logan table."""

from __future__ import annotations

import numpy as np
import pytest

from msinv.scattering import phantoms
from msinv.scattering.phantoms import FAMILIES, get_family


def _radius(n: int) -> np.ndarray:
    x, y = phantoms.node_grid(n)
    return np.hypot(x, y)


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("n", [24, 80])
def test_family_shape_dtype_support(name, n, rng):
    eta = FAMILIES[name](rng, n)
    assert eta.shape == (n, n)
    assert eta.dtype == np.float64
    assert np.all(np.isfinite(eta))
    assert eta.min() >= 0.0
    assert eta.max() > 0.0
    # zero near the boundary: nothing beyond the window radius 0.48 nor on the square's edge
    assert np.all(eta[_radius(n) >= 0.48] == 0.0)
    assert not eta[[0, -1], :].any() and not eta[:, [0, -1]].any()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_deterministic_for_a_seed(name):
    a = FAMILIES[name](np.random.default_rng(7), 32)
    b = FAMILIES[name](np.random.default_rng(7), 32)
    c = FAMILIES[name](np.random.default_rng(8), 32)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_squares_counting_rule(rng):
    """Exactly 20 squares of 10x10 pixels adding 0.2: total mass 20 * 100 * 0.2, multiples."""
    for _ in range(5):
        eta = phantoms.squares(rng, 80)
        units = eta / 0.2
        assert np.allclose(units, np.round(units), atol=1e-12)
        assert np.isclose(eta.sum(), 20 * 100 * 0.2)
        # every connected piece is a union of 10x10 squares: its extent is at least 10 pixels
        rows = np.nonzero(eta.any(axis=1))[0]
        assert rows.max() - rows.min() + 1 >= 10


def test_squares_centres_inside_disk(rng):
    """Support lies within the radius 0.35 disk grown by half a square's diagonal."""
    eta = phantoms.squares(rng, 80)
    half_diag = 10 / 79 / np.sqrt(2) + 1 / 79
    assert np.all(eta[_radius(80) > 0.35 + half_diag] == 0)


def test_triangles_counting_rule(rng):
    """1..10 triangles of legs 3, 5 or 10 (L(L+1)/2 pixels each), each adding 0.2."""
    areas = {3: 6, 5: 15, 10: 55}
    counts = set()
    for _ in range(40):
        eta = phantoms.triangles(rng, 80)
        units = eta / 0.2
        assert np.allclose(units, np.round(units), atol=1e-12)
        mass = round(float(units.sum()))
        # the mass is a sum of 1..10 areas from {6, 15, 55}
        reachable = {0}
        sums_by_count = [reachable]
        for _k in range(10):
            sums_by_count.append({s + a for s in sums_by_count[-1] for a in areas.values()})
        assert any(mass in sums_by_count[k] for k in range(1, 11))
        counts.add(mass)
    assert len(counts) > 10  # the number and sizes vary


def test_triangle_mask_orientations():
    base = phantoms.triangle_mask(5, 0)
    assert base.sum() == 15 and base[0, 0] == 1 and base[-1, -1] == 0
    masks = [phantoms.triangle_mask(5, k) for k in range(4)]
    assert len({m.tobytes() for m in masks}) == 4
    assert all(m.sum() == 15 for m in masks)


def test_shepp_logan_table_matches_published_image():
    """Our table and rasteriser reproduce scikit-image's published modified Shepp-Logan image.

    skimage.data.shepp_logan_phantom() is a 400x400 image (row 0 at the top, y = +1) of the
    modified Shepp-Logan phantom quantised to 8 bits; rows = y up in ours, hence the flip.
    """
    skdata = pytest.importorskip("skimage.data")
    published = np.flipud(skdata.shepp_logan_phantom())
    ours = phantoms.rasterise_ellipses(phantoms.SHEPP_LOGAN_TABLE, published.shape[0])
    assert np.abs(ours - published).max() < 1 / 255 + 1e-9


def test_shepp_logan_reference_preprocessing():
    eta = phantoms.shepp_logan_reference(80)
    again = phantoms.shepp_logan_reference(80)
    assert np.array_equal(eta, again)
    window = phantoms.radial_window(80)
    # peak 1 before the window: eta / window reaches 1 inside the window
    inside = window > 0
    assert np.isclose((eta[inside] / window[inside]).max(), 1.0)
    # the top of the head (tumour 1 at y0 = +0.35 in [-1, 1] units) is towards positive y
    # (70 nodes span [-1, 1] after 5 pad pixels: y0 = 0.35 is row 5 + 1.35/2 * 69 = 51.6);
    # the mirror point (row 27) lies in the 0.2 brain matter, the tumour adds 0.1
    assert eta[52, 39] > 1.3 * eta[27, 39] > 0


def test_random_shepp_logan_rules(rng):
    table = phantoms.SHEPP_LOGAN_TABLE
    seen_sizes = set()
    for _ in range(50):
        e = phantoms.randomise_shepp_logan(rng)
        seen_sizes.add(e.shape[0])
        assert 5 <= e.shape[0] <= 10  # 0 to 5 of the 6 tumours removed
        assert np.all((e[:, 0] >= 0) & (e[:, 0] <= 1))
        scale = e[0, 1] / table[0, 1]
        assert 7 / 9 < scale <= 1
        assert np.allclose(e[:4, 1:3], scale * table[:4, 1:3])
        rotation = e[0, 5] - table[0, 5]
        assert -45 <= rotation <= 45
        assert np.allclose(e[:4, 5] - table[:4, 5], rotation)
        shift = e[0, 3:5] - scale * table[0, 3:5]
        assert np.all((shift >= 0) & (shift <= 0.2))
        # intensities within 10% of the table's (before clipping)
        assert np.all(np.abs(e[:4, 0] - np.clip(table[:4, 0], 0, 1)) <= 0.1 * table[:4, 0] + 1e-12)
    assert len(seen_sizes) >= 4


def test_shepp_logan_strong_contrast(rng):
    eta = phantoms.shepp_logan(rng, 80)
    assert 0.8 < eta.max() < 1.0


def test_brain_varies_and_has_structure(rng):
    a, b = phantoms.brain(rng, 40), phantoms.brain(rng, 40)
    assert not np.array_equal(a, b)
    # a head, not a blob: many distinct grey levels and a substantial support
    assert np.count_nonzero(a > 0.05) > 0.3 * np.pi * (0.4 * 39) ** 2
    assert np.unique(np.round(a, 2)).size > 20


def test_blur_target():
    eta = np.zeros((21, 21))
    eta[10, 10] = 1.0
    blurred = phantoms.blur_target(eta, 0.5)
    assert np.isclose(blurred.sum(), 1.0)
    assert blurred[10, 10] < 1.0
    assert np.array_equal(phantoms.blur_target(eta, 0.0), eta)
    with pytest.raises(ValueError, match="sigma"):
        phantoms.blur_target(eta, -1.0)


def test_unknown_family_lists_known_ones():
    with pytest.raises(ValueError, match="squares, triangles, shepp_logan, brain"):
        get_family("circles")
    assert get_family("shepp-logan") is FAMILIES["shepp_logan"]


def test_family_record_is_json():
    import json

    for fam in FAMILIES.values():
        rec = json.loads(json.dumps(fam.record()))
        assert rec["name"] == fam.name
