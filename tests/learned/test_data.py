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
