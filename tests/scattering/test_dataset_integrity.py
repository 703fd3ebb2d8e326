"""Chunk checksums of a dataset store: damage is found (``verify``, resume) and repaired by
computing the damaged chunks again; a store that holds nothing yet never blocks a rerun."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import msinv.scattering.dataset as dsm
from msinv.core.errors import MsinvWarning
from msinv.scattering import Geometry
from msinv.scattering.dataset import DatasetError, generate, open_dataset, verify

KW = dict(family="squares", geometry=Geometry.paper(16), freqs=[1.0, 2.0], progress=False)


def _values(path) -> bytes:
    ds = open_dataset(path)
    return np.asarray(ds.eta[:]).tobytes() + np.asarray(ds.data[:]).tobytes()


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    path = tmp_path_factory.mktemp("intact") / "s.zarr"
    generate(path, count=6, chunk=2, **KW)
    return path


def _chunk_file(store, array: str, k: int):
    return next(p for p in (store / array / "c" / str(k)).rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: f.write_bytes(f.read_bytes()[:30]),  # truncated
        lambda f: f.unlink(),  # lost: zarr would read the fill value
        lambda f: f.write_bytes(f.read_bytes()[:-8] + bytes(8)),  # flipped bytes
    ],
    ids=["truncated", "lost", "flipped"],
)
def test_damaged_chunk_is_found_and_recomputed(damage, intact, tmp_path):
    store = tmp_path / "s.zarr"
    shutil.copytree(intact, store)
    assert verify(store) == []
    damage(_chunk_file(store, "data", 1))
    assert verify(store) == [range(2, 4)]
    with pytest.warns(MsinvWarning, match=r"chunk 1 \(samples 2-3\) is damaged"):
        generate(store, count=6, chunk=2, **KW)
    assert verify(store) == []
    assert _values(store) == _values(intact)


def test_reading_a_damaged_chunk_is_one_line(intact, tmp_path):
    store = tmp_path / "s.zarr"
    shutil.copytree(intact, store)
    f = _chunk_file(store, "eta", 2)
    f.write_bytes(f.read_bytes()[:20])
    with pytest.raises(DatasetError, match=r"cannot read eta .*--verify"):
        open_dataset(store).eta[4:6]


def test_a_store_with_nothing_computed_does_not_block_a_new_command(tmp_path, monkeypatch):
    store = tmp_path / "s.zarr"

    def fail(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(dsm, "compute_chunk", fail)
    with pytest.raises(KeyboardInterrupt):
        generate(store, count=4, chunk=2, **KW)
    monkeypatch.undo()
    assert not open_dataset(store).complete.any()
    with pytest.warns(MsinvWarning, match="held no computed sample"):
        generate(store, count=4, chunk=2, **{**KW, "freqs": [1.0, 1.5]})
    assert open_dataset(store, require_complete=True).freqs.tolist() == [1.0, 1.5]
    with pytest.raises(DatasetError, match="stored freqs"):  # now it holds samples
        generate(store, count=4, chunk=2, **KW)


def test_a_store_with_some_chunks_computed_is_never_made_again(tmp_path, monkeypatch):
    """A run stopped after its first chunk: a command with another configuration is refused
    and the computed chunk is kept (only a store holding nothing at all is made again)."""
    store = tmp_path / "s.zarr"
    real, calls = dsm.compute_chunk, []

    def second_fails(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(dsm, "compute_chunk", second_fails)
    with pytest.raises(KeyboardInterrupt):
        generate(store, count=4, chunk=2, workers=1, **KW)
    monkeypatch.undo()
    done = open_dataset(store).complete
    assert done.any() and not done.all()
    kept = np.asarray(open_dataset(store).eta[:2]).tobytes()
    with pytest.raises(DatasetError, match="stored freqs"):
        generate(store, count=4, chunk=2, **{**KW, "freqs": [1.0, 1.5]})
    assert open_dataset(store).complete.tolist() == done.tolist()
    assert np.asarray(open_dataset(store).eta[:2]).tobytes() == kept
