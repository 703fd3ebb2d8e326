"""Geometry: the paper preset, derived arrays, validation and serialisation."""

import math

import numpy as np
import pytest

from msinv.scattering.geometry import Geometry


def test_paper_preset_matches_published_acquisition():
    g = Geometry.paper(80, pml_width="published")
    assert g.n == 80 and g.pml_width == 20 and g.pml_strength == 80.0
    np.testing.assert_allclose(g.x[[0, -1]], [-0.5, 0.5])
    assert math.isclose(g.h, 1 / 79)
    np.testing.assert_allclose(g.source_angles[:2], [np.pi, np.pi + 2 * np.pi / 80])
    np.testing.assert_allclose(g.receiver_angles[:2], [0.0, 2 * np.pi / 80])
    assert g.receiver_radius == 0.5 and g.n_sources == g.n_receivers == 80
    assert g.n_total == 120 and g.x_total.size == 120
    np.testing.assert_allclose(g.x_total[20:100], g.x)


def test_paper_scales_like_the_mri_runs():
    g = Geometry.paper(160, pml_width="published")
    assert g.n_sources == g.n_receivers == 160
    assert g.pml_width == 40  # same physical thickness
    assert math.isclose(g.pml_width * g.h, 40 / 159)


def test_hashable_comparable_and_round_trips_through_dict():
    g = Geometry.paper(32)
    assert g == Geometry.paper(32) and hash(g) == hash(Geometry.paper(32))
    assert g != Geometry.paper(32, pml_width=6)
    assert Geometry.from_dict(g.to_dict()) == g
    import json

    assert Geometry.from_dict(json.loads(json.dumps(g.to_dict()))) == g


def test_auto_pml_is_chosen_per_frequency_and_the_grid_needs_a_frequency():
    """``Geometry.paper(n)`` leaves the PML to the solver: :data:`PML_POLICY` by points per
    wavelength, in nodes and ``sigma_max h`` (so that the same ppw gives the same layer)."""
    g = Geometry.paper(80)
    assert g.pml_auto and g.pml_strength is None and g.to_dict()["pml_width"] == "auto"
    with pytest.raises(ValueError, match="at\\(freq\\)"):
        _ = g.n_total
    chosen = {f: (g.at(f).pml_width, round(g.at(f).pml_strength, 1)) for f in (2.5, 5.0, 10.0)}
    assert chosen == {2.5: (10, 49.8), 5.0: (8, 60.0), 10.0: (6, 79.0)}
    assert g.at(10.0).n_total == 92 and not g.at(10.0).pml_auto
    half = Geometry.paper(40).at(5.0)  # same points per wavelength as n = 80 at f = 10
    assert half.pml_width == 6 and math.isclose(half.pml_strength * half.h, 1.0)
    fixed = Geometry.paper(80, pml_width=10)
    assert fixed.at(2.5) is fixed and fixed.pml_strength == 80.0
    with pytest.raises(ValueError, match="pml_strength"):
        Geometry(n=32, pml_width="auto", pml_strength=80.0)
    assert Geometry(n=32, pml_width=8).pml_strength == 80.0  # the default with a width
    # a TOML round trip drops the None: an "auto" record without strength reads back
    assert Geometry.from_dict({"n": 80, "pml_width": "auto"}) == Geometry(n=80, pml_width="auto")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 8}, "n"),
        ({"n": 32, "pml_width": 0}, "pml_width"),
        ({"n": 32, "pml_strength": -1.0}, "pml_strength"),
        ({"n": 32, "extent": (0.5, -0.5)}, "extent"),
        ({"n": 32, "n_sources": 0}, "n_sources"),
        ({"n": 32, "receiver_radius": float("nan")}, "receiver_radius"),
    ],
)
def test_invalid_fields_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"Geometry.{field}"):
        Geometry(**kwargs)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        Geometry.from_dict({"n": 32, "colour": "red"})
