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


class _Bar:
    """A tqdm progress bar fed by ``callback(done, total)``."""

    def __init__(self, desc: str, quiet: bool):
        from tqdm import tqdm

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
) -> None:
    """Vertical gravity (mGal, positive down) of a density model: GZFOR3D.

    Reads GRAV3D's mesh, locations and model files (and the topography: cells above it are
    left out); writes the predicted-data file OUT (checked before computing, written
    atomically). Run time: 10 s for the GRAV3D v6 example on 2 cores (docs/benchmarks.md).

    **Examples**

    ```
    msinv gravity forward mesh.txt obs.loc model.den --out gzfor3d.grv
    msinv gravity forward mesh.txt obs.loc model.den topo.dat
    ```
    """
    from msinv.core.outputs import atomic_path, check_output_file
    from msinv.gravity.forward import gz
    from msinv.gravity.ubc import read_mesh, read_model
    from msinv.gravity.ubc_data import GravityData, write_data

    check_output_file(out, "--out")
    m = read_mesh(mesh)
    active = _active(m, topography)
    rho = np.where(active, read_model(model, m), 0.0)
    st = _stations(locations)
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
    cell, UBC order). Run time: seconds.

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
) -> None:
    """Sensitivity matrix, wavelet-compressed, saved with its mesh: GZSEN3D.

    Reads a GZSEN3D control file, or --mesh and --data (with optional topography and
    weights); writes the sensitivity file (default `gzinv3d.mtx` beside the control file),
    checked before G is built and written atomically. Run time for the GRAV3D v6 example on 2
    cores: 21 s to build the dense G, 83 s to compress it (docs/benchmarks.md).

    **Examples**

    ```
    msinv gravity sensitivity grav_example/sens.inp
    msinv gravity sensitivity --mesh mesh.txt --data obs.grv --wavelet daub2 --rstar 0.02 --out g.mtx
    ```
    """
    from msinv.core.outputs import atomic_path, check_output_file, write_text
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
    out = check_output_file(out or folder / "gzinv3d.mtx", "--out")
    m = read_mesh(mesh)
    active = _active(m, topography)
    st = _stations(data)
    w = np.ones(int(active.sum()))
    if weights_file is not None:
        w = read_model(weights_file, m)[active]
        if np.any(w <= 0):
            raise UserInputError(f"{weights_file}: weights of active cells must be > 0")
    need = sensitivity_memory(st.n_data, int(active.sum()), dtype)
    typer.echo(f"G: {st.n_data} data x {int(active.sum())} cells, {need / 2**30:.2f} GiB {dtype}")
    bar = _Bar("G rows", quiet)
    g = build_sensitivity(m, st.locations, active, dtype=np.dtype(dtype), chunk=16, callback=bar)
    bar.close()
    record = {
        "wavelet": wavelet,
        "rstar": rstar,
        "rule": rule,
        "threshold": threshold,
        "scale_sensitivity": scale,
    }
    if wavelet.upper() == "NONE":
        with atomic_path(out) as tmp:
            save_sensitivity(tmp, (g, active, w), m, record)
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
    with atomic_path(out) as tmp:
        save_sensitivity(tmp, comp, m, record, model_weights=w)
    diag = comp.diagnostics(g, _test_model(m, active), st.std)
    typer.echo(
        f"wrote {out}: compression {diag['ratio_entries']:.1f}x "
        f"({diag['ratio_memory_vs_float64']:.1f}x memory vs float64), r_i in "
        f"[{diag['r_min']:.4f}, {diag['r_max']:.4f}], test-model data error "
        f"{diag['data_relative_error']:.2%}"
    )
    if diagnostics:
        write_text(folder / "sens_diagnostics.json", json.dumps(diag, indent=2) + "\n")


@app.command()
@friendly
def invert(
    control: Path = typer.Argument(..., help="GZINV3D control file (inv.inp)."),
    out: Path | None = typer.Option(None, help="Output folder [default: the control file's]."),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Bounded Tikhonov inversion: GZINV3D (writes gzinv3d.den/.pre/.out/.vtk/.json).

    Reads a GZINV3D control file (v5 or v6) naming the observations, the sensitivity file,
    bounds, reference and initial models; writes the recovered model, predicted data, log and
    a VTK file into OUT (default: the control file's folder), checked before the inversion and
    written atomically. Run time: 3-10 s for the GRAV3D v6 example on 2 cores
    (docs/benchmarks.md).

    **Examples**

    ```
    msinv gravity invert grav_example/inv.inp
    msinv gravity invert inv.inp --out results/ --quiet
    ```
    """
    from msinv.core.outputs import atomic_path, check_output_dir, write_text
    from msinv.gravity.control import read_inversion_control
    from msinv.gravity.inversion import InversionConfig
    from msinv.gravity.inversion import invert as run_inversion
    from msinv.gravity.regularisation import Regularisation, RegularisationConfig
    from msinv.gravity.sensitivity import load_sensitivity
    from msinv.gravity.ubc import model_or_value, read_active, write_model, write_vtk
    from msinv.gravity.ubc_data import GravityData, read_observations, write_data

    c = read_inversion_control(control)
    if c.norms is not None:
        raise UserInputError(
            f"{control}: sparse norms (v6 lines 13-14) are not supported; use "
            "null for least squares"
        )
    out = check_output_dir(out or control.parent, "--out")
    op, mesh, below, w_sens = load_sensitivity(c.sensitivity_file)
    obs = read_observations(c.obs_file)
    if obs.n_data != op.shape_out[0]:
        raise UserInputError(
            f"{c.obs_file}: {obs.n_data} data, but the sensitivity "
            f"{c.sensitivity_file} has {op.shape_out[0]} rows"
        )
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
    ref = model_or_value(c.reference_model, mesh)
    a = c.resolved_alphas
    reg = Regularisation(mesh, RegularisationConfig(*a, smooth=c.smooth), codes, weights, ref)
    cfg = InversionConfig(
        mode=c.mode,
        chifact=c.par if c.mode == 1 else 1.0,
        tolc=c.tolc,
        beta=c.par if c.mode == 2 else None,
    )
    from tqdm import tqdm

    bar = tqdm(desc="CG", unit="it", disable=True if quiet else None, leave=False)

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
        op,
        obs.values,
        obs.std,
        reg,
        lower=model_or_value(c.lower, mesh)[below],
        upper=model_or_value(c.upper, mesh)[below],
        initial=model_or_value(c.initial_model, mesh)[below],
        config=cfg,
        callback=progress,
    )
    bar.close()
    full = reg.full_model(res.model)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "gzinv3d.den") as tmp:
        write_model(tmp, mesh, full, active=below)
    with atomic_path(out / "gzinv3d.pre") as tmp:
        write_data(
            tmp,
            GravityData(obs.locations, res.predicted),
            comment="msinv gravity invert: predicted data",
        )
    write_text(out / "gzinv3d.out", res.log_text())
    with atomic_path(out / "gzinv3d.vtk") as tmp:
        write_vtk(tmp, mesh, {"density": full}, active=below)
    from msinv.core.provenance import provenance

    record = provenance(
        {"control": str(control), "mode": c.mode, "alphas": list(a), "smooth": c.smooth}
    )
    record.update(
        beta=res.beta, phi_d=res.phi_d, phi_m=res.phi_m, target=res.target, converged=res.converged
    )
    write_text(out / "gzinv3d.json", json.dumps(record, indent=2) + "\n")
    target = f" (target {res.target:.1f})" if res.target is not None else ""
    typer.echo(
        f"beta {res.beta:.4e}: phi_d {res.phi_d:.2f}{target}; wrote gzinv3d.den, "
        f".pre, .out, .vtk in {out}"
    )
    if c.mode == 1 and not res.converged:
        typer.secho("warning: the misfit did not reach the target within tolc", err=True)


@app.command()
@friendly
def predict(
    sensitivity_file: Path = typer.Argument(..., help="Sensitivity file (gzinv3d.mtx)."),
    locations: Path = typer.Argument(..., help="Locations or observations file."),
    model: Path = typer.Argument(..., help="Model file, g/cc."),
    out: Path = typer.Option(Path("gzpre3d.grv"), help="Predicted-data file to write."),
) -> None:
    """Data of a model from a saved sensitivity: GZPRE3D.

    Writes the predicted-data file OUT (checked before reading the sensitivity, written
    atomically). Run time: one product with the (compressed) sensitivity.

    **Examples**

    ```
    msinv gravity predict gzinv3d.mtx obs.grv gzinv3d.den --out gzpre3d.grv
    ```
    """
    from msinv.core.outputs import atomic_path, check_output_file
    from msinv.gravity.sensitivity import load_sensitivity
    from msinv.gravity.ubc import read_model
    from msinv.gravity.ubc_data import GravityData, write_data

    check_output_file(out, "--out")
    op, mesh, active, _ = load_sensitivity(sensitivity_file)
    st = _stations(locations)
    if st.n_data != op.shape_out[0]:
        raise UserInputError(
            f"{locations}: {st.n_data} stations, the sensitivity has {op.shape_out[0]}"
        )
    rho = read_model(model, mesh)[active]
    with atomic_path(out) as tmp:
        write_data(
            tmp,
            GravityData(st.locations, op.forward(rho)),
            comment=f"msinv gravity predict {model.name}",
        )
    typer.echo(f"wrote {out} ({st.n_data} data)")


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
