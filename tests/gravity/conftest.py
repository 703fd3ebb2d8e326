"""Fixtures of the gravity tests: a small survey over a small mesh, with its dense G."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from discretize import TensorMesh


@pytest.fixture(scope="session")
def small_survey():
    """A 10 x 8 x 6 mesh of 20 m cells, 25 stations at scattered places and heights (an odd
    count, one median row; rows of G and G / w ordered differently by norm), their dense G,
    uncertainties far from 1 and not constant, and the distance weights.

    Returns a namespace with ``mesh``, ``stations``, ``g``, ``sigma``, ``weights``.
    """
    from msinv.gravity.sensitivity import build_sensitivity
    from msinv.gravity.weighting import distance_weighting

    mesh = TensorMesh(
        [np.full(10, 20.0), np.full(8, 20.0), np.full(6, 20.0)], origin=[-100, -80, -120]
    )
    place = np.random.default_rng(0)
    st = np.column_stack(
        [place.uniform(-90, 90, 25), place.uniform(-70, 70, 25), place.uniform(1, 40, 25)]
    )
    g = build_sensitivity(mesh, st)
    sigma = place.uniform(0.01, 0.05, st.shape[0])
    return SimpleNamespace(
        mesh=mesh, stations=st, g=g, sigma=sigma, weights=distance_weighting(mesh, st)
    )
