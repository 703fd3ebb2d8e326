"""Normalisation statistics: exact, streamed in chunks, without float64 copies of the set."""

import tracemalloc

import numpy as np
import pytest

from msinv.learned.data import Normalisation


def _pairs(n_samples=10, n=6, n_freq=3, seed=0):
    rng = np.random.default_rng(seed)
    eta = rng.normal(2.0, 0.5, (n_samples, n, n)).astype(np.float32)
    scale = np.array([1.0, 10.0, 100.0])[:n_freq, None, None]
    data = rng.normal(1.0, 1.0, (n_samples, n_freq, n, n)) + 1j * rng.normal(
        -0.5, 2.0, (n_samples, n_freq, n, n)
    )
    return eta, (data * scale).astype(np.complex64)


@pytest.mark.parametrize("chunk", [1, 3, 512])
def test_fit_matches_the_float64_definition_for_any_chunk(chunk):
    eta, data = _pairs()
    norm = Normalisation.fit(eta, data, chunk=chunk)
    e = eta.astype(np.float64)
    parts = np.stack([data.real, data.imag], axis=1).astype(np.float64)  # (N, 2, f, r, s)
    np.testing.assert_allclose(norm.eta_mean, e.mean(axis=0), rtol=1e-12)
    assert norm.eta_std == pytest.approx((e - e.mean(axis=0)).std(), rel=1e-12)
    np.testing.assert_allclose(norm.data_mean, parts.mean(axis=(0, 1, 3, 4)), rtol=1e-10)
    np.testing.assert_allclose(norm.data_std, parts.std(axis=(0, 1, 3, 4)), rtol=1e-10)


def test_fit_memory_is_one_chunk_not_a_float64_copy():
    eta, data = _pairs(n_samples=400, n=32)
    float64_copy = 2 * data.size * 8  # the stacked real/imaginary float64 array of the old fit
    tracemalloc.start()
    Normalisation.fit(eta, data, chunk=16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.1 * float64_copy, (peak, float64_copy)


def test_load_pairs_selects_frequencies_in_the_asked_order(tiny_store):
    from msinv.core.errors import UserInputError
    from msinv.learned.data import load_pairs

    both = load_pairs(tiny_store, 0, 3)
    one = load_pairs(tiny_store, 0, 3, freqs=[5.0])
    swapped = load_pairs(tiny_store, 0, 3, freqs=[5.0, 2.5])
    assert list(one.freqs) == [5.0] and one.data.shape == (3, 1, 16, 16)
    np.testing.assert_array_equal(one.data[:, 0], both.data[:, 1])
    np.testing.assert_array_equal(swapped.data, both.data[:, ::-1])
    with pytest.raises(
        UserInputError, match=r"holds frequencies \[2.5, 5.0\], not \[10.0\] \(asked\)"
    ):
        load_pairs(tiny_store, 0, 3, freqs=[10.0])


def test_store_slice_identifies_the_image_stream_and_check_held_out(tiny_store, tmp_path):
    from msinv.core.errors import UserInputError
    from msinv.learned.data import check_held_out, store_slice
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    def make(name, seed, freqs):
        path = tmp_path / name
        generate(
            path,
            family="squares",
            count=4,
            geometry=Geometry.paper(16),
            freqs=freqs,
            seed=seed,
            progress=False,
        )
        return path

    trained = store_slice(tiny_store, 0, 6)
    other_freqs = store_slice(make("f.zarr", 0, [1.0]), 0, 4)  # same images, other data
    other_seed = store_slice(make("s.zarr", 1, [2.5, 5.0]), 0, 4)
    assert other_freqs["stream"] == trained["stream"] != other_seed["stream"]
    with pytest.raises(UserInputError, match=r"pairs 0\.\.3 were used to train"):
        check_held_out(trained, other_freqs)
    check_held_out(trained, other_seed)  # held out: another seed
    check_held_out(trained, store_slice(tiny_store, 6, 2))  # held out: outside the slice
    check_held_out(None, other_freqs)  # nothing recorded: nothing to check
