"""Evaluation metrics: NumPy in and out (torch tensors accepted), one value per sample.

Each metric function carries ``lower_is_better``; aggregation (mean, median, spread over test
data and posterior draws) belongs to the evaluation code.

=============================  ================  ============================================================
name                           module            value
=============================  ================  ============================================================
``rrmse``                      :mod:`.rrmse`     per image
``melr``                       :mod:`.spectral`  per image pair (``weighted=`` option)
``rapsd``                      :mod:`.spectral`  radial power spectrum (pysteps)
``sinkhorn_divergence``        :mod:`.sinkhorn`  per pair of sets (debiased, sq. Eucl.)
``sinkhorn_divergence_paper``  :mod:`.sinkhorn`  the paper's Appendix-E formula (2x the above)
``sinkhorn_cost_reference``    :mod:`.sinkhorn`  the paper's reported "SD" quantity
``crps``                       :mod:`.crps`      per datum (draws; ``fair=`` option)
``data_misfit``                :mod:`.misfit`    per datum (re-simulated data; per frequency with ``ndim=2``)
=============================  ================  ============================================================
"""

from .crps import crps
from .misfit import data_misfit
from .rrmse import rrmse
from .sinkhorn import sinkhorn_cost_reference, sinkhorn_divergence, sinkhorn_divergence_paper
from .spectral import melr, rapsd

__all__ = [
    "crps",
    "data_misfit",
    "melr",
    "rapsd",
    "rrmse",
    "sinkhorn_cost_reference",
    "sinkhorn_divergence",
    "sinkhorn_divergence_paper",
]
