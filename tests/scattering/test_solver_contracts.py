"""Input contracts of the FD solver that a wrong guard would break silently.

Written from the survivors of the sampled mutation run (docs/testing.md): each test states
what the solver must refuse, so that a dropped or loosened check fails here.
"""

import contextlib
import re

import numpy as np
import pytest
import scipy.sparse as sp

from msinv.core.errors import UserInputError
from msinv.scattering import Geometry, HelmholtzSolver, simulate
from msinv.scattering.helmholtz import check_eta
from msinv.scattering.schemes import EtaTerm, WideScheme, resolve_scheme


def test_solver_refuses_a_batch_of_images(small_geometry, bump):
    """One solver is one medium: a (b, n, n) batch is refused, not cut to its first image."""
    eta = bump(small_geometry)
    with pytest.raises(UserInputError, match=r"\(n, n\)"):
        HelmholtzSolver(small_geometry, np.stack([eta, 2 * eta]), 2.0)
    with pytest.raises(UserInputError):
        HelmholtzSolver(small_geometry, eta[None], 2.0)


def test_vjp_refuses_a_transposed_residual(small_geometry, bump):
    """The residual is (n_receivers, n_sources); its transpose is refused with one line."""
    g = small_geometry
    assert g.n_receivers != g.n_sources
    solver = HelmholtzSolver(g, bump(g), 2.0)
    residual = np.ones((g.n_sources, g.n_receivers), complex)
    with pytest.raises(UserInputError, match="residual has shape"):
        solver.vjp(residual)


@pytest.mark.parametrize("reader", ["representation", "cubic", "bilinear"])
def test_jvp_about_an_empty_medium_is_the_born_derivative(small_geometry, bump, reader):
    """About eta = 0 the data vanish, so jvp(d) is the central difference of data(+-t d)
    (the Born approximation), and it is linear: jvp(0) = 0."""
    g = small_geometry
    kw = {"receiver_interpolation": reader, "dtype": np.complex128}
    s = HelmholtzSolver(g, np.zeros((g.n, g.n)), 2.0, **kw)
    d = bump(g, amp=1.0)
    t = 1e-6
    fd = (
        HelmholtzSolver(g, t * d, 2.0, **kw).data() - HelmholtzSolver(g, -t * d, 2.0, **kw).data()
    ) / (2 * t)
    np.testing.assert_allclose(s.jvp(d), fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())
    np.testing.assert_array_equal(s.jvp(np.zeros((g.n, g.n))), 0.0)


def test_auto_policy_chooses_a_scheme_at_every_frequency():
    """ "auto" covers every points-per-wavelength value (its last limit is 0, not a gap) and
    never lowers the order as the frequency rises."""
    g = Geometry.paper(40)
    ppw = np.array([100.0, 24.0, 23.9, 12.0, 11.9, 3.0, 0.9, 0.1])
    orders = [resolve_scheme("auto", 1.0 / (p * g.h), g).order for p in ppw]
    assert orders == sorted(orders)
    assert orders[0] < orders[-1]


def test_contrast_check_refuses_what_is_not_a_geometry(small_geometry):
    """check_eta (the validator the CLI's data commands call) names a wrong geometry argument
    in one line instead of failing on a missing attribute."""
    n = small_geometry.n
    assert check_eta(np.zeros((n, n)), small_geometry).shape == (1, n, n)
    for wrong in (n, {"n": n}):
        with pytest.raises(UserInputError, match="expected a msinv Geometry"):
            check_eta(np.zeros((n, n)), wrong)


class _OffPattern(WideScheme):
    """A broken scheme: its eta term couples a contrast node to a far corner of the grid,
    outside the pattern of A(0)."""

    def eta_terms(self, geometry, omega):
        p = sp.csr_matrix(
            ([1.0], ([0], [geometry.n**2 - 1])), shape=(geometry.n_total**2, geometry.n**2)
        )
        return (EtaTerm(p, None),)


def test_a_scheme_whose_eta_term_leaves_the_matrix_pattern_is_refused(small_geometry):
    """The solver writes eta into A(0)'s sparsity pattern in place: a scheme (a new one in the
    registry, say) whose eta term has an entry outside that pattern is an error of the scheme,
    said when its matrix is first assembled, not a silently wrong matrix."""
    from msinv.scattering.helmholtz import _background

    with pytest.raises(RuntimeError, match="eta term not inside the matrix pattern"):
        _background(small_geometry, 2 * np.pi * 2.0, _OffPattern(4))


def test_workers_start_a_pool_only_for_more_than_one_solve(small_geometry, bump, monkeypatch):
    """simulate(workers=2) runs two (image, frequency) solves in two processes and a single
    solve in this process (no pool to start); the data are the same either way."""
    import msinv.scattering.helmholtz as helmholtz

    pools = []

    class _InlinePool:
        def map(self, fn, tasks):
            return map(fn, tasks)

    @contextlib.contextmanager
    def inline_pool(workers, **kwargs):
        pools.append(workers)
        yield _InlinePool()

    eta = bump(small_geometry)
    serial = simulate(eta, small_geometry, [1.0, 2.0])
    monkeypatch.setattr(helmholtz, "worker_pool", inline_pool)
    np.testing.assert_array_equal(simulate(eta, small_geometry, [1.0, 2.0], workers=2), serial)
    assert pools == [2]
    np.testing.assert_array_equal(simulate(eta, small_geometry, [2.0], workers=2), serial[1:])
    assert pools == [2]


def test_jvp_refuses_a_perturbation_of_the_wrong_size_or_a_complex_one(small_geometry, bump):
    g = small_geometry
    solver = HelmholtzSolver(g, bump(g), 2.0)
    for wrong in (np.zeros((g.n + 1, g.n + 1)), np.zeros((g.n, g.n), complex)):
        with pytest.raises(UserInputError, match="deta has shape"):
            solver.jvp(wrong)


@pytest.mark.parametrize("freqs", [[], np.array([])])
def test_simulate_refuses_an_empty_frequency_list(small_geometry, bump, freqs):
    """No frequency is an input error, not an empty (0, n_r, n_s) array of data."""
    with pytest.raises(UserInputError, match="freqs is empty"):
        simulate(bump(small_geometry), small_geometry, freqs)


class _BothSides(WideScheme):
    """A broken scheme: one eta term with a left and a right operator (P and Q), which the
    solver's term layout does not represent."""

    def eta_terms(self, geometry, omega):
        n2 = geometry.n**2
        p = sp.eye(geometry.n_total**2, n2, format="csr")
        return (EtaTerm(p, sp.eye(n2, format="csr")),)


def test_an_eta_term_with_both_a_left_and_a_right_operator_is_refused(small_geometry):
    """An EtaTerm has ``left`` or ``right`` (or neither), not both (documented): a scheme that
    gives both is an error said when its matrix is assembled, not one of them ignored."""
    from msinv.scattering.helmholtz import _background

    with pytest.raises(ValueError, match="an EtaTerm has a left or a right operator, not both"):
        _background(small_geometry, 2 * np.pi * 2.0, _BothSides(4))


@pytest.mark.parametrize("method", ["solve", "solve_adjoint"])
def test_solve_refuses_a_right_hand_side_that_is_not_a_stack_of_images(
    small_geometry, bump, method
):
    """solve and solve_adjoint take (k, n, n) right-hand sides on the contrast grid: one image
    without its leading axis, or images of another size, is refused in one line naming the
    argument and the expected shape."""
    g = small_geometry
    solver = HelmholtzSolver(g, bump(g), 2.0)
    name = "f" if method == "solve" else "g"
    run = getattr(solver, method)
    assert run(np.zeros((2, g.n, g.n))).shape == (2, g.n, g.n)
    for wrong in (np.zeros((g.n, g.n)), np.zeros((1, g.n + 1, g.n + 1))):
        expected = f"{name} has shape {wrong.shape}: expected (k, {g.n}, {g.n})"
        with pytest.raises(UserInputError, match=re.escape(expected)):
            run(wrong)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_simulate_refuses_a_worker_count_that_is_not_a_positive_integer(small_geometry, bump, bad):
    """workers is a count of processes >= 1; zero, a fraction, a string or a bool is refused
    in one line before any solve (as generate refuses them)."""
    with pytest.raises(
        UserInputError, match=re.escape(f"workers={bad!r}: expected an integer >= 1")
    ):
        simulate(bump(small_geometry), small_geometry, [2.0], workers=bad)


def test_the_torch_backend_without_msinv_accel_is_a_one_line_error(
    small_geometry, bump, monkeypatch
):
    """backend="torch" runs msinv.accel (the learn extra); where it cannot be imported the
    error names the backend and the extra to install, not an ImportError traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "msinv.accel", None)  # import msinv.accel -> ImportError
    with pytest.raises(
        UserInputError,
        match=re.escape(
            "backend='torch' needs msinv.accel and PyTorch (pip install 'msinv[learn]')"
        ),
    ):
        simulate(bump(small_geometry), small_geometry, [2.0], backend="torch")


@pytest.mark.parametrize("order", [0, 3, 10, "8"])
def test_a_wide_scheme_of_an_order_without_a_stencil_is_refused(order):
    """WideScheme has the centred stencils of orders 2, 4, 6 and 8 only: any other order (an
    odd one, a string) is refused at construction, naming the orders there are."""
    with pytest.raises(
        UserInputError,
        match=re.escape(f"wide scheme order {order!r}: expected one of (2, 4, 6, 8)"),
    ):
        WideScheme(order)
    assert WideScheme(2).order == 2


def test_a_scheme_object_names_and_resolves_to_itself():
    """A Scheme given where a name is expected is taken as is: scheme_name gives its name,
    get_scheme returns that very object (a scheme outside the registry included), and it
    prints as its name."""
    from msinv.scattering.schemes import SCHEMES, get_scheme, scheme_name

    for name, scheme in SCHEMES.items():
        assert scheme_name(scheme) == name == str(scheme)
        assert get_scheme(scheme) is scheme
    custom = _OffPattern(4)
    assert get_scheme(custom) is custom and scheme_name(custom) == "wide4" == str(custom)


@pytest.mark.parametrize("batched", [False, True])
def test_another_backend_gets_the_batch_and_its_data_come_back_in_the_spec_dtype(
    small_geometry, bump, monkeypatch, batched
):
    """backend="torch" hands msinv.accel.simulate the (b, n, n) batch, the spec and the
    frequencies; its data come back in the spec's dtype (complex64 by default), without the
    batch axis for a single image."""
    import sys
    import types

    g = small_geometry
    calls = []

    def fake(etas, spec, freqs):
        calls.append((etas.shape, spec.backend, list(freqs)))
        shape = (etas.shape[0], len(freqs), g.n_receivers, g.n_sources)
        return np.full(shape, 1 + 2j, dtype=np.complex128)

    monkeypatch.setitem(sys.modules, "msinv.accel", types.SimpleNamespace(simulate=fake))
    eta = bump(g)
    out = simulate(np.stack([eta, eta]) if batched else eta, g, [2.0, 3.0], backend="torch")
    b = 2 if batched else 1
    assert calls == [((b, g.n, g.n), "torch", [2.0, 3.0])]
    assert out.dtype == np.complex64
    assert out.shape == ((2,) if batched else ()) + (2, g.n_receivers, g.n_sources)


def test_adjoint_factors_are_computed_once(small_geometry, bump):
    """lu_adjoint factors A^H on first use and keeps it: a second use is the same factor
    object, and it solves A^H x = b."""
    g = small_geometry
    solver = HelmholtzSolver(g, bump(g), 2.0)
    lu = solver.lu_adjoint
    assert solver.lu_adjoint is lu
    a_h = solver._permuted_matrix().conj().T
    rhs = np.arange(a_h.shape[0], dtype=complex)
    np.testing.assert_allclose(a_h @ lu.solve(rhs), rhs, rtol=0, atol=1e-8 * np.abs(rhs).max())


def test_simulate_reads_every_documented_form_of_its_arguments(small_geometry, bump):
    """freqs as a number is the one-frequency list (the frequency axis is kept); a ForwardSpec
    gives its own fields, and simulate's keywords override them one by one (scheme, reader,
    precision), the same as those keywords with the bare geometry."""
    from msinv.scattering.spec import ForwardSpec

    g, eta = small_geometry, bump(small_geometry)
    one = simulate(eta, g, [2.0], scheme=4, receiver_interpolation="cubic")
    np.testing.assert_array_equal(
        simulate(eta, g, 2.0, scheme=4, receiver_interpolation="cubic"), one
    )
    spec = ForwardSpec(g, scheme=4, receiver_interpolation="cubic", dtype="complex128")
    np.testing.assert_array_equal(
        simulate(eta, spec, [2.0]),
        simulate(eta, g, [2.0], scheme=4, receiver_interpolation="cubic", dtype=np.complex128),
    )
    overridden = simulate(
        eta, spec, [2.0], scheme=2, receiver_interpolation="bilinear", dtype=np.complex64
    )
    np.testing.assert_array_equal(
        overridden, simulate(eta, g, [2.0], scheme=2, receiver_interpolation="bilinear")
    )
    assert overridden.dtype == np.complex64 and not np.array_equal(overridden, one)


def test_auto_policy_limits_belong_to_the_coarser_scheme():
    """POLICIES are (points per wavelength >= limit, scheme), first match wins: exactly 24
    points per wavelength is still wide4 and exactly 12 still wide6 (h = 1/16 here, so that
    1 / (f h) is exactly the limit), a hair fewer is the next order."""
    g = Geometry.paper(17)
    for ppw, at, below in [(24.0, 4, 6), (12.0, 6, 8)]:
        f = 1.0 / (ppw * g.h)
        assert 1.0 / (f * g.h) == ppw  # the premise: exactly on the limit
        assert resolve_scheme("auto", f, g).order == at
        assert resolve_scheme("auto", f * (1 + 1e-12), g).order == below


def test_a_wide_order_may_be_a_numpy_integer_or_a_digit_string_but_not_a_bool():
    """The order of a wide scheme is accepted as int, NumPy integer (what a store or an array
    of settings gives back) or digit string, each naming the same scheme; a policy name is
    kept as is; True (an int to Python) and 8.0 are refused."""
    from msinv.scattering.schemes import scheme_name

    assert scheme_name(np.int64(6)) == scheme_name(6) == scheme_name("6") == "wide6"
    assert scheme_name(np.int32(8)) == "wide8" and scheme_name("auto") == "auto"
    for bad in (True, 8.0, np.float64(4.0)):
        with pytest.raises(UserInputError, match=re.escape(f"scheme={bad!r}: expected one of")):
            scheme_name(bad)


def test_the_solver_takes_its_precision_from_a_spec_and_double_for_a_bare_geometry(
    small_geometry, bump
):
    """HelmholtzSolver's documented defaults: complex128 for a bare Geometry (gradients need
    it), the spec's precision for a ForwardSpec (complex64 by default), and dtype= overrides
    either; the data come out in that precision and equal the batch simulator's."""
    from msinv.scattering.spec import ForwardSpec

    g, eta = small_geometry, bump(small_geometry)
    bare = HelmholtzSolver(g, eta, 2.0, scheme=4)
    spec = HelmholtzSolver(ForwardSpec(g, scheme=4), eta, 2.0)
    forced = HelmholtzSolver(ForwardSpec(g, scheme=4), eta, 2.0, dtype=np.complex128)
    assert (bare.dtype, spec.dtype, forced.dtype) == (np.complex128, np.complex64, np.complex128)
    assert bare.data().dtype == np.complex128 and spec.data().dtype == np.complex64
    np.testing.assert_array_equal(forced.data(), bare.data())
    np.testing.assert_array_equal(spec.data(), simulate(eta, g, [2.0], scheme=4)[0])


def test_the_incident_fields_a_solver_hands_out_are_read_only(small_geometry, bump):
    """incident_fields() is documented read-only: it is the cached array every solver at this
    (geometry, frequency, precision) shares, so a caller's write must fail instead of
    corrupting the next solver's fields."""
    g = small_geometry
    u = HelmholtzSolver(g, bump(g), 2.0).incident_fields()
    with pytest.raises(ValueError, match="read-only"):
        u[0, 0, 0] = 0.0
    omega = 2 * np.pi * 2.0
    phase = (
        g.source_directions[:, 0, None, None] * g.x
        + g.source_directions[:, 1, None, None] * (g.y[:, None])
    )
    np.testing.assert_allclose(
        HelmholtzSolver(g, bump(g), 2.0).incident_fields(), np.exp(1j * omega * phase), rtol=1e-14
    )


def test_simulate_solves_in_this_process_unless_asked_for_workers(
    small_geometry, bump, monkeypatch
):
    """workers defaults to 1: several (image, frequency) solves run one after the other in
    this process, no worker pool is started."""
    import msinv.scattering.helmholtz as helmholtz

    def no_pool(*args, **kwargs):
        raise AssertionError("simulate started a worker pool without workers > 1")

    monkeypatch.setattr(helmholtz, "worker_pool", no_pool)
    eta = bump(small_geometry)
    data = simulate(np.stack([eta, -eta]), small_geometry, [1.0, 2.0])
    assert data.shape == (2, 2, small_geometry.n_receivers, small_geometry.n_sources)


def test_an_adjoint_solve_of_16_columns_factorises_a_h_and_fewer_reuse_a(
    small_geometry, bump, monkeypatch
):
    """The measured break-even (benchmarks/fwi.py): from 16 right-hand sides the adjoint
    solve factorises A^H (two factorisations for a gradient), below it solves with A's
    factors transposed (one); the gradient is the same either way."""
    import msinv.scattering.helmholtz as helmholtz

    factorised = []
    real_splu = helmholtz.splu

    def counting_splu(a, **kwargs):
        factorised.append(a.shape)
        return real_splu(a, **kwargs)

    monkeypatch.setattr(helmholtz, "splu", counting_splu)
    rng = np.random.default_rng(5)
    for n_sources, factorisations in ((16, 2), (15, 1)):
        g = Geometry(n=16, pml_width=4, n_sources=n_sources, n_receivers=8)
        r = rng.standard_normal((8, n_sources)) + 1j * rng.standard_normal((8, n_sources))
        factorised.clear()
        grad = HelmholtzSolver(g, bump(g), 2.0).vjp(r)
        assert len(factorised) == factorisations, n_sources
        monkeypatch.setattr(helmholtz, "ADJOINT_FACTOR_MIN_RHS", 1 if n_sources < 16 else 17)
        other = HelmholtzSolver(g, bump(g), 2.0).vjp(r)  # the other path
        monkeypatch.setattr(helmholtz, "ADJOINT_FACTOR_MIN_RHS", 16)
        np.testing.assert_allclose(other, grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())


@pytest.mark.parametrize("geometry", [{"n": 16}, 16, None])
def test_simulate_refuses_what_is_not_a_geometry_in_one_line(geometry):
    """simulate's second argument is a Geometry (or a ForwardSpec): anything else is refused
    naming its type, before any work (not an AttributeError from deep inside)."""
    with pytest.raises(UserInputError, match=r"geometry is a \w+: expected a msinv Geometry"):
        simulate(np.zeros((16, 16)), geometry, [1.0])
