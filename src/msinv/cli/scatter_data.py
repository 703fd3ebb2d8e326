"""``msinv scatter simulate | generate | info | export-hdf5 | import-hdf5``: data commands.

:func:`register` adds the commands to the ``msinv scatter`` typer app
(:mod:`msinv.cli.scatter`). Lists are written ``--freqs 2.5 5 10`` (see
:mod:`msinv.cli.options`).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from msinv.cli.errors import friendly
from msinv.core.errors import UserInputError

_FAMILY_HELP = (
    "Perturbation family: squares (20 overlapping 10h squares, +0.2 each), triangles (1-10 "
    "right isosceles triangles, legs 3/5/10 h, +0.2 each), shepp_logan (random modified "
    "Shepp-Logan head, peak ~1), brain (MNI152 T1 axial slices, peak ~1)."
)
_FREQS_HELP = "Ordinary frequencies f > 0 (omega = 2 pi f), e.g. --freqs 2.5 5 10."
_SCHEME_HELP = (
    "Finite-difference scheme: compact-opt (default: 3x3 stencil, the fastest within the disk "
    "budget), compact4, compact6 (sixth order for variable k), the wide stencils wide2-wide8 (wide8: the published 17-point cross; "
    "also 2, 4, 6, 8) or the per-frequency policy auto (wide orders)."
)


class GeometryName(StrEnum):
    """Named acquisition geometries."""

    paper = "paper"


class Device(StrEnum):
    """Where ``generate`` solves: the FD solver on the CPU, or the batched PyTorch solver."""

    cpu = "cpu"
    cuda = "cuda"
    cpu_torch = "cpu-torch"


_DEVICE_HELP = (
    "cpu: the finite-difference solver (SciPy, --scheme, --workers). cuda or cpu-torch: the "
    "batched FFT Lippmann-Schwinger + GMRES solver of msinv.accel (PyTorch, learn extra) on the "
    "GPU or the CPU, --batch samples per call; same store layout, the solver and its tolerance "
    "recorded in the config (data agree with the FD solver's within the disk budget)."
)


def _torch_backend(device: Device, scheme: str, workers: int, scheduler: str | None) -> dict:
    """generate() keyword arguments of the PyTorch solver (checked before any I/O)."""
    from msinv.scattering.spec import DEFAULT_SCHEME

    if _scheme(scheme) != DEFAULT_SCHEME:
        raise UserInputError(
            f"--scheme {scheme}: the {device} solver (Lippmann-Schwinger) has no stencil; "
            "--scheme applies to --device cpu only"
        )
    if workers != 1 or scheduler is not None:
        raise UserInputError(
            f"--device {device} batches in one process: drop --workers/--scheduler"
        )
    from msinv.accel.lippmann_schwinger import resolve_device

    dev = "cuda" if device == Device.cuda else "cpu"
    try:
        resolve_device(dev)
    except ValueError as exc:
        raise UserInputError(f"--device {device}: {exc}") from None
    return {"backend": "torch", "device": dev}


def _frequencies(values: list[float], option: str = "--freqs") -> list[float]:
    """Check a list of frequencies: one or more, finite, > 0."""
    if not values or any(not (f > 0 and f < float("inf")) for f in values):
        raise UserInputError(f"{option} {values}: expected one or more finite frequencies > 0")
    return list(values)


def _scheme(scheme: str) -> str:
    from msinv.scattering.schemes import scheme_name

    try:
        return scheme_name(int(scheme) if scheme.isdigit() else scheme)
    except ValueError as exc:
        raise UserInputError(f"--scheme: {exc}") from None


def _geometry(name: GeometryName, n: int, pml_width: int | None):
    from msinv.scattering import Geometry

    return Geometry.paper(n, pml_width="auto" if pml_width is None else pml_width)


_PML_HELP = (
    "PML width in nodes, sigma_max 80 (default: chosen by the solver per frequency, 6-10 "
    "nodes at n = 80, the fastest set-up within the disk budget, docs/benchmarks.md; the "
    "published data used 20)."
)


def simulate(
    out: Path = typer.Option(..., "--out", help="Folder for eta.npy, data.npy, run.json, figure."),
    eta_file: Path | None = typer.Option(
        None, "--eta", help="An (n, n) float .npy contrast indexed eta[iy, ix]; or use --family."
    ),
    family: str | None = typer.Option(None, help=_FAMILY_HELP + " Used without --eta."),
    seed: int = typer.Option(0, min=0, help="Seed of the family draw (sample i=0 of the seed)."),
    geometry: GeometryName = typer.Option(GeometryName.paper, help="Acquisition geometry."),
    n: int = typer.Option(80, min=16, max=1024, help="Nodes per axis (paper: 80)."),
    freqs: list[float] = typer.Option([2.5, 5.0, 10.0], help=_FREQS_HELP),
    scheme: str = typer.Option("compact-opt", "--scheme", "--order", help=_SCHEME_HELP),
    pml_width: int | None = typer.Option(None, min=4, max=200, help=_PML_HELP),
) -> None:
    """Simulate the data of one contrast: a .npy image or one draw of a family.

    Writes `OUT/eta.npy`, `OUT/data.npy` ((n_freq, n_rec, n_src) complex64, physical sign,
    outgoing e^{-i omega t} convention), `OUT/run.json` (configuration and provenance) and
    `OUT/scatter.png`. The output folder is checked before computing; files are written
    atomically. Under 4 points per wavelength a warning is printed; under 2 the run is refused.
    Run time: about 0.15-0.17 CPU s per frequency at n = 80 with the defaults (1.1-1.5 s with
    --scheme wide8 and the published 20-node PML; docs/benchmarks.md, loaded 2-core VM).

    **Examples**

    ```
    msinv scatter simulate --family shepp_logan --out out/sim
    msinv scatter simulate --eta my_eta.npy --n 64 --freqs 2.5 5 10 --out out/mine
    ```
    """
    import time

    import numpy as np

    from msinv.core.inputs import read_npy
    from msinv.core.outputs import atomic_path, check_output_dir, write_text
    from msinv.core.provenance import provenance
    from msinv.scattering import simulate as run_simulation
    from msinv.scattering.dataset import sample_eta
    from msinv.scattering.geometry import check_resolution
    from msinv.scattering.helmholtz import check_eta

    f = _frequencies(freqs)
    check_output_dir(out, "--out")
    geo = _geometry(geometry, n, pml_width)
    stencil = _scheme(scheme)
    if (eta_file is None) == (family is None):
        raise UserInputError("give exactly one of --eta FILE.npy and --family NAME")
    if eta_file is not None:
        eta = read_npy(eta_file, "--eta")
        if eta.ndim != 2 or eta.shape != (n, n) or not np.issubdtype(eta.dtype, np.floating):
            raise UserInputError(
                f"--eta {eta_file}: array {eta.shape} {eta.dtype}; expected a ({n}, {n}) float "
                "image (set --n to its size)"
            )
        try:
            check_eta(eta, geo)
        except UserInputError as exc:
            raise UserInputError(f"--eta {eta_file}: {exc}") from None
        source = {"eta_file": str(eta_file)}
    else:
        eta = sample_eta(family, seed, 0, n)
        source = {"family": family, "seed": seed, "index": 0}
    check_resolution(geo, f, float(eta.max()))
    t0 = time.perf_counter()
    from msinv.scattering.spec import ForwardSpec

    spec = ForwardSpec(geo, scheme=stencil)
    data = run_simulation(eta, spec, f)
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    for name, values in (("eta.npy", eta), ("data.npy", data)):
        with atomic_path(out / name) as tmp:
            np.save(tmp, values)
    config = {**source, **spec.to_dict(), "freqs": f}
    record = {**provenance(config), "simulate_seconds": round(seconds, 3)}
    write_text(out / "run.json", json.dumps(record, indent=2))
    from msinv.scattering.plotting import plot_eta_and_data

    with atomic_path(out / "scatter.png") as tmp:
        plot_eta_and_data(eta, data, f, tmp)
    typer.echo(
        f"simulated {n}x{n} at f={f}: data {data.shape} max|Lambda|={np.abs(data).max():.3g} "
        f"in {seconds:.1f}s -> {out} (scatter.png)"
    )


def generate(
    out: Path = typer.Option(..., "--out", help="Dataset store to create or complete (*.zarr)."),
    family: str = typer.Option(..., help=_FAMILY_HELP),
    count: int = typer.Option(..., min=1, help="Number of samples (paper: 21000 train, 500 test)."),
    geometry: GeometryName = typer.Option(GeometryName.paper, help="Acquisition geometry."),
    n: int = typer.Option(80, min=16, max=1024, help="Nodes per axis (paper: 80)."),
    freqs: list[float] = typer.Option([2.5, 5.0, 10.0], help=_FREQS_HELP),
    scheme: str = typer.Option("compact-opt", "--scheme", "--order", help=_SCHEME_HELP),
    pml_width: int | None = typer.Option(None, min=4, max=200, help=_PML_HELP),
    seed: int = typer.Option(
        0, min=0, help="Root seed: sample i is drawn from SeedSequence((seed, i))."
    ),
    workers: int = typer.Option(1, min=1, max=1024, help="Local worker processes."),
    scheduler: str | None = typer.Option(
        None, help="Dask distributed scheduler address tcp://host:port (overrides --workers)."
    ),
    chunk: int | None = typer.Option(
        None,
        min=1,
        help="Samples per chunk and work unit (default 16, or the stored value on resume).",
    ),
    target_blur: float = typer.Option(
        0.0, min=0.0, help="Also store targets blurred by this many pixels (published: 0.5)."
    ),
    progress: bool = typer.Option(
        True, help="Progress bar (per sample, with samples/s and time left) on a terminal."
    ),
    param: list[str] = typer.Option(
        [],
        "--param",
        help="Family parameters KEY=VALUE that differ from the paper's law, e.g. "
        "--param count=5 side=25 for squares (values are JSON: numbers, lists [3, 5]).",
    ),
    device: Device = typer.Option(Device.cpu, help=_DEVICE_HELP),
    batch: int = typer.Option(
        256,
        min=1,
        help="Samples per solver call with --device cuda/cpu-torch (whole chunks; GPU memory "
        "is managed inside the call).",
    ),
) -> None:
    """Generate a dataset of a perturbation family and its multi-frequency data (zarr v3).

    Sample i depends only on (seed, i): the bytes do not depend on --workers, --scheduler or
    --chunk. Killed at any point (Ctrl-C, SIGTERM, SIGKILL), the same command completes only
    what is missing: finished chunks are kept, the workers stop with the command. Every chunk
    is written with a checksum; on resume the finished chunks are read back and a damaged one
    is computed again (`msinv scatter info --verify` checks a store). A different
    configuration on an existing store is refused, naming the field. Run time: 0.15-0.17 CPU s
    per sample and frequency at n = 80 with the defaults (compact-opt, PML chosen per
    frequency; 1.1-1.5 s with --scheme wide8 --pml-width 20, the published set-up;
    docs/benchmarks.md, measured on a loaded 2-core VM); --workers N divides the wall time
    by up to N.

    **Examples**

    ```
    msinv scatter generate --family squares --count 1000 --workers 4 --out data/squares.zarr
    msinv scatter generate --family squares --count 100 --n 32 --freqs 1 2 4 --param count=5 --out sq32.zarr
    ```
    """
    from msinv.core.outputs import check_output_dir
    from msinv.scattering.dataset import generate as run_generate
    from msinv.scattering.dataset import sample_eta
    from msinv.scattering.geometry import check_resolution

    f = _frequencies(freqs)
    check_output_dir(out, "--out")
    geo = _geometry(geometry, n, pml_width)
    stencil = _scheme(scheme)
    params = _family_params(param)
    backend = {}
    if device != Device.cpu:
        backend = {**_torch_backend(device, scheme, workers, scheduler), "batch": batch}
    # a wrong family or parameter fails here, before a store exists
    check_resolution(geo, f, float(sample_eta(family, seed, 0, n, params).max()))
    path = run_generate(
        out,
        family=family,
        count=count,
        geometry=geo,
        freqs=f,
        scheme=stencil,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        chunk=chunk,
        target_blur=target_blur,
        progress=progress,
        family_params=params,
        **backend,
    )
    typer.echo(f"complete: {count} samples of {family} in {path}")


def _family_params(items: list[str]) -> dict:
    """``["count=5", "radius=0.3"]`` -> ``{"count": 5, "radius": 0.3}`` (values read as JSON)."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--param {item!r}: expected KEY=VALUE, e.g. --param count=5")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise UserInputError(
                f"--param {item!r}: the value is not a number, a list like [3, 5] or a quoted "
                "string like '\"x\"'"
            ) from None
    return params


def info(
    path: Path = typer.Argument(..., help="A dataset store (*.zarr)."),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Also read every finished chunk back and check it against its checksum "
        "(reads the whole store).",
    ),
) -> None:
    """Print a summary of a dataset: family, size, completion, geometry, provenance.

    With --verify, every finished chunk is read back and checked against the checksum written
    with it; damaged chunks are listed (exit code 2) and the generate command that made the
    store recomputes them. Run time: instant; --verify reads and decompresses the whole store.

    **Examples**

    ```
    msinv scatter info data/squares.zarr
    msinv scatter info data/squares.zarr --verify
    ```
    """
    from msinv.scattering.dataset import DatasetError, summary
    from msinv.scattering.dataset import verify as run_verify

    typer.echo(summary(path))
    if verify:
        damaged = run_verify(path)
        if damaged:
            ranges = ", ".join(f"{r.start}-{r.stop - 1}" for r in damaged)
            raise DatasetError(
                f"{path}: {len(damaged)} damaged chunk(s), samples {ranges} (unreadable or not "
                "matching their checksum); re-run the generate command that made the store to "
                "recompute them"
            )
        typer.echo("verified     every finished chunk matches its checksum")


def export_hdf5(
    store: Path = typer.Argument(..., help="A complete dataset store (*.zarr)."),
    outdir: Path = typer.Argument(..., help="Folder for eta.h5 and scatter.h5."),
    single: bool = typer.Option(
        False, "--single", help="float32 values (exact for our data) instead of float64."
    ),
) -> None:
    """Write a store in the published layout: `OUTDIR/eta.h5` (`/eta`) and `OUTDIR/scatter.h5`.

    `scatter.h5` holds `/scatter_{real,imag}_freq_{1,2,...}` in the published sign, time
    convention and axis order (see docs/datasets.md). Existing files in OUTDIR are refused;
    both files are written under temporary names and renamed when complete. Run time: one pass
    over the store.

    **Examples**

    ```
    msinv scatter export-hdf5 data/squares.zarr out/published
    ```
    """
    from msinv.core.outputs import check_output_dir
    from msinv.scattering.hdf5 import export_hdf5 as run_export

    check_output_dir(outdir, "OUTDIR")
    eta_h5, scatter_h5 = run_export(store, outdir, double=not single)
    typer.echo(f"wrote {eta_h5} and {scatter_h5}")


def import_hdf5(
    indir: Path = typer.Argument(..., help="Folder with eta.h5 and scatter.h5."),
    store: Path = typer.Argument(..., help="New dataset store to write (*.zarr)."),
    freqs: list[float] = typer.Option(
        [],
        help="Frequencies of freq_1, freq_2, ... when the files carry no msinv attributes "
        "(published: --freqs 2.5 5 10).",
    ),
    target_blur: float = typer.Option(
        None,
        min=0.0,
        help="Also store targets blurred by this many pixels (published: 0.5); default: as the "
        "files' msinv attributes say, else none.",
    ),
) -> None:
    """Read the published layout (`eta.h5`, `scatter.h5`) into a new dataset store.

    Data are converted to msinv's physical sign and outgoing convention; NaN or inf values are
    refused, naming the dataset and rows. Files written by export-hdf5 carry their
    configuration and are restored exactly. STORE must not exist (or be an empty folder); a
    failed import leaves nothing behind. Run time: one pass over the files.

    **Examples**

    ```
    msinv scatter import-hdf5 published/ data/published.zarr --freqs 2.5 5 10 --target-blur 0.5
    ```
    """
    from msinv.core.outputs import check_output_dir
    from msinv.scattering.dataset import open_dataset
    from msinv.scattering.hdf5 import import_hdf5 as run_import

    f = _frequencies(freqs) if freqs else None
    check_output_dir(store, "STORE")
    path = run_import(indir, store, freqs=tuple(f) if f else None, target_blur=target_blur)
    ds = open_dataset(path)
    blur = ds.config.get("target_blur", 0.0)
    typer.echo(
        f"imported {len(ds)} samples ({ds.geometry.n}x{ds.geometry.n}) into {path}; forward "
        f"model {ds.spec.scheme}, {ds.spec.receiver_interpolation} receivers, {ds.spec.dtype}; "
        + (f"targets blurred by {blur:g} px" if blur else "no target blur")
    )


def register(app: typer.Typer) -> None:
    """Add the data commands to the ``msinv scatter`` app."""
    app.command("simulate")(friendly(simulate))
    app.command("generate")(friendly(generate))
    app.command("info")(friendly(info))
    app.command("export-hdf5")(friendly(export_hdf5))
    app.command("import-hdf5")(friendly(import_hdf5))
