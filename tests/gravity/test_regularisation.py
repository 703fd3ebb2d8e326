"""Model objective: known values, SMOOTH_MOD vs SMOOTH_MOD_DIF, active-cell codes, gradient."""

import numpy as np
import pytest
from discretize import TensorMesh

from msinv.core import taylor_test
from msinv.gravity.regularisation import Regularisation, RegularisationConfig


def _mesh():
    return TensorMesh([np.full(6, 2.0), np.full(5, 2.0), np.full(4, 2.0)])


def test_known_values_for_a_linear_model():
    mesh = _mesh()
    slope = 0.3
    m = slope * mesh.cell_centers[:, 0]
    reg = Regularisation(
        mesh, RegularisationConfig(alpha_s=0.0, alpha_x=2.0, alpha_y=1.0, alpha_z=1.0)
    )
    terms = reg.terms(m)
    # phi_x = alpha_x * sum over interior x-faces of (face volume) * slope^2
    assert terms["x"] == pytest.approx(2.0 * (6 - 1) * 5 * 4 * 8.0 * slope**2)
    assert terms["y"] == pytest.approx(0.0) and terms["z"] == pytest.approx(0.0)
    reg_s = Regularisation(mesh, RegularisationConfig(alpha_s=1.0, alpha_x=0, alpha_y=0, alpha_z=0))
    assert reg_s(np.ones(mesh.n_cells)) == pytest.approx(mesh.cell_volumes.sum())


def test_smooth_mod_and_smooth_mod_dif_differ_as_they_should(rng):
    mesh = _mesh()
    ref = 0.1 * mesh.cell_centers[:, 2] + 0.05 * mesh.cell_centers[:, 0]  # a sloping reference
    mod = Regularisation(mesh, RegularisationConfig(smooth="SMOOTH_MOD"), reference=ref)
    dif = Regularisation(mesh, RegularisationConfig(smooth="SMOOTH_MOD_DIF"), reference=ref)
    # m = reference: SMOOTH_MOD_DIF sees nothing; SMOOTH_MOD still penalises the slope
    assert dif(ref) == pytest.approx(0.0, abs=1e-20)
    assert mod.terms(ref)["s"] == pytest.approx(0.0, abs=1e-20)
    assert mod.terms(ref)["x"] > 0 and mod.terms(ref)["z"] > 0
    # m = reference + constant: the derivative terms swap roles
    shifted = ref + 0.2
    assert dif.terms(shifted)["x"] == pytest.approx(0.0, abs=1e-20)
    assert mod.terms(shifted)["x"] == pytest.approx(mod.terms(ref)["x"])
    # both share the smallness term
    m = rng.standard_normal(mesh.n_cells)
    assert mod.terms(m)["s"] == pytest.approx(dif.terms(m)["s"])


def test_active_codes_one_zero_minus_one(rng):
    mesh = _mesh()
    codes = np.ones(mesh.n_cells, dtype=int)
    codes[mesh.cell_centers[:, 2] > 6] = 0  # top layer out of phi_m
    with_zero = Regularisation(mesh, active_codes=codes)
    codes_m1 = np.where(codes == 0, -1, 1)
    with_m1 = Regularisation(mesh, active_codes=codes_m1)
    assert with_zero.n_active == with_m1.n_active == int((codes == 1).sum())
    nz_faces = 5 * 6
    assert with_m1.operators["z"].shape_out[0] - with_zero.operators["z"].shape_out[0] == nz_faces
    ref = np.zeros(mesh.n_cells)
    full = with_m1.full_model(np.ones(with_m1.n_active), fill=-100.0)
    assert np.all(full[codes_m1 == -1] == -100.0)
    assert np.all(with_zero.full_model(np.ones(with_zero.n_active))[codes == 0] == ref[codes == 0])
    with pytest.raises(ValueError, match="1, 0 or -1"):
        Regularisation(mesh, active_codes=np.full(mesh.n_cells, 2))


def test_gradient_taylor(rng):
    mesh = _mesh()
    reg = Regularisation(
        mesh,
        weights=rng.uniform(0.2, 1, mesh.n_cells),
        reference=rng.standard_normal(mesh.n_cells),
        config=RegularisationConfig(smooth="SMOOTH_MOD_DIF"),
        user_weights={"x": rng.uniform(0, 2, mesh.n_cells)},
    )
    m, dm = rng.standard_normal(reg.n_active), rng.standard_normal(reg.n_active)
    grad = 2 * (reg.hessian(m) - reg.rhs_vector())
    res = taylor_test(reg, m, dm, grad, min_rate=1.99, max_rate=2.01)
    # quadratic: the first-order remainder equals the second-order term exactly
    np.testing.assert_allclose(res.first, res.steps**2 * (dm @ reg.hessian(dm)), rtol=1e-6)


def test_config_validation_and_length_scales():
    cfg = RegularisationConfig.from_length_scales(100.0, 100.0, 50.0)
    assert (cfg.alpha_x, cfg.alpha_z) == pytest.approx((1.0, 0.25))
    with pytest.raises(ValueError, match="not all zero"):
        RegularisationConfig(0, 0, 0, 0)
    with pytest.raises(ValueError, match="SMOOTH_MOD"):
        RegularisationConfig(smooth="smooth")


@pytest.mark.parametrize("lengths", [(0.0, 10.0, 10.0), (10.0, -5.0, 10.0), (10.0, 10.0, 0.0)])
def test_length_scales_must_be_positive(lengths):
    """alpha_i = alpha_s L_i^2: a length of 0 or below (no smoothing along an axis is
    alpha_i = 0, given directly) is refused in one line naming the lengths."""
    with pytest.raises(ValueError, match=r"length scales must be > 0 m, got \("):
        RegularisationConfig.from_length_scales(*lengths)
    assert RegularisationConfig.from_length_scales(1e-3, 1e-3, 1e-3).alpha_x > 0


@pytest.mark.parametrize("bad", ["zero", "negative", "short"])
def test_cell_weights_must_be_one_positive_value_per_cell(bad):
    """The depth/distance weights scale every term: a zero or negative weight, or one missing,
    is refused in one line (120 cells here)."""
    mesh = _mesh()
    w = np.ones(mesh.n_cells)
    if bad == "zero":
        w[7] = 0.0
    elif bad == "negative":
        w[7] = -0.5
    else:
        w = w[:-1]
    with pytest.raises(ValueError, match="weights must be 120 positive values"):
        Regularisation(mesh, weights=w)


def test_reference_model_must_have_one_value_per_cell():
    """The reference model (also the value of the fixed cells) has one value per cell of the
    mesh; one of another length is refused, not broadcast."""
    mesh = _mesh()
    with pytest.raises(ValueError, match=r"reference model must have 120 values, got \(119,\)"):
        Regularisation(mesh, reference=np.zeros(119))
    with pytest.raises(ValueError, match=r"reference model must have 120 values, got \(\)"):
        Regularisation(mesh, reference=0.1)


def test_clear_irls_returns_to_least_squares(rng):
    """reweight sets sparse-norm (IRLS) weights on every term; clear_irls removes them all: the
    normal matrix and right-hand side are again those of a regularisation never re-weighted."""
    mesh = _mesh()
    kw = dict(weights=rng.uniform(0.5, 1.0, mesh.n_cells), reference=rng.uniform(size=mesh.n_cells))
    fresh, reg = Regularisation(mesh, **kw), Regularisation(mesh, **kw)
    m = rng.standard_normal(reg.n_active)
    reg.reweight(m, {k: 1.0 for k in reg.terms_}, {k: 1e-2 for k in reg.terms_})
    for key in reg.terms_:  # every term was re-weighted
        assert abs(reg.terms_[key].normal_matrix() - fresh.terms_[key].normal_matrix()).max() > 0
    reg.clear_irls()
    assert abs(reg.normal_matrix() - fresh.normal_matrix()).max() == 0
    np.testing.assert_array_equal(reg.rhs_vector(), fresh.rhs_vector())
