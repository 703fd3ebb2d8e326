"""``msinv scatter generate --device cpu-torch``: the same store as the FD path, resumable."""

import numpy as np
import pytest
from typer.testing import CliRunner

import msinv.scattering.dataset as dsm
from msinv.accel.lippmann_schwinger import DEFAULT_RESTART, DEFAULT_RTOL
from msinv.cli.main import app
from msinv.scattering import Geometry, open_dataset
from msinv.scattering.dataset import TORCH_SIMULATOR, generate

N = 16
FREQS = [round(f * (N - 1) / 79, 4) for f in (2.5, 5.0, 10.0)]  # paper(80)'s points/wavelength
BUDGET = np.array([0.01, 0.01, 0.02])
ARGS = ["--family", "triangles", "--count", "6", "--chunk", "2", "--n", str(N), "--seed", "4"]
runner = CliRunner()


def _generate(out, *extra):
    freqs = ["--freqs", *map(str, FREQS)]
    return runner.invoke(
        app, ["scatter", "generate", *ARGS, "--out", str(out), *freqs, "--no-progress", *extra]
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("torch_store")
    fd = root / "fd.zarr"
    ok = _generate(fd)
    assert ok.exit_code == 0, ok.output
    ours = root / "torch.zarr"
    ok = _generate(ours, "--device", "cpu-torch", "--batch", "4")
    assert ok.exit_code == 0, ok.output
    return fd, ours


def test_torch_store_matches_the_fd_store(stores):
    """Same eta bytes (drawn as the CPU path draws them), data within the disk budget (the two
    discretisations of triangles at n = 16, paper(80)'s points per wavelength)."""
    fd, ours = (open_dataset(p, require_complete=True) for p in stores)
    assert ours.eta[:].tobytes() == fd.eta[:].tobytes()
    assert ours.data.dtype == fd.data.dtype == np.complex64
    assert ours.data.shape == fd.data.shape == (6, 3, N, N)
    a, b = ours.data[:], fd.data[:]
    err = (np.linalg.norm(a - b, axis=(2, 3)) / np.linalg.norm(b, axis=(2, 3))).max(axis=0)
    assert np.all(err <= BUDGET), err
    config = ours.config
    assert config["simulator"] == TORCH_SIMULATOR
    assert config["simulator_options"] == {"rtol": DEFAULT_RTOL, "restart": DEFAULT_RESTART}
    assert ours.attrs["devices"] == ["cpu"]
    assert config["backend"] == "torch" and fd.config["backend"] == "scipy"
    assert "simulator_options" not in fd.config  # FD stores keep their former attributes


def test_torch_store_resumes_after_a_crash(stores, tmp_path, monkeypatch):
    path = tmp_path / "crash.zarr"
    calls = {"n": 0}
    real_write = dsm._write_chunk

    def crashing(group, config, k, arrays):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill mid-batch")
        real_write(group, config, k, arrays)

    kw = {
        "family": "triangles",
        "count": 6,
        "chunk": 2,
        "geometry": Geometry.paper(N),
        "freqs": FREQS,
        "seed": 4,
        "progress": False,
        "backend": "torch",
        "device": "cpu",
        "batch": 4,
    }
    monkeypatch.setattr(dsm, "_write_chunk", crashing)
    with pytest.raises(KeyboardInterrupt):
        generate(path, **kw)
    monkeypatch.setattr(dsm, "_write_chunk", real_write)
    assert open_dataset(path).complete.tolist() == [True, True, False, False, False, False]
    computed = []
    real_simulate = dsm.simulate_chunks

    def recording(config, ks, eta, **runtime):
        computed.append(list(ks))
        return real_simulate(config, ks, eta, **runtime)

    monkeypatch.setattr(dsm, "simulate_chunks", recording)
    generate(path, **kw)
    assert computed == [[1, 2]]  # the chunks not marked done, two per call (batch 4)
    resumed, whole = open_dataset(path, require_complete=True), open_dataset(stores[1])
    assert resumed.eta[:].tobytes() == whole.eta[:].tobytes()
    a, b = resumed.data[:], whole.data[:]
    assert np.linalg.norm(a - b) <= 1e-6 * np.linalg.norm(b)


def test_torch_store_refuses_mixing_and_options_it_cannot_honour(stores, tmp_path):
    ours = stores[1]
    mixed = _generate(ours)  # the FD solver on a store of the torch solver
    assert mixed.exit_code == 2 and "stored simulator=" in mixed.stderr, mixed.output
    for extra, message in (
        (["--scheme", "wide4"], "has no stencil"),
        (["--workers", "2"], "batches in one process"),
    ):
        bad = _generate(tmp_path / "bad.zarr", "--device", "cpu-torch", *extra)
        assert bad.exit_code == 2 and message in bad.stderr, bad.output
        assert not (tmp_path / "bad.zarr").exists()


def test_generate_backend_is_checked_before_any_io(tmp_path):
    kw = {"family": "triangles", "count": 2, "geometry": Geometry.paper(N), "freqs": FREQS}
    with pytest.raises(ValueError, match="backend='gpu'"):
        generate(tmp_path / "a.zarr", backend="gpu", device="cpu", **kw)
    with pytest.raises(ValueError, match="give one of them"):
        generate(tmp_path / "a.zarr", backend="torch", simulator="x:y", **kw)
    with pytest.raises(ValueError, match="workers=1"):
        generate(tmp_path / "a.zarr", backend="torch", device="cpu", workers=2, **kw)
    assert not (tmp_path / "a.zarr").exists()
