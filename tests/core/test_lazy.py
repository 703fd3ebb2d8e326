"""Lazy public names of the engine packages (PEP 562, msinv.core.lazy)."""

import importlib

import pytest

from msinv.core.lazy import lazy_exports


def test_lazy_exports_give_a_sorted_all_and_resolve_on_first_use():
    getattr_, all_ = lazy_exports("msinv.core", {"taylor_test": "testing", "dottest": "operator"})
    assert all_ == ["dottest", "taylor_test"] and isinstance(all_, list)
    from msinv.core.operator import dottest
    from msinv.core.testing import taylor_test

    assert getattr_("dottest") is dottest and getattr_("taylor_test") is taylor_test
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        getattr_("nope")


@pytest.mark.parametrize("package", ["msinv.gravity", "msinv.scattering", "msinv.learned"])
def test_every_public_name_of_an_engine_resolves(package):
    """__all__ is a sorted list of names, each of which imports (no stale entry)."""
    module = importlib.import_module(package)
    assert isinstance(module.__all__, list) and module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None
