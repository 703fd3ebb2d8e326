"""FWI misfit and gradient: Taylor tests (two readers), finite differences, continuation."""

import numpy as np
import pytest

from msinv.core import taylor_test
from msinv.core.regularisation import Regulariser
from msinv.scattering.fwi import Misfit, default_schedule, fwi
from msinv.scattering.geometry import Geometry
from msinv.scattering.helmholtz import simulate

GEOM = Geometry(n=16, pml_width=4, n_sources=6, n_receivers=8)
FREQS = [1.0, 2.0, 3.0]


def _bump(g, amp=0.15, centre=(0.1, -0.05), width=0.03):
    x, y = np.meshgrid(g.x, g.y)
    return amp * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / width)


@pytest.mark.parametrize(
    ("reader", "reg"),
    [("representation", Regulariser("tv", 1e-3, eps=1e-2)), ("cubic", None)],
)
def test_misfit_gradient_taylor_second_order(rng, reader, reg):
    data = simulate(
        _bump(GEOM), GEOM, FREQS, scheme=8, dtype=np.complex128, receiver_interpolation=reader
    )
    m = Misfit(GEOM, data, FREQS, scheme=6, reg=reg, receiver_interpolation=reader)
    x = 0.5 * _bump(GEOM) + 0.02 * rng.standard_normal((16, 16))
    dx = rng.standard_normal((16, 16))
    # the first-order remainder decays quadratically (halving h divides it by 4) and is far
    # below the zeroth-order one, which decays only linearly
    taylor_test(m, x, dx, steps=1e-2 * 0.5 ** np.arange(5), min_rate=1.93, max_rate=2.07)


def test_gradient_matches_central_differences(rng):
    data = simulate(_bump(GEOM), GEOM, FREQS[:2], scheme=8, dtype=np.complex128)
    m = Misfit(GEOM, data, FREQS[:2], scheme=4)
    x = 0.3 * _bump(GEOM)
    _, g = m(x)
    for idx in [(8, 8), (5, 10), tuple(rng.integers(0, 16, 2))]:
        e = np.zeros((16, 16))
        e[idx] = 1e-5
        fd = (m(x + e)[0] - m(x - e)[0]) / 2e-5
        assert fd == pytest.approx(g[idx], rel=1e-5, abs=1e-9 * np.abs(g).max())


def test_fwi_with_continuation_recovers_smooth_medium():
    eta = _bump(GEOM)
    freqs = [1.0, 2.0]
    data = simulate(eta, GEOM, freqs, scheme=8, dtype=np.complex128)
    records = []
    res = fwi(
        data, GEOM, freqs, iterations=20, callback=records.append
    )  # compact4 (the default) vs the data's wide8
    rrmse = np.linalg.norm(res.model - eta) / np.linalg.norm(eta)
    assert rrmse < 0.05
    assert [s.label for s in res.stages] == ["1", "2"]
    assert {r.label for r in records} == {"1", "2"}
    assert records[-1].misfit < 1e-3 * records[0].misfit


def test_misfit_input_errors():
    data = np.zeros((2, 8, 6), complex)
    with pytest.raises(ValueError, match="shape"):
        Misfit(GEOM, data, FREQS)
    with pytest.raises(ValueError, match="not among"):
        Misfit(GEOM, data + 1, FREQS[:2], use=[5.0])
    with pytest.raises(ValueError, match="all zero"):
        Misfit(GEOM, data, FREQS[:2])
    assert default_schedule([5.0, 2.5, 10]) == [[2.5], [5.0], [10.0]]


def test_taylor_with_a_data_norm_far_from_one(rng):
    """||d||^2 ~ 1e3 here: a gradient that forgot the 1 / ||d||^2 of the objective fails."""
    data = 30.0 * simulate(_bump(GEOM), GEOM, FREQS[:2], scheme=8, dtype=np.complex128)
    m = Misfit(GEOM, data, FREQS[:2], scheme=4)
    assert not 0.1 < m.norm2 < 10.0, m.norm2
    x = 0.5 * _bump(GEOM)
    taylor_test(m, x, rng.standard_normal((16, 16)), steps=1e-2 * 0.5 ** np.arange(4))


def test_reported_relative_misfit_is_the_plain_ratio(rng):
    """relative_misfit = ||Lambda(eta) - d|| / ||d|| over the used frequencies, computed here
    with the solver directly; the objective is half its square (no regulariser)."""
    from msinv.scattering.helmholtz import HelmholtzSolver

    data = simulate(_bump(GEOM), GEOM, FREQS, scheme=8, dtype=np.complex128)
    use = [1.0, 3.0]
    m = Misfit(GEOM, data, FREQS, use=use, scheme=4)
    assert m.evaluations == 0 and np.isnan(m.last_relative_misfit)  # nothing evaluated yet
    eta = 0.4 * _bump(GEOM) + 0.01 * rng.standard_normal((16, 16))
    res = [HelmholtzSolver(GEOM, eta, f, scheme=4).data() - data[FREQS.index(f)] for f in use]
    num = sum(np.linalg.norm(r) ** 2 for r in res)
    den = sum(np.linalg.norm(data[FREQS.index(f)]) ** 2 for f in use)
    expected = np.sqrt(num / den)
    assert m.relative_misfit(eta) == pytest.approx(expected, rel=1e-10)
    value, _ = m(eta)
    assert value == pytest.approx(0.5 * expected**2, rel=1e-10)
    assert m.evaluations == 2
