"""PyTorch backend of the physics: batched solvers for a GPU (or the CPU), needs the ``learn``
extra.

``msinv.scattering`` itself never imports torch; the dataset code reaches this package only
when the torch backend is asked for (``msinv scatter generate --device cuda|cpu-torch``).

================  ===========================================  ==================================
name              module                                       what
================  ===========================================  ==================================
``solve``         :mod:`msinv.accel.lippmann_schwinger`        batched data + GMRES record
``simulate``      :mod:`msinv.accel.lippmann_schwinger`        drop-in for ``scattering.simulate``
``gmres``         :mod:`msinv.accel.gmres`                     batched restarted GMRES
================  ===========================================  ==================================
"""

from msinv.core.lazy import lazy_exports
from msinv.core.optional import require

require("torch", "use the PyTorch solvers of msinv.accel")

_WHERE = {
    "solve": "lippmann_schwinger",
    "simulate": "lippmann_schwinger",
    "gmres": "gmres",
}

__getattr__, __all__ = lazy_exports(__name__, _WHERE)
