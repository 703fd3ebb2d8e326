"""Equivariance through the forward solver: F*(simulate(rot eta)) = rot(F*(simulate(eta)))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from msinv.learned.backprojection import build_backprojection, rotate_image
from msinv.scattering import Geometry, simulate

N, FREQS = 24, (1.5, 3.0)


@pytest.fixture(scope="module")
def data_pair():
    """Data of a smooth off-centre medium and of the same medium turned by a quarter turn."""
    geometry = Geometry.paper(N)
    xx, yy = np.meshgrid(geometry.x, geometry.y)
    eta = 0.2 * np.exp(-((xx - 0.12) ** 2 + (yy + 0.05) ** 2) / 0.01)
    eta += 0.1 * np.exp(-((xx + 0.1) ** 2 + (yy - 0.15) ** 2) / 0.005)
    turned = rotate_image(torch.from_numpy(eta), 1).numpy()
    data = simulate(np.stack([eta, turned]), geometry, FREQS, scheme=4, dtype=np.complex128)
    return geometry, torch.from_numpy(data)


def test_solver_data_roll_under_a_quarter_turn(data_pair):
    _, data = data_pair
    rolled = torch.roll(data[0], (N // 4, N // 4), dims=(-2, -1))
    assert (data[1] - rolled).abs().max() / data[0].abs().max() < 1e-10


@pytest.mark.parametrize("name", ["analytical", "equinet", "b-equinet"])
def test_backprojection_of_simulated_data_turns_with_the_medium(name, data_pair):
    geometry, data = data_pair
    torch.manual_seed(0)
    model = build_backprojection(name, N, len(FREQS), freqs=FREQS, geometry=geometry).double()
    alpha = model(data)
    err = (alpha[1] - rotate_image(alpha[0], 1)).abs().max() / alpha.abs().max()
    assert err < 1e-10
    # the medium is not symmetric, so the check has teeth
    assert (alpha[1] - alpha[0]).abs().max() / alpha.abs().max() > 1e-2
