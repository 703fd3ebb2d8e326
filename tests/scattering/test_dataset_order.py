"""Dataset reader order and the write order of a chunk, both tested deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from msinv.scattering import Geometry, open_dataset
from msinv.scattering import dataset as dsm
from msinv.scattering.dataset import generate

KW = dict(
    family="squares",
    geometry=Geometry.paper(16),
    freqs=[2.5],
    scheme=2,
    seed=5,
    progress=False,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("order") / "s.zarr"
    generate(path, count=6, chunk=2, target_blur=0.5, **KW)
    return path


@pytest.mark.parametrize("index", [[4, 1], [5, 0, 3], [2, 5, 1, 4, 0], np.array([3, 1, 2])])
def test_index_list_returns_rows_in_request_order(store, index):
    ds = open_dataset(store)
    t, d = ds[index]
    assert t.shape == (len(index), 16, 16) and d.shape == (len(index), 1, 16, 16)
    for row, i in enumerate(index):
        t_i, d_i = ds[int(i)]
        assert np.array_equal(t[row], t_i) and np.array_equal(d[row], d_i), (row, i)
    # the target is the blurred eta, so its rows and the data rows must come from one sample
    assert not np.array_equal(ds.target[0], ds.eta[0])


class _FailingArray:
    def __init__(self, array):
        self.array = array

    def __setitem__(self, key, value):
        raise OSError("disk full (simulated) while writing this array")

    def __getitem__(self, key):
        return self.array[key]

    def __getattr__(self, name):  # dtype, shape, ...: those of the real array
        return getattr(self.array, name)


class _Group:
    """A zarr group whose array ``fail`` cannot be written."""

    def __init__(self, group, fail):
        self.group, self.fail = group, fail

    def __getitem__(self, name):
        arr = self.group[name]
        return _FailingArray(arr) if name == self.fail else arr

    def __contains__(self, name):
        return name in self.group

    def __getattr__(self, name):  # attrs, ...: those of the real group
        return getattr(self.group, name)


@pytest.mark.parametrize("fail", ["eta", "data", "target"])
def test_done_flag_is_written_only_after_every_array(tmp_path, monkeypatch, fail):
    """A write error on any array of a chunk leaves that chunk not done (no timing involved)."""
    path = tmp_path / f"fail-{fail}.zarr"
    real_prepare = dsm._prepare
    monkeypatch.setattr(dsm, "_prepare", lambda *a, **k: _Group(real_prepare(*a, **k), fail))
    with pytest.raises(OSError, match="simulated"):
        generate(path, count=4, chunk=2, target_blur=0.5, **KW)
    monkeypatch.setattr(dsm, "_prepare", real_prepare)
    assert not open_dataset(path).complete.any()
    # resuming computes the chunk again and completes the store
    generate(path, count=4, chunk=2, target_blur=0.5, **KW)
    ds = open_dataset(path, require_complete=True)
    assert np.isfinite(ds.eta[:]).all() and np.isfinite(ds.target[:]).all()
    assert np.isfinite(ds.data[:]).all()
