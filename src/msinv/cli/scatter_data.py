"""``msinv scatter simulate | generate | info | export-hdf5 | import-hdf5``: data commands.

:func:`register` adds the commands to the ``msinv scatter`` typer app
(:mod:`msinv.cli.scatter`). Frequencies are given as ``--freqs 2.5 5 10`` (or repeated
``--freqs``); typer has no multi-value options, so the values after the first arrive as extra
arguments, which :func:`_frequencies` collects and checks.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from msinv.cli.errors import UserInputError, friendly

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": False}
_FAMILY_HELP = (
    "Perturbation family: squares (20 overlapping 10h squares, +0.2 each), triangles (1-10 "
    "right isosceles triangles, legs 3/5/10 h, +0.2 each), shepp_logan (random modified "
    "Shepp-Logan head, peak ~1), brain (MNI152 T1 axial slices, peak ~1)."
)
_FREQS_HELP = "Ordinary frequencies f > 0 (omega = 2 pi f), e.g. --freqs 2.5 5 10."
_SCHEME_HELP = (
    "Finite-difference scheme: a name (wide2, wide4, wide6, wide8), a wide order (2, 4, 6, 8) "
    "or a per-frequency policy (auto)."
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


def _frequencies(first: list[float], ctx: typer.Context) -> list[float]:
    """``--freqs`` values: the repeated options plus the extra arguments that follow them."""
    values = list(first)
    for arg in ctx.args:
        try:
            values.append(float(arg))
        except ValueError:
            raise UserInputError(
                f"unexpected argument {arg!r}: expected a frequency after --freqs (a number > 0)"
            ) from None
    if not values or any(not (f > 0 and f < float("inf")) for f in values):
        raise UserInputError(f"--freqs {values}: expected one or more finite frequencies > 0")
    return values


def _scheme(scheme: str) -> str:
    from msinv.scattering.schemes import scheme_name

    try:
        return scheme_name(int(scheme) if scheme.isdigit() else scheme)
    except ValueError as exc:
        raise UserInputError(f"--scheme: {exc}") from None


def _geometry(name: GeometryName, n: int, pml_width: int | None):
    from msinv.scattering import Geometry

    return Geometry.paper(n, pml_width=pml_width)


_PML_HELP = (
    "PML width in nodes (default: the paper's 20 at n = 80, scaled with n). 10 nodes with "
    "--scheme auto is the fast set-up that keeps the disk accuracy (docs/benchmarks.md)."
)


def simulate(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Folder for eta.npy, data.npy, run.json, figure."),
    eta_file: Path | None = typer.Option(
        None, "--eta", help="An (n, n) float .npy contrast indexed eta[iy, ix]; or use --family."
    ),
    family: str | None = typer.Option(None, help=_FAMILY_HELP + " Used without --eta."),
    seed: int = typer.Option(0, min=0, help="Seed of the family draw (sample i=0 of the seed)."),
    geometry: GeometryName = typer.Option(GeometryName.paper, help="Acquisition geometry."),
    n: int = typer.Option(80, min=16, max=1024, help="Nodes per axis (paper: 80)."),
    freqs: list[float] = typer.Option([2.5, 5.0, 10.0], help=_FREQS_HELP),
    scheme: str = typer.Option("wide8", "--scheme", "--order", help=_SCHEME_HELP),
    pml_width: int | None = typer.Option(None, min=4, max=200, help=_PML_HELP),
) -> None:
    """Simulate the data of one contrast: a .npy image or one draw of a family.

    Writes OUT/eta.npy, OUT/data.npy ((n_freq, n_rec, n_src) complex64, physical sign, outgoing
    e^{-i omega t} convention), OUT/run.json (configuration and provenance) and OUT/scatter.png.
    """
    import time

    import numpy as np

    from msinv.core.provenance import provenance
    from msinv.scattering import simulate as run_simulation
    from msinv.scattering.dataset import sample_eta

    f = _frequencies(freqs, ctx)
    geo = _geometry(geometry, n, pml_width)
    if (eta_file is None) == (family is None):
        raise UserInputError("give exactly one of --eta FILE.npy and --family NAME")
    if eta_file is not None:
        try:
            eta = np.load(eta_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserInputError(f"{eta_file}: cannot read a .npy array ({exc})") from None
        if eta.ndim != 2 or eta.shape != (n, n) or not np.issubdtype(eta.dtype, np.floating):
            raise UserInputError(
                f"{eta_file}: array {eta.shape} {eta.dtype}; expected a ({n}, {n}) float image "
                "(set --n to its size)"
            )
        source = {"eta_file": str(eta_file)}
    else:
        eta = sample_eta(family, seed, 0, n)
        source = {"family": family, "seed": seed, "index": 0}
    t0 = time.perf_counter()
    from msinv.scattering.spec import ForwardSpec

    spec = ForwardSpec(geo, scheme=_scheme(scheme))
    data = run_simulation(eta, spec, f)
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "eta.npy", eta)
    np.save(out / "data.npy", data)
    config = {**source, **spec.to_dict(), "freqs": f}
    record = {**provenance(config), "simulate_seconds": round(seconds, 3)}
    (out / "run.json").write_text(json.dumps(record, indent=2))
    from msinv.scattering.plotting import plot_eta_and_data

    figure = plot_eta_and_data(eta, data, f, out / "scatter.png")
    typer.echo(
        f"simulated {n}x{n} at f={f}: data {data.shape} max|Lambda|={np.abs(data).max():.3g} "
        f"in {seconds:.1f}s -> {out} ({Path(figure).name})"
    )


def generate(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Dataset store to create or complete (*.zarr)."),
    family: str = typer.Option(..., help=_FAMILY_HELP),
    count: int = typer.Option(..., min=1, help="Number of samples (paper: 21000 train, 500 test)."),
    geometry: GeometryName = typer.Option(GeometryName.paper, help="Acquisition geometry."),
    n: int = typer.Option(80, min=16, max=1024, help="Nodes per axis (paper: 80)."),
    freqs: list[float] = typer.Option([2.5, 5.0, 10.0], help=_FREQS_HELP),
    scheme: str = typer.Option("wide8", "--scheme", "--order", help=_SCHEME_HELP),
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
    progress: bool = typer.Option(True, help="Progress bar with samples/s and time left."),
    param: list[str] = typer.Option(
        [],
        "--param",
        help="Family parameter KEY=VALUE that differs from the paper's law (repeatable), "
        "e.g. --param count=5 --param side=25 for squares.",
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
    --chunk. Killed at any point, the same command completes only what is missing; a different
    configuration on an existing store is refused, naming the field.
    """
    from msinv.scattering.dataset import generate as run_generate

    f = _frequencies(freqs, ctx)
    backend = {}
    if device != Device.cpu:
        backend = {**_torch_backend(device, scheme, workers, scheduler), "batch": batch}
    path = run_generate(
        out,
        family=family,
        count=count,
        geometry=_geometry(geometry, n, pml_width),
        freqs=f,
        scheme=_scheme(scheme),
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        chunk=chunk,
        target_blur=target_blur,
        progress=progress,
        family_params=_family_params(param),
        **backend,
    )
    typer.echo(f"complete: {count} samples of {family} in {path}")


def _family_params(items: list[str]) -> dict:
    """``["count=5", "radius=0.3"]`` -> ``{"count": 5, "radius": 0.3}`` (values read as JSON)."""
    import json

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--param")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise typer.BadParameter(
                f"{item!r}: the value is not a number, list or quoted string",
                param_hint="--param",
            ) from None
    return params


def info(path: Path = typer.Argument(..., help="A dataset store (*.zarr).")) -> None:
    """Print a summary of a dataset: family, size, completion, geometry, provenance."""
    from msinv.scattering.dataset import summary

    typer.echo(summary(path))


def export_hdf5(
    store: Path = typer.Argument(..., help="A complete dataset store (*.zarr)."),
    outdir: Path = typer.Argument(..., help="Folder for eta.h5 and scatter.h5."),
    single: bool = typer.Option(
        False, "--single", help="float32 values (exact for our data) instead of float64."
    ),
) -> None:
    """Write a store in the published layout: OUTDIR/eta.h5 (/eta) and OUTDIR/scatter.h5.

    scatter.h5 holds /scatter_{real,imag}_freq_{1,2,...} in the published sign, time convention
    and axis order (see docs/datasets.md).
    """
    from msinv.scattering.hdf5 import export_hdf5 as run_export

    eta_h5, scatter_h5 = run_export(store, outdir, double=not single)
    typer.echo(f"wrote {eta_h5} and {scatter_h5}")


def import_hdf5(
    ctx: typer.Context,
    indir: Path = typer.Argument(..., help="Folder with eta.h5 and scatter.h5."),
    store: Path = typer.Argument(..., help="New dataset store to write (*.zarr)."),
    freqs: list[float] = typer.Option(
        [],
        help="Frequencies of freq_1, freq_2, ... when the files carry no msinv attributes "
        "(published: --freqs 2.5 5 10). Put it after INDIR and STORE.",
    ),
) -> None:
    """Read the published layout (eta.h5, scatter.h5) into a new dataset store.

    Data are converted to msinv's physical sign and outgoing convention. Files written by
    export-hdf5 carry their configuration and are restored exactly.
    """
    from msinv.scattering.hdf5 import import_hdf5 as run_import

    f = _frequencies(freqs, ctx) if (freqs or ctx.args) else None
    from msinv.scattering.dataset import open_dataset

    path = run_import(indir, store, freqs=tuple(f) if f else None)
    ds = open_dataset(path)
    typer.echo(
        f"imported {len(ds)} samples ({ds.geometry.n}x{ds.geometry.n}) into {path}; forward "
        f"model {ds.spec.scheme}, {ds.spec.receiver_interpolation} receivers, {ds.spec.dtype}"
    )


def register(app: typer.Typer) -> None:
    """Add the data commands to the ``msinv scatter`` app."""
    app.command("simulate", context_settings=_EXTRA)(friendly(simulate))
    app.command("generate", context_settings=_EXTRA)(friendly(generate))
    app.command("info")(friendly(info))
    app.command("export-hdf5")(friendly(export_hdf5))
    app.command("import-hdf5", context_settings=_EXTRA)(friendly(import_hdf5))
