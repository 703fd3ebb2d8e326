"""The published HDF5 layout: convention transform against an independent series, round trip."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy import special

from msinv.scattering import Geometry, open_dataset
from msinv.scattering.analytic import disk_data
from msinv.scattering.dataset import DatasetError, generate
from msinv.scattering.hdf5 import (
    data_to_rows,
    eta_to_rows,
    export_hdf5,
    from_published,
    import_hdf5,
    rows_to_data,
    rows_to_eta,
    to_published,
)


def _published_disk(geometry, freq, radius, contrast, centre):
    """Data of a disk as the published Matlab code stores them, from first principles.

    The e^{+i omega t} convention (outgoing waves are H^(2)), incident exp(i omega d . x) for
    d = (cos t_s, sin t_s), stored with a minus sign, as a (receiver, source) matrix. This
    series is written independently of msinv's transform (no conjugation or reversal trick).
    """
    k0, k1 = 2 * np.pi * freq, 2 * np.pi * freq * np.sqrt(1 + contrast)
    a = radius
    cx, cy = centre
    n_max = int(k1 * a + k0 * (a + np.hypot(cx, cy))) + 30
    m = np.arange(-n_max, n_max + 1)
    jn0, jn1 = special.jv(m, k0 * a), special.jv(m, k1 * a)
    djn0, djn1 = special.jvp(m, k0 * a), special.jvp(m, k1 * a)
    h2, dh2 = special.hankel2(m, k0 * a), special.h2vp(m, k0 * a)
    coef = (1j**m) * (k1 * djn1 * jn0 - k0 * jn1 * djn0) / (k0 * jn1 * dh2 - k1 * djn1 * h2)
    pts = geometry.receiver_points  # (n_rec, 2)
    rel = pts - np.array(centre)
    rho, phi = np.hypot(rel[:, 0], rel[:, 1]), np.arctan2(rel[:, 1], rel[:, 0])
    theta = geometry.source_angles
    dirs = geometry.source_directions
    phase = np.exp(1j * k0 * (dirs @ np.array(centre)))  # incident wave at the centre
    h = special.hankel2(m[None, :], k0 * rho[:, None])  # (n_rec, M)
    ang = np.exp(1j * m[None, None, :] * (phi[:, None, None] - theta[None, :, None]))
    u = np.einsum("rm,rsm,m->rs", h, ang, coef) * phase[None, :]
    return -u


@pytest.mark.parametrize("freq", [2.5, 10.0])
def test_published_convention_matches_an_independent_series(freq):
    g = Geometry.paper(40)
    args = (0.15, 0.3, (0.07, -0.05))
    ours = disk_data(g, freq, *args)
    published = _published_disk(g, freq, *args)
    scale = np.abs(ours).max()
    assert np.abs(from_published(published) - ours).max() < 1e-8 * scale
    assert np.abs(to_published(ours) - published).max() < 1e-8 * scale
    # the naive reading (no conversion) is wrong by O(1)
    assert np.abs(published - ours).max() > 0.5 * scale


def test_transform_is_an_involution(rng):
    x = rng.standard_normal((3, 2, 8, 8)) + 1j * rng.standard_normal((3, 2, 8, 8))
    assert np.array_equal(from_published(to_published(x)), x)
    with pytest.raises(ValueError, match="even number"):
        to_published(x[..., :7])


def test_row_layouts_are_matlab_column_major(rng):
    n = 5
    eta = rng.standard_normal((2, n, n))
    rows = eta_to_rows(eta)
    iy, ix = 1, 3
    assert rows[0, ix * n + iy] == eta[0, iy, ix]
    assert np.array_equal(rows_to_eta(rows, n), eta)
    p = rng.standard_normal((2, 4, 6))  # (N, n_rec, n_src)
    prow = data_to_rows(p)
    r, s = 2, 5
    assert prow[1, s * 4 + r] == p[1, r, s]
    assert np.array_equal(rows_to_data(prow, 4, 6), p)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("h5") / "src.zarr"
    return generate(
        path,
        family="triangles",
        count=3,
        geometry=Geometry.paper(16),
        freqs=[2.5, 5.0, 10.0],
        scheme=2,
        seed=1,
        chunk=2,
        target_blur=0.5,
        progress=False,
    )


def test_export_writes_the_published_layout(store, tmp_path):
    eta_h5, scatter_h5 = export_hdf5(store, tmp_path / "pub")
    ds = open_dataset(store)
    with h5py.File(eta_h5) as fe, h5py.File(scatter_h5) as fs:
        assert list(fe) == ["eta"] and fe["eta"].shape == (3, 256)
        assert fe["eta"].dtype == np.float64
        names = sorted(fs)
        assert names == sorted(f"scatter_{p}_freq_{j}" for p in ("real", "imag") for j in (1, 2, 3))
        assert fs["scatter_real_freq_3"].shape == (3, 256)
        # one entry by hand: sample 2, f = 10, receiver 3, source 5
        r, s = 3, 5
        expected = -np.conj(ds.data[2, 2, r, (s + 8) % 16])
        got = (
            fs["scatter_real_freq_3"][2, s * 16 + r] + 1j * fs["scatter_imag_freq_3"][2, s * 16 + r]
        )
        assert np.isclose(got, expected, rtol=1e-6)
        assert fe["eta"][1, 7 * 16 + 4] == ds.eta[1, 4, 7]
        assert json.loads(fs.attrs["msinv_config"])["family"] == "triangles"


def test_export_then_import_is_the_identity(store, tmp_path):
    export_hdf5(store, tmp_path / "pub")
    back = import_hdf5(tmp_path / "pub", tmp_path / "back.zarr")
    a, b = open_dataset(store), open_dataset(back)
    assert b.complete.all()
    assert a.eta[:].tobytes() == b.eta[:].tobytes()
    assert a.data[:].tobytes() == b.data[:].tobytes()
    assert a.target[:].tobytes() == b.target[:].tobytes()
    assert a.geometry == b.geometry and np.array_equal(a.freqs, b.freqs)
    assert a.config == b.config


def test_import_of_plain_published_files(store, tmp_path):
    """Files without msinv attributes: frequencies from the caller, the paper geometry."""
    pub = tmp_path / "plain"
    export_hdf5(store, pub, double=False)
    with h5py.File(pub / "scatter.h5", "a") as fs:
        for key in list(fs.attrs):
            del fs.attrs[key]
    with pytest.raises(DatasetError, match="frequencies of its 3"):
        import_hdf5(pub, tmp_path / "x.zarr")
    back = open_dataset(import_hdf5(pub, tmp_path / "y.zarr", freqs=(2.5, 5.0, 10.0)))
    a = open_dataset(store)
    assert back.config["family"] == "external"
    assert back.config["receiver_interpolation"] == "bilinear"
    assert np.array_equal(back.data[:], a.data[:]) and np.array_equal(back.eta[:], a.eta[:])


def test_bad_hdf5_input(store, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"eta\.h5: not found"):
        import_hdf5(tmp_path, tmp_path / "x.zarr")
    bad = tmp_path / "bad"
    bad.mkdir()
    with h5py.File(bad / "eta.h5", "w") as f:
        f["eta"] = np.zeros((2, 15))
    with h5py.File(bad / "scatter.h5", "w") as f:
        f["other"] = np.zeros(3)
    with pytest.raises(DatasetError, match="not a square"):
        import_hdf5(bad, tmp_path / "x.zarr")
    export_hdf5(store, tmp_path / "twice")
    with pytest.raises(DatasetError, match="already exists"):
        export_hdf5(store, tmp_path / "twice")
