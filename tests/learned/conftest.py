"""Fixtures of the learned-engine tests."""

from __future__ import annotations

import importlib
import sys
import types

import pytest
import torch


class _StandInBackProjection(torch.nn.Module):
    """Throwaway linear stand-in with the interface of msinv.learned.backprojection."""

    def __init__(self, name, n, n_freq, n_sc=None, freqs=None):
        super().__init__()
        n_sc = n_sc or n
        self.n = n
        self.out_channels = n_freq
        self.w = torch.nn.Parameter(
            torch.randn(n_freq, 2, n_sc * n_sc, generator=torch.Generator().manual_seed(0)) * 0.01
        )

    def forward(self, data):
        b, f = data.shape[:2]
        x = torch.stack([data.real, data.imag], dim=2).flatten(3)  # (b, f, 2, m)
        v = torch.einsum("bfcm,fcm->bf", x, self.w)
        return v[:, :, None, None].expand(b, f, self.n, self.n) + torch.zeros(1, f, self.n, self.n)


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


@pytest.fixture
def backprojection(monkeypatch):
    """The real back-projection module when it exists, else a linear stand-in."""
    try:
        real = importlib.import_module("msinv.learned.backprojection")
    except ModuleNotFoundError:
        real = None
    if hasattr(real, "build_backprojection"):
        return real
    mod = types.ModuleType("msinv.learned.backprojection")
    mod.build_backprojection = _StandInBackProjection
    monkeypatch.setitem(sys.modules, "msinv.learned.backprojection", mod)
    return mod


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
        geometry=Geometry.paper(16),
        freqs=[2.5, 5.0],
        seed=0,
        progress=False,
    )
    return path
