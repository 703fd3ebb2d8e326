"""FWI objective contracts that the Taylor tests cannot see (written from the survivors of
the sampled mutation run, docs/testing.md)."""

import inspect

import numpy as np
import pytest

from msinv.core.errors import UserInputError
from msinv.core.regularisation import Regulariser
from msinv.scattering.fwi import DEFAULT_BOUNDS, Misfit, fwi
from msinv.scattering.helmholtz import simulate


@pytest.mark.parametrize("weight", [0.3, 1.0, 4.0])
def test_objective_is_data_term_plus_regulariser(small_geometry, bump, rng, weight):
    """Misfit(reg=R)(eta) = Misfit()(eta) + R(eta), value and gradient, for any weight > 0
    (a weight below 1 is not a 'switched-off' regulariser)."""
    g = small_geometry
    data = simulate(bump(g), g, [1.0, 2.0], scheme=4, dtype=np.complex128)
    reg = Regulariser("tv", weight, eps=1e-2)
    eta = 0.5 * bump(g) + 0.01 * rng.standard_normal((g.n, g.n))
    v0, g0 = Misfit(g, data, [1.0, 2.0], scheme=4)(eta)
    v1, g1 = Misfit(g, data, [1.0, 2.0], scheme=4, reg=reg)(eta)
    rv, rg = reg(eta)
    assert rv > 0
    assert v1 == pytest.approx(v0 + rv, rel=1e-12)
    np.testing.assert_allclose(g1, g0 + rg, rtol=1e-12, atol=1e-14 * np.abs(g1).max())


def test_a_single_precision_or_flat_model_is_evaluated_as_its_double_image(small_geometry, bump):
    """The objective takes eta as float32 or flattened (as L-BFGS-B hands it) and evaluates the
    float64 (n, n) image: the same value, and a float64 (n, n) gradient, bit for bit."""
    g = small_geometry
    data = simulate(bump(g), g, [1.0], scheme=4, dtype=np.complex128)
    m = Misfit(g, data, [1.0], scheme=4)
    eta = (0.5 * bump(g)).astype(np.float32)
    v64, g64 = m(eta.astype(np.float64))
    for given in (eta, eta.ravel()):
        v, grad = m(given)
        assert v == v64 and grad.dtype == np.float64 and grad.shape == (g.n, g.n)
        np.testing.assert_array_equal(grad, g64)


def test_evaluations_count_the_calls(small_geometry, bump):
    """``evaluations`` is the number of objective evaluations so far (0 before the first)."""
    g = small_geometry
    data = simulate(bump(g), g, [1.0], scheme=4, dtype=np.complex128)
    m = Misfit(g, data, [1.0], scheme=4)
    assert m.evaluations == 0
    for k in range(1, 3):
        m(np.zeros((g.n, g.n)))
        assert m.evaluations == k


def test_default_bounds_keep_the_squared_slowness_positive():
    """The default lower bound on eta lies in (-1, 0): every admissible model has 1 + eta > 0
    (the solver refuses the rest) and eta = 0 is admissible."""
    lower, upper = DEFAULT_BOUNDS
    assert -1.0 < lower < 0.0
    assert upper is None or upper > 0.0


def test_library_and_cli_default_to_the_same_iteration_count():
    """One default for 'L-BFGS-B iterations per stage', whether FWI is called from Python or
    from ``msinv scatter invert``."""
    from msinv.cli.scatter_invert import invert

    cli_default = inspect.signature(invert).parameters["iterations"].default.default
    assert inspect.signature(fwi).parameters["iterations"].default == cli_default


def test_a_starting_model_of_the_wrong_size_is_refused(small_geometry):
    g = small_geometry
    data = np.zeros((1, g.n_receivers, g.n_sources), complex)
    with pytest.raises(UserInputError, match=rf"eta0 has shape \({g.n + 1}, {g.n + 1}\)"):
        fwi(data, g, [2.0], eta0=np.zeros((g.n + 1, g.n + 1)), iterations=1)


def test_fwi_passes_every_setting_on_to_its_stages(small_geometry, bump):
    """fwi's own arguments reach the continuation: the given schedule (one stage per group, in
    the given order), the starting model eta0 (the first record's model), the bounds (every
    iterate inside them), and the regulariser, scheme, receiver reader and precision of the
    objective (the first record's misfit is Misfit's value with exactly these at eta0)."""
    g = small_geometry
    freqs = [1.0, 2.0]
    data = simulate(bump(g), g, freqs, scheme=4, dtype=np.complex128)
    eta0 = 0.5 * bump(g, amp=0.1)
    reg = Regulariser("tikhonov", 0.3)
    records = []
    fwi(
        data, g, freqs, schedule=[[2.0, 1.0], [1.0]], iterations=2, eta0=eta0,
        bounds=(0.0, 0.06), reg=reg, scheme=2, receiver_interpolation="bilinear",
        dtype=np.complex64, callback=records.append,
    )  # fmt: skip
    assert [(r.label, r.iteration) for r in records if r.iteration == 0] == [("2+1", 0), ("1", 0)]
    np.testing.assert_array_equal(records[0].model, eta0)
    assert all(r.model.min() >= 0.0 and r.model.max() <= 0.06 for r in records[1:])
    objective = dict(use=[2.0, 1.0], scheme=2, reg=reg, receiver_interpolation="bilinear")
    expected = Misfit(g, data, freqs, dtype=np.complex64, **objective)(eta0)[0]
    assert records[0].misfit == pytest.approx(expected, rel=1e-12)
    # the precision asked for is the one solved in (single differs from double at ~1e-7)
    double = Misfit(g, data, freqs, **objective)(eta0)[0]
    assert records[0].misfit != pytest.approx(double, rel=1e-12)
