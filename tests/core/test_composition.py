"""Operator algebra (+, -, @, scalar *, .H), the norm by power iteration, the data misfit."""

import numpy as np
import pytest

from msinv.core.misfit import DataMisfit
from msinv.core.operator import Diagonal, LinearOperator, dottest, power_iteration


class _Dense(LinearOperator):
    def __init__(self, a):
        self.a = np.asarray(a)
        self.shape_in, self.shape_out, self.dtype = (a.shape[1],), (a.shape[0],), a.dtype

    def forward(self, x):
        return self.a @ x

    def adjoint(self, y):
        return self.a.conj().T @ y


def test_composition_matches_the_matrices(rng):
    a = rng.standard_normal((5, 4)) + 1j * rng.standard_normal((5, 4))
    b = rng.standard_normal((5, 4)) + 1j * rng.standard_normal((5, 4))
    c = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))
    A, B, C = _Dense(a), _Dense(b), _Dense(c)
    x = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    y = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    np.testing.assert_allclose(((A + B) @ C) @ x, (a + b) @ c @ x)
    np.testing.assert_allclose((A - B).forward(y), (a - b) @ y)
    np.testing.assert_allclose(((2 - 1j) * A).forward(y), (2 - 1j) * a @ y)
    np.testing.assert_allclose((A @ C).H.forward(a @ c @ x), (a @ c).conj().T @ (a @ c @ x))
    for op in (A + B, A - B, A @ C, (0.5 + 2j) * A, (A @ C).H, A.H @ B):
        dottest(op, rng)
    with pytest.raises(ValueError, match="compose"):
        A @ A
    with pytest.raises(ValueError, match="add"):
        A + C
    # a sum needs both spaces equal: one shared space is not enough
    same_in, same_out = _Dense(rng.standard_normal((3, 4))), _Dense(rng.standard_normal((5, 3)))
    for other in (same_in, same_out):
        with pytest.raises(ValueError, match="cannot add operators"):
            A + other
    with pytest.raises(TypeError, match="scalar"):
        A * A


def test_norm_by_power_iteration_is_the_largest_singular_value(rng):
    a = rng.standard_normal((7, 5))
    op = _Dense(a)
    op.real_model = True
    sigma = np.linalg.svd(a, compute_uv=False)
    assert op.norm(iterations=200) == pytest.approx(sigma[0], rel=1e-6)
    lam, v = power_iteration(lambda v: a.T @ (a @ v), np.ones(5), 300)
    assert lam == pytest.approx(sigma[0] ** 2, rel=1e-8)
    assert abs(abs(v @ np.linalg.svd(a)[2][0]) - 1) < 1e-6
    with pytest.raises(ValueError, match="iterations"):
        power_iteration(lambda v: v, np.ones(2), 0)


def test_diagonal_and_data_misfit(rng):
    d = rng.uniform(0.5, 2.0, 6)
    dottest(Diagonal(d), rng)
    a = rng.standard_normal((6, 4))
    op = _Dense(a)
    data, sigma = rng.standard_normal(6), rng.uniform(0.1, 1.0, 6)
    mis = DataMisfit(op, data, sigma)
    x = rng.standard_normal(4)
    assert mis(x) == pytest.approx(np.sum(((a @ x - data) / sigma) ** 2))
    assert mis.residual_norm(x) ** 2 == pytest.approx(mis(x))
    np.testing.assert_allclose(mis.normal(x), a.T @ ((a @ x) / sigma**2))
    np.testing.assert_allclose(mis.normal_rhs(), a.T @ (data / sigma**2))
    with pytest.raises(ValueError, match="> 0"):
        DataMisfit(op, data, -sigma)
    with pytest.raises(ValueError, match="shape"):
        DataMisfit(op, data[:3])


def test_data_misfit_of_complex_data_is_the_squared_modulus(rng):
    """Complex data (frequency-domain fields): φ_d = Σ |A x - d|² / σ², real and the square
    of residual_norm, not the (complex) sum of squares."""
    a = rng.standard_normal((6, 4)) + 1j * rng.standard_normal((6, 4))
    data = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    sigma = rng.uniform(0.1, 1.0, 6)
    mis = DataMisfit(_Dense(a), data, sigma)
    x = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    expected = np.linalg.norm((a @ x - data) / sigma) ** 2
    assert mis(x) == pytest.approx(expected, rel=1e-12)
    assert mis.residual_norm(x) ** 2 == pytest.approx(expected, rel=1e-12)


def test_data_misfit_uncertainties_are_one_number_or_one_per_datum_and_positive():
    """sigma is a scalar or one value per datum, every one > 0: a sigma of another length
    (which NumPy would broadcast or fail on later) and a zero or NaN sigma (an infinite
    weight) are refused in one line."""
    op, d = Diagonal(np.array([1.0, 2.0, 3.0])), np.ones(3)
    assert DataMisfit(op, d, 0.5).wd2 == 4.0
    # no sigma: sigma = 1, the plain sum of squares (and its normal equations)
    x = np.array([0.5, -1.0, 2.0])
    plain = DataMisfit(op, d)
    assert plain(x) == pytest.approx(np.sum((op.forward(x) - d) ** 2))
    np.testing.assert_allclose(plain.normal_rhs(), op.adjoint(d))
    np.testing.assert_allclose(DataMisfit(op, d, [1.0, 2.0, 4.0]).wd2, [1.0, 0.25, 0.0625])
    with pytest.raises(ValueError, match="sigma must be a number or 3 values"):
        DataMisfit(op, d, [1.0, 2.0])
    for bad in (0.0, [1.0, 0.0, 1.0], [1.0, np.nan, 1.0], -1.0):
        with pytest.raises(ValueError, match="uncertainties must be > 0"):
            DataMisfit(op, d, bad)


def test_norm_uses_thirty_power_iterations_by_default(rng):
    """norm() costs its documented default of 30 power iterations: 30 forward and 30 adjoint
    applications."""
    calls = {"forward": 0, "adjoint": 0}

    class Counted(_Dense):
        def forward(self, x):
            calls["forward"] += 1
            return super().forward(x)

        def adjoint(self, y):
            calls["adjoint"] += 1
            return super().adjoint(y)

    Counted(rng.standard_normal((6, 4))).norm()
    assert calls == {"forward": 30, "adjoint": 30}
