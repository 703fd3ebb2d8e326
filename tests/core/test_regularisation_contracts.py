"""Weighted least-squares terms and smoothed lp norms against their definitions (written from
the survivors of the sampled mutation run, docs/testing.md)."""

import numpy as np
import pytest
import scipy.sparse as sp

from msinv.core.errors import UserInputError
from msinv.core.regularisation import KINDS, Gradient2D, LpNorm, Regulariser, WeightedTerm
from msinv.gravity.regularisation import SparseOperator  # a real sparse matrix with .matrix


@pytest.fixture
def term(rng):
    a = sp.random_array((9, 5), density=0.6, rng=rng) + sp.eye_array(9, 5)
    t = WeightedTerm(SparseOperator(a), rhs=rng.standard_normal(9))
    t.set_weights("user", rng.uniform(0.5, 2.0, 9))
    t.set_weights("irls", rng.uniform(0.1, 1.0, 9))
    return t, a.toarray()


def test_weighted_term_is_its_quadratic_form(term, rng):
    """phi(x) = sum w (Lx - b)^2 = x.N x - 2 x.L^T W b + b.W b, with N = L^T W L given by
    normal(), normal_matrix() and normal_rhs() (weights the product of their factors)."""
    t, a = term
    w = t.factors["user"] * t.factors["irls"]
    np.testing.assert_allclose(t.weights, w)
    x = rng.standard_normal(5)
    n = a.T @ (w[:, None] * a)
    assert t.value(x) == pytest.approx(np.sum(w * (a @ x - t.rhs) ** 2), rel=1e-12)
    np.testing.assert_allclose(t.normal(x), n @ x, rtol=1e-12)
    np.testing.assert_allclose(t.normal_matrix().toarray(), n, rtol=1e-12)
    np.testing.assert_allclose(t.normal_rhs(), a.T @ (w * t.rhs), rtol=1e-12)
    quadratic = x @ t.normal(x) - 2 * x @ t.normal_rhs() + np.sum(w * t.rhs**2)
    assert t.value(x) == pytest.approx(quadratic, rel=1e-10)


@pytest.mark.parametrize("p", [0.0, 1.0, 1.5, 2.0])
def test_lp_norm_and_its_lawson_weights(p):
    """rho(r) = sum (r^2 + eps^2)^(p/2); w = (r^2 + eps^2)^((p-2)/2), so sum w r^2 + eps^2 w
    = rho: the IRLS quadratic touches the norm at the current residual."""
    norm = LpNorm(p, eps=0.3)
    r = np.array([0.0, 0.1, -0.5, 2.0])
    expected = np.sum((r**2 + 0.09) ** (p / 2))
    assert norm(r) == pytest.approx(expected, rel=1e-12)
    assert norm(np.zeros(3)) == pytest.approx(3 * 0.3**p, rel=1e-12)
    w = norm.weights(r)
    np.testing.assert_allclose(w, (r**2 + 0.09) ** ((p - 2) / 2), rtol=1e-12)
    assert np.sum(w * (r**2 + 0.09)) == pytest.approx(norm(r), rel=1e-12)


def test_regulariser_kinds_are_checked():
    for kind in KINDS:
        assert Regulariser(kind=kind).kind == kind
    with pytest.raises(UserInputError, match="regulariser kind 'l3'"):
        Regulariser(kind="l3")


def test_a_zero_weight_switches_a_cell_off_and_a_negative_one_is_refused():
    """Weights are >= 0: 0 is allowed (a cell or a difference left out of the term)."""
    term = WeightedTerm(Gradient2D((4, 5)))
    w = np.ones(term.operator.shape_out)
    w.flat[0] = 0.0
    term.set_weights("mask", w)
    np.testing.assert_array_equal(term.weights, w)
    w.flat[0] = -1e-12
    with pytest.raises(UserInputError, match="values >= 0"):
        term.set_weights("mask", w)


@pytest.mark.parametrize("eps", [0.0, -1e-3, float("nan")])
def test_tv_smoothing_eps_must_be_positive(eps):
    """The smoothed TV norm sqrt(|D x|^2 + eps^2) needs eps > 0 (eps = 0 divides by zero on
    flat regions): anything else is refused in one line."""
    with pytest.raises(UserInputError, match=r"TV smoothing eps .*: expected > 0"):
        Regulariser("tv", 1.0, eps=eps)


def test_lp_exponent_is_in_the_half_open_interval_to_two():
    """0 < p <= 2 (p = 2 is the quadratic term; p > 2 is not a sparse norm): 2 is accepted,
    2.5 and 0 refused."""
    assert Regulariser("tv", 1.0, p=2.0).p == 2.0
    for bad in (2.5, 0.0):
        with pytest.raises(UserInputError, match=r"lp exponent p .*: expected 0 < p <= 2"):
            Regulariser("tv", 1.0, p=bad)


@pytest.mark.parametrize("eps", [0.0, -1e-3])
def test_lp_norm_smoothing_must_be_positive(eps):
    with pytest.raises(UserInputError, match="lp norm: eps must be > 0"):
        LpNorm(1.0, eps=eps)


def test_gradient2d_maps_an_image_to_its_two_forward_differences(rng):
    """Gradient2D: (n0, n1) -> (2, n0, n1), [x[i+1, j] - x[i, j], x[i, j+1] - x[i, j]], zero
    across the last row and column; nothing else (a third, zero component would add eps^p per
    pixel to every smoothed norm built on it)."""
    x = rng.standard_normal((4, 5))
    op = Gradient2D(x.shape)
    assert op.shape_out == (2, 4, 5)
    expected = np.zeros((2, 4, 5))
    expected[0, :-1] = np.diff(x, axis=0)
    expected[1, :, :-1] = np.diff(x, axis=1)
    np.testing.assert_array_equal(op.forward(x), expected)


def test_a_weighted_term_refuses_a_right_hand_side_of_another_shape():
    """rhs b of ||L x - b||^2 lives in L's output space: another shape is refused in one line
    (NumPy would broadcast a (4, 5) b against a (2, 4, 5) L x)."""
    op = Gradient2D((4, 5))
    WeightedTerm(op, np.ones((2, 4, 5)))
    with pytest.raises(UserInputError, match=r"rhs has shape \(4, 5\), the operator gives"):
        WeightedTerm(op, np.ones((4, 5)))


def test_the_operator_of_each_kind_and_irls_weights_only_for_the_non_quadratic_ones(rng):
    """gradient: L = D (Gradient2D); tikhonov: L = I (None); tv and lp have no single L.
    IRLS weights exist for tv and lp only: a quadratic kind asking for them is refused."""
    x = rng.standard_normal((4, 5))
    op = Regulariser(kind="gradient", weight=1.0).operator((4, 5))
    assert isinstance(op, Gradient2D) and op.shape_in == (4, 5)
    assert Regulariser(kind="tikhonov", weight=1.0).operator((4, 5)) is None
    for kind in ("tv", "lp"):
        with pytest.raises(UserInputError, match="is not quadratic"):
            Regulariser(kind=kind, weight=1.0).operator((4, 5))
        assert Regulariser(kind=kind, weight=1.0).irls_weights(x).shape == (4, 5)
    for kind in ("gradient", "tikhonov"):
        with pytest.raises(UserInputError, match=f"{kind} is quadratic: it needs no IRLS"):
            Regulariser(kind=kind, weight=1.0).irls_weights(x)


def test_a_matrix_free_term_has_no_normal_matrix_but_applies_its_normal_operator(rng):
    """normal_matrix() is for an L with a sparse ``matrix``; a matrix-free L (Gradient2D)
    gives None there, and normal(x) = L^T W L x still works."""
    term = WeightedTerm(Gradient2D((4, 5)))
    assert term.normal_matrix() is None
    x = rng.standard_normal((4, 5))
    d = Gradient2D((4, 5))
    np.testing.assert_allclose(term.normal(x), d.adjoint(d.forward(x)), rtol=1e-12)


def test_an_operator_whose_matrix_is_dense_is_used_matrix_free(rng):
    """Only a SciPy sparse ``matrix`` is assembled by normal_matrix(); an operator exposing a
    dense ndarray ``matrix`` gets None (the callers then apply normal() matrix-free) rather
    than a dense n x n product passed off as sparse."""
    from msinv.core.operator import LinearOperator

    class _Dense(LinearOperator):
        def __init__(self, a):
            self.matrix = a
            self.shape_in, self.shape_out, self.dtype = (a.shape[1],), (a.shape[0],), a.dtype

        def forward(self, x):
            return self.matrix @ x

        def adjoint(self, y):
            return self.matrix.T @ y

    a = rng.standard_normal((6, 4))
    term = WeightedTerm(_Dense(a))
    term.set_weights("user", np.full(6, 2.0))
    assert term.normal_matrix() is None
    x = rng.standard_normal(4)
    np.testing.assert_allclose(term.normal(x), 2.0 * a.T @ (a @ x), rtol=1e-12)


@pytest.mark.parametrize("kind", ["tv", "lp"])
def test_the_irls_surrogate_touches_the_regulariser_with_the_same_gradient(rng, kind):
    """The IRLS surrogate ``weight/2 sum w |L x|^2`` with w frozen at x has, at x, the gradient
    of the regulariser itself (lagged diffusivity for TV, Lawson for lp): weight L^T (w L x) =
    grad R(x). Checked with gradients of the order of eps, where the eps term matters."""
    reg = Regulariser(kind=kind, weight=2.5, p=1.0, eps=0.05)
    x = 0.05 * rng.standard_normal((6, 7))
    w = reg.irls_weights(x)
    if kind == "tv":
        d = Gradient2D(x.shape)
        surrogate = reg.weight * d.adjoint(w * d.forward(x))
    else:
        surrogate = reg.weight * w * x
    np.testing.assert_allclose(surrogate, reg(x)[1], rtol=1e-12, atol=1e-14)


def test_a_regulariser_spec_gives_an_lp_exponent_in_the_half_open_interval_to_two():
    """``lp:WEIGHT:P`` (the CLI's --reg) reads P in (0, 2]: P = 2 is accepted, P omitted is 1,
    and P = 0 or P > 2 is refused in one line that quotes the spec and the accepted forms."""
    assert Regulariser.parse("lp:1e-2:2") == Regulariser("lp", 1e-2, p=2.0)
    assert Regulariser.parse("lp:1e-2:0.25") == Regulariser("lp", 1e-2, p=0.25)
    assert Regulariser.parse("lp:1e-2") == Regulariser("lp", 1e-2, p=1.0)
    for spec in ("lp:1e-2:0", "lp:1e-2:2.5", "lp:1e-2:-1"):
        with pytest.raises(UserInputError, match=rf"regulariser '{spec}': expected KIND:WEIGHT"):
            Regulariser.parse(spec)


def test_lp_norm_exponents_may_differ_per_entry_each_in_the_closed_interval():
    """p as an array (GRAV3D's per-cell norms) applies entry by entry: the value and the
    Lawson weights of entry i use p_i; every exponent must lie in [0, 2], ends included, and
    one entry outside (by any amount, on either side) is refused in one line."""
    p = np.array([0.0, 1.0, 2.0, 0.5])
    r = np.array([0.4, -1.0, 3.0, 0.0])
    norm = LpNorm(p, eps=0.2)
    per_entry = [LpNorm(float(pi), eps=0.2) for pi in p]
    assert norm(r) == pytest.approx(sum(n(r[i : i + 1]) for i, n in enumerate(per_entry)))
    np.testing.assert_allclose(
        norm.weights(r), [n.weights(r[i : i + 1])[0] for i, n in enumerate(per_entry)]
    )
    for bad in ([0.0, 2.0 + 1e-12], [-1e-12, 1.0]):
        with pytest.raises(UserInputError, match=r"lp norm: exponents must be in \[0, 2\]"):
            LpNorm(np.array(bad))


def test_a_term_without_rhs_measures_the_operator_output_itself(rng):
    """b defaults to zero: phi(x) = ||L x||_W^2, minimised by x = 0, and L^H W b = 0."""
    term = WeightedTerm(Gradient2D((4, 5)))
    x = rng.standard_normal((4, 5))
    lx = term.operator.forward(x)
    assert term.value(x) == pytest.approx(float(np.sum(np.abs(lx) ** 2)), rel=1e-12)
    assert term.value(np.zeros((4, 5))) == 0.0
    np.testing.assert_array_equal(term.normal_rhs(), np.zeros((4, 5)))
