"""Dataset store contracts stated as properties (written from the survivors of the sampled
mutation run, docs/testing.md): one configuration whatever the spelling of the scheme, the
``devices`` attribute, batching and the pool's chunks in flight."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from concurrent.futures import Future

import numpy as np
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


# -- guards of the configuration, the store's layout and its arrays -----------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"geometry": 16}, "geometry=16: expected a msinv Geometry"),
        ({"target_blur": -0.5}, "target_blur=-0.5: expected a number >= 0 (pixels)"),
        ({"target_blur": float("nan")}, "target_blur=nan: expected a number >= 0 (pixels)"),
        ({"target_blur": float("inf")}, "target_blur=inf: expected a number >= 0 (pixels)"),
        (
            {"simulator": "mymodule.simulate"},
            "simulator='mymodule.simulate': expected 'module:function'",
        ),
    ],
)
def test_configuration_refuses_a_wrong_geometry_blur_or_simulator(fields, message):
    """Each field of a DatasetConfig is checked at construction, in one line naming it: the
    geometry is a Geometry, the target blur a number of pixels >= 0, the simulator a
    'module:function' reference."""
    kw = {"family": "squares", "count": 2, "geometry": GEOMETRY, "freqs": (2.5,)} | fields
    with pytest.raises(UserInputError, match=re.escape(message)):
        dsm.DatasetConfig(**kw)
    assert dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,), target_blur=0.0).target_blur == 0.0


def _store(tmp_path, name="s.zarr", count=4, chunk=2, checksum=True, nan_chunk=None):
    """A store of ``count`` samples written with write_chunk (random values, no solve)."""
    rng = np.random.default_rng(7)
    config = dsm.DatasetConfig("squares", count, GEOMETRY, (2.5,), chunk=chunk)
    path = tmp_path / name
    group = dsm.create_empty(path, config)
    if not checksum:
        del group["checksum"]  # a store written before checksums existed
    g = GEOMETRY
    for k in range(config.n_chunks):
        size = len(config.chunk_range(k))
        eta = rng.uniform(0, 0.1, (size, g.n, g.n))
        if k == nan_chunk:
            eta[0, 3, 3] = np.nan
        data = rng.standard_normal((size, 1, g.n_receivers, g.n_sources)) + 0j
        dsm.write_chunk(group, config, k, {"eta": eta, "data": data})
    return path, config


def test_a_store_of_another_format_version_is_refused(tmp_path):
    """A store made by another version of the format is refused in one line naming both
    versions, not read with this version's layout."""
    import zarr

    path, _ = _store(tmp_path)
    group = zarr.open_group(str(path), mode="r+")
    group.attrs["msinv_dataset"] = {"format": dsm.FORMAT, "version": dsm.FORMAT_VERSION + 1}
    expected = (
        f"dataset format version {dsm.FORMAT_VERSION + 1}, this msinv reads version "
        f"{dsm.FORMAT_VERSION}"
    )
    with pytest.raises(dsm.DatasetError, match=re.escape(expected)):
        open_dataset(path)


@pytest.mark.parametrize("missing", ["eta", "data", "done"])
def test_a_store_missing_one_of_its_arrays_is_refused_by_name(tmp_path, missing):
    import zarr

    path, _ = _store(tmp_path)
    del zarr.open_group(str(path), mode="r+")[missing]
    with pytest.raises(dsm.DatasetError, match=f"corrupt dataset, array '{missing}' is missing"):
        open_dataset(path)


@pytest.mark.parametrize("reader", ["open_dataset", "verify"])
@pytest.mark.parametrize("damage", ["no config", "config without freqs"])
def test_corrupt_configuration_attributes_are_one_dataset_error(tmp_path, reader, damage):
    """open_dataset and verify read the stored configuration: a store whose ``config``
    attribute is missing or lacks a field is one DatasetError naming the store, not a
    KeyError traceback."""
    import zarr

    path, config = _store(tmp_path)
    group = zarr.open_group(str(path), mode="r+")
    if damage == "no config":
        del group.attrs["config"]
    else:
        group.attrs["config"] = {k: v for k, v in config.to_attrs().items() if k != "freqs"}
    with pytest.raises(dsm.DatasetError, match=r"s\.zarr: corrupt dataset attributes \("):
        getattr(dsm, reader)(path)


def test_arrays_that_do_not_match_the_stored_geometry_are_refused(tmp_path):
    """The eta and data arrays must have the shapes the stored geometry and frequencies give:
    a configuration attribute of another grid or frequency count is refused in one line."""
    import zarr

    path, config = _store(tmp_path)
    group = zarr.open_group(str(path), mode="r+")
    grid = config.to_attrs() | {"geometry": GEOMETRY.to_dict() | {"n": 20}}  # same acquisition
    group.attrs["config"] = grid
    with pytest.raises(dsm.DatasetError, match=r"corrupt dataset, eta \(4, 16, 16\) / data"):
        open_dataset(path)
    group.attrs["config"] = config.to_attrs() | {"freqs": [2.5, 5.0]}
    with pytest.raises(dsm.DatasetError, match=r"expected \(N, 16, 16\) and \(4, 2, "):
        open_dataset(path)
    group.attrs["config"] = config.to_attrs()
    assert open_dataset(path).complete.all()


def test_a_failed_creation_leaves_no_temporary_folder(tmp_path, monkeypatch):
    """The store is built in a temporary folder beside the path and renamed at the end; if
    anything fails on the way the temporary folder is removed and the error passes through:
    the parent folder is left as it was."""

    def fail(config):
        raise OSError("disk full (planted)")

    monkeypatch.setattr(dsm, "_solver_record", fail)
    config = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,))
    (tmp_path / "keep").write_text("x")
    with pytest.raises(OSError, match="disk full"):
        dsm.create_empty(tmp_path / "s.zarr", config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_generate_fills_an_existing_empty_folder(tmp_path):
    """An empty folder at the output path is taken as a new store (like a new path); the
    store is then at that path, complete."""
    (tmp_path / "s.zarr").mkdir()
    generate(tmp_path / "s.zarr", count=1, **KW)
    assert open_dataset(tmp_path / "s.zarr", require_complete=True).complete.all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_without_checksums_a_chunk_holding_nan_is_reported_damaged(tmp_path):
    """A store written before checksums existed is checked for readability and for NaN in
    eta (the fill value of a chunk never written): verify lists exactly the samples of the
    chunk holding a NaN."""
    path, _ = _store(tmp_path, count=6, chunk=2, checksum=False, nan_chunk=1)
    assert dsm.verify(path) == [range(2, 4)]
    clean, _ = _store(tmp_path, name="clean.zarr", count=6, chunk=2, checksum=False)
    assert dsm.verify(clean) == []


def test_a_worker_that_dies_is_one_dataset_error_that_says_how_to_resume(monkeypatch):
    """A worker process killed from outside (or by the OOM killer) breaks the pool: the run
    stops with one DatasetError saying the finished chunks are kept and the same command
    resumes, not a BrokenProcessPool traceback."""
    from concurrent.futures.process import BrokenProcessPool

    class _BrokenPool:
        def submit(self, fn, config, k):
            future = Future()
            future.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            return future

    @contextlib.contextmanager
    def broken_pool(workers, **kwargs):
        yield _BrokenPool()

    monkeypatch.setattr(dsm, "worker_pool", broken_pool)
    config = dsm.DatasetConfig("squares", 4, GEOMETRY, (2.5,), chunk=2)
    with pytest.raises(
        dsm.DatasetError, match=r"a worker process died .* run the same command again to resume"
    ):
        list(dsm._run_pool(config, [0, 1], 2, bar=None))


def test_store_arrays_read_like_the_zarr_arrays_they_wrap(tmp_path):
    """The store's arrays (GuardedArray) have the zarr array's length, convert with
    numpy.asarray (at the dtype asked), and a wrong selection raises the caller's IndexError
    unchanged (only damaged chunks become a DatasetError)."""
    path, _ = _store(tmp_path, count=5, chunk=2)
    ds = open_dataset(path)
    assert len(ds.eta) == 5 == ds.eta.array.shape[0] and len(ds.data) == 5
    whole = np.asarray(ds.eta)
    assert whole.dtype == np.float32 and whole.tobytes() == ds.eta.array[...].tobytes()
    assert np.asarray(ds.eta, dtype=np.float64).dtype == np.float64
    with pytest.raises(IndexError):
        ds.eta[7]
    with pytest.raises(IndexError):
        ds.data.get_orthogonal_selection(([9], slice(None)))


def test_write_chunk_needs_exactly_the_arrays_of_the_configuration(tmp_path):
    """write_chunk takes eta and data (and target when the configuration blurs a target):
    a missing or an extra array is refused in one line, and nothing is marked done."""
    config = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,), chunk=2)
    group = dsm.create_empty(tmp_path / "s.zarr", config)
    eta = np.zeros((2, GEOMETRY.n, GEOMETRY.n))
    with pytest.raises(
        UserInputError, match=re.escape("chunk arrays ['eta']: expected ['data', 'eta']")
    ):
        dsm.write_chunk(group, config, 0, {"eta": eta})
    with pytest.raises(UserInputError, match=re.escape("expected ['data', 'eta']")):
        dsm.write_chunk(group, config, 0, {"eta": eta, "data": None, "target": eta})
    assert not np.asarray(group["done"][:]).any()


def test_summary_states_a_fixed_pml_or_the_one_chosen_per_frequency(tmp_path, small_geometry):
    """``scatter info`` names the PML: a fixed layer's width and strength, or for a geometry
    that chooses it per frequency the layer chosen at each frequency of the store."""
    fixed = dsm.DatasetConfig("squares", 1, small_geometry, (2.5,))
    dsm.create_empty(tmp_path / "fixed.zarr", fixed)
    text = dsm.summary(tmp_path / "fixed.zarr")
    assert f"PML 4 nodes (sigma_max {small_geometry.pml_strength:g})" in text
    auto = dsm.DatasetConfig("squares", 1, GEOMETRY, (2.5, 5.0))
    dsm.create_empty(tmp_path / "auto.zarr", auto)
    text = dsm.summary(tmp_path / "auto.zarr")
    at = GEOMETRY.at(5.0)
    assert "PML chosen per frequency: " in text
    assert f"{at.pml_width} nodes (sigma_max {at.pml_strength:.3g}) at f = 5" in text


def test_create_empty_stores_its_extra_attributes_beside_the_config(tmp_path):
    """Extra attributes given to create_empty (where an import came from) are stored and read
    back, and the configuration is stored unchanged beside them."""
    config = dsm.DatasetConfig("squares", 1, GEOMETRY, (2.5,))
    dsm.create_empty(tmp_path / "s.zarr", config, source="published.h5", note={"rows": 3})
    attrs = open_dataset(tmp_path / "s.zarr").attrs
    assert attrs["source"] == "published.h5" and attrs["note"] == {"rows": 3}
    assert dsm.DatasetConfig.from_attrs(attrs["config"]) == config


def test_an_external_family_is_kept_as_given():
    """family="external" (samples made elsewhere, e.g. the HDF5 import) names no generator:
    it is not looked up among the families and its parameters are stored as given; a family
    of msinv is normalised (its parameters completed to the generator's record)."""
    ext = dsm.DatasetConfig(
        dsm.EXTERNAL, 2, GEOMETRY, (2.5,), family_params={"source": "matlab"},
        simulator="external:published-matlab",
    )  # fmt: skip
    assert (ext.family, ext.family_params) == ("external", {"source": "matlab"})
    assert dsm.DatasetConfig.from_attrs(ext.to_attrs()) == ext
    own = dsm.DatasetConfig("squares", 2, GEOMETRY, (2.5,))
    assert own.family_params and isinstance(own.family_params, dict)


def test_a_batched_simulator_reports_its_whole_batch_to_the_progress_bar(tmp_path, monkeypatch):
    """The finite-difference solver reports each sample; another ("module:function") simulator
    is called once per batch and reports the batch's size when it returns."""
    (tmp_path / "batched.py").write_text(
        "from msinv.scattering import simulate\n"
        "def simulate_batch(eta, spec, freqs):\n"
        "    return simulate(eta, spec, freqs)\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    steps = []
    config = dsm.DatasetConfig(
        "squares",
        5,
        GEOMETRY,
        (2.5,),
        scheme=2,
        seed=3,
        chunk=2,
        simulator="batched:simulate_batch",
    )
    dsm.compute_chunks(config, [0, 2], on_samples=steps.append)
    assert steps == [3]
    steps.clear()
    plain = dsm.DatasetConfig("squares", 5, GEOMETRY, (2.5,), scheme=2, seed=3, chunk=2)
    dsm.compute_chunks(plain, [0, 2], on_samples=steps.append)
    assert steps == [1, 1, 1]


def test_every_field_of_a_configuration_survives_its_stored_record():
    """from_attrs(to_attrs(c)) == c for a configuration whose every field differs from its
    default (a field dropped or mistyped by either side would otherwise come back as the
    default and compare equal), also through JSON, the way zarr stores the attribute."""
    geometry = Geometry.paper(20)
    config = dsm.DatasetConfig(
        "triangles", 5, geometry, (2.5, 7.5), scheme="wide4", seed=11, chunk=2, target_blur=1.5,
        receiver_interpolation="bilinear", simulator="my_sims:simulate",
        family_params={"max_count": 3, "legs": (3, 4)}, dtype="complex128", backend="torch",
        simulator_options={"tol": 1e-9},
    )  # fmt: skip
    defaults = dsm.DatasetConfig("squares", 1, GEOMETRY, (2.5,))
    differ = {
        f.name
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(defaults, f.name)
    }
    assert differ == {f.name for f in dataclasses.fields(config)}  # the test's premise
    back = dsm.DatasetConfig.from_attrs(json.loads(json.dumps(config.to_attrs())))
    assert dataclasses.asdict(back) == dataclasses.asdict(config)
    assert back == config


@pytest.mark.parametrize("form", ["spec", "arguments"])
def test_generate_stores_and_computes_with_every_setting_it_is_given(tmp_path, form):
    """generate's arguments reach the store and the numbers in it: the recorded configuration
    is the one given (the forward model from a ForwardSpec, or from a geometry and the scheme
    and receiver_interpolation arguments; family parameters, seed, chunk, blur), the images
    are the family's samples for that seed, the data are simulate() of the stored float32
    images with that forward model, and the targets are the images blurred by the given
    width."""
    from msinv.scattering.helmholtz import simulate
    from msinv.scattering.spec import ForwardSpec

    spec = ForwardSpec(
        GEOMETRY, scheme="wide4", receiver_interpolation="bilinear", dtype="complex128"
    )
    forward = (
        {"geometry": spec}
        if form == "spec"
        else {
            "geometry": ForwardSpec(GEOMETRY, dtype="complex128"),
            "scheme": "wide4",
            "receiver_interpolation": "bilinear",
        }
    )
    params = {"max_count": 2}
    path = generate(
        tmp_path / "s.zarr", family="triangles", count=2, freqs=[2.5], seed=5, chunk=1,
        target_blur=0.5, family_params=params, progress=False, **forward,
    )  # fmt: skip
    ds = open_dataset(path)
    expected = dsm.DatasetConfig(
        "triangles", 2, GEOMETRY, (2.5,), scheme="wide4", seed=5, chunk=1, target_blur=0.5,
        receiver_interpolation="bilinear", family_params=params, dtype="complex128",
    )  # fmt: skip
    assert dsm.DatasetConfig.from_attrs(ds.config) == expected and ds.spec == spec
    eta = np.stack([dsm.sample_eta("triangles", 5, i, GEOMETRY.n, params) for i in range(2)])
    eta = eta.astype(np.float32)
    np.testing.assert_array_equal(ds.eta[:], eta)
    data = simulate(eta.astype(np.float64), spec, [2.5]).astype(np.complex64)
    np.testing.assert_array_equal(ds.data[:], data)
    np.testing.assert_array_equal(ds.target[:], dsm.blur_target(eta, 0.5).astype(np.float32))


def test_a_batch_smaller_than_a_chunk_solves_one_chunk_per_call(tmp_path, monkeypatch):
    """batch = B samples per solver call means ceil(B / chunk) chunks per call: a batch of one
    sample over chunks of two never groups two chunks into one call (twice the memory asked)."""
    seen = []
    original = dsm.simulate_chunks

    def recording(config, ks, *args, **kwargs):
        seen.append(len(ks))
        return original(config, ks, *args, **kwargs)

    monkeypatch.setattr(dsm, "simulate_chunks", recording)
    generate(tmp_path / "b.zarr", count=4, chunk=2, batch=1, **KW)
    assert open_dataset(tmp_path / "b.zarr").complete.all()
    assert all(n == 1 for n in seen), seen


def test_the_pool_passes_on_a_running_chunks_progress_within_a_quarter_second(monkeypatch):
    """While a worker computes a long chunk, the samples it reports reach the bar within a
    quarter of a second (the pool is polled five times a second), not when the chunk ends.
    A fake clock: each poll of the pool advances it by its timeout; the chunk takes 3 s and
    its worker reports its first sample at once."""
    clock, events = [0.0], []
    reported = []  # the progress queue the workers put finished samples on

    class _Queue:
        def empty(self):
            return not reported

        def get(self):
            return reported.pop(0)

        def close(self):
            pass

    class _Context:
        def SimpleQueue(self):  # multiprocessing's name
            return _Queue()

    future = Future()

    class _Pool:
        def submit(self, fn, config, k):
            reported.append(1)
            return future

    @contextlib.contextmanager
    def inline_pool(workers, **kwargs):
        yield _Pool()

    def fake_wait(running, timeout, return_when):
        clock[0] += timeout
        if clock[0] >= 3.0 and not future.done():
            future.set_result((0, {}))
        done = {f for f in running if f.done()}
        return done, running - done

    class _TimedBar:
        def update(self, n=1):
            events.append((clock[0], int(n)))

    monkeypatch.setattr(dsm, "get_context", lambda method: _Context())
    monkeypatch.setattr(dsm, "worker_pool", inline_pool)
    monkeypatch.setattr(dsm, "wait", fake_wait)
    config = dsm.DatasetConfig("squares", 1, GEOMETRY, (2.5,), chunk=1)
    assert [k for k, _ in dsm._run_pool(config, [0], 1, _TimedBar())] == [0]
    assert events and events[0][1] == 1 and events[0][0] <= 0.25, events


def test_generate_with_batches_advances_the_bar_by_every_written_chunk(tmp_path, monkeypatch):
    """generate(batch=...) (the batched pipeline) advances the progress bar by each chunk's
    samples once the chunk is written: to the sample count in all, in chunk order."""
    import tqdm

    bars = []

    class _RecordingBar(_Bar):
        def __init__(self, **kwargs):
            super().__init__()
            self.kwargs = kwargs
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(tqdm, "tqdm", _RecordingBar)
    path = tmp_path / "b.zarr"
    generate(path, count=5, chunk=2, batch=4, **KW)
    assert bars[0].kwargs["total"] == 5 and bars[0].kwargs["initial"] == 0
    assert bars[0].steps == [2, 2, 1]
    assert open_dataset(path).complete.all()


def test_generate_creates_the_missing_folders_above_its_store(tmp_path):
    """The output path may name folders that do not exist yet: they are made, and the store
    is created in the innermost one."""
    path = tmp_path / "runs" / "today" / "s.zarr"
    generate(path, count=1, chunk=1, **KW)
    assert open_dataset(path).complete.all()
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.zarr"]
