"""Training-data plumbing stated as properties (written from the survivors of the sampled
mutation run, docs/testing.md): mixed stores, incomplete ranges, frequency matching, the
held-out check against several training stores and the recorded image stream."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from msinv.core.errors import UserInputError
from msinv.learned.data import Pairs, check_held_out, concat_pairs, load_pairs, store_slice


def _pairs(count, n=6, n_freq=2, n_rec=5, freqs=None, offset=0.0):
    eta = offset + np.arange(count * n * n, dtype=np.float32).reshape(count, n, n)
    data = np.ones((count, n_freq, n_rec, 4), np.complex64) * (1 + offset)
    return Pairs(eta, data, np.asarray(freqs or [2.5, 5.0][:n_freq]), None)


def test_concat_pairs_stacks_stores_that_share_grid_acquisition_and_frequencies():
    a, b = _pairs(3), _pairs(2, offset=1000.0)
    both = concat_pairs([a, b])
    np.testing.assert_array_equal(both.eta, np.concatenate([a.eta, b.eta]))
    np.testing.assert_array_equal(both.data, np.concatenate([a.data, b.data]))
    np.testing.assert_array_equal(both.freqs, a.freqs)
    assert concat_pairs([a]) is a
    for other, what in [
        (_pairs(2, n=8), "one grid and acquisition"),
        (_pairs(2, n_rec=6), "one grid and acquisition"),
        (_pairs(2, freqs=[2.5, 10.0]), "the same frequencies"),
    ]:
        with pytest.raises(UserInputError, match=what):
            concat_pairs([a, other])


def test_held_out_check_covers_every_training_store():
    """A model trained on two stores: pairs of either one's slice are refused."""
    test = {"path": "/d/b.zarr", "start": 4, "stop": 8, "stream": "b"}
    first = {"path": "/d/a.zarr", "start": 0, "stop": 10, "stream": "a"}
    second = {"path": "/d/b.zarr", "start": 0, "stop": 6, "stream": "b"}
    check_held_out([first], test)
    with pytest.raises(UserInputError, match=r"pairs 4\.\.5 were used to train"):
        check_held_out([first, second], test)


@pytest.fixture(scope="module")
def half_store(tmp_path_factory):
    """Four samples in chunks of two, the second chunk never computed."""
    from msinv.scattering import Geometry
    from msinv.scattering import dataset as dsm

    path = tmp_path_factory.mktemp("half") / "half.zarr"
    real = dsm.compute_chunk

    def first_chunk_only(config, k, **kw):
        if k > 0:
            raise KeyboardInterrupt
        return real(config, k, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(dsm, "compute_chunk", first_chunk_only)
    try:
        with pytest.raises(KeyboardInterrupt):
            dsm.generate(
                path, family="squares", count=4, chunk=2, geometry=Geometry.paper(16),
                freqs=[2.5], scheme=2, seed=1, progress=False,
            )  # fmt: skip
    finally:
        mp.undo()
    return path


@pytest.mark.parametrize(("start", "count"), [(1, 2), (2, 1), (0, 4)])
def test_a_range_with_any_sample_not_computed_is_refused(half_store, start, count):
    with pytest.raises(UserInputError, match="are not all computed"):
        load_pairs(half_store, start, count)


def test_a_computed_range_of_an_incomplete_store_is_read(half_store):
    assert load_pairs(half_store, 0, 2).eta.shape == (2, 16, 16)


@pytest.mark.parametrize("freq", [2.5, 5.0])
def test_frequencies_match_to_a_relative_1e9(tiny_store, freq):
    """A frequency that differs from a stored one by rounding (relative 4e-10) is that
    frequency, at any size; one off by relative 1.5e-9 (just past the tolerance) or 1e-6 is
    not in the store."""
    pairs = load_pairs(tiny_store, 0, 2, freqs=[freq * (1 + 4e-10)])
    assert list(pairs.freqs) == [freq]
    for off in (1.5e-9, 1e-6):
        with pytest.raises(UserInputError, match="holds frequencies"):
            load_pairs(tiny_store, 0, 2, freqs=[freq * (1 + off)])


def test_image_stream_is_the_digest_of_what_decides_the_images(tiny_store):
    """The stream id is written into every checkpoint's training record and compared with
    stores read later, so its recipe is a file format: the first 16 hex digits of the SHA-256
    of the key-sorted JSON of family, family parameters, seed and grid size."""
    from msinv.scattering import open_dataset

    config = open_dataset(tiny_store).attrs["config"]
    images = {"family": "squares", "family_params": config["family_params"], "seed": 0, "n": 16}
    digest = hashlib.sha256(json.dumps(images, sort_keys=True, default=str).encode())
    assert store_slice(tiny_store)["stream"] == digest.hexdigest()[:16]


@pytest.mark.parametrize(("eta_std", "data_std"), [(0.0, [1.0, 1.0]), (1.0, [1.0, 0.0])])
def test_a_normalisation_with_a_zero_standard_deviation_is_refused(eta_std, data_std):
    """Either standard deviation zero (a constant training set: dividing by it gives inf)
    is refused, not only both."""
    from msinv.learned.data import Normalisation

    with pytest.raises(UserInputError, match="standard deviations must be > 0"):
        Normalisation(np.zeros((4, 4)), eta_std, np.zeros(2), np.asarray(data_std))


def test_pair_dataset_holds_the_normalised_pairs(tiny_store):
    """PairDataset item k is (normalised eta_k with a channel axis, normalised data_k)."""
    from msinv.learned.data import Normalisation, PairDataset

    pairs = load_pairs(tiny_store, 0, 4)
    norm = Normalisation.fit(pairs.eta, pairs.data)
    ds = PairDataset(pairs, norm)
    assert len(ds) == 4
    eta, data = ds[2]
    np.testing.assert_array_equal(eta.numpy(), norm.eta(pairs.eta[2:3])[0][None])
    np.testing.assert_array_equal(data.numpy(), norm.data(pairs.data[2:3])[0])


def test_a_store_that_records_no_target_blur_has_unblurred_targets(tiny_store, tmp_path):
    """Stores written before the blur option record no ``target_blur``: their slice says 0.0
    (the targets are the images), as the store's own reader treats them."""
    import shutil

    import zarr

    from msinv.scattering import open_dataset

    old = tmp_path / "old.zarr"
    shutil.copytree(tiny_store, old)
    group = zarr.open_group(str(old), mode="r+")
    config = dict(group.attrs["config"])
    assert config.pop("target_blur", 0.0) == 0.0
    group.attrs["config"] = config
    assert store_slice(old, 0, 2)["target_blur"] == 0.0
    ds = open_dataset(old)
    np.testing.assert_array_equal(ds.target[:2], ds.eta[:2])


def test_normalisation_needs_as_many_images_as_data():
    """Statistics are fitted on pairs: no pair, or images and data of different counts, are
    refused (zip would silently drop the extra ones)."""
    from msinv.learned.data import Normalisation

    rng = np.random.default_rng(0)
    eta = rng.standard_normal((3, 4, 4))
    data = rng.standard_normal((3, 1, 2, 2)) + 1j * rng.standard_normal((3, 1, 2, 2))
    Normalisation.fit(eta, data)
    for e, d in ((eta[:2], data), (eta[:0], data[:0])):
        with pytest.raises(ValueError, match="need as many"):
            Normalisation.fit(e, d)


def test_a_sample_range_must_lie_in_the_store_and_hold_at_least_one_sample(tiny_store):
    """load_pairs reads samples start .. start + count - 1 of the 8 in the store: the range
    may end at the store's last sample (start 7, count 1; count None from start 5 reads 3)
    but not one past it, and it must start at >= 0 and hold >= 1 sample; a refused range is
    one line naming the store and the range asked for."""
    assert load_pairs(tiny_store, 7, 1).eta.shape[0] == 1
    assert load_pairs(tiny_store, 5).eta.shape[0] == 3
    assert load_pairs(tiny_store, 0, 8).eta.shape[0] == 8
    for start, count, asked in [(7, 2, "7..8"), (0, 9, "0..8"), (-1, 2, "-1..0"), (3, 0, "3..2")]:
        with pytest.raises(
            UserInputError, match=rf"asked for samples {asked} but the store holds 8"
        ):
            load_pairs(tiny_store, start, count)


def test_a_slice_record_is_the_resolved_path_and_the_half_open_range(tiny_store):
    """store_slice's record, as checkpoints keep it: the resolved path, start, the exclusive
    stop (start + count, or the store's end when count is None), the image stream and the
    targets' blur (0 for this store); every key, not only the ones a check reads."""
    from pathlib import Path

    record = store_slice(tiny_store, 2, 3)
    stream = store_slice(tiny_store)["stream"]
    assert record == {
        "path": str(Path(tiny_store).resolve()), "start": 2, "stop": 5, "stream": stream,
        "target_blur": 0.0,
    }  # fmt: skip
    assert (store_slice(tiny_store, 3)["start"], store_slice(tiny_store, 3)["stop"]) == (3, 8)


def test_a_frequency_request_names_what_is_missing_and_why(tiny_store):
    """load_pairs(freqs=...) keeps the asked frequencies in the asked order; one the store
    lacks is named with the store's list and the reason given (a model's frequencies: "the
    model was trained on them"); an empty list asks for nothing and is refused too."""
    from msinv.learned.data import TRAINED_ON

    assert list(load_pairs(tiny_store, 0, 1, freqs=[5.0, 2.5]).freqs) == [5.0, 2.5]
    with pytest.raises(UserInputError, match=r"not \[7\.0\] \(the model was trained on them\)"):
        load_pairs(tiny_store, 0, 1, freqs=[2.5, 7.0], why=TRAINED_ON)
    with pytest.raises(
        UserInputError, match=r"holds frequencies \[2\.5, 5\.0\], not \[\] \(asked\)"
    ):
        load_pairs(tiny_store, 0, 1, freqs=[])


def test_the_held_out_refusal_names_the_command_that_asked():
    """check_held_out's message ends with what to do for the command given (``what``):
    'evaluate on held-out pairs' by default, the caller's own name otherwise."""
    trained = {"path": "/d/a.zarr", "start": 0, "stop": 4, "stream": "a"}
    test = {"path": "/d/a.zarr", "start": 2, "stop": 6, "stream": "a"}
    with pytest.raises(UserInputError, match=r"; evaluate on held-out pairs: another store"):
        check_held_out(trained, test)
    with pytest.raises(UserInputError, match=r"; reconstruct on held-out pairs: another store"):
        check_held_out(trained, test, "reconstruct")


def test_a_slice_record_of_a_missing_store_is_refused_in_one_line(tmp_path):
    """store_slice (a checkpoint's training record, the held-out check of evaluate and
    reconstruct) names the missing store and how to make one, as load_pairs does."""
    missing = tmp_path / "nowhere.zarr"
    for call in (lambda: store_slice(missing), lambda: load_pairs(missing)):
        with pytest.raises(
            UserInputError,
            match=r"nowhere\.zarr: dataset not found \(make one with `msinv scatter generate`\)",
        ):
            call()
