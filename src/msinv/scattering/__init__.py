"""Wideband inverse scattering: 2-D Helmholtz forward solver, Born operator, datasets, inversion.

Public names are imported lazily from their modules (no torch on this path):

=====================  ===================================  ==============================
name                   module                               what
=====================  ===================================  ==============================
``Geometry``           :mod:`msinv.scattering.geometry`     grid, PML and acquisition
``simulate``           :mod:`msinv.scattering.helmholtz`    multi-frequency data
``HelmholtzSolver``    :mod:`msinv.scattering.helmholtz`    one factorisation, many solves
``BornOperator``       :mod:`msinv.scattering.born`         linearised data map and adjoint
``BackProjection``     :mod:`msinv.scattering.born`         analytic alpha = F* Lambda
``disk_data``          :mod:`msinv.scattering.analytic`     series solution for a disk
``open_dataset``       :mod:`msinv.scattering.dataset`      lazy reader of a zarr store
``invert``             :mod:`msinv.scattering.inversion`    Born least squares and FWI
=====================  ===================================  ==============================
"""

from msinv.core.lazy import lazy_exports

_WHERE = {
    "Geometry": "geometry",
    "simulate": "helmholtz",
    "HelmholtzSolver": "helmholtz",
    "BornOperator": "born",
    "BackProjection": "born",
    "disk_data": "analytic",
    "open_dataset": "dataset",
    "invert": "inversion",
}


__getattr__, __all__ = lazy_exports(__name__, _WHERE)
