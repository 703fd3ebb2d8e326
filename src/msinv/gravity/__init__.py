"""Gravity inversion in the GRAV3D tradition: forward modelling, weighting, compressed
sensitivities (block by block within a memory budget), bounded Tikhonov and sparse-norm
inversion, coarse-to-fine meshes, the GRAV3D workflow as a library (``pipeline``) and the GRAV3D
file formats.

The public names are imported lazily, so ``import msinv.gravity`` stays fast and numba-compiled
kernels are built on first use::

    from msinv.gravity import gz, build_sensitivity, CompressedSensitivity, invert
"""

from msinv.core.lazy import lazy_exports

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
    "SparseConfig": "inversion",
    "OnTheFlySensitivity": "sensitivity",
    "build_compressed": "sensitivity",
    "SensitivitySettings": "pipeline",
    "build_sensitivity_file": "pipeline",
    "problem_from_control": "pipeline",
    "run_inversion": "pipeline",
    "InversionResult": "inversion",
    "invert": "inversion",
    "finish": "inversion",
    "EquivalentLayer": "equivalent",
    "LayerMesh": "layer",
    "Wavelet2D": "compression",
}

__getattr__, __all__ = lazy_exports(__name__, _PUBLIC)
