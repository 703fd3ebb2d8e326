"""msinv: multi-scale inversion.

Three engines share one core:

* :mod:`msinv.scattering` -- 2-D Helmholtz forward solver, wideband data, Born and FWI inversion;
* :mod:`msinv.learned` -- Back-Projection Diffusion and its deterministic baselines (PyTorch);
* :mod:`msinv.gravity` -- GRAV3D-style prism gravity, compressed sensitivities, bounded Tikhonov.

``import msinv`` is cheap: engines are imported on first use.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("msinv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

_SUBMODULES = {"core", "scattering", "learned", "gravity", "metrics", "cli"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"msinv.{name}")
    raise AttributeError(f"module 'msinv' has no attribute {name!r}")


__all__ = ["__version__", *sorted(_SUBMODULES)]
