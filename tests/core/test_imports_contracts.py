"""Lazy names and optional dependencies (written from survivors of the sampled mutation run,
docs/testing.md)."""

import pytest

import msinv.scattering
from msinv.core.optional import require


def test_a_name_a_package_does_not_export_is_an_attribute_error():
    """PEP 562 __getattr__: unknown names raise AttributeError (so hasattr is False and
    `from msinv.scattering import typo` fails) instead of reading as None."""
    assert msinv.scattering.simulate is not None
    assert not hasattr(msinv.scattering, "no_such_name")
    with pytest.raises(AttributeError, match=r"module 'msinv\.scattering' has no attribute"):
        msinv.scattering.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("module", "extra"),
    [("torch.no_such_submodule", "learn"), ("pywt.no_such_submodule", "gravity"),
     ("no_such_package_at_all", "all")],
)  # fmt: skip
def test_a_missing_optional_dependency_names_the_extra_to_install(module, extra):
    with pytest.raises(ImportError, match=rf"{module} is needed to train; .*msinv\[{extra}\]"):
        require(module, "train")
