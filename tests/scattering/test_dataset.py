"""The zarr dataset store: determinism, resume after SIGKILL, worker counts, mismatches, reader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from msinv.scattering import Geometry, open_dataset, simulate
from msinv.scattering import dataset as dsm
from msinv.scattering.dataset import DatasetError, generate, sample_eta

GEOMETRY = Geometry.paper(16)
KW = dict(family="squares", geometry=GEOMETRY, freqs=[2.5, 5.0], scheme=2, seed=3, progress=False)


def _bytes(path) -> tuple[bytes, bytes]:
    ds = open_dataset(path, require_complete=True)
    return ds.eta[:].tobytes(), ds.data[:].tobytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted single-process run: 6 samples in chunks of 2."""
    path = tmp_path_factory.mktemp("ref") / "ref.zarr"
    generate(path, count=6, chunk=2, **KW)
    return path


def test_store_contents_match_the_simulator(reference):
    ds = open_dataset(reference)
    assert len(ds) == 6 and ds.complete.all()
    assert ds.eta.shape == (6, 16, 16) and ds.eta.dtype == np.float32
    assert ds.data.shape == (6, 2, 16, 16) and ds.data.dtype == np.complex64
    assert ds.geometry == GEOMETRY
    assert np.array_equal(ds.freqs, [2.5, 5.0])
    # sample i is the family's draw from SeedSequence([seed, i]) and its data are simulate's
    eta4 = sample_eta("squares", 3, 4, 16).astype(np.float32)
    assert np.array_equal(ds.eta[4], eta4)
    expected = simulate(eta4.astype(np.float64), GEOMETRY, [2.5, 5.0], scheme=2)
    assert np.array_equal(ds.data[4], expected)
    cfg = ds.config
    assert cfg["family"] == "squares" and cfg["seed"] == 3 and cfg["scheme"] == "wide2"
    assert cfg["family_params"]["count"] == 20
    assert ds.attrs["provenance"]["msinv_version"]
    # the PML of Geometry.paper is chosen per frequency: the config says "auto", the store
    # also records what the solver used at each frequency
    assert cfg["geometry"]["pml_width"] == "auto" and cfg["geometry"]["pml_strength"] is None
    used = [
        (r["freq"], r["scheme"], r["pml_width"], r["pml_strength"])
        for r in ds.attrs["solver_per_freq"]
    ]
    assert used == [
        (f, "wide2", GEOMETRY.at(f).pml_width, GEOMETRY.at(f).pml_strength) for f in (2.5, 5.0)
    ]
    assert "PML chosen per frequency: 6 nodes" in dsm.summary(reference)
    assert ds.target is ds.eta  # no blur asked
    t, d = ds[[4, 1]]
    assert np.array_equal(t[0], eta4) and d.shape == (2, 2, 16, 16)


def test_same_bytes_for_other_chunking_and_workers(reference, tmp_path):
    other = tmp_path / "w2.zarr"
    generate(other, count=6, chunk=4, workers=2, **KW)
    assert _bytes(other) == _bytes(reference)


def test_resume_after_sigkill_gives_the_same_bytes(reference, tmp_path):
    """SIGKILL a generating process mid-run, re-run the same command, compare bytes."""
    path = tmp_path / "killed.zarr"
    script = textwrap.dedent(
        f"""
        from msinv.scattering import Geometry
        from msinv.scattering.dataset import generate
        generate({str(path)!r}, family="squares", geometry=Geometry.paper(16), freqs=[2.5, 5.0],
                 scheme=2, seed=3, count=6, chunk=2, progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    done_flag = path / "done" / "c" / "0"  # chunk 0 complete: the run is now inside chunk 1
    deadline = time.monotonic() + 120
    while not done_flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    partial = open_dataset(path)
    assert partial.complete[:2].all() and not partial.complete.all()
    generate(path, count=6, chunk=2, **KW)
    assert _bytes(path) == _bytes(reference)


def test_files_half_written_by_a_killed_run_are_removed_on_resume(reference, tmp_path):
    """A writer killed inside zarr's atomic write leaves ``<name>.<uuid>.partial``; the run that
    resumes the store deletes it, so the finished store is the uninterrupted run's, file for
    file (a SIGKILL landed there once in the slow signal test)."""
    path = tmp_path / "orphan.zarr"
    generate(path, count=6, chunk=2, **KW)
    orphan = path / "data" / "c" / "1" / "0" / "0" / ("0." + "8a825cd8" * 4 + ".partial")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"")
    kept = path / "notes.partial"  # not zarr's pattern: not ours to delete
    kept.write_bytes(b"x")
    generate(path, count=6, chunk=2, **KW)
    assert not orphan.exists() and kept.exists()
    assert _bytes(path) == _bytes(reference)


def test_a_chunk_half_written_is_not_marked_done(reference, tmp_path, monkeypatch):
    """A crash between the eta and data writes of a chunk: resume recomputes that chunk."""
    path = tmp_path / "crash.zarr"
    calls = {"n": 0}
    real_write = dsm._write_chunk

    def crashing(group, config, k, arrays):
        calls["n"] += 1
        if calls["n"] == 2:
            group["eta"][config.chunk_range(k).start] = arrays["eta"][0]
            raise KeyboardInterrupt("simulated kill mid-chunk")
        real_write(group, config, k, arrays)

    monkeypatch.setattr(dsm, "_write_chunk", crashing)
    with pytest.raises(KeyboardInterrupt):
        generate(path, count=6, chunk=2, **KW)
    monkeypatch.setattr(dsm, "_write_chunk", real_write)
    assert open_dataset(path).complete.tolist() == [True, True, False, False, False, False]
    computed = []

    real_compute = dsm.compute_chunk

    def recording(config, k, **kw):
        computed.append(k)
        return real_compute(config, k, **kw)

    monkeypatch.setattr(dsm, "compute_chunk", recording)
    generate(path, count=6, chunk=2, **KW)
    assert computed == [1, 2]  # only the chunks not marked done
    assert _bytes(path) == _bytes(reference)


def test_rerun_of_a_complete_store_computes_nothing(reference, monkeypatch):
    def boom(*_a, **_k):
        raise AssertionError("nothing should be computed")

    monkeypatch.setattr(dsm, "compute_chunk", boom)
    before = _bytes(reference)
    generate(reference, count=6, **KW)
    assert _bytes(reference) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (dict(geometry=Geometry.paper(18)), "geometry.n"),
        (dict(freqs=[2.5, 10.0]), "freqs"),
        (dict(scheme=4), "scheme"),
        (dict(family="triangles"), "family"),
        (dict(seed=4), "seed"),
        (dict(count=7), "count"),
        (dict(chunk=3), "chunk"),
    ],
)
def test_mismatched_rerun_is_refused_and_nothing_touched(reference, change, field):
    before = _bytes(reference)
    kw = {**KW, "count": 6, **change}
    with pytest.raises(DatasetError, match=rf"stored {field}=.* but the command asks for") as e:
        generate(reference, **kw)
    assert "\n" not in str(e.value)
    assert _bytes(reference) == before


def test_family_parameters_are_used_recorded_and_checked_on_resume(tmp_path):
    path = tmp_path / "big.zarr"
    params = {"count": 3, "side": 25}
    generate(path, count=2, family_params=params, **KW)
    ds = open_dataset(path)
    assert ds.config["family_params"] == {"count": 3, "side": 25, "radius": 0.35, "value": 0.2}
    # the stored samples are the family's draws with these parameters, not the defaults
    assert np.array_equal(ds.eta[1], sample_eta("squares", 3, 1, 16, params).astype(np.float32))
    assert not np.array_equal(ds.eta[1], sample_eta("squares", 3, 1, 16).astype(np.float32))
    side = round(25 * 15 / 79)  # 25 pixels of the 80-node grid -> 5 on the 16-node grid
    assert np.isclose(ds.eta[1].sum(), 3 * 0.2 * side**2, atol=1e-5)
    generate(path, count=2, family_params=params, **KW)  # same parameters: resumes (no-op)
    with pytest.raises(DatasetError, match=r"stored family_params=.* but the command asks for"):
        generate(path, count=2, family_params={"count": 4, "side": 25}, **KW)
    with pytest.raises(ValueError, match=r"no parameter 'sides': expected some of count, side"):
        generate(tmp_path / "bad.zarr", count=2, family_params={"sides": 3}, **KW)
    assert not (tmp_path / "bad.zarr").exists()


def test_unknown_family_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="expected one of squares, triangles, shepp_logan, brain"):
        generate(tmp_path / "x.zarr", **{**KW, "family": "circles"}, count=2)
    assert not (tmp_path / "x.zarr").exists()


def test_foreign_corrupt_and_unwritable_paths(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a readable zarr store"):
        generate(foreign, count=2, **KW)
    assert (foreign / "notes.txt").read_text() == "mine"

    import zarr

    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["x"] = 1
    with pytest.raises(DatasetError, match="not an msinv scattering dataset"):
        open_dataset(tmp_path / "other.zarr")

    a_file = tmp_path / "file.zarr"
    a_file.write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        generate(a_file, count=2, **KW)
    with pytest.raises(DatasetError, match="cannot create"):
        generate(a_file / "sub.zarr", count=2, **KW)
    with pytest.raises(FileNotFoundError, match="no such dataset"):
        open_dataset(tmp_path / "absent.zarr")


def test_corrupt_metadata_is_reported(reference, tmp_path):
    import shutil

    broken = tmp_path / "broken.zarr"
    shutil.copytree(reference, broken)
    (broken / "zarr.json").write_text("{ not json")
    with pytest.raises(DatasetError, match="not a readable zarr store"):
        open_dataset(broken)


def test_incomplete_store_reader(tmp_path, monkeypatch):
    path = tmp_path / "half.zarr"
    real = dsm.compute_chunk

    def stop_after_first(config, k, **kw):
        if k > 0:
            raise KeyboardInterrupt
        return real(config, k, **kw)

    monkeypatch.setattr(dsm, "compute_chunk", stop_after_first)
    with pytest.raises(KeyboardInterrupt, match="kept 2 of 4 samples"):
        generate(path, count=4, chunk=2, **KW)
    ds = open_dataset(path)
    assert ds.complete.tolist() == [True, True, False, False]
    assert np.isnan(ds.eta[3]).all()
    with pytest.raises(DatasetError, match="2 of 4 samples are not computed"):
        open_dataset(path, require_complete=True)


def test_target_blur_is_stored_and_recorded(tmp_path):
    from msinv.scattering.phantoms import blur_target

    path = generate(tmp_path / "blur.zarr", count=2, target_blur=0.5, **KW)
    ds = open_dataset(path)
    assert ds.config["target_blur"] == 0.5
    assert np.allclose(ds.target[:], blur_target(ds.eta[:], 0.5), atol=1e-6)
    assert not np.array_equal(ds.target[:], ds.eta[:])


def test_dask_cluster_gives_the_same_bytes(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        path = generate(
            tmp_path / "dask.zarr", count=6, chunk=3, scheduler=cluster.scheduler_address, **KW
        )
    assert _bytes(path) == _bytes(reference)


def test_dask_results_are_released_once_written(tmp_path, monkeypatch):
    """Each chunk's result is released on the cluster as soon as this process has it: the
    workers' memory holds the chunks not yet written, not the whole dataset (21,500 samples of
    data at full scale). Seen by the scheduler's task count at each write."""
    distributed = pytest.importorskip("distributed")
    held = []
    write = dsm._write_chunk
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:

        def counting(*args, **kwargs):
            # the i-th write comes after i releases; the scheduler forgets asynchronously, so
            # wait (up to 5 s) for the count to reach 6 - i before recording it
            deadline = time.monotonic() + 5.0
            while len(cluster.scheduler.tasks) > 6 - len(held) and time.monotonic() < deadline:
                time.sleep(0.01)
            held.append(len(cluster.scheduler.tasks))
            return write(*args, **kwargs)

        monkeypatch.setattr(dsm, "_write_chunk", counting)
        generate(tmp_path / "d.zarr", count=6, chunk=1, scheduler=cluster.scheduler_address, **KW)
    assert len(held) == 6 and all(h <= 6 - i for i, h in enumerate(held)), held


def test_an_unreachable_dask_scheduler_is_one_error(tmp_path):
    """A scheduler address where nothing listens gives the dataset's one-line error (after
    the client's 10 s connection timeout), not a traceback, and no chunk is marked done."""
    import socket

    pytest.importorskip("distributed")
    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(DatasetError, match=f"cannot reach the Dask scheduler at '{address}'"):
        generate(tmp_path / "d.zarr", count=2, chunk=1, scheduler=address, **KW)
    assert not open_dataset(tmp_path / "d.zarr").complete.any()


def test_to_dask(reference):
    arrays = open_dataset(reference).to_dask()
    assert arrays["data"].shape == (6, 2, 16, 16)
    assert np.array_equal(arrays["eta"][1:3].compute(), open_dataset(reference).eta[1:3])


def test_config_validation():
    with pytest.raises(ValueError, match="count=0: expected an integer >= 1"):
        dsm.DatasetConfig("squares", 0, GEOMETRY, (2.5,))
    with pytest.raises(ValueError, match="freqs"):
        dsm.DatasetConfig("squares", 1, GEOMETRY, (-1.0,))
    with pytest.raises(ValueError, match="scheme=3"):
        dsm.DatasetConfig("squares", 1, GEOMETRY, (2.5,), scheme=3)
