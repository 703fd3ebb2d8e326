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
``sinkhorn_or_nan``            :mod:`.sinkhorn`  one of the three on flattened sets, NaN + warning if not converged
``bootstrap_ci``               :mod:`.bootstrap` 95% percentile bootstrap interval of a mean over data
``crps``                       :mod:`.crps`      per datum (draws; ``fair=`` option)
``data_misfit``                :mod:`.misfit`    per datum (re-simulated data; per frequency with ``ndim=2``)
=============================  ================  ============================================================
"""

from .bootstrap import bootstrap_ci
from .crps import crps
from .misfit import data_misfit
from .rrmse import rrmse
from .sinkhorn import (
    sinkhorn_cost_reference,
    sinkhorn_divergence,
    sinkhorn_divergence_paper,
    sinkhorn_or_nan,
)
from .spectral import melr, rapsd

__all__ = [
    "bootstrap_ci",
    "crps",
    "data_misfit",
    "melr",
    "rapsd",
    "rrmse",
    "sinkhorn_cost_reference",
    "sinkhorn_divergence",
    "sinkhorn_divergence_paper",
    "sinkhorn_or_nan",
]
