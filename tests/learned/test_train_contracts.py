"""Training set-up contracts (written from a survivor of the sampled mutation run,
docs/testing.md)."""

import pytest
import torch

from msinv.core.errors import UserInputError
from msinv.learned.train import RunConfig, _device


def test_device_choice():
    """'cpu' is the CPU, 'auto' a GPU only when one exists, and 'cuda' without a GPU is
    refused in one line (not a torch error at the first tensor)."""
    assert _device("cpu", 0) == torch.device("cpu")
    assert _device("auto", 0).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert _device("cuda", 0) == torch.device("cuda", 0)
    else:
        with pytest.raises(UserInputError, match="no CUDA device"):
            _device("cuda", 0)


@pytest.mark.parametrize("field", ["steps", "batch", "checkpoint_every", "log_every"])
def test_run_counts_must_be_positive(field):
    """Step, batch and interval counts of [run] are >= 1: 1 is accepted, 0 refused."""
    base = {"steps": 10, "out": "run"}
    assert getattr(RunConfig(**{**base, field: 1}), field) == 1
    with pytest.raises(UserInputError, match="must be >= 1"):
        RunConfig(**{**base, field: 0})
