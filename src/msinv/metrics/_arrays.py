"""Array intake shared by the metrics: NumPy in and out, torch tensors accepted (no torch import)."""

from __future__ import annotations

import numpy as np

from msinv.core.errors import UserInputError


def as_numpy(x, name: str) -> np.ndarray:
    """``x`` as a NumPy array (a torch tensor is detached and copied to the CPU).

    Raises a one-line ``ValueError`` naming ``name`` when ``x`` has non-finite entries.
    """
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise UserInputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise UserInputError(f"{name}: contains NaN or infinite values")
    return arr


def lower_is_better(flag: bool):
    """Mark a metric function with ``lower_is_better`` (read by the evaluation tables)."""

    def mark(func):
        func.lower_is_better = flag
        return func

    return mark
