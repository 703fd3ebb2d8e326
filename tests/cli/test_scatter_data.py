"""``msinv scatter simulate | generate | info | export-hdf5 | import-hdf5`` through typer's runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from msinv.cli.main import app
from msinv.scattering import open_dataset

runner = CliRunner()
SMALL = ["--n", "16", "--freqs", "2.5", "5", "--order", "2", "--no-progress"]


def _run(*args: str):
    return runner.invoke(app, ["scatter", *args])


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if not ln.startswith("warning: ")]
    err = "\n".join(lines)
    assert err.startswith("error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "sq.zarr"
    result = _run(
        "generate",
        "--family",
        "squares",
        "--count",
        "3",
        "--chunk",
        "2",
        "--out",
        str(path),
        *SMALL,
    )
    assert result.exit_code == 0, result.output
    return path


def test_generate_writes_a_complete_store(store):
    ds = open_dataset(store, require_complete=True)
    assert len(ds) == 3 and np.array_equal(ds.freqs, [2.5, 5.0])
    assert ds.config["scheme"] == "wide2" and ds.geometry.n == 16


def test_generate_rerun_is_a_no_op_and_mismatch_is_refused(store):
    before = open_dataset(store).data[:].tobytes()
    ok = _run("generate", "--family", "squares", "--count", "3", "--out", str(store), *SMALL)
    assert ok.exit_code == 0, ok.output
    bad = _run(
        "generate",
        "--family",
        "squares",
        "--count",
        "3",
        "--out",
        str(store),
        "--n",
        "16",
        "--freqs",
        "2.5",
        "4",
        "--order",
        "2",
        "--no-progress",
    )
    _one_line_error(bad, "stored freqs=[2.5, 5.0]", "[2.5, 4.0]")
    assert open_dataset(store).data[:].tobytes() == before


def test_generate_with_family_parameters(tmp_path):
    path = tmp_path / "p.zarr"
    args = ["generate", "--family", "squares", "--count", "1", "--out", str(path), *SMALL]
    ok = _run(*args, "--param", "count=2", "--param", "side=25")
    assert ok.exit_code == 0, ok.output
    params = open_dataset(path).config["family_params"]
    assert params["count"] == 2 and params["side"] == 25
    bad = _run(*args, "--param", "count")
    assert bad.exit_code == 2 and "expected KEY=VALUE" in bad.output
    bad = _run(*[a if a != str(path) else str(tmp_path / "q.zarr") for a in args], "--param", "x=1")
    _one_line_error(bad, "family 'squares' has no parameter 'x'")


def test_generate_bad_family_and_bad_path(tmp_path):
    bad = _run(
        "generate", "--family", "circles", "--count", "2", "--out", str(tmp_path / "c.zarr"), *SMALL
    )
    _one_line_error(bad, "unknown family 'circles'", "squares, triangles, shepp_logan, brain")
    assert not (tmp_path / "c.zarr").exists()
    a_file = tmp_path / "f"
    a_file.write_text("x")
    bad = _run(
        "generate", "--family", "squares", "--count", "2", "--out", str(a_file / "d.zarr"), *SMALL
    )
    _one_line_error(bad, "is a file, so nothing can be written inside it")
    bad = _run(
        "generate",
        "--family",
        "squares",
        "--count",
        "2",
        "--out",
        str(tmp_path / "e.zarr"),
        "--freqs",
        "2.5",
        "x",
        "--no-progress",
    )
    _one_line_error(bad, "unexpected extra argument(s) (x)")
    bad = _run(
        "generate",
        "--family",
        "squares",
        "--count",
        "2",
        "--out",
        str(tmp_path / "e.zarr"),
        "--freqs",
        "-1",
        "--no-progress",
    )
    assert bad.exit_code != 0
    bad = _run("generate", "--family", "squares", "--count", "0", "--out", str(tmp_path / "z"))
    assert bad.exit_code == 2 and "count" in bad.output


def test_info(store, tmp_path):
    result = _run("info", str(store))
    assert result.exit_code == 0, result.output
    assert "squares" in result.stdout and "3 of 3 complete" in result.stdout
    _one_line_error(_run("info", str(tmp_path / "absent.zarr")), "no such dataset")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("x")
    _one_line_error(_run("info", str(tmp_path / "foreign")), "not a readable zarr store")


def test_export_import_round_trip(store, tmp_path):
    out = tmp_path / "pub"
    result = _run("export-hdf5", str(store), str(out))
    assert result.exit_code == 0, result.output
    assert (out / "eta.h5").is_file() and (out / "scatter.h5").is_file()
    result = _run("import-hdf5", str(out), str(tmp_path / "back.zarr"))
    assert result.exit_code == 0, result.output
    a, b = open_dataset(store), open_dataset(tmp_path / "back.zarr")
    assert a.data[:].tobytes() == b.data[:].tobytes() and a.config == b.config
    again = _run("export-hdf5", str(store), str(out))
    _one_line_error(again, "already exists")
    _one_line_error(_run("import-hdf5", str(tmp_path), str(tmp_path / "x.zarr")), "not found")


def test_import_applies_and_records_the_target_blur(store, tmp_path):
    """import-hdf5 --target-blur stores eta blurred by that many pixels as the training target
    and records the blur in the store's configuration (the published 0.5-pixel pipeline)."""
    import numpy as np

    from msinv.scattering.phantoms import blur_target

    out = tmp_path / "pub"
    assert _run("export-hdf5", str(store), str(out)).exit_code == 0
    result = _run("import-hdf5", str(out), str(tmp_path / "b.zarr"), "--target-blur", "0.5")
    assert result.exit_code == 0, result.output
    assert "targets blurred by 0.5 px" in result.stdout
    ds = open_dataset(tmp_path / "b.zarr")
    assert ds.config["target_blur"] == 0.5
    eta = np.asarray(ds.eta[:])
    target = np.asarray(ds.target[:])
    np.testing.assert_array_equal(target, blur_target(eta, 0.5).astype(np.float32))
    assert np.abs(target - eta).max() > 1e-3  # the blur is real
    plain = _run("import-hdf5", str(out), str(tmp_path / "c.zarr"))
    assert "no target blur" in plain.stdout
    assert open_dataset(tmp_path / "c.zarr").config["target_blur"] == 0.0


def test_simulate_from_family_and_from_npy(tmp_path):
    pytest.importorskip("msinv.scattering.plotting")
    result = _run(
        "simulate",
        "--family",
        "triangles",
        "--seed",
        "2",
        "--out",
        str(tmp_path / "a"),
        *SMALL[:-1],
    )
    assert result.exit_code == 0, result.output
    data = np.load(tmp_path / "a" / "data.npy")
    assert data.shape == (2, 16, 16) and data.dtype == np.complex64
    assert (tmp_path / "a" / "scatter.png").is_file()
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["config"]["family"] == "triangles" and record["msinv_version"]

    eta = np.load(tmp_path / "a" / "eta.npy")
    np.save(tmp_path / "eta.npy", eta)
    result = _run(
        "simulate", "--eta", str(tmp_path / "eta.npy"), "--out", str(tmp_path / "b"), *SMALL[:-1]
    )
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "b" / "data.npy"), data)


def test_simulate_bad_input(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((8, 8)))
    bad = _run(
        "simulate", "--eta", str(tmp_path / "wrong.npy"), "--out", str(tmp_path / "o"), *SMALL[:-1]
    )
    _one_line_error(bad, "wrong.npy", "expected a (16, 16) float image")
    (tmp_path / "junk.npy").write_text("not numpy")
    bad = _run(
        "simulate", "--eta", str(tmp_path / "junk.npy"), "--out", str(tmp_path / "o"), *SMALL[:-1]
    )
    _one_line_error(bad, "not a .npy file")
    bad = _run("simulate", "--out", str(tmp_path / "o"), *SMALL[:-1])
    _one_line_error(bad, "exactly one of --eta")
    nan = np.zeros((16, 16))
    nan[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    bad = _run(
        "simulate", "--eta", str(tmp_path / "nan.npy"), "--out", str(tmp_path / "o"), *SMALL[:-1]
    )
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ")


def test_help_reads_like_a_manual():
    for cmd in ("generate", "simulate", "info", "export-hdf5", "import-hdf5"):
        result = _run(cmd, "--help")
        assert result.exit_code == 0
    text = _run("generate", "--help").stdout
    for fragment in ("--family", "--count", "--workers", "--scheduler", "default: 80", "x>=1"):
        assert fragment in text


def test_the_chunk_default_the_help_states_is_the_librarys():
    """`generate --help` states the default chunk size; it is the one generate() uses."""
    import re

    import typer

    from msinv.scattering.dataset import DEFAULT_CHUNK

    generate = typer.main.get_command(app).commands["scatter"].commands["generate"]
    (chunk,) = [p for p in generate.params if p.name == "chunk"]
    stated = re.search(r"\(default (\d+)", chunk.help)
    assert stated and int(stated.group(1)) == DEFAULT_CHUNK
