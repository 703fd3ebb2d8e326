"""Fixtures of the learned-engine tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two threads spin and run 8x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_grad():
    """Tests compare values, not gradients (and scalar conversion of graphs warns)."""
    with torch.no_grad():
        yield


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """An 8-sample squares store at n = 16 with two frequencies (made once per session)."""
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    path = tmp_path_factory.mktemp("data") / "squares16.zarr"
    generate(
        path,
        family="squares",
        count=8,
        # the published layer, as when the learned tests were written: with the data of the
        # PML chosen per frequency, test_ddp_two_processes_equal_one_process exceeds its
        # rtol 1e-4 on one kernel after 3 Adam steps (also with the same layer given as an
        # integer width: the data, not the geometry record; not investigated further)
        geometry=Geometry.paper(16, pml_width="published"),
        freqs=[2.5, 5.0],
        seed=0,
        progress=False,
    )
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_store, tmp_path_factory):
    """A none-cnn diffusion model trained 2 steps on the tiny store (made once per session)."""
    from msinv.learned.train import TrainConfig, train

    out = tmp_path_factory.mktemp("rec") / "run"
    cfg = TrainConfig.from_dict(
        {
            "data": {"train": str(tiny_store), "count": 6},
            "model": {
                "name": "none-cnn",
                "score": {
                    "cond_rounds": 1,
                    "width": 12,
                    "bottleneck": 6,
                    "blocks": 1,
                    "groups": [3, 3],
                    "emb_dim": 16,
                },
            },
            "run": {
                "steps": 2,
                "batch": 2,
                "ema": 0.5,
                "out": str(out),
                "device": "cpu",
                "progress": False,
            },
        }
    )
    return train(cfg)
