"""ForwardSpec: one value for the forward model, carried by stores and honoured downstream."""

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from msinv.cli.main import app
from msinv.scattering import Geometry, invert, open_dataset, simulate
from msinv.scattering.dataset import generate
from msinv.scattering.hdf5 import export_hdf5, import_hdf5, published_spec
from msinv.scattering.spec import ForwardSpec

GEOM = Geometry.paper(16, pml_width="published")  # the published store's layer
FREQS = [2.5, 5.0]


def test_spec_round_trip_and_validation():
    spec = ForwardSpec(GEOM, scheme=4, receiver_interpolation="cubic", dtype=np.complex128)
    assert spec.scheme == "wide4" and spec.dtype == "complex128" and spec.backend == "scipy"
    assert ForwardSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.pml == (GEOM.pml_width, GEOM.pml_strength)
    legacy = ForwardSpec.from_dict({"geometry": GEOM.to_dict(), "order": "auto"})
    assert legacy.scheme == "auto" and legacy.dtype == "complex64"
    for bad, match in [
        ({"scheme": 5}, "scheme=5"),
        ({"receiver_interpolation": "nearest"}, "receiver_interpolation"),
        ({"dtype": "float32"}, "dtype"),
        ({"backend": "jax"}, "backend"),
    ]:
        with pytest.raises(ValueError, match=match):
            ForwardSpec(GEOM, **bad)
    with pytest.raises(ValueError, match="unknown keys"):
        ForwardSpec.from_dict({"geometry": GEOM.to_dict(), "stencil": 8})


def test_simulate_takes_a_spec_and_keywords_override_it(rng):
    eta = 0.2 * rng.random((16, 16))
    spec = ForwardSpec(GEOM, scheme="wide4", receiver_interpolation="bilinear")
    d = simulate(eta, spec, FREQS)
    same = simulate(eta, GEOM, FREQS, scheme=4, receiver_interpolation="bilinear")
    np.testing.assert_array_equal(d, same)
    other = simulate(eta, spec, FREQS, receiver_interpolation="representation")
    assert np.linalg.norm(other - d) > 1e-3 * np.linalg.norm(d)


def test_store_records_its_spec_and_refuses_another(tmp_path):
    spec = ForwardSpec(GEOM, scheme="wide4", receiver_interpolation="bilinear", dtype="complex128")
    path = generate(
        tmp_path / "s.zarr", family="squares", count=2, geometry=spec, freqs=FREQS, progress=False
    )
    ds = open_dataset(path)
    assert ds.spec == spec and ds.config["scheme"] == "wide4"
    expected = simulate(ds.eta[:].astype(np.float64), spec, FREQS).astype(np.complex64)
    np.testing.assert_array_equal(ds.data[:], expected)
    with pytest.raises(ValueError, match="scheme"):
        generate(path, family="squares", count=2, geometry=GEOM, freqs=FREQS, progress=False)


def test_first_layout_store_reads_as_its_spec_and_resumes(tmp_path):
    path = generate(
        tmp_path / "old.zarr",
        family="squares",
        count=2,
        geometry=GEOM,
        freqs=FREQS,
        scheme=2,
        chunk=1,
        progress=False,
    )
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    config = dict(group.attrs)["config"]
    for key in ("scheme", "dtype", "backend"):
        config.pop(key)
    group.attrs["config"] = {**config, "order": 2}
    group["done"][1] = False
    assert open_dataset(path).spec == ForwardSpec(GEOM, scheme="wide2")
    generate(path, family="squares", count=2, geometry=GEOM, freqs=FREQS, scheme=2, progress=False)
    assert open_dataset(path, require_complete=True).spec.scheme == "wide2"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A store in the published layout without msinv attributes, imported back."""
    tmp = tmp_path_factory.mktemp("pub")
    src = generate(
        tmp / "src.zarr",
        family="triangles",
        count=2,
        geometry=published_spec(GEOM),
        freqs=FREQS,
        seed=4,
        progress=False,
    )
    export_hdf5(src, tmp / "h5")
    with h5py.File(tmp / "h5" / "scatter.h5", "a") as fs:
        for key in list(fs.attrs):
            del fs.attrs[key]
    return import_hdf5(tmp / "h5", tmp / "imported.zarr", freqs=tuple(FREQS))


def test_imported_published_store_records_bilinear_and_resimulates_with_it(published):
    ds = open_dataset(published)
    assert ds.spec == published_spec(GEOM)
    assert ds.spec.receiver_interpolation == "bilinear" and ds.spec.scheme == "wide8"
    eta = ds.eta[:].astype(np.float64)
    resim = simulate(eta, ds.spec, ds.freqs).astype(np.complex64)
    np.testing.assert_array_equal(resim, ds.data[:])
    default = simulate(eta, GEOM, ds.freqs)
    assert np.linalg.norm(default - ds.data[:]) > 1e-3 * np.linalg.norm(ds.data[:])


def test_invert_uses_the_stored_reader_and_says_when_overridden(published):
    ds = open_dataset(published)
    d = np.asarray(ds.data[0])
    kw = dict(method="born", iterations=3)
    by_spec = invert(d, ds.spec, FREQS, **kw)
    explicit = invert(d, GEOM, FREQS, receiver_interpolation="bilinear", **kw)
    np.testing.assert_array_equal(by_spec, explicit)
    with pytest.warns(UserWarning, match="receiver_interpolation='representation' overrides"):
        other = invert(d, ds.spec, FREQS, receiver_interpolation="representation", **kw)
    assert not np.array_equal(other, by_spec)


def test_invert_command_defaults_to_the_stored_reader(published, tmp_path):
    base = ["scatter", "invert", str(published), "--method", "born", "--iterations", "2"]
    base += ["--no-progress"]
    r = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["provenance"]["config"]["data_spec"]["receiver_interpolation"] == "bilinear"
    assert "overrides" not in r.output
    r = CliRunner().invoke(
        app, [*base, "--out", str(tmp_path / "b"), "--receivers", "representation"]
    )
    assert r.exit_code == 0, r.output
    assert "--receivers representation overrides the data's receiver reader (bilinear)" in r.output
