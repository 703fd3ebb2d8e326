"""Back-Projection Diffusion: learned back-scattering, score networks, diffusion, training.

Public names are imported lazily (``import msinv.learned`` does not import torch):

==============  ===================================  ======================================
name            module                               what
==============  ===================================  ======================================
``build``       :mod:`msinv.learned.models`          a model by its Table-1 name
``train``       :mod:`msinv.learned.train`           the trainer (TOML config -> checkpoint)
``load``        :mod:`msinv.learned.reconstruct`     a checkpoint -> a ready model
``demo``        :mod:`msinv.learned.reconstruct`     the main job on the shipped checkpoint
==============  ===================================  ======================================
"""

from importlib import import_module

_WHERE = {
    "build": "models",
    "train": "train",
    "load": "reconstruct",
    "demo": "reconstruct",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"msinv.learned.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'msinv.learned' has no attribute {name!r}")


__all__ = sorted(_WHERE)
