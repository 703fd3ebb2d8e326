"""Born least squares and the public ``invert``: recovery, weight rules, API contract."""

import numpy as np
import pytest

from msinv.core.operator import dottest
from msinv.core.regularisation import Gradient2D, Regulariser
from msinv.scattering import invert
from msinv.scattering.born_ls import LinearisedData, _stacked, born_ls
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import simulate

GEOM = Geometry(n=20, pml_width=4, n_sources=8, n_receivers=12)
FREQS = [1.5, 3.0]


@pytest.fixture(scope="module")
def weak_bump():
    """A weak Gaussian bump (peak 0.02, sigma 0.07; wavelength 0.33 at the top frequency)."""
    x, y = np.meshgrid(GEOM.x, GEOM.y)
    eta = 0.02 * np.exp(-((x - 0.1) ** 2 + (y + 0.05) ** 2) / 0.01)
    return eta, simulate(eta, GEOM, FREQS, scheme=8, dtype=np.complex128)


def _noisy(data, level, rng):
    e = rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)
    return data + level * np.linalg.norm(data) * e / np.linalg.norm(e)


def _rrmse(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_born_ls_recovers_weak_bump(weak_bump, rng):
    eta, data = weak_bump
    noisy = _noisy(data, 0.02, rng)
    plain = born_ls(noisy, GEOM, FREQS)
    disc = born_ls(
        noisy, GEOM, FREQS, reg=Regulariser("tikhonov"), weight_rule="discrepancy", noise=0.02
    )
    grad = invert(noisy, GEOM, FREQS, method="born", reg="gradient:1e-3")
    tv = invert(noisy, GEOM, FREQS, method="born", reg="tv:1e-4")
    # order 6 inversion of order-8 data with 2% noise: regularised estimates within 20%
    assert _rrmse(disc, eta) < 0.2 and _rrmse(grad, eta) < 0.2 and _rrmse(tv, eta) < 0.2
    # and regularisation helps against the noise
    assert _rrmse(disc, eta) < _rrmse(plain, eta)
    assert abs(np.unravel_index(np.argmax(grad), grad.shape)[1] - np.argmin(abs(GEOM.x - 0.1))) <= 1


def test_born_lcurve_reports_every_weight_and_picks_one(weak_bump, rng):
    eta, data = weak_bump
    records = []
    est = born_ls(
        _noisy(data, 0.02, rng),
        GEOM,
        FREQS,
        reg=Regulariser("gradient"),
        weight_rule="lcurve",
        n_weights=6,
        callback=records.append,
    )
    assert len(records) == 6 and all(r.model.shape == (20, 20) for r in records)
    # the residual falls as the weight falls
    assert records[-1].misfit < records[0].misfit
    assert any(np.allclose(est, r.model) for r in records)
    assert _rrmse(est, eta) < 0.5


def test_born_ls_stack_is_adjoint(rng):
    """The regularised LSQR stack [J; s D] passes the dot-product test."""
    a = LinearisedData(Geometry(n=16, pml_width=4, n_sources=3, n_receivers=4), [1.0, 2.0])
    d = Gradient2D(a.shape_in)
    op, _ = _stacked(a, d, 0.3 * (1 + rng.random(a.shape_in)[None]))
    x, y = rng.standard_normal(op.shape[1]), rng.standard_normal(op.shape[0])
    lhs, rhs = op.matvec(x) @ y, x @ op.rmatvec(y)
    assert lhs == pytest.approx(rhs, rel=1e-10)
    dottest(a, rng)


def test_born_is_the_small_contrast_limit(weak_bump):
    eta, data = weak_bump
    lin = LinearisedData(GEOM, FREQS, scheme=8).forward(eta)
    assert _rrmse(lin[..., 0] + 1j * lin[..., 1], data) < 0.05


def test_invert_contract(weak_bump):
    _, data = weak_bump
    records = []
    out = invert(
        data, GEOM, FREQS, iterations=2, schedule=[[1.5], [1.5, 3.0]], callback=records.append
    )
    assert out.shape == (20, 20) and out.dtype == np.float64
    assert [r.label for r in records if r.iteration == 0] == ["1.5", "1.5+3"]
    assert all(
        {"stage", "iteration", "misfit", "grad_norm", "model"} <= set(vars(r)) for r in records
    )
    with pytest.raises(ValueError, match="method"):
        invert(data, GEOM, FREQS, method="newton")
    with pytest.raises(ValueError, match="KIND:WEIGHT"):
        invert(data, GEOM, FREQS, reg="l1:0.1")
    with pytest.raises(ValueError, match="only offered for Born"):
        invert(data, GEOM, FREQS, reg="tv:auto")
    with pytest.raises(ValueError, match="iterations"):
        invert(data, GEOM, FREQS, iterations=0)
    with pytest.raises(ValueError, match="shape"):
        invert(data[:1], GEOM, FREQS)
