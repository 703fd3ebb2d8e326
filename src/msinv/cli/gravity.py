"""``msinv gravity``: the GRAV3D programs as subcommands.

=====================  ===========  ==================================================
msinv gravity ...      GRAV3D       does
=====================  ===========  ==================================================
forward                GZFOR3D      g_z of a density model at stations
weights                PFWEIGHT     depth or distance weights
sensitivity            GZSEN3D      G, wavelet-compressed, saved with its mesh
invert                 GZINV3D      bounded Tikhonov inversion (modes 1, 2, 3)
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

from msinv.cli.errors import UserInputError, friendly

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

MEMORY_HELP = "Memory limit in GiB [default: half of the memory available at start]."


class _Bar:
    """A tqdm progress bar fed by ``callback(done, total)``."""

    def __init__(self, desc: str, quiet: bool):
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit="", disable=quiet, leave=False)

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

    Cells holding -100 (GRAV3D's air cells in output models) are inactive, with or without a
    topography file.
    """
    from msinv.core.memory import check_memory, memory_limit
    from msinv.gravity.forward import forward_memory, gz
    from msinv.gravity.ubc import read_density, read_mesh
    from msinv.gravity.ubc_data import GravityData, write_data

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
    write_data(
        out,
        GravityData(st.locations, gz(m, st.locations, rho)),
        comment=f"msinv gravity forward {model.name}",
    )
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
    """Depth or distance weights, normalised to 1: PFWEIGHT."""
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
    out = out or folder / f"{kind}_weight.txt"
    write_model(out, m, w, active=active)
    typer.echo(f"wrote {out} ({kind} weighting, {int(active.sum())} active cells)")


def _test_model(mesh, active):
    """A block of 0.1 g/cc in the middle of the mesh (diagnostics' test model)."""
    c = mesh.cell_centers
    mid = [0.5 * (n[0] + n[-1]) for n in (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)]
    ext = [0.1 * (n[-1] - n[0]) for n in (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)]
    inside = np.all(np.abs(c - mid) <= ext, axis=1)
    return np.where(inside, 0.1, 0.0)[active]


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
    dtype: str = typer.Option("float32", help="Precision of the dense G: float32/float64."),
    diagnostics: bool = typer.Option(False, help="Write sens_diagnostics.json."),
    out: Path | None = typer.Option(
        None, help="Sensitivity file [default: gzinv3d.mtx beside the control file]."
    ),
    quiet: bool = typer.Option(False, help="No progress bars."),
    memory: float | None = typer.Option(None, help=MEMORY_HELP),
) -> None:
    """Sensitivity matrix, wavelet-compressed, saved with its mesh: GZSEN3D."""
    from msinv.core.memory import check_memory, memory_limit
    from msinv.gravity.compression import CompressedSensitivity, CompressionConfig
    from msinv.gravity.sensitivity import build_sensitivity, save_sensitivity, sensitivity_memory
    from msinv.gravity.ubc import read_mesh, read_model

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
        raise UserInputError(f"--dtype: expected float32 or float64, got {dtype!r}")
    m = read_mesh(mesh)
    active = _active(m, topography)
    st = _stations(data)
    w = np.ones(int(active.sum()))
    if weights_file is not None:
        w = read_model(weights_file, m)[active]
        if np.any(w <= 0):
            raise UserInputError(f"{weights_file}: weights of active cells must be > 0")
    need = sensitivity_memory(st.n_data, int(active.sum()), dtype)
    check_memory(
        need,
        memory_limit(memory),
        f"dense G of {st.n_data} data x {int(active.sum())} cells ({dtype})",
        "fewer stations or cells, or a larger --memory",
    )
    typer.echo(f"G: {st.n_data} data x {int(active.sum())} cells, {need / 2**30:.2f} GiB {dtype}")
    bar = _Bar("G rows", quiet)
    g = build_sensitivity(m, st.locations, active, dtype=np.dtype(dtype), chunk=16, callback=bar)
    bar.close()
    out = out or folder / "gzinv3d.mtx"
    record = {
        "wavelet": wavelet,
        "rstar": rstar,
        "rule": rule,
        "threshold": threshold,
        "scale_sensitivity": scale,
    }
    if wavelet.upper() == "NONE":
        save_sensitivity(out, (g, active, w), m, record, stations=st.locations)
        typer.echo(f"wrote {out} (dense)")
        return
    cfg = CompressionConfig(
        wavelet.lower(),
        rule,
        rstar if rule != "threshold" else 0.05,
        threshold if threshold is not None else 1e-3,
    )
    # rows are scaled as in GRAV3D's model norm, by w·sqrt(V): the large padding cells then
    # hold little energy and compress well; the inversion's weights (w) are stored apart
    vol = m.cell_volumes[active]
    scaling = (w if scale else 1.0) * np.sqrt(vol / vol.min())
    bar = _Bar("compress", quiet)
    comp = CompressedSensitivity.compress(g, m.shape_cells, active, scaling, cfg, callback=bar)
    bar.close()
    save_sensitivity(out, comp, m, record, model_weights=w, stations=st.locations)
    diag = comp.diagnostics(g, _test_model(m, active), st.std)
    typer.echo(
        f"wrote {out}: compression {diag['ratio_entries']:.1f}x "
        f"({diag['ratio_memory_vs_float64']:.1f}x memory vs float64), r_i in "
        f"[{diag['r_min']:.4f}, {diag['r_max']:.4f}], test-model data error "
        f"{diag['data_relative_error']:.2%}"
    )
    if diagnostics:
        (folder / "sens_diagnostics.json").write_text(json.dumps(diag, indent=2) + "\n")


@app.command()
@friendly
def invert(
    control: Path = typer.Argument(..., help="GZINV3D control file (inv.inp)."),
    out: Path | None = typer.Option(None, help="Output folder [default: the control file's]."),
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
    """Bounded Tikhonov inversion: GZINV3D (writes gzinv3d.den/.pre/.out/.vtk)."""
    from msinv.core.memory import memory_limit
    from msinv.gravity.compression import CompressedSensitivity
    from msinv.gravity.control import read_inversion_control
    from msinv.gravity.inversion import InversionConfig
    from msinv.gravity.regularisation import Regularisation, RegularisationConfig
    from msinv.gravity.sensitivity import check_stations, load_sensitivity
    from msinv.gravity.ubc import model_or_value, read_active, write_model, write_vtk
    from msinv.gravity.ubc_data import GravityData, read_observations, read_weights, write_data

    c = read_inversion_control(control)
    if c.norms is not None:
        raise UserInputError(
            f"{control}: sparse norms (v6 lines 13-14) are not supported; use "
            "null for least squares"
        )
    if mode3 not in ("gcv", "lcurve"):
        raise UserInputError(f"--mode3: expected gcv or lcurve, got {mode3!r}")
    limit = memory_limit(memory)
    out = out or control.parent
    out.mkdir(parents=True, exist_ok=True)
    op, mesh, below, w_sens = load_sensitivity(c.sensitivity_file)
    obs = read_observations(c.obs_file)
    check_stations(c.sensitivity_file, obs.locations, c.obs_file)
    _check_length_scales(control, c, mesh)
    codes = np.where(below, 1, 0)
    if c.active_file is not None:
        codes = np.where(below, read_active(c.active_file, mesh), 0)
    if np.any(codes[below] != 1):
        raise UserInputError(
            f"{c.active_file}: cells inactive below the topography are not "
            "supported yet; regenerate the sensitivity with the same active cells"
        )
    weights = np.ones(mesh.n_cells)
    weights[below] = w_sens
    user = None
    if c.weights_file is not None:
        if not c.weights_file.is_file():
            raise UserInputError(f"{control}: line 12: weights file {c.weights_file} not found")
        uw = read_weights(c.weights_file, mesh)
        user = {"s": uw.s.reshape(-1, order="F"), "x": uw.x, "y": uw.y, "z": uw.z}
    ref = model_or_value(c.reference_model, mesh, density=True)
    a = c.resolved_alphas
    reg = Regularisation(
        mesh, RegularisationConfig(*a, smooth=c.smooth), codes, weights, ref, user_weights=user
    )
    cfg = InversionConfig(
        mode=c.mode,
        chifact=c.par if c.mode == 1 else 1.0,
        tolc=c.tolc,
        beta=c.par if c.mode == 2 else None,
        mode3=mode3,
    )
    bounds = {
        "lower": model_or_value(c.lower, mesh)[below],
        "upper": model_or_value(c.upper, mesh)[below],
    }
    res = _run_inversion(
        op,
        obs,
        reg,
        bounds,
        model_or_value(c.initial_model, mesh, density=True)[below],
        cfg,
        quiet,
        finish=_exact_operator(mesh, obs, below, limit, quiet)
        if full_finish and isinstance(op, CompressedSensitivity)
        else None,
    )
    if isinstance(op, CompressedSensitivity) and res.phi_d_approximate is None:
        from msinv.gravity.forward import gz

        exact = gz(mesh, obs.locations, reg.full_model(res.model, fill=0.0))
        res.phi_d_approximate = res.phi_d
        res.phi_d = float(np.sum(((exact - obs.values) / obs.std) ** 2))
        res.predicted = exact
        res.converged = res.target is None or abs(res.phi_d - res.target) <= c.tolc * res.target
    full = reg.full_model(res.model)
    write_model(out / "gzinv3d.den", mesh, full, active=below)
    write_data(
        out / "gzinv3d.pre",
        GravityData(obs.locations, res.predicted),
        comment="msinv gravity invert: predicted data",
    )
    (out / "gzinv3d.out").write_text(res.log_text())
    write_vtk(out / "gzinv3d.vtk", mesh, {"density": full}, active=below)
    from msinv.core.provenance import provenance

    record = provenance(
        {"control": str(control), "mode": c.mode, "alphas": list(a), "smooth": c.smooth}
    )
    record["weights_file"] = None if c.weights_file is None else str(c.weights_file)
    _report(res, record, out / "gzinv3d.json", f"wrote gzinv3d.den, .pre, .out, .vtk in {out}")


def _report(res, record: dict, json_path: Path, wrote: str) -> None:
    """Write the inversion's record (β, the true φ_d, the compressed G's φ_d, target) as JSON
    and print one line; warn when the true misfit missed the target."""
    record.update(
        beta=res.beta,
        phi_d=res.phi_d,
        phi_d_compressed=res.phi_d_approximate,
        phi_m=res.phi_m,
        target=res.target,
        converged=res.converged,
    )
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    target = f" (target {res.target:.1f})" if res.target is not None else ""
    approx = (
        f", compressed G gave {res.phi_d_approximate:.2f}"
        if res.phi_d_approximate is not None
        else ""
    )
    typer.echo(f"beta {res.beta:.4e}: true phi_d {res.phi_d:.2f}{target}{approx}; {wrote}")
    if res.target is not None and not res.converged:
        typer.secho("warning: the true misfit is not within tolc of the target", err=True)


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


def _exact_operator(mesh, obs, active, limit: int, quiet: bool):
    """The dense G of the stations (float32) when it fits in ``limit`` bytes, else None."""
    from msinv.gravity.forward import GravityOperator
    from msinv.gravity.sensitivity import build_sensitivity, sensitivity_memory

    need = sensitivity_memory(obs.n_data, int(active.sum()), np.float32)
    if need > limit:
        typer.echo(
            f"the exact G ({need / 2**30:.2f} GiB) exceeds --memory: the true misfit is "
            "computed from the exact forward instead of finishing with G"
        )
        return None
    bar = _Bar("exact G rows", quiet)
    g = build_sensitivity(mesh, obs.locations, active, dtype=np.float32, chunk=16, callback=bar)
    bar.close()
    return GravityOperator(g)


def _run_inversion(op, obs, reg, bounds, initial, cfg, quiet: bool, finish=None):
    """Invert (and finish with the exact G when given) with progress on the terminal."""
    from tqdm import tqdm

    from msinv.gravity.inversion import finish as finish_with
    from msinv.gravity.inversion import invert as run_inversion

    bar = tqdm(desc="CG", unit="it", disable=quiet, leave=False)

    def progress(event, info):
        if event == "cg":
            bar.update(1)
        elif not quiet:
            bar.write(
                f"beta {info['beta']:.4e}: phi_d {info['phi_d']:.4e}, phi_m "
                f"{info['phi_m']:.4e}, {info['cg_iterations']} CG, "
                f"{info['n_lower'] + info['n_upper']} at bounds"
            )

    res = run_inversion(
        op, obs.values, obs.std, reg, **bounds, initial=initial, config=cfg, callback=progress
    )
    if finish is not None:
        if not quiet:
            bar.write(f"compressed G: phi_d {res.phi_d:.4e}; finishing with the exact G")
        res = finish_with(
            finish, res, obs.values, obs.std, reg, **bounds, config=cfg, callback=progress
        )
    bar.close()
    return res


@app.command()
@friendly
def predict(
    sensitivity_file: Path = typer.Argument(..., help="Sensitivity file (gzinv3d.mtx)."),
    locations: Path = typer.Argument(..., help="Locations or observations file."),
    model: Path = typer.Argument(..., help="Model file, g/cc (-100 cells are inactive)."),
    out: Path = typer.Option(Path("gzpre3d.grv"), help="Predicted-data file to write."),
    memory: float | None = typer.Option(None, help=MEMORY_HELP),
) -> None:
    """Data of a model from a saved sensitivity: GZPRE3D."""
    from msinv.core.memory import check_memory, memory_limit
    from msinv.gravity.sensitivity import check_stations, load_sensitivity
    from msinv.gravity.ubc import read_density
    from msinv.gravity.ubc_data import GravityData, write_data

    if sensitivity_file.is_dir():
        raise UserInputError(f"{sensitivity_file}: expected a file, found a directory")
    check_memory(
        sensitivity_file.stat().st_size * 2, memory_limit(memory), f"loading {sensitivity_file}"
    )
    op, mesh, active, _ = load_sensitivity(sensitivity_file)
    st = _stations(locations)
    check_stations(sensitivity_file, st.locations, locations)
    values, air = read_density(model, mesh)
    rho = values[active]
    write_data(
        out,
        GravityData(st.locations, op.forward(rho)),
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
    """Write a small GRAV3D-style example (mesh, topography, model, data, control files)."""
    from msinv.gravity.example import ExampleConfig, write_example

    paths = write_example(out, ExampleConfig(seed=seed))
    typer.echo(
        f"wrote {len(paths)} files in {out}; next: msinv gravity weights {paths['pfweight']}"
    )


from msinv.cli import gravity_es  # noqa: E402, F401  (registers the es-* commands on app)
