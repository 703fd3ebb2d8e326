"""What the dot-product test must catch (written from the survivors of the sampled mutation
run, docs/testing.md)."""

import numpy as np
import pytest

from msinv.core.operator import Diagonal, LinearOperator, dottest


class _Scale(LinearOperator):
    """x -> d * x with a chosen (possibly wrong) adjoint."""

    def __init__(self, d, adjoint):
        self.d = np.asarray(d)
        self.shape_in = self.shape_out = self.d.shape
        self.dtype = self.d.dtype
        self._adjoint = adjoint

    def forward(self, x):
        return self.d * x

    def adjoint(self, y):
        return self._adjoint(self.d, y)


def test_default_tolerance_is_tight_in_double_precision(rng):
    """In float64 an adjoint wrong by one part in a million fails the default tolerance."""
    d = rng.standard_normal(8)
    dottest(_Scale(d, lambda d, y: d * y), rng)
    with pytest.raises(AssertionError, match="dot-product test"):
        dottest(_Scale(d, lambda d, y: (1 + 1e-6) * d * y), rng)


def test_a_zero_forward_with_a_non_zero_adjoint_fails(rng):
    """<Ax, y> = 0 exactly (a forward that returns zeros) against <x, A^H y> != 0 is a wrong
    adjoint: the mismatch is divided by |<Ax, y>| plus a tiny positive guard, never by a
    negative number that would turn it into a pass; the right zero adjoint passes."""
    d = np.zeros(8)
    dottest(_Scale(d, lambda d, y: d * y), rng)
    with pytest.raises(AssertionError, match="dot-product test"):
        dottest(_Scale(d, lambda d, y: y), rng)


def test_single_precision_gets_a_single_precision_tolerance(rng):
    """A right float32 adjoint passes (rounding ~1e-7 is not a wrong adjoint)."""
    d = rng.standard_normal(64).astype(np.float32)
    for _ in range(5):
        dottest(_Scale(d, lambda d, y: (d * y).astype(np.float32)), rng)


def test_complex_operator_is_probed_with_complex_data(rng):
    """An adjoint that ignores the imaginary part of y is wrong; only a complex y shows it."""
    d = (rng.standard_normal(6) + 1j * rng.standard_normal(6)).astype(np.complex128)
    dottest(_Scale(d, lambda d, y: np.conj(d) * y), rng)
    with pytest.raises(AssertionError, match="dot-product test"):
        dottest(_Scale(d, lambda d, y: np.conj(d) * y.real), rng)


class _RealToComplex(LinearOperator):
    """x -> c x from a real model to complex data; its adjoint is Re(conj(c) y), right only on
    the real model space (real_model = True), wrong for complex x."""

    real_model = True

    def __init__(self, n, c=1.0 + 2.0j):
        self.shape_in = self.shape_out = (n,)
        self.dtype, self.c = np.dtype(np.complex128), c

    def forward(self, x):
        return self.c * x

    def adjoint(self, y):
        return (np.conj(self.c) * y).real


def test_real_weighting_keeps_a_real_model_space_real(rng):
    """A real model weighting diag(w) applied first keeps the model space real: the product's
    dot-product test probes it with real x and passes; a complex diagonal makes the model
    space complex, where this operator's adjoint is wrong, and the test says so."""
    op = _RealToComplex(6)
    dottest(op, rng)
    assert Diagonal(rng.standard_normal(6)).real_model
    dottest(op @ Diagonal(rng.standard_normal(6)), rng)
    complex_weights = Diagonal(rng.standard_normal(6) + 1j * rng.standard_normal(6))
    assert not complex_weights.real_model
    with pytest.raises(AssertionError, match="dot-product test"):
        dottest(op @ complex_weights, rng)


class _RealToComplexUnprojected(_RealToComplex):
    """The same operator with the adjoint conj(c) y left complex: on a real model space only
    its real part counts, so it is as right as the projected one."""

    def adjoint(self, y):
        return np.conj(self.c) * y


def test_a_real_model_operator_may_return_a_complex_adjoint(rng):
    """Re<A x, y> = <x, Re(A^H y)> for real x: the test compares real parts on both sides, so
    an adjoint that leaves A^H y complex passes, and a wrong one still fails."""
    op = _RealToComplexUnprojected(6)
    assert np.iscomplexobj(op.adjoint(np.ones(6, dtype=complex)))
    dottest(op, rng)
    wrong = _RealToComplexUnprojected(6)
    wrong.adjoint = lambda y: wrong.c * y  # conjugate forgotten
    with pytest.raises(AssertionError, match="dot-product test"):
        dottest(wrong, rng)


@pytest.mark.parametrize("scalar", [2.5, -1.0, 1j, 0.3 - 2.0j])
def test_a_scaled_real_model_operator_keeps_a_right_adjoint(rng, scalar):
    """c A for an A whose adjoint returns Re(A^H y) (as the Born operator's does): the adjoint
    of c A on the real model space is Re(conj(c) A^H y), which needs Im(A^H y) when c is
    complex; conj(c) Re(A^H y) was wrong for c = 1j (it has no real part at all)."""
    op = scalar * _RealToComplex(6)
    assert op.real_model
    dottest(op, rng)


def test_one_power_iteration_is_a_valid_request():
    """iterations >= 1: a single product returns ||M v0|| (documented), 0 is refused."""
    from msinv.core.errors import UserInputError
    from msinv.core.operator import power_iteration

    m = np.diag([3.0, 1.0])
    lam, v = power_iteration(lambda x: m @ x, np.array([1.0, 1.0]), 1)
    assert lam == pytest.approx(np.sqrt(10.0))
    np.testing.assert_allclose(v, np.array([3.0, 1.0]) / np.sqrt(10.0))
    with pytest.raises(UserInputError, match="iterations >= 1"):
        power_iteration(lambda x: m @ x, np.array([1.0, 1.0]), 0)


def test_single_precision_tolerance_still_catches_a_wrong_adjoint(rng):
    """float32's tolerance (1e-4) is loose enough for rounding, not for an adjoint wrong by
    1.5 parts in 10,000."""
    d = rng.standard_normal(64).astype(np.float32)
    with pytest.raises(AssertionError, match="dot-product test"):
        dottest(_Scale(d, lambda d, y: ((1 + 1.5e-4) * d * y).astype(np.float32)), rng)


def test_double_precision_tolerance_is_1e_10(rng):
    """float64's default tolerance 1e-10: an adjoint wrong by 1.5e-10 (relative) fails, one
    wrong by 0.5e-10 passes."""
    d = rng.standard_normal(64)
    dottest(_Scale(d, lambda d, y: (1 + 0.5e-10) * d * y), rng)
    with pytest.raises(AssertionError, match="dot-product test mismatch"):
        dottest(_Scale(d, lambda d, y: (1 + 1.5e-10) * d * y), rng)


@pytest.mark.parametrize("combine", [lambda a, b: a + b, lambda a, b: a - b])
def test_sum_of_real_model_operators_has_a_real_model_space(rng, combine):
    """A + B and A - B act on real models when both do (and on complex ones otherwise)."""
    real = Diagonal(rng.standard_normal(5))
    cplx = Diagonal(rng.standard_normal(5) + 1j * rng.standard_normal(5))
    assert real.real_model and not cplx.real_model
    assert combine(real, Diagonal(rng.standard_normal(5))).real_model
    assert not combine(real, cplx).real_model
    # and a scaled operator keeps its operand's model space
    assert (2.0 * real).real_model and (1j * real).real_model
    assert not (2.0 * cplx).real_model


def test_an_operator_is_complex_unless_it_declares_a_real_model(rng):
    """The model space is complex by default: dottest probes it with complex vectors, so an
    adjoint that is right only for real models (it keeps Re(A^H y)) fails; declared real, it
    passes."""
    d = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    op = _Scale(d, lambda d, y: (np.conj(d) * y).real)
    assert LinearOperator.real_model is False and op.real_model is False
    with pytest.raises(AssertionError, match="dot-product test mismatch"):
        dottest(op, rng)
    op.real_model = True
    dottest(op, rng)


def test_calling_an_operator_applies_it(rng):
    """op(x) is op.forward(x)."""
    d = rng.standard_normal(4)
    x = rng.standard_normal(4)
    np.testing.assert_array_equal(Diagonal(d)(x), d * x)


def test_a_mismatch_equal_to_the_tolerance_passes():
    """dottest fails only when the mismatch exceeds rtol (documented): an operator whose
    adjoint is exact to the last bit (a scaling by 2) has mismatch 0 and passes rtol = 0,
    real or complex; a slightly wrong adjoint fails rtol = 0."""
    rng = np.random.default_rng(3)
    for d in (np.full(5, 2.0), np.full(5, 2.0 + 0j)):
        assert dottest(Diagonal(d), rng, rtol=0.0) == 0.0
    with pytest.raises(AssertionError, match="dot-product test mismatch"):
        dottest(_Scale(np.full(5, 2.0), lambda d, y: (d + 1e-9) * y), rng, rtol=0.0)


def test_a_complex_diagonal_has_the_conjugate_as_its_adjoint(rng):
    """diag(d)^H = diag(conj(d)): the dot-product test of a complex weighting passes, and its
    adjoint is conj(d) y, not d y."""
    d = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    y = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    op = Diagonal(d)
    dottest(op, rng)
    np.testing.assert_allclose(op.adjoint(y), np.conj(d) * y, rtol=1e-15)


def test_a_product_of_mismatched_operators_names_their_shapes_in_order(rng):
    """A @ B needs B.shape_out == A.shape_in; the refusal lists A's shapes, then B's."""
    a, b = Diagonal(np.ones(3)), Diagonal(np.ones(5))
    with pytest.raises(ValueError, match=r"compose operators of shapes \(3,\)->\(3,\) and \(5,\)"):
        a @ b
