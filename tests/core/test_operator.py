"""The generic adjoint test: every registered operator passes the dot-product test."""

import pkgutil
from importlib import import_module

import numpy as np
import pytest

import msinv
from msinv.core.operator import LinearOperator, dottest, registered_operators

# Import every module of the package (engines export lazily) so that every operator subclass
# with an ``example`` registers itself; none escapes the dot-product test.
for _module in pkgutil.walk_packages(msinv.__path__, "msinv."):
    import_module(_module.name)


class _Matrix(LinearOperator):
    """A dense complex matrix: the reference case for the dot-product test itself."""

    def __init__(self, a):
        self.a = a
        self.shape_in, self.shape_out, self.dtype = (a.shape[1],), (a.shape[0],), a.dtype

    def forward(self, x):
        return self.a @ x

    def adjoint(self, y):
        return self.a.conj().T @ y

    @classmethod
    def example(cls, rng):
        return cls(rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3)))


@pytest.mark.parametrize("name", sorted(registered_operators()))
def test_every_registered_operator_is_adjoint(name, rng):
    op = registered_operators()[name].example(rng)
    dottest(op, rng)


def test_dottest_catches_a_wrong_adjoint(rng):
    op = _Matrix.example(rng)
    op.adjoint = lambda y: op.a.T @ y  # transpose without conjugation: wrong
    with pytest.raises(AssertionError, match="dot-product"):
        dottest(op, rng)


def test_adjoint_object_and_scipy_view(rng):
    op = _Matrix.example(rng)
    x = rng.standard_normal(3) + 0j
    np.testing.assert_allclose(op.H.H.forward(x), op.forward(x))
    np.testing.assert_allclose(op.as_scipy().matvec(x), op.forward(x))
    y = rng.standard_normal(5) + 0j
    np.testing.assert_allclose(op.as_scipy().rmatvec(y), op.adjoint(y))


def test_every_operator_with_an_example_is_registered():
    """The generic dot-product test above runs over the registry: every LinearOperator subclass
    of the package (and of this file) that defines ``example`` must be in it, or its adjoint
    goes untested while the parametrised test silently shrinks."""

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    with_example = {
        f"{c.__module__}.{c.__qualname__}"
        for c in subclasses(LinearOperator)
        if "example" in c.__dict__
    }
    assert f"{_Matrix.__module__}._Matrix" in with_example
    assert len([n for n in with_example if n.startswith("msinv.")]) >= 10
    assert with_example <= set(registered_operators())


REAL_MODELS = {  # operators whose model is a physical real quantity (density, contrast, image)
    "msinv.core.regularisation.Gradient2D",
    "msinv.gravity.compression.CompressedSensitivity",
    "msinv.gravity.compression.Wavelet2D",
    "msinv.gravity.compression.Wavelet3D",
    "msinv.gravity.forward.GravityOperator",
    "msinv.gravity.multilevel.Prolongation",
    "msinv.gravity.pipeline.Selection",
    "msinv.gravity.regularisation.SparseOperator",
    "msinv.gravity.sensitivity.OnTheFlySensitivity",
    "msinv.scattering.born.BornOperator",
    "msinv.scattering.born_ls.LinearisedData",
}


def test_operators_on_physical_models_declare_a_real_model_space():
    """A density, a contrast or an image is real: the operators acting on one declare
    real_model (dottest then draws real models and compares real parts, the identity that
    holds for them). The back-projection (data -> image) acts on complex data."""
    registry = registered_operators()
    assert REAL_MODELS <= set(registry)
    for name in REAL_MODELS:
        assert registry[name].real_model, name
    assert not registry["msinv.scattering.born.BackProjection"].real_model
