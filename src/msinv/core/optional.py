"""Lazy import of heavy optional dependencies with an actionable error message."""

from importlib import import_module
from types import ModuleType

_EXTRA_OF = {
    "torch": "learn",
    "ot": "learn",
    "pywt": "gravity",
    "choclo": "gravity",
    "numba": "gravity",
    "discretize": "gravity",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or fail with a message that says which extra to install.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"torch"``.
    purpose : str
        What the caller wanted to do, used in the message ("train a model").
    """
    try:
        return import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        extra = _EXTRA_OF.get(module.split(".")[0], "all")
        raise ImportError(
            f"{module} is needed to {purpose}; install it with `pip install 'msinv[{extra}]'`"
        ) from exc
