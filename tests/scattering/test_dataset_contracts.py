"""Dataset store contracts stated as properties (written from the survivors of the sampled
mutation run, docs/testing.md): one configuration whatever the spelling of the scheme, the
``devices`` attribute, batching and the pool's chunks in flight."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import Future

import pytest

from msinv.core.errors import UserInputError
from msinv.scattering import Geometry, open_dataset
from msinv.scattering import dataset as dsm
from msinv.scattering.dataset import generate

GEOMETRY = Geometry.paper(16)
KW = dict(family="squares", geometry=GEOMETRY, freqs=[2.5], scheme=2, seed=3, progress=False)


def test_a_scheme_named_by_its_order_is_the_same_configuration():
    """scheme=8 and scheme="wide8" describe the same dataset: equal configurations that
    record the scheme's name (so a resume with either spelling is accepted)."""
    by_order = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,), scheme=8)
    by_name = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,), scheme="wide8")
    assert by_order == by_name
    assert by_order.scheme == "wide8" and by_order.to_attrs()["scheme"] == "wide8"


def test_devices_attribute_lists_where_chunks_were_computed(tmp_path, monkeypatch):
    """A simulator taking ``device=`` is passed it; the store's ``devices`` attribute (not
    part of the configuration) collects every device a run used, resumes included."""
    (tmp_path / "on_device.py").write_text(
        "from msinv.scattering import simulate\n"
        "SEEN = []\n"
        "def simulate_on(eta, spec, freqs, device=None):\n"
        "    SEEN.append(device)\n"
        "    return simulate(eta, spec, freqs)\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    path = tmp_path / "s.zarr"
    kw = {**KW, "simulator": "on_device:simulate_on"}
    generate(path, count=2, chunk=2, device="cpu", **kw)
    import on_device

    assert on_device.SEEN == ["cpu"]
    assert open_dataset(path).attrs["devices"] == ["cpu"]
    generate(path, count=2, chunk=2, device="meta", **kw)  # complete: nothing computed
    assert open_dataset(path).attrs["devices"] == ["cpu", "meta"]
    assert "devices" not in open_dataset(path).config


def test_first_layout_attributes_read_as_what_they_computed():
    """A ``config`` attribute of the first layout (``order`` instead of ``scheme``, no
    ``dtype``, no ``backend``) reads as the configuration it was computed with: the wide
    scheme of that order, complex64 data, the SciPy solver."""
    config = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,), scheme=8)
    first = config.to_attrs()
    del first["scheme"], first["dtype"], first["backend"]
    first["order"] = 8
    assert dsm.upgrade_attrs(first) == config.to_attrs()  # the current layout, key for key
    assert dsm.DatasetConfig.from_attrs(first) == config
    assert (config.dtype, config.backend) == ("complex64", "scipy")


def test_worker_count_is_checked_before_any_io(tmp_path):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(UserInputError, match=f"workers={bad!r}: expected an integer >= 1"):
            generate(tmp_path / "s.zarr", count=2, workers=bad, **KW)
    assert not (tmp_path / "s.zarr").exists()


def test_pool_keeps_twice_the_workers_in_flight(monkeypatch):
    """_run_pool keeps every worker busy with one chunk queued behind it: 2 x workers chunks
    are submitted before the first result is taken, never more, and each later result lets
    one more in."""
    submitted, in_flight = [], []

    class _Pool:
        def submit(self, fn, config, k):
            submitted.append(k)
            future = Future()
            future.set_result(k)
            return future

    @contextlib.contextmanager
    def inline_pool(workers, **kwargs):
        assert workers == 2
        yield _Pool()

    monkeypatch.setattr(dsm, "worker_pool", inline_pool)
    config = dsm.DatasetConfig("squares", 20, GEOMETRY, (2.5,), chunk=2)
    for _ in dsm._run_pool(config, list(range(10)), 2, bar=None):
        in_flight.append(len(submitted))
    assert sorted(submitted) == list(range(10))
    assert in_flight[0] == 4  # before the first result: 2 x 2 workers
    assert in_flight == [min(4 + i, 10) for i in range(10)]


def test_batched_solver_calls_give_the_bytes_of_one_call_per_chunk(tmp_path):
    """batch=4 over chunks of 2 (three chunks: a batch of two, then one) computes exactly the
    store that one call per chunk computes."""
    generate(tmp_path / "a.zarr", count=6, chunk=2, **KW)
    generate(tmp_path / "b.zarr", count=6, chunk=2, batch=4, **KW)
    a, b = open_dataset(tmp_path / "a.zarr"), open_dataset(tmp_path / "b.zarr")
    assert b.complete.all()
    assert a.eta[:].tobytes() == b.eta[:].tobytes()
    assert a.data[:].tobytes() == b.data[:].tobytes()


def test_a_batched_solver_runs_in_this_process_only(tmp_path):
    """device and batch select the batched solver of this process: with workers > 1 or a
    scheduler they are refused in one line, before anything is written."""
    for extra in (
        {"device": "cpu", "workers": 2},
        {"batch": 2, "workers": 2},
        {"batch": 2, "scheduler": "tcp://127.0.0.1:1"},
    ):
        with pytest.raises(UserInputError, match="use workers=1 and no scheduler"):
            generate(tmp_path / "s.zarr", count=2, **KW, **extra)
    assert not (tmp_path / "s.zarr").exists()


def test_batch_of_one_sample_is_valid_and_zero_frequency_is_not(tmp_path):
    """batch >= 1 (one sample per solver call is a batch); frequencies are > 0."""
    generate(tmp_path / "b1.zarr", count=2, chunk=1, batch=1, **KW)
    assert open_dataset(tmp_path / "b1.zarr").complete.all()
    for bad in (0, True):
        with pytest.raises(UserInputError, match=f"batch={bad!r}: expected an integer >= 1"):
            generate(tmp_path / "b0.zarr", count=2, batch=bad, **KW)
    with pytest.raises(UserInputError, match="expected one or more finite frequencies > 0"):
        dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5, 0.0))


def test_configuration_defaults_are_what_generate_records(tmp_path):
    """A store generated with only the required arguments records the configuration built
    with only the required fields: the two sets of defaults (no blur, seed 0, ...) agree."""
    path = generate(tmp_path / "d.zarr", family="squares", count=1, geometry=GEOMETRY,
                    freqs=[2.5], progress=False)  # fmt: skip
    stored = dsm.DatasetConfig.from_attrs(open_dataset(path).attrs["config"])
    assert stored == dsm.DatasetConfig("squares", 1, GEOMETRY, (2.5,))
    assert stored.target_blur == 0.0 and stored.seed == 0


def test_create_empty_takes_a_new_path_or_an_empty_folder_only(tmp_path):
    config = dsm.DatasetConfig("squares", 1, GEOMETRY, (2.5,))
    dsm.create_empty(tmp_path / "new.zarr", config)
    (tmp_path / "empty").mkdir()
    dsm.create_empty(tmp_path / "empty", config)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    for taken in ("full", "file"):
        with pytest.raises(dsm.DatasetError, match="exists and is not empty"):
            dsm.create_empty(tmp_path / taken, config)


def test_an_integer_blur_is_the_same_configuration_as_its_float():
    """target_blur=1 and 1.0 are one dataset: the stored record (compared on resume as JSON)
    is the same, so a resume that spells it either way is accepted."""
    as_int = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,), target_blur=1)
    as_float = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,), target_blur=1.0)
    assert as_int.to_attrs() == as_float.to_attrs()
    assert json.dumps(as_int.to_attrs()) == json.dumps(as_float.to_attrs())


def test_a_failed_write_of_an_early_batch_stops_the_batched_run(tmp_path, monkeypatch):
    """The batched pipeline waits for each batch's writes before the next ones start: a write
    that fails in the first of three batches is raised, and nothing after the first batch is
    marked done (otherwise the run would go on and end without reporting the lost chunk)."""
    write = dsm._write_chunk

    def failing_write(group, config, k, arrays):
        if k == 0:
            raise OSError("disk full (planted)")
        write(group, config, k, arrays)

    monkeypatch.setattr(dsm, "_write_chunk", failing_write)
    with pytest.raises(OSError, match="disk full"):
        generate(tmp_path / "w.zarr", count=6, chunk=1, batch=2, **KW)  # batches of 2 chunks
    assert not open_dataset(tmp_path / "w.zarr").complete[2:].any()


class _Bar:
    """A stand-in for the tqdm bar: records every advance."""

    def __init__(self):
        self.steps = []

    def update(self, n=1):
        self.steps.append(int(n))


@pytest.mark.parametrize("how", ["serial", "pool", "dask"])
def test_the_progress_bar_advances_by_every_computed_sample(how):
    """However the chunks are computed (in this process, a worker pool, a Dask cluster), the
    bar advances by the number of samples computed, the count of the chunks asked for, and
    every chunk asked for is yielded once."""
    config = dsm.DatasetConfig("squares", 5, GEOMETRY, (2.5,), scheme=2, seed=3, chunk=2)
    todo, bar = [0, 2], _Bar()
    with contextlib.ExitStack() as stack:
        scheduler = None
        if how == "dask":
            distributed = pytest.importorskip("distributed")
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
                )
            )
            scheduler = cluster.scheduler_address
        runs = dsm._run(
            config, todo, workers=2 if how == "pool" else 1, scheduler=scheduler, bar=bar
        )
        got = sorted(k for k, _ in runs)
    assert got == todo
    assert sum(bar.steps) == 2 + 1  # chunk 0: samples 0-1; chunk 2: sample 4
