"""Gravity inversion in the GRAV3D tradition: forward modelling, weighting, compressed
sensitivities, bounded Tikhonov inversion and the GRAV3D file formats.

The public names are imported lazily, so ``import msinv.gravity`` stays fast and numba-compiled
kernels are built on first use::

    from msinv.gravity import gz, build_sensitivity, CompressedSensitivity, invert
"""

from importlib import import_module

_PUBLIC = {
    "gz": "forward",
    "sensitivity_rows": "forward",
    "GravityOperator": "forward",
    "MGAL_PER_GCC": "forward",
    "depth_weighting": "weighting",
    "distance_weighting": "weighting",
    "build_sensitivity": "sensitivity",
    "sensitivity_memory": "sensitivity",
    "Wavelet3D": "compression",
    "CompressionConfig": "compression",
    "CompressedSensitivity": "compression",
    "WAVELETS": "compression",
    "Regularisation": "regularisation",
    "RegularisationConfig": "regularisation",
    "InversionConfig": "inversion",
    "InversionResult": "inversion",
    "invert": "inversion",
}

__all__ = sorted(_PUBLIC)

# operators register themselves for the generic adjoint test when their modules are imported
for _module in ("forward", "compression", "regularisation"):
    import_module(f"msinv.gravity.{_module}")


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(import_module(f"msinv.gravity.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'msinv.gravity' has no attribute {name!r}")
