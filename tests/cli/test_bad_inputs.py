"""A corpus of bad inputs over the three engines, the CLI and the file formats.

Every case runs one ``msinv`` command line (in-process, through the real entry point) and
checks that it

- exits with code 2 (bad input),
- prints exactly one ``error:`` line (warnings aside) that names the problem (the fragments
  listed with the case),
- prints no traceback and raises nothing but ``SystemExit``,
- leaves every file and folder of the workspace as it was: inputs and earlier outputs intact,
  no half-written output, no poisoned store.

The workspace (a tiny dataset store, a simulate folder, a GRAV3D example, the shipped learned
checkpoint and damaged copies of each) is built once per module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from msinv.cli.main import app

runner = CliRunner()
SMALL = ["--n", "16", "--freqs", "1", "2", "--order", "2", "--no-progress"]


# ------------------------------------------------------------------------------- workspace
@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """Shared inputs, made once; the cases must leave them untouched."""
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    root = tmp_path_factory.mktemp("corpus")
    generate(
        root / "store.zarr",
        family="squares",
        count=2,
        chunk=1,
        geometry=Geometry.paper(16),
        freqs=[1.0, 2.0],
        scheme="wide2",
        progress=False,
    )
    shutil.copytree(root / "store.zarr", root / "damaged.zarr")
    chunk = root / "damaged.zarr" / "data" / "c" / "1" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:40])  # a truncated chunk, marked done
    (root / "foreign.zarr").mkdir()
    (root / "foreign.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    (root / "text.txt").write_text("1 2 3\n4 5 6\n")
    (root / "empty.bin").write_bytes(b"")
    (root / "a_file").write_text("an earlier result\n")
    rng = np.random.default_rng(0)
    eta = 0.1 * rng.random((16, 16))
    np.save(root / "eta16.npy", eta)
    np.save(root / "eta_nan.npy", np.where(eta > 0.05, np.nan, eta))
    np.save(root / "eta_neg.npy", eta - 2.0)
    np.save(root / "eta_big.npy", eta * 1e7)
    np.save(root / "eta_complex.npy", eta + 0j)
    np.save(root / "eta_3d.npy", eta[None])
    np.save(root / "eta_obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (root / "eta_trunc.npy").write_bytes((root / "eta16.npy").read_bytes()[:100])
    (root / "eta.npy.txt").write_text("0.1 0.2\n")
    data = np.ones((2, 16, 16), np.complex64)
    np.savez(root / "datum.npz", data=data, freqs=np.array([1.0, 2.0]))
    np.savez(root / "datum_nan.npz", data=data * np.nan, freqs=np.array([1.0, 2.0]))
    np.savez(root / "datum_nofreqs.npz", data=data)
    np.savez(root / "datum_real.npz", data=np.ones((2, 16, 16)))
    (root / "trunc.npz").write_bytes((root / "datum.npz").read_bytes()[:200])
    _gravity(root)
    _hdf5(root)
    _learned(root)
    return root


def _gravity(root: Path) -> None:
    from msinv.gravity.example import ExampleConfig, write_example

    g = root / "grav"
    write_example(g, ExampleConfig(seed=0))
    lines = (g / "mesh.txt").read_text().splitlines()
    (root / "mesh_trunc.txt").write_text("\n".join(lines[:2]) + "\n")
    (root / "model_short.den").write_text("0.0\n0.1\n")
    (root / "sens.mtx").write_bytes(b"PK\x03\x04 truncated zip")


def _hdf5(root: Path) -> None:
    import h5py

    from msinv.scattering.hdf5 import export_hdf5

    export_hdf5(root / "store.zarr", root / "h5")
    for name, edit in {
        "h5_nan": lambda fs, fe: fs["scatter_real_freq_2"].__setitem__((0, 3), np.nan),
        "h5_noimag": lambda fs, fe: fs.__delitem__("scatter_imag_freq_2"),
        "h5_noeta": lambda fs, fe: fe.__delitem__("eta"),
        "h5_bareattrs": lambda fs, fe: [fs.attrs.__delitem__(k) for k in list(fs.attrs)],
    }.items():
        shutil.copytree(root / "h5", root / name)
        with (
            h5py.File(root / name / "scatter.h5", "r+") as fs,
            h5py.File(root / name / "eta.h5", "r+") as fe,
        ):
            edit(fs, fe)
    shutil.copytree(root / "h5", root / "h5_short")
    p = root / "h5_short" / "scatter.h5"
    p.write_bytes(p.read_bytes()[:1000])
    (root / "h5_missing").mkdir()
    shutil.copy(root / "h5" / "eta.h5", root / "h5_missing" / "eta.h5")


def _learned(root: Path) -> None:
    import torch

    from msinv.learned.loading import DEMO_CHECKPOINT

    shutil.copy(DEMO_CHECKPOINT, root / "ckpt.pt")
    raw = DEMO_CHECKPOINT.read_bytes()
    (root / "ckpt_trunc.pt").write_bytes(raw[: len(raw) // 2])
    torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
    ok = {
        "data": {"train": str(root / "store.zarr")},
        "model": {"name": "none-cnn"},
        "run": {"steps": 2, "batch": 2, "out": str(root / "run"), "progress": False},
    }
    (root / "train.json").write_text(json.dumps(ok))  # the base of the config cases


def _toml(root: Path, tmp: Path, edit: Callable[[dict], None]) -> str:
    import tomli_w

    doc = json.loads((root / "train.json").read_text())
    edit(doc)
    path = tmp / "cfg.toml"
    path.write_text(tomli_w.dumps(doc))
    return str(path)


# ----------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """A command line (built from the workspace and a fresh folder) and what its error says."""

    id: str
    args: Callable[[Path, Path], list[str]]
    says: tuple[str, ...]
    code: int = 2
    setup: Callable[[Path, Path], None] | None = field(default=None)


def C(id, args, *says, code=2, setup=None):
    return Case(id, args, says, code, setup)


def _sim(ws, t, *extra):
    return ["scatter", "simulate", "--out", str(t / "sim"), *extra]


def _gen(ws, t, *extra, out=None):
    out = out or str(t / "g.zarr")
    return ["scatter", "generate", "--out", out, "--family", "squares", "--count", "2", *extra]


def _inv(ws, t, data, *extra):
    return ["scatter", "invert", str(data), "--out", str(t / "inv"), "--no-progress", *extra]


def _sample(ws, t, ckpt, *extra):
    return ["learn", "sample", str(ckpt), str(ws / "store.zarr"), "--out", str(t / "s.npz"), *extra]


def _train(edit):
    return lambda ws, t: ["learn", "train", _toml(ws, t, edit)]


def _run(key, **kv):
    return lambda d: d[key].update(kv)


def _inside(ws, t):
    return str(ws / "a_file" / "out")


CASES = [
    # ---------------------------------------------------------------- usage (click)
    C("unknown-command", lambda ws, t: ["scatter", "simulat"], "No such command"),
    C("unknown-option", lambda ws, t: _sim(ws, t, "--familly", "squares"), "--familly"),
    C("missing-out", lambda ws, t: ["scatter", "simulate", "--family", "squares"], "--out"),
    C("n-not-int", lambda ws, t: _sim(ws, t, "--family", "squares", "--n", "abc"), "--n"),
    C("n-too-small", lambda ws, t: _sim(ws, t, "--family", "squares", "--n", "8"), "--n"),
    C("count-zero", lambda ws, t: [*_gen(ws, t, *SMALL), "--count", "0"], "--count"),
    C("count-negative", lambda ws, t: [*_gen(ws, t, *SMALL), "--count", "-1"], "--count"),
    C("workers-zero", lambda ws, t: _gen(ws, t, *SMALL, "--workers", "0"), "--workers"),
    C("chunk-zero", lambda ws, t: _gen(ws, t, *SMALL, "--chunk", "0"), "--chunk"),
    C("blur-negative", lambda ws, t: _gen(ws, t, *SMALL, "--target-blur", "-1"), "--target-blur"),
    C("extra-argument", lambda ws, t: ["scatter", "info", str(ws / "store.zarr"), "x"], "extra"),
    C("draws-zero", lambda ws, t: _sample(ws, t, ws / "ckpt.pt", "-k", "0"), "--draws"),
    C("method-unknown", lambda ws, t: _inv(ws, t, ws / "datum.npz", "--method", "x"), "--method"),
    # ---------------------------------------------------------------- scatter simulate
    C(
        "sim-out-is-file",
        lambda ws, t: [
            "scatter",
            "simulate",
            "--out",
            str(ws / "a_file"),
            "--family",
            "squares",
            *SMALL[:-1],
        ],
        "a_file",
        "is a file",
    ),
    C(
        "sim-out-inside-file",
        lambda ws, t: [
            "scatter",
            "simulate",
            "--out",
            _inside(ws, t),
            "--family",
            "squares",
            *SMALL[:-1],
        ],
        "a_file",
        "is a file",
    ),
    C(
        "sim-eta-text",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "text.txt"), *SMALL[:-1]),
        "text.txt",
        "not a .npy file",
    ),
    C(
        "sim-eta-empty",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "empty.bin"), *SMALL[:-1]),
        "empty.bin",
        "empty",
    ),
    C(
        "sim-eta-truncated",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta_trunc.npy"), *SMALL[:-1]),
        "eta_trunc.npy",
        "truncated",
    ),
    C(
        "sim-eta-objects",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta_obj.npy"), *SMALL[:-1]),
        "eta_obj.npy",
        "Python objects",
    ),
    C(
        "sim-eta-missing",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "nope.npy"), *SMALL[:-1]),
        "nope.npy",
    ),
    C(
        "sim-eta-folder",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "grav"), *SMALL[:-1]),
        "grav",
        "folder",
    ),
    C(
        "sim-eta-shape",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta_3d.npy"), *SMALL[:-1]),
        "eta_3d.npy",
        "(16, 16)",
    ),
    C(
        "sim-eta-complex",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta_complex.npy"), *SMALL[:-1]),
        "eta_complex.npy",
        "float",
    ),
    C(
        "sim-eta-nan",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta_nan.npy"), *SMALL[:-1]),
        "eta_nan.npy",
        "NaN",
    ),
    C(
        "sim-eta-nonpositive",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta_neg.npy"), *SMALL[:-1]),
        "eta_neg.npy",
        "1 + eta > 0",
    ),
    C(
        "sim-eta-wrong-n",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta16.npy"), "--n", "32"),
        "eta16.npy",
        "(32, 32)",
    ),
    C(
        "sim-contrast-absurd",
        lambda ws, t: _sim(ws, t, "--eta", str(ws / "eta_big.npy"), *SMALL[:-1]),
        "points per wavelength",
        "Nyquist",
    ),
    C(
        "sim-freq-absurd",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--n", "32", "--freqs", "1e6"),
        "f = 1e+06",
        "points per wavelength",
    ),
    C(
        "sim-both-sources",
        lambda ws, t: _sim(
            ws, t, "--eta", str(ws / "eta16.npy"), "--family", "squares", *SMALL[:-1]
        ),
        "exactly one of --eta",
    ),
    C("sim-no-source", lambda ws, t: _sim(ws, t, *SMALL[:-1]), "exactly one of --eta"),
    C(
        "sim-family-unknown",
        lambda ws, t: _sim(ws, t, "--family", "circles", *SMALL[:-1]),
        "unknown family 'circles'",
    ),
    C(
        "sim-freq-zero",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--freqs", "0"),
        "--freqs",
        "> 0",
    ),
    C(
        "sim-freq-negative",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--freqs", "1", "-2"),
        "--freqs",
        "> 0",
    ),
    C(
        "sim-freq-inf",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--freqs", "inf"),
        "--freqs",
    ),
    C(
        "sim-freq-nan",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--freqs", "nan"),
        "--freqs",
    ),
    C(
        "sim-freq-word",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--freqs", "abc"),
        "--freqs",
        "valid number",
    ),
    C(
        "sim-order-3",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--n", "16", "--order", "3"),
        "--scheme",
        "wide order (2, 4, 6, 8)",
    ),
    C(
        "sim-pml-small",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--pml-width", "2"),
        "--pml-width",
    ),
    C(
        "sim-seed-negative",
        lambda ws, t: _sim(ws, t, "--family", "squares", "--seed", "-1"),
        "--seed",
    ),
    # ---------------------------------------------------------------- scatter generate
    C(
        "gen-param-count-negative",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "count=-1"),
        "count=-1",
        "integer >= 1",
    ),
    C(
        "gen-param-count-zero",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "count=0"),
        "count=0",
        "integer >= 1",
    ),
    C(
        "gen-param-count-float",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "count=2.5"),
        "count=2.5",
        "integer",
    ),
    C(
        "gen-param-count-string",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", 'count="a"'),
        "count='a'",
        "integer",
    ),
    C(
        "gen-param-count-bool",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "count=true"),
        "count=True",
        "integer",
    ),
    C(
        "gen-param-unknown",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "colour=1"),
        "no parameter 'colour'",
    ),
    C(
        "gen-param-no-value",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "count"),
        "--param",
        "KEY=VALUE",
    ),
    C(
        "gen-param-bad-json",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "count=[1"),
        "--param",
        "not a number",
    ),
    C(
        "gen-param-value-zero",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "value=0"),
        "value=0",
        "nonzero",
    ),
    C(
        "gen-param-radius",
        lambda ws, t: _gen(ws, t, *SMALL, "--param", "radius=5"),
        "radius=5",
        "(0, 1]",
    ),
    C(
        "gen-param-legs-empty",
        lambda ws, t: [
            "scatter",
            "generate",
            "--out",
            str(t / "g.zarr"),
            "--family",
            "triangles",
            "--count",
            "2",
            *SMALL,
            "--param",
            "legs=[]",
        ],
        "legs=[]",
    ),
    C(
        "gen-out-is-file",
        lambda ws, t: _gen(ws, t, *SMALL, out=str(ws / "a_file")),
        "a_file",
        "is a file",
    ),
    C(
        "gen-out-inside-file",
        lambda ws, t: _gen(ws, t, *SMALL, out=_inside(ws, t)),
        "a_file",
        "is a file",
    ),
    C(
        "gen-out-foreign-zarr",
        lambda ws, t: _gen(ws, t, *SMALL, out=str(ws / "foreign.zarr")),
        "foreign.zarr",
        "not an msinv scattering dataset",
    ),
    C("gen-out-other-folder", lambda ws, t: _gen(ws, t, *SMALL, out=str(ws / "grav")), "grav"),
    C(
        "gen-mismatch-freqs",
        lambda ws, t: [
            "scatter",
            "generate",
            "--out",
            str(ws / "store.zarr"),
            "--family",
            "squares",
            "--count",
            "2",
            "--n",
            "16",
            "--freqs",
            "1",
            "3",
            "--order",
            "2",
            "--no-progress",
        ],
        "stored freqs=[1.0, 2.0]",
        "[1.0, 3.0]",
    ),
    C(
        "gen-mismatch-count",
        lambda ws, t: [
            "scatter",
            "generate",
            "--out",
            str(ws / "store.zarr"),
            "--family",
            "squares",
            "--count",
            "3",
            "--n",
            "16",
            "--freqs",
            "1",
            "2",
            "--order",
            "2",
            "--no-progress",
        ],
        "stored count=2",
    ),
    C(
        "gen-mismatch-family",
        lambda ws, t: [
            "scatter",
            "generate",
            "--out",
            str(ws / "store.zarr"),
            "--family",
            "triangles",
            "--count",
            "2",
            *SMALL,
        ],
        "family",
    ),
    C(
        "gen-freq-absurd",
        lambda ws, t: _gen(ws, t, "--n", "16", "--freqs", "1e6", "--order", "2"),
        "points per wavelength",
    ),
    C(
        "gen-family-unknown",
        lambda ws, t: [
            "scatter",
            "generate",
            "--out",
            str(t / "g.zarr"),
            "--family",
            "x",
            "--count",
            "1",
            *SMALL,
        ],
        "unknown family 'x'",
    ),
    C(
        "gen-order-bad",
        lambda ws, t: _gen(ws, t, "--n", "16", "--order", "10"),
        "--scheme: scheme=10",
    ),
    # ---------------------------------------------------------------- scatter info
    C("info-missing", lambda ws, t: ["scatter", "info", str(ws / "nope.zarr")], "nope.zarr"),
    C("info-file", lambda ws, t: ["scatter", "info", str(ws / "a_file")], "a_file"),
    C(
        "info-foreign",
        lambda ws, t: ["scatter", "info", str(ws / "foreign.zarr")],
        "not an msinv scattering dataset",
    ),
    C("info-other-folder", lambda ws, t: ["scatter", "info", str(ws / "grav")], "grav"),
    C(
        "info-verify-damaged",
        lambda ws, t: ["scatter", "info", str(ws / "damaged.zarr"), "--verify"],
        "damaged.zarr",
        "damaged chunk",
        "samples 1-1",
    ),
    # ---------------------------------------------------------------- export / import HDF5
    C(
        "export-outdir-is-file",
        lambda ws, t: ["scatter", "export-hdf5", str(ws / "store.zarr"), str(ws / "a_file")],
        "a_file",
        "is a file",
    ),
    C(
        "export-outdir-inside-file",
        lambda ws, t: ["scatter", "export-hdf5", str(ws / "store.zarr"), _inside(ws, t)],
        "a_file",
    ),
    C(
        "export-existing-files",
        lambda ws, t: ["scatter", "export-hdf5", str(ws / "store.zarr"), str(ws / "h5")],
        "eta.h5",
        "already exists",
    ),
    C(
        "export-store-missing",
        lambda ws, t: ["scatter", "export-hdf5", str(ws / "nope.zarr"), str(t / "o")],
        "nope.zarr",
    ),
    C(
        "export-store-damaged",
        lambda ws, t: ["scatter", "export-hdf5", str(ws / "damaged.zarr"), str(t / "o")],
        "damaged.zarr",
    ),
    C(
        "import-indir-missing",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "nope"), str(t / "i.zarr")],
        "nope",
        "eta.h5",
    ),
    C(
        "import-scatter-missing",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5_missing"), str(t / "i.zarr")],
        "scatter.h5",
        "not found",
    ),
    C(
        "import-short-file",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5_short"), str(t / "i.zarr")],
        "h5_short/scatter.h5",
        "not a readable HDF5 file",
    ),
    C(
        "import-nan",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5_nan"), str(t / "i.zarr")],
        "scatter_real_freq_2",
        "NaN",
    ),
    C(
        "import-no-imag",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5_noimag"), str(t / "i.zarr")],
        "/scatter_real_freq_2 has no /scatter_imag_freq_2",
    ),
    C(
        "import-no-eta",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5_noeta"), str(t / "i.zarr")],
        "eta.h5",
        "no dataset /eta",
    ),
    C(
        "import-no-freqs",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5_bareattrs"), str(t / "i.zarr")],
        "frequencies",
        "must be given",
    ),
    C(
        "import-freqs-count",
        lambda ws, t: [
            "scatter",
            "import-hdf5",
            str(ws / "h5_bareattrs"),
            str(t / "i.zarr"),
            "--freqs",
            "1",
            "2",
            "3",
        ],
        "holds 2 frequencies but 3",
    ),
    C(
        "import-store-exists",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5"), str(ws / "store.zarr")],
        "store.zarr",
        "not empty",
    ),
    C(
        "import-store-is-file",
        lambda ws, t: ["scatter", "import-hdf5", str(ws / "h5"), str(ws / "a_file")],
        "a_file",
        "is a file",
    ),
    # ---------------------------------------------------------------- scatter invert
    C("inv-data-missing", lambda ws, t: _inv(ws, t, ws / "nope.npz"), "nope.npz"),
    C("inv-data-text", lambda ws, t: _inv(ws, t, ws / "text.txt"), "text.txt", "not an .npz"),
    C("inv-data-truncated", lambda ws, t: _inv(ws, t, ws / "trunc.npz"), "trunc.npz"),
    C("inv-data-empty", lambda ws, t: _inv(ws, t, ws / "empty.bin"), "empty.bin", "empty"),
    C("inv-data-nofreqs", lambda ws, t: _inv(ws, t, ws / "datum_nofreqs.npz"), "'freqs'"),
    C("inv-data-nan", lambda ws, t: _inv(ws, t, ws / "datum_nan.npz"), "datum_nan.npz", "NaN"),
    C(
        "inv-bounds-crossed",
        lambda ws, t: _inv(ws, t, ws / "datum.npz", "--lower", "1", "--upper", "0"),
        "--lower 1.0 --upper 0.0",
        "lower < upper",
    ),
    C(
        "inv-lower-below-minus-one",
        lambda ws, t: _inv(ws, t, ws / "datum.npz", "--lower", "-2"),
        "lower bound -2.0",
        "> -1",
    ),
    C(
        "inv-order-bad",
        lambda ws, t: _inv(ws, t, ws / "datum.npz", "--order", "3"),
        "--scheme: scheme=3",
    ),
    C(
        "inv-freq-not-in-data",
        lambda ws, t: _inv(ws, t, ws / "datum.npz", "--freqs", "7"),
        "--freqs [7.0]",
        "not among",
    ),
    C(
        "inv-schedule-words",
        lambda ws, t: _inv(ws, t, ws / "datum.npz", "--schedule", "a;b"),
        "--schedule",
    ),
    C(
        "inv-schedule-foreign",
        lambda ws, t: _inv(ws, t, ws / "datum.npz", "--schedule", "1;9"),
        "--schedule",
        "[9.0]",
    ),
    C("inv-reg-unknown", lambda ws, t: _inv(ws, t, ws / "datum.npz", "--reg", "foo:1"), "foo"),
    C(
        "inv-reg-auto-fwi",
        lambda ws, t: _inv(ws, t, ws / "datum.npz", "--reg", "tv:auto"),
        "only offered for --method born",
    ),
    C(
        "inv-index-range",
        lambda ws, t: _inv(ws, t, ws / "store.zarr", "--index", "99"),
        "--index [99]",
        "[0, 2)",
    ),
    C("inv-index-word", lambda ws, t: _inv(ws, t, ws / "store.zarr", "--index", "a"), "--index"),
    C(
        "inv-out-is-file",
        lambda ws, t: ["scatter", "invert", str(ws / "datum.npz"), "--out", str(ws / "a_file")],
        "a_file",
        "is a file",
    ),
    C(
        "inv-store-damaged",
        lambda ws, t: _inv(ws, t, ws / "damaged.zarr", "--index", "1"),
        "damaged.zarr",
    ),
    # ---------------------------------------------------------------- learn train (config)
    C(
        "train-config-missing",
        lambda ws, t: ["learn", "train", str(ws / "nope.toml")],
        "nope.toml",
        "not found",
    ),
    C("train-config-folder", lambda ws, t: ["learn", "train", str(ws / "grav")], "grav", "folder"),
    C("train-config-binary", lambda ws, t: ["learn", "train", str(ws / "ckpt.pt")], "ckpt.pt"),
    C(
        "train-config-invalid",
        lambda ws, t: ["learn", "train", str(ws / "text.txt")],
        "text.txt",
        "invalid TOML",
    ),
    C("train-steps-bool", _train(_run("run", steps=True)), "[run] steps = true", "integer"),
    C("train-steps-zero", _train(_run("run", steps=0)), "run.steps"),
    C("train-batch-float", _train(_run("run", batch=2.5)), "[run] batch = 2.5", "integer"),
    C("train-lr-string", _train(lambda d: d.update(optim={"lr": "fast"})), "[optim] lr"),
    C("train-betas-short", _train(lambda d: d.update(optim={"betas": [0.9]})), "betas"),
    C("train-ema-one", _train(_run("run", ema=1.0)), "run.ema"),
    C("train-device-bad", _train(_run("run", device="tpu")), "run.device"),
    C("train-unknown-key", _train(_run("run", stpes=3)), "unknown key(s) ['stpes'] in [run]"),
    C("train-unknown-section", _train(lambda d: d.update(extra={"a": 1})), "['extra']"),
    C("train-missing-section", _train(lambda d: d.pop("run")), "missing section [run]"),
    C("train-missing-steps", _train(lambda d: d["run"].pop("steps")), "[run] is missing steps"),
    C(
        "train-score-unknown",
        _train(_run("model", score={"widht": 8})),
        "[model.score] unknown key(s) ['widht']",
    ),
    C(
        "train-score-mistyped",
        _train(_run("model", score={"width": "wide"})),
        '[model.score] width = "wide"',
    ),
    C("train-score-not-table", _train(_run("model", score=3)), "[model] score"),
    C("train-model-unknown", _train(_run("model", name="resnet")), "resnet"),
    C("train-seed-float", _train(lambda d: d.update(seed=1.5)), "seed = 1.5"),
    C("train-data-missing", _train(_run("data", train="nope.zarr")), "nope.zarr", "not found"),
    C("train-data-range", _train(_run("data", start=5)), "store holds 2"),
    C(
        "train-out-is-file",
        lambda ws, t: ["learn", "train", _toml(ws, t, _run("run", out=str(ws / "a_file")))],
        "run.out",
        "a_file",
        "is a file",
    ),
    # ---------------------------------------------------------------- learn sample / reconstruct
    C("sample-ckpt-missing", lambda ws, t: _sample(ws, t, ws / "nope.pt"), "nope.pt"),
    C("sample-ckpt-empty", lambda ws, t: _sample(ws, t, ws / "empty.bin"), "empty.bin", "empty"),
    C(
        "sample-ckpt-truncated",
        lambda ws, t: _sample(ws, t, ws / "ckpt_trunc.pt"),
        "ckpt_trunc.pt",
        "not a readable msinv checkpoint",
    ),
    C("sample-ckpt-text", lambda ws, t: _sample(ws, t, ws / "text.txt"), "text.txt", "checkpoint"),
    C(
        "sample-ckpt-foreign",
        lambda ws, t: _sample(ws, t, ws / "foreign.pt"),
        "foreign.pt",
        "not a msinv learned checkpoint",
    ),
    C("sample-ckpt-folder", lambda ws, t: _sample(ws, t, ws / "grav"), "grav", "folder"),
    C(
        "sample-device-bad",
        lambda ws, t: _sample(ws, t, ws / "ckpt.pt", "--device", "gpu0"),
        "--device 'gpu0'",
        "cpu, cuda",
    ),
    C(
        "sample-data-mismatch",
        lambda ws, t: _sample(ws, t, ws / "ckpt.pt"),
        "store.zarr",
        "trained on",
    ),
    C(
        "sample-data-missing",
        lambda ws, t: [
            "learn",
            "sample",
            str(ws / "ckpt.pt"),
            str(ws / "nope.zarr"),
            "--out",
            str(t / "s.npz"),
        ],
        "nope.zarr",
    ),
    C(
        "sample-out-inside-file",
        lambda ws, t: [
            "learn",
            "sample",
            str(ws / "ckpt.pt"),
            str(ws / "store.zarr"),
            "--out",
            _inside(ws, t),
        ],
        "a_file",
        "is a file",
    ),
    C(
        "sample-out-is-folder",
        lambda ws, t: [
            "learn",
            "sample",
            str(ws / "ckpt.pt"),
            str(ws / "store.zarr"),
            "--out",
            str(ws / "grav.npz"),
        ],
        "grav.npz",
        "folder",
        setup=lambda ws, t: (ws / "grav.npz").mkdir(exist_ok=True),
    ),
    C(
        "reconstruct-datum-bad",
        lambda ws, t: [
            "learn",
            "reconstruct",
            str(ws / "ckpt.pt"),
            "nothing",
            "--out",
            str(t / "r"),
        ],
        "nothing",
        "STORE.zarr:INDEX",
    ),
    C(
        "reconstruct-datum-real",
        lambda ws, t: [
            "learn",
            "reconstruct",
            str(ws / "ckpt.pt"),
            str(ws / "datum_real.npz"),
            "--out",
            str(t / "r"),
        ],
        "datum_real.npz",
        "complex",
    ),
    C(
        "reconstruct-datum-nan",
        lambda ws, t: [
            "learn",
            "reconstruct",
            str(ws / "ckpt.pt"),
            str(ws / "datum_nan.npz"),
            "--out",
            str(t / "r"),
        ],
        "datum_nan.npz",
        "NaN",
    ),
    C(
        "reconstruct-datum-text",
        lambda ws, t: [
            "learn",
            "reconstruct",
            str(ws / "ckpt.pt"),
            str(ws / "text.npz"),
            "--out",
            str(t / "r"),
        ],
        "text.npz",
        "not an .npz",
        setup=lambda ws, t: (ws / "text.npz").write_text("hello"),
    ),
    C(
        "reconstruct-index-range",
        lambda ws, t: [
            "learn",
            "reconstruct",
            str(ws / "ckpt.pt"),
            f"{ws / 'store.zarr'}:7",
            "--out",
            str(t / "r"),
        ],
        "store holds 2",
    ),
    C(
        "reconstruct-out-is-file",
        lambda ws, t: [
            "learn",
            "reconstruct",
            str(ws / "ckpt.pt"),
            str(ws / "datum.npz"),
            "--out",
            str(ws / "a_file"),
        ],
        "a_file",
        "is a file",
    ),
    C(
        "evaluate-model-no-label",
        lambda ws, t: [
            "learn",
            "evaluate",
            "--model",
            str(ws / "ckpt.pt"),
            "--data",
            f"sq={ws / 'store.zarr'}",
            "--out",
            str(t / "e"),
        ],
        "LABEL=PATH",
    ),
    C(
        "evaluate-misfit-bad",
        lambda ws, t: [
            "learn",
            "evaluate",
            "--model",
            f"m={ws / 'ckpt.pt'}",
            "--data",
            f"sq={ws / 'store.zarr'}",
            "--misfit",
            "all",
            "--out",
            str(t / "e"),
        ],
        "misfit",
    ),
    C(
        "evaluate-device-bad",
        lambda ws, t: [
            "learn",
            "evaluate",
            "--model",
            f"m={ws / 'ckpt.pt'}",
            "--data",
            f"sq={ws / 'store.zarr'}",
            "--device",
            "xpu",
            "--out",
            str(t / "e"),
        ],
        "--device 'xpu'",
    ),
    # ---------------------------------------------------------------- gravity
    C(
        "grav-forward-mesh-missing",
        lambda ws, t: [
            "gravity",
            "forward",
            str(ws / "nope.txt"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            str(t / "f.grv"),
        ],
        "nope.txt",
    ),
    C(
        "grav-forward-mesh-truncated",
        lambda ws, t: [
            "gravity",
            "forward",
            str(ws / "mesh_trunc.txt"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            str(t / "f.grv"),
        ],
        "mesh_trunc.txt",
    ),
    C(
        "grav-forward-model-short",
        lambda ws, t: [
            "gravity",
            "forward",
            str(ws / "grav" / "mesh.txt"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            str(t / "f.grv"),
        ],
        "model_short.den",
    ),
    C(
        "grav-forward-memory-zero",
        lambda ws, t: [
            "gravity",
            "forward",
            str(ws / "grav" / "mesh.txt"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "grav" / "model.den"),
            "--memory",
            "0",
            "--out",
            str(t / "f.grv"),
        ],
        "--memory",
        "expected a limit > 0 GiB, got 0.0",
    ),
    C(
        "grav-forward-out-inside-file",
        lambda ws, t: [
            "gravity",
            "forward",
            str(ws / "grav" / "mesh.txt"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            _inside(ws, t),
        ],
        "a_file",
        "is a file",
    ),
    C(
        "grav-forward-out-folder",
        lambda ws, t: [
            "gravity",
            "forward",
            str(ws / "grav" / "mesh.txt"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            str(ws / "grav"),
        ],
        "grav",
        "folder",
    ),
    C(
        "grav-weights-kind",
        lambda ws, t: [
            "gravity",
            "weights",
            "--mesh",
            str(ws / "grav" / "mesh.txt"),
            "--data",
            str(ws / "grav" / "dobs.grv"),
            "--kind",
            "x",
            "--out",
            str(t / "w.txt"),
        ],
        "--kind",
    ),
    C(
        "grav-weights-no-mesh",
        lambda ws, t: ["gravity", "weights", "--out", str(t / "w.txt")],
        "control file",
    ),
    C(
        "grav-weights-data-text",
        lambda ws, t: [
            "gravity",
            "weights",
            "--mesh",
            str(ws / "grav" / "mesh.txt"),
            "--data",
            str(ws / "text.txt"),
            "--out",
            str(t / "w.txt"),
        ],
        "text.txt",
    ),
    C(
        "grav-sens-dtype",
        lambda ws, t: [
            "gravity",
            "sensitivity",
            "--mesh",
            str(ws / "grav" / "mesh.txt"),
            "--data",
            str(ws / "grav" / "dobs.grv"),
            "--dtype",
            "float16",
            "--out",
            str(t / "g.mtx"),
        ],
        "--dtype",
    ),
    C(
        "grav-sens-out-inside-file",
        lambda ws, t: [
            "gravity",
            "sensitivity",
            "--mesh",
            str(ws / "grav" / "mesh.txt"),
            "--data",
            str(ws / "grav" / "dobs.grv"),
            "--out",
            _inside(ws, t),
        ],
        "a_file",
        "is a file",
    ),
    C(
        "grav-invert-control-missing",
        lambda ws, t: ["gravity", "invert", str(ws / "nope.inp")],
        "nope.inp",
    ),
    C(
        "grav-invert-control-text",
        lambda ws, t: ["gravity", "invert", str(ws / "text.txt")],
        "text.txt",
    ),
    C(
        "grav-invert-control-empty",
        lambda ws, t: ["gravity", "invert", str(ws / "empty.bin")],
        "empty.bin",
    ),
    C(
        "grav-predict-mtx-text",
        lambda ws, t: [
            "gravity",
            "predict",
            str(ws / "text.txt"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            str(t / "p.grv"),
        ],
        "text.txt",
        "not a sensitivity file",
    ),
    C(
        "grav-predict-mtx-truncated",
        lambda ws, t: [
            "gravity",
            "predict",
            str(ws / "sens.mtx"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            str(t / "p.grv"),
        ],
        "sens.mtx",
    ),
    C(
        "grav-predict-mtx-empty",
        lambda ws, t: [
            "gravity",
            "predict",
            str(ws / "empty.bin"),
            str(ws / "grav" / "dobs.grv"),
            str(ws / "model_short.den"),
            "--out",
            str(t / "p.grv"),
        ],
        "empty.bin",
        "empty",
    ),
    C(
        "grav-example-out-is-file",
        lambda ws, t: ["gravity", "example", "--out", str(ws / "a_file")],
        "a_file",
        "is a file",
    ),
    C(
        "paper-row-out-is-file",
        lambda ws, t: ["learn", "paper-row", "--out", str(ws / "a_file"), "--dry-run"],
        "--out",
        "a_file",
        "is a file",
    ),
    C(
        "paper-row-family-unknown",
        lambda ws, t: ["learn", "paper-row", "--out", str(t / "pr"), "--family", "x", "--dry-run"],
        "unknown family 'x'",
    ),
    C(
        "demo-out-is-file",
        lambda ws, t: ["demo", "--out", str(ws / "a_file"), "--no-learned"],
        "a_file",
        "is a file",
    ),
    C("demo-freq-zero", lambda ws, t: ["demo", "--out", str(t / "d"), "--freqs", "0"], "--freqs"),
]


def _snapshot(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            out[str(p)] = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def test_the_corpus_is_large_and_unique():
    ids = [c.id for c in CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_clean_line(case, ws, tmp_path):
    if case.setup is not None:
        case.setup(ws, tmp_path)
    args = case.args(ws, tmp_path)  # may write the input it needs (a config file)
    before = _snapshot(ws, tmp_path)
    result = runner.invoke(app, args)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == case.code, output
    lines = [ln for ln in result.stderr.splitlines() if ln and not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in case.says:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert "allow_pickle" not in output
    assert _snapshot(ws, tmp_path) == before, "the failed command changed files"
