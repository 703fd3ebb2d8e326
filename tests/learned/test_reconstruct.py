"""Posterior helpers: reproducible draws, conditioning once per datum, export (the demo on the
shipped checkpoint: test_shipped_model.py)."""

import numpy as np
import torch

from msinv.learned.loading import load
from msinv.learned.sampling import posterior
from msinv.learned.train import export


def test_posterior_reproducible_and_per_datum_seeds(tiny_checkpoint, tiny_store):
    from msinv.learned.data import load_pairs

    loaded = load(tiny_checkpoint)
    data = load_pairs(tiny_store, 6, 2).data
    a = posterior(loaded, data, 3, seed=5, n_levels=6, batch=2)
    b = posterior(loaded, data, 3, seed=5, n_levels=6, batch=2)
    assert a.shape == (2, 3, 16, 16) and np.array_equal(a, b)
    c = posterior(loaded, data[1:], 3, seed=6, n_levels=6, batch=2)  # datum j uses seed + j
    assert np.array_equal(a[1], c[0])
    assert not np.array_equal(a[0, 0], a[0, 1])  # draws differ


def test_condition_computed_once_per_datum(tiny_checkpoint, tiny_store, monkeypatch):
    from msinv.learned.data import load_pairs

    loaded = load(tiny_checkpoint)
    calls = []
    original = loaded.model.score.condition
    monkeypatch.setattr(loaded.model.score, "condition", lambda a: calls.append(1) or original(a))
    posterior(loaded, load_pairs(tiny_store, 6, 2).data, 4, n_levels=5, batch=2)
    assert len(calls) == 2


def test_export_keeps_ema_only(tiny_checkpoint, tmp_path):
    slim = export(tiny_checkpoint, tmp_path / "slim.pt")
    ck = torch.load(slim, weights_only=True)
    assert "optimizer" not in ck and "model" not in ck
    full, small = load(tiny_checkpoint), load(slim)
    for (k, v), w in zip(
        full.model.state_dict().items(), small.model.state_dict().values(), strict=True
    ):
        assert torch.equal(v, w), k
