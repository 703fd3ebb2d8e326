"""Input contracts shared by every metric (written from the survivors of the sampled mutation
run, docs/testing.md)."""

import numpy as np
import pytest

from msinv.core.errors import UserInputError
from msinv.metrics import crps, rrmse


@pytest.mark.parametrize("bad", [np.array([["a", "b"], ["c", "d"]]), np.array([[None, 1.0]] * 2)])
def test_metrics_refuse_non_numeric_arrays_in_one_line(bad):
    """A string or object array is refused with a UserInputError naming the argument, not a
    TypeError from deep inside NumPy."""
    good = np.ones((2, 2))
    with pytest.raises(UserInputError, match="expected a numeric array"):
        rrmse(bad, good)
    with pytest.raises(UserInputError, match="expected a numeric array"):
        crps(np.stack([good, good]), bad)
