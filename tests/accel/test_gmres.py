"""Batched GMRES against dense solves: per-column systems, restarts, tolerances, failures."""

import numpy as np
import pytest
import torch

from msinv.accel.gmres import GMRESError, gmres


def _systems(rng, batch, size, spread=0.6):
    """Well-conditioned non-normal complex matrices ``I + spread * G / sqrt(size)``."""
    g = rng.standard_normal((batch, size, size)) + 1j * rng.standard_normal((batch, size, size))
    a = np.eye(size) + spread * g / np.sqrt(2 * size)
    b = rng.standard_normal((batch, size)) + 1j * rng.standard_normal((batch, size))
    return torch.as_tensor(a), torch.as_tensor(b)


def _apply(a):
    return lambda v, cols: torch.einsum("bij,bj->bi", a[cols], v)


@pytest.mark.parametrize("restart", [5, 40])
def test_gmres_solves_each_column_to_its_tolerance(rng, restart):
    a, b = _systems(rng, 7, 30)
    result = gmres(_apply(a), b, rtol=1e-10, restart=restart, max_restarts=50)
    exact = torch.linalg.solve(a, b)
    err = torch.linalg.vector_norm(result.x - exact, dim=1) / torch.linalg.vector_norm(exact, dim=1)
    assert err.max() < 1e-8
    true_res = torch.linalg.vector_norm(b - torch.einsum("bij,bj->bi", a, result.x), dim=1)
    assert torch.allclose(result.residual, true_res / torch.linalg.vector_norm(b, dim=1))
    assert result.residual.max() <= 1e-10
    assert (result.cycles > 1) == (restart == 5)
    assert result.iterations.min() >= 1 and result.iterations.max() <= restart * result.cycles


def test_gmres_columns_converge_independently(rng):
    """A column with an easy system stops early; its neighbours do not change its answer."""
    a, b = _systems(rng, 4, 40)
    a[0] = torch.eye(40, dtype=a.dtype)  # solved at the first step
    result = gmres(_apply(a), b, rtol=1e-9, restart=60)
    assert result.iterations[0] == 1 and result.iterations[1:].min() > 5
    alone = gmres(_apply(a[2:3]), b[2:3], rtol=1e-9, restart=60)
    assert torch.allclose(alone.x[0], result.x[2], rtol=0, atol=1e-12)
    assert alone.iterations[0] == result.iterations[2]


def test_gmres_complex64_and_zero_right_hand_side(rng):
    a, b = _systems(rng, 3, 20)
    a, b = a.to(torch.complex64), b.to(torch.complex64)
    b[1] = 0
    result = gmres(_apply(a), b, rtol=1e-5)
    assert result.x.dtype == torch.complex64 and result.residual.dtype == torch.float32
    assert torch.all(result.x[1] == 0) and result.residual[1] == 0 and result.iterations[1] == 0
    assert result.residual.max() <= 1e-5


def test_gmres_raises_when_a_column_cannot_converge(rng):
    a, b = _systems(rng, 3, 30, spread=3.0)
    with pytest.raises(GMRESError, match="columns above rtol=1e-10 after 2 cycles"):
        gmres(_apply(a), b, rtol=1e-10, restart=3, max_restarts=2)


def test_gmres_rejects_bad_arguments(rng):
    a, b = _systems(rng, 2, 5)
    with pytest.raises(ValueError, match="expected complex"):
        gmres(_apply(a), b.real, rtol=1e-6)
    with pytest.raises(ValueError, match="rtol"):
        gmres(_apply(a), b, rtol=0.0)
