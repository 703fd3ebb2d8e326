"""Lazy public names of a package (PEP 562), so that ``import msinv.<engine>`` stays cheap."""

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable, list[str]]:
    """A module ``__getattr__`` and ``__all__`` that import each public name on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``, e.g. ``"msinv.scattering"``.
    where : mapping of str to str
        Public name -> submodule (relative to ``package``) that defines it.

    Examples
    --------
    >>> __getattr__, __all__ = lazy_exports(__name__, {"simulate": "helmholtz"})  # doctest: +SKIP
    """

    def __getattr__(name: str):
        if name in where:
            return getattr(import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(where)
