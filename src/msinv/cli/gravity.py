"""``msinv gravity``: the GRAV3D programs as subcommands.

=====================  ===========  ==================================================
msinv gravity ...      GRAV3D       does
=====================  ===========  ==================================================
forward                GZFOR3D      g_z of a density model at stations
weights                PFWEIGHT     depth or distance weights
sensitivity            GZSEN3D      G, compressed block by block, saved with mesh and stations
invert                 GZINV3D      bounded inversion, L2 or sparse (modes 1, 2, 3)
predict                GZPRE3D      data of a model from a saved sensitivity
example                --           a small GRAV3D-style example to try all of the above
es-sensitivity         GZSENES      equivalent-source layer G (2-D compression)
es-invert              GZINVES      fit the layer (full-G finish)
es-predict             --           the layer's field at points / on a grid / upward
=====================  ===========  ==================================================

Every command reads GRAV3D's own files (or options instead of a control file) and fails with a
one-line message naming the file, the line and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from msinv.cli.errors import OneLineGroup, friendly
from msinv.core.errors import UserInputError

app = typer.Typer(
    cls=OneLineGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

MEMORY_HELP = (
    "Memory limit in GiB: work that can be split (G in blocks of stations, a layer in windows) "
    "is split to fit, other work over it is refused up front [default: half of the memory "
    "available at start]."
)


class _Bar:
    """A tqdm progress bar fed by ``callback(done, total)``."""

    def __init__(self, desc: str, quiet: bool):

        from tqdm import tqdm

        # only on a terminal: a redirected log must not fill with carriage returns
        self.bar = tqdm(desc=desc, unit="", disable=True if quiet else None, leave=False)

    def __call__(self, done: int, total: int):
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self):
        self.bar.close()


def _active(mesh, topography: Path | None) -> np.ndarray:
    from msinv.gravity.topography import active_from_topography
    from msinv.gravity.ubc_data import read_topography

    return active_from_topography(mesh, None if topography is None else read_topography(topography))


def _stations(path: Path):
    from msinv.gravity.ubc_data import read_locations, read_observations

    try:
        return read_observations(path)
    except UserInputError:
        return read_locations(path)


@app.command()
@friendly
def forward(
    mesh: Path = typer.Argument(..., help="UBC mesh file."),
    locations: Path = typer.Argument(..., help="Locations (or observations) file."),
    model: Path = typer.Argument(..., help="Density-contrast model file, g/cc."),
    topography: Path | None = typer.Argument(None, help="Topography file (optional)."),
    out: Path = typer.Option(Path("gzfor3d.grv"), help="Predicted-data file to write."),
    memory: float | None = typer.Option(None, help=MEMORY_HELP),
) -> None:
    """Vertical gravity (mGal, positive down) of a density model: GZFOR3D.

    Reads GRAV3D's mesh, locations and model files (and the topography: cells above it are
    left out; cells holding -100, GRAV3D's air cells in output models, are inactive with or
    without it); writes the predicted-data file OUT (checked before computing, written
    atomically). Run time: 10 s for the GRAV3D v6 example on 2 cores (docs/benchmarks.md).

    **Examples**

    ```
    msinv gravity forward mesh.txt obs.loc model.den --out gzfor3d.grv
    msinv gravity forward mesh.txt obs.loc model.den topo.dat
    ```
    """
    from msinv.core.memory import check_memory, memory_limit
    from msinv.core.outputs import atomic_path, check_output_file
    from msinv.gravity.forward import forward_memory, gz
    from msinv.gravity.ubc import read_density, read_mesh
    from msinv.gravity.ubc_data import GravityData, write_data

    check_output_file(out, "--out")
    m = read_mesh(mesh)
    st = _stations(locations)
    check_memory(
        forward_memory(m, st.n_data), memory_limit(memory), f"forward of {st.n_data} stations"
    )
    active = _active(m, topography)
    values, air = read_density(model, m)
    rho = np.where(active, values, 0.0)
    if air.any():
        typer.echo(f"{model}: {int(air.sum())} cells at -100 (air) are inactive")
    predicted = GravityData(st.locations, gz(m, st.locations, rho))
    with atomic_path(out) as tmp:
        write_data(tmp, predicted, comment=f"msinv gravity forward {model.name}")
    typer.echo(f"wrote {out} ({st.n_data} data)")


@app.command()
@friendly
def weights(
    control: Path | None = typer.Argument(None, help="PFWEIGHT control file (pfweight.inp)."),
    mesh: Path | None = typer.Option(None, help="Mesh file (instead of a control file)."),
    data: Path | None = typer.Option(None, help="Observations or locations file."),
    topography: Path | None = typer.Option(None, help="Topography file."),
    kind: str = typer.Option("distance", help="'depth' or 'distance' weighting."),
    exponent: float = typer.Option(2.0, min=0.0, help="Decay exponent alpha."),
    offset: float | None = typer.Option(None, help="z0 (depth) or R0 (distance), metres."),
    out: Path | None = typer.Option(
        None,
        help="Weights file [default: beside the control "
        "file, distance_weight.txt or depth_weight.txt].",
    ),
) -> None:
    """Depth or distance weights, normalised to 1: PFWEIGHT.

    Reads a PFWEIGHT control file, or --mesh and --data; writes a weights file (one value per
    cell, UBC order), checked before computing and written atomically. Run time: seconds.

    **Examples**

    ```
    msinv gravity weights grav_example/pfweight.inp
    msinv gravity weights --mesh mesh.txt --data obs.grv --kind depth --exponent 2 --out w.txt
    ```
    """
    from msinv.core.outputs import atomic_path, check_output_file
    from msinv.gravity.ubc import read_mesh, write_model
    from msinv.gravity.weighting import depth_weighting, distance_weighting

    folder = Path(".")
    if control is not None:
        from msinv.gravity.control import read_pfweight_control

        c = read_pfweight_control(control)
        if c.field != "GRAV":
            raise UserInputError(f"{control}: line 1: msinv computes GRAV weights, not {c.field}")
        mesh, data, topography, kind = c.mesh_file, c.data_file, c.topography_file, c.weighting
        exponent = c.exponent or exponent
        offset = c.offset if c.offset else offset
        folder = control.parent
    if mesh is None or data is None:
        raise UserInputError("give a PFWEIGHT control file, or --mesh and --data")
    if kind not in ("depth", "distance"):
        raise UserInputError(f"--kind: expected 'depth' or 'distance', got {kind!r}")
    out = check_output_file(out or folder / f"{kind}_weight.txt", "--out")
    m = read_mesh(mesh)
    active = _active(m, topography)
    st = _stations(data).locations
    w = np.zeros(m.n_cells)
    if kind == "depth":
        w[active] = depth_weighting(
            m, float(st[:, 2].mean()), exponent=exponent, z0=offset, active=active
        )
    else:
        w[active] = distance_weighting(m, st, exponent=exponent, r0=offset, active=active)
    with atomic_path(out) as tmp:
        write_model(tmp, m, w, active=active)
    typer.echo(f"wrote {out} ({kind} weighting, {int(active.sum())} active cells)")


def _logger(path: Path, echo: bool = True):
    """``say(line)``: append to a log file (created afresh) and echo to the terminal."""
    fh = path.open("w")

    def say(line: str):
        fh.write(line + "\n")
        fh.flush()
        if echo:
            typer.echo(line)

    return say, fh


@app.command()
@friendly
def sensitivity(
    control: Path | None = typer.Argument(None, help="GZSEN3D control file (sens.inp)."),
    mesh: Path | None = typer.Option(None, help="Mesh file (instead of a control file)."),
    data: Path | None = typer.Option(None, help="Observations or locations file."),
    topography: Path | None = typer.Option(None, help="Topography file."),
    weights_file: Path | None = typer.Option(None, "--weights", help="Weights file (PFWEIGHT)."),
    wavelet: str = typer.Option("daub2", help="daub1..daub6, symm4..symm6, or NONE."),
    rstar: float = typer.Option(0.05, min=0.0, max=1.0, help="Relative error r* per row."),
    rule: str = typer.Option("per_row", help="per_row, representative or threshold."),
    dtype: str = typer.Option("float32", help="Precision of a dense G: float32/float64."),
    memory: float | None = typer.Option(None, min=0.01, help=MEMORY_HELP),
    workers: int | None = typer.Option(None, min=1, help="Compression threads [default: all]."),
    diagnostics: bool = typer.Option(False, help="Write sens_diagnostics.json."),
    out: Path | None = typer.Option(
        None, help="Sensitivity file [default: gzinv3d.mtx beside the control file]."
    ),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Sensitivity matrix, wavelet-compressed block by block, saved with its mesh: GZSEN3D.

    G is built in blocks of stations that fit the --memory limit, each block compressed at once
    and written to OUT.partial/; a killed run started again resumes there. Writes the
    sensitivity file, sensitivity.txt (RMS sensitivity of every cell) and gzsen3d.log; the
    output is checked before G is built. Run time for the GRAV3D v6 example on 2 cores: 21 s
    to build the dense G, 83 s to compress it (docs/benchmarks.md).

    **Examples**

    ```
    msinv gravity sensitivity grav_example/sens.inp
    msinv gravity sensitivity --mesh mesh.txt --data obs.grv --wavelet daub2 --rstar 0.02 --out g.mtx
    ```
    """
    from msinv.core.outputs import check_output_file, write_text
    from msinv.gravity.pipeline import (
        SensitivitySettings,
        build_sensitivity_file,
        read_cell_weights,
    )
    from msinv.gravity.ubc import read_mesh

    folder, threshold, scale = Path("."), None, True
    if control is not None:
        from msinv.gravity.control import read_sensitivity_control

        c = read_sensitivity_control(control)
        mesh, data, topography, weights_file = (
            c.mesh_file,
            c.data_file,
            c.topography_file,
            c.weights_file,
        )
        wavelet = c.wavelet or "NONE"
        if c.itol == 1:
            rstar = c.eps
        else:
            rule, threshold = "threshold", c.eps
        diagnostics = diagnostics or c.diagnostics
        scale = c.scale_sensitivity
        folder = control.parent
    if mesh is None or data is None:
        raise UserInputError("give a GZSEN3D control file, or --mesh and --data")
    if dtype not in ("float32", "float64"):
        raise UserInputError(f"--dtype {dtype!r}: expected float32 or float64")
    out = check_output_file(out or folder / "gzinv3d.mtx", "--out")
    settings = SensitivitySettings(
        wavelet=wavelet,
        rule=rule,
        rstar=rstar,
        threshold=threshold if threshold is not None else 1e-3,
        scale_sensitivity=scale,
        dtype=dtype,
        memory=None if memory is None else int(memory * 2**30),
        workers=workers,
    )
    m = read_mesh(mesh)
    active = _active(m, topography)
    st = _stations(data)
    w = None if weights_file is None else read_cell_weights(weights_file, m, active)
    say, fh = _logger(out.parent / "gzsen3d.log")
    bar = _Bar("G rows", quiet)
    try:
        res = build_sensitivity_file(
            m,
            st.locations,
            active,
            w,
            settings,
            out,
            std=st.std,
            sensitivity_txt=out.parent / "sensitivity.txt",
            progress=bar,
            log=say,
        )
    finally:
        bar.close()
        fh.close()
    if diagnostics:
        write_text(folder / "sens_diagnostics.json", json.dumps(res.diagnostics, indent=2) + "\n")


@app.command()
@friendly
def invert(
    control: Path = typer.Argument(..., help="GZINV3D control file (inv.inp)."),
    out: Path | None = typer.Option(None, help="Output folder [default: the control file's]."),
    levels: int = typer.Option(
        1,
        min=1,
        max=4,
        help="Mesh levels: 2 or more inverts coarse-to-fine (cells merged 2x2x2), each coarse "
        "level with its own sensitivity (written to OUT as gzinv3d_coarse<k>.mtx, reused).",
    ),
    every_iteration: bool = typer.Option(
        False, help="Also write gzinv3d_NNN.den/.pre after every beta solve."
    ),
    full_finish: bool = typer.Option(
        True,
        help="With a compressed sensitivity: rebuild the exact G (when it fits in --memory) and "
        "finish the inversion with it, so that phi_d is the true misfit; else report the true "
        "misfit of the compressed result from the exact forward.",
    ),
    mode3: str = typer.Option("gcv", help="Mode 3's choice of beta: gcv (GRAV3D) or lcurve."),
    quiet: bool = typer.Option(False, help="No progress bars."),
    memory: float | None = typer.Option(None, help=MEMORY_HELP),
) -> None:
    """Bounded inversion, L2 or sparse (v6 lines 13-14, IRLS): GZINV3D.

    Writes gzinv3d.den/.pre/.out/.log/.vtk/.json (and gzinv3d_NNN.den/.pre on request) into
    OUT (default: the control file's folder), checked before the inversion. Run time: 3-10 s
    for the GRAV3D v6 example on 2 cores (docs/benchmarks.md).

    **Examples**

    ```
    msinv gravity invert grav_example/inv.inp
    msinv gravity invert inv.inp --out results/ --levels 2 --quiet
    ```
    """
    import time
    from dataclasses import replace

    from msinv.core.memory import memory_limit
    from msinv.core.outputs import check_output_dir
    from msinv.gravity.control import read_inversion_control
    from msinv.gravity.pipeline import (
        iteration_writer,
        problem_from_control,
        run_inversion,
        write_inversion_outputs,
    )

    c = read_inversion_control(control)
    if mode3 not in ("gcv", "lcurve"):
        raise UserInputError(f"--mode3: expected gcv or lcurve, got {mode3!r}")
    if c.weights_file is not None and not c.weights_file.is_file():
        raise UserInputError(f"{control}: line 12: weights file {c.weights_file} not found")
    limit = memory_limit(memory)
    out = check_output_dir(out or control.parent, "--out")
    t0 = time.perf_counter()
    problem = problem_from_control(c)
    _check_length_scales(control, c, problem.mesh)
    problem.config = replace(problem.config, mode3=mode3)
    out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    bar = tqdm(desc="CG", unit="it", disable=True if quiet else None, leave=False)
    write_iteration = iteration_writer(problem, out) if every_iteration else None

    def progress(event, info):
        if event == "cg":
            bar.update(1)
            return
        if event in ("level", "level_operator"):
            if not quiet:
                what = info.get("operator") or f"{info['parameters']} parameters"
                bar.write(f"level {info['level']}: {what}")
            return
        if write_iteration is not None:
            write_iteration(event, info)
        if not quiet:
            stage = f"IRLS {info['irls']}, " if info.get("irls") else ""
            bar.write(
                f"{stage}beta {info['beta']:.4e}: phi_d {info['phi_d']:.4e}, phi_m "
                f"{info['phi_m']:.4e}, {info['cg_iterations']} CG, "
                f"{info['n_lower'] + info['n_upper']} at bounds"
            )

    from msinv.gravity.multilevel import CoarseBuild

    build = CoarseBuild(stations=problem.locations, work=out, budget=limit)
    res = run_inversion(problem, levels=levels, build=build, callback=progress)
    res = _true_misfit(problem, res, full_finish, limit, quiet, progress)
    bar.close()
    seconds = time.perf_counter() - t0
    record = {
        "control": str(control),
        "mode": c.mode,
        "alphas": list(c.resolved_alphas),
        "smooth": c.smooth,
        "norms": None
        if c.norms is None
        else [str(p) if isinstance(p, Path) else float(p) for p in c.norms],
        "levels": levels,
    }
    write_inversion_outputs(problem, res, out, control_path=control, seconds=seconds, record=record)
    _echo_result(res, f"wrote gzinv3d.den, .pre, .out, .log, .vtk in {out}")


def _echo_result(res, wrote: str) -> None:
    """One line: β, the true φ_d, the target and what the compressed G claimed; a warning when
    the true misfit missed the target."""
    target = f" (target {res.target:.1f})" if res.target is not None else ""
    approx = (
        f", compressed G gave {res.phi_d_approximate:.2f}"
        if res.phi_d_approximate is not None
        else ""
    )
    typer.echo(f"beta {res.beta:.4e}: true phi_d {res.phi_d:.2f}{target}{approx}; {wrote}")
    if res.target is not None and not res.converged:
        typer.secho("warning: the true misfit is not within tolc of the target", err=True)


def _true_misfit(problem, res, full_finish: bool, limit: int, quiet: bool, progress):
    """After an inversion with a compressed G: finish with the exact G when it fits in
    ``limit`` bytes (least squares only), else measure the true misfit with the exact forward."""
    from msinv.gravity.compression import CompressedSensitivity
    from msinv.gravity.forward import GravityOperator, gz
    from msinv.gravity.inversion import finish
    from msinv.gravity.pipeline import Selection
    from msinv.gravity.sensitivity import build_sensitivity, sensitivity_memory

    p = problem
    op = getattr(p.op, "a", p.op)  # G itself when fixed cells made it G @ Selection
    if not isinstance(op, CompressedSensitivity):
        return res
    need = sensitivity_memory(p.locations.shape[0], int(p.below.sum()), np.float32)
    if full_finish and p.sparse is None and need <= limit:
        bar = _Bar("exact G rows", quiet)
        g = build_sensitivity(p.mesh, p.locations, p.below, dtype=np.float32, chunk=16,
                              callback=bar)  # fmt: skip
        bar.close()
        exact = GravityOperator(g)
        params = p.reg.active[p.below]
        if not params.all():
            exact = exact @ Selection(params)
        bounds = {"lower": p.lower, "upper": p.upper}
        res.predicted = res.predicted - p.fixed_data
        res = finish(exact, res, p.data, p.std, p.reg, **bounds, config=p.config, callback=progress)
        res.predicted = res.predicted + p.fixed_data
        return res
    if full_finish and need > limit:
        typer.echo(
            f"the exact G ({need / 2**30:.2f} GiB) exceeds --memory: the true misfit is "
            "computed from the exact forward instead of finishing with G"
        )
    predicted = gz(p.mesh, p.locations, p.reg.full_model(res.model, fill=0.0) * p.below)
    res.phi_d_approximate = res.phi_d
    res.phi_d = float(np.sum(((predicted - p.observed) / p.std) ** 2))
    res.predicted = predicted
    if res.target is not None:
        res.converged = abs(res.phi_d - res.target) <= p.config.tolc * res.target
    return res


def _check_length_scales(control: Path, c, mesh) -> None:
    """Refuse GZINV3D length scales shorter than the smallest cell: they are α's written in
    GZES's three-number form (``alpha_s alpha_x alpha_y``) far more often than lengths."""
    if c.length_scales is None:
        return
    from msinv.gravity.ubc import content_lines

    smallest = min(float(np.min(h)) for h in mesh.h)
    if min(c.length_scales) < smallest:
        line, text = content_lines(control)[9]
        raise UserInputError(
            f"{control}: line {line}: three numbers are GZINV3D's length scales Lx Ly Lz in "
            f"metres, but {min(c.length_scales):g} m is shorter than the smallest cell "
            f"({smallest:g} m), found {text!r}; for alpha_s alpha_x alpha_y alpha_z write four "
            "numbers (GZES's three-alpha form is read by 'msinv gravity es-invert')"
        )


@app.command()
@friendly
def predict(
    sensitivity_file: Path = typer.Argument(..., help="Sensitivity file (gzinv3d.mtx)."),
    locations: Path = typer.Argument(..., help="Locations or observations file."),
    model: Path = typer.Argument(..., help="Model file, g/cc (-100 cells are inactive)."),
    out: Path = typer.Option(Path("gzpre3d.grv"), help="Predicted-data file to write."),
    memory: float | None = typer.Option(None, help=MEMORY_HELP),
) -> None:
    """Data of a model from a saved sensitivity: GZPRE3D.

    Writes the predicted-data file OUT (checked before reading the sensitivity, written
    atomically); cells holding -100 in the model are inactive. Run time: one product with the
    (compressed) sensitivity.

    **Examples**

    ```
    msinv gravity predict gzinv3d.mtx obs.grv gzinv3d.den --out gzpre3d.grv
    ```
    """
    from msinv.core.memory import check_memory, memory_limit
    from msinv.core.outputs import atomic_path, check_output_file
    from msinv.gravity.sensitivity import check_stations, load_sensitivity, stored_stations
    from msinv.gravity.ubc import read_density
    from msinv.gravity.ubc_data import GravityData, write_data

    check_output_file(out, "--out")
    if sensitivity_file.is_dir():
        raise UserInputError(f"{sensitivity_file}: expected a file, found a directory")
    check_memory(
        sensitivity_file.stat().st_size * 2, memory_limit(memory), f"loading {sensitivity_file}"
    )
    op, mesh, active, _ = load_sensitivity(sensitivity_file)
    st = _stations(locations)
    check_stations(sensitivity_file, stored_stations(sensitivity_file), st.locations)
    if st.n_data != op.shape_out[0]:
        raise UserInputError(
            f"{locations}: {st.n_data} stations, the sensitivity has {op.shape_out[0]}"
        )
    values, air = read_density(model, mesh)
    with atomic_path(out) as tmp:
        write_data(
            tmp,
            GravityData(st.locations, op.forward(values[active])),
            comment=f"msinv gravity predict {model.name}",
        )
    typer.echo(
        f"wrote {out} ({st.n_data} data)"
        + (f"; {int(air.sum())} cells at -100 (air) inactive" if air.any() else "")
    )


@app.command()
@friendly
def example(
    out: Path = typer.Option(Path("grav_example"), help="Folder to write the example into."),
    seed: int = typer.Option(0, help="Seed of the noise."),
) -> None:
    """Write a small GRAV3D-style example (mesh, topography, model, data, control files).

    OUT must not be an existing file. Then run the printed next steps: weights,
    sensitivity, invert. Run time: seconds.

    **Examples**

    ```
    msinv gravity example --out grav_example
    msinv gravity weights grav_example/pfweight.inp
    ```
    """
    from msinv.core.outputs import check_output_dir
    from msinv.gravity.example import ExampleConfig, write_example

    check_output_dir(out, "--out")

    paths = write_example(out, ExampleConfig(seed=seed))
    typer.echo(
        f"wrote {len(paths)} files in {out}; next: msinv gravity weights {paths['pfweight']}"
    )


from msinv.cli import gravity_es  # noqa: E402, F401  (registers the es-* commands on app)
