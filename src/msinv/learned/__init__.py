"""Back-Projection Diffusion: learned back-scattering, score networks, diffusion, training.

Public names are imported lazily (``import msinv.learned`` does not import torch):

==============  ===================================  ======================================
name            module                               what
==============  ===================================  ======================================
``build``       :mod:`msinv.learned.models`          a model by its Table-1 name
``train``       :mod:`msinv.learned.train`           the trainer (TOML config -> checkpoint)
``load``        :mod:`msinv.learned.loading`         a checkpoint -> a ready model
``demo``        :mod:`msinv.learned.reconstruct`     the main job on the shipped checkpoint
==============  ===================================  ======================================
"""

from msinv.core.lazy import lazy_exports

_WHERE = {
    "build": "models",
    "train": "train",
    "load": "loading",
    "demo": "reconstruct",
}


__getattr__, __all__ = lazy_exports(__name__, _WHERE)
