"""``msinv gravity es-*``: GZES's equivalent-source programs.

=====================  ===========  ==================================================
msinv gravity ...      GZES         does
=====================  ===========  ==================================================
es-sensitivity         GZSENES      layer G, full and 2-D wavelet-compressed
es-invert              GZINVES      bounded Tikhonov fit of the layer, full-G finish
es-fit                 --           the layer with every choice made for the user
                                    (``EquivalentLayer``), from an observations file
es-predict             --           the layer's field at points, on a grid, upward
=====================  ===========  ==================================================
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from msinv.cli.errors import friendly
from msinv.cli.gravity import MEMORY_HELP, _Bar, _echo_result, _stations, app
from msinv.core.errors import UserInputError

#: Format tag of the fitted layer written by es-invert and es-fit (``gzinves_layer.npz``;
#: es-fit's may hold a regional: ``trend_coefficients``, ``trend_origin``).
LAYER_MODEL_FORMAT = "msinv-equivalent-layer-1"
#: A windowed fit (es-fit on more than 3,000 stations): a regional layer and one per window.
WINDOWS_MODEL_FORMAT = "msinv-equivalent-windows-1"


@app.command("es-sensitivity")
@friendly
def es_sensitivity(
    control: Path | None = typer.Argument(None, help="GZSENES control file."),
    mesh: Path | None = typer.Option(None, help="Mesh file (instead of a control file)."),
    data: Path | None = typer.Option(None, help="Observations or locations file."),
    topography: Path | None = typer.Option(None, help="Topography file."),
    wavelet: str = typer.Option("daub2", help="daub1..daub6, symm4..symm6, or NONE."),
    rstar: float = typer.Option(0.05, min=0.0, max=1.0, help="Relative error r* per row."),
    rule: str = typer.Option("per_row", help="per_row or representative (GZES's rule)."),
    depth: float = typer.Option(
        0.0, min=0.0, help="NZ = 1 with topography: tops at the topography minus this, m."
    ),
    out: Path | None = typer.Option(None, help="Output folder [default: the control file's]."),
    quiet: bool = typer.Option(False, help="No progress bars."),
    memory: float | None = typer.Option(None, help=MEMORY_HELP),
) -> None:
    """Sensitivity of an equivalent-source layer: GZSENES (gzinves.mtx, gzinves_full.mtx).

    The layer is the mesh's one layer (NZ = 1; draped on the topography minus --depth, or flat
    at the mesh top), or the top cell below the topography of each column (equal thicknesses).
    Writes the full G (gzinves_full.mtx), the 2-D wavelet-compressed G (gzinves.mtx) and
    gzsenes.log in OUT (checked first).

    **Examples**

    ```
    msinv gravity es-sensitivity gzsenes.inp --depth 600
    msinv gravity es-sensitivity --mesh mesh.txt --data obs.grv --topography topo.txt --rstar 0.05
    ```
    """
    from msinv.core.memory import check_memory, memory_limit
    from msinv.core.provenance import provenance
    from msinv.gravity.compression import CompressedSensitivity, CompressionConfig
    from msinv.gravity.layer import DENSE_LAYER_FORMAT, layer_arrays, layer_from_mesh
    from msinv.gravity.ubc import read_mesh
    from msinv.gravity.ubc_data import read_topography

    folder, threshold = Path("."), None
    if control is not None:
        from msinv.gravity.control import read_layer_sensitivity_control

        c = read_layer_sensitivity_control(control)
        mesh, data, topography = c.mesh_file, c.data_file, c.topography_file
        wavelet = c.wavelet or "NONE"
        if c.itol == 1:
            rstar = c.eps
        else:
            rule, threshold = "threshold", c.eps
        folder = control.parent
    if mesh is None or data is None:
        raise UserInputError("give a GZSENES control file, or --mesh and --data")
    from msinv.core.outputs import check_output_dir

    out = check_output_dir(out or folder, "--out")
    out.mkdir(parents=True, exist_ok=True)
    m = read_mesh(mesh)
    topo = None if topography is None else read_topography(topography)
    try:
        layer, cells = layer_from_mesh(m, topo, depth)
    except ValueError as exc:
        raise UserInputError(f"{mesh}: {exc}") from None
    st = _stations(data)
    need = 2 * layer.sensitivity_memory(st.n_data)
    check_memory(
        need,
        memory_limit(memory),
        f"layer G of {st.n_data} data x {layer.n_cells} cells",
        "use msinv.gravity.EquivalentLayer(window=...) for windowed fitting",
    )
    typer.echo(f"layer: {layer.shape[0]} x {layer.shape[1]} cells, {st.n_data} data")
    g = layer.sensitivity(st.locations)
    arrays = {
        **layer_arrays(layer),
        "stations": st.locations,
        "mesh_cells": cells,
        "mesh_hx": m.h[0],
        "mesh_hy": m.h[1],
        "mesh_hz": m.h[2],
        "mesh_origin": np.asarray(m.origin),
    }
    record = {"wavelet": wavelet, "rstar": rstar, "rule": rule, "threshold": threshold}
    full = out / "gzinves_full.mtx"
    with full.open("wb") as fh:
        np.savez(fh, format=DENSE_LAYER_FORMAT, g=g, provenance=json.dumps(provenance(record)),
                 **arrays)  # fmt: skip
    log = [f"msinv gravity es-sensitivity: {st.n_data} data, {layer.n_cells} layer cells"]
    if wavelet.upper() != "NONE":
        cfg = CompressionConfig(
            wavelet.lower(),
            rule,
            rstar if rule != "threshold" else 0.05,
            threshold if threshold is not None else 1e-3,
        )
        bar = _Bar("compress", quiet)
        comp = CompressedSensitivity.compress(g, layer.shape, config=cfg, callback=bar)
        bar.close()
        comp.save(out / "gzinves.mtx", record, extra=arrays)
        ratio = g.size / comp.matrix.nnz
        log.append(
            f"2-D {wavelet} compression {ratio:.1f}x, r_i in [{comp.r.min():.4f}, "
            f"{comp.r.max():.4f}]"
        )
    else:
        log.append("no compression: gzinves.mtx is the full matrix")
        (out / "gzinves.mtx").write_bytes(full.read_bytes())
    (out / "gzsenes.log").write_text("\n".join(log) + "\n")
    typer.echo("; ".join(log[1:]) + f"; wrote gzinves.mtx, gzinves_full.mtx in {out}")


def _load_layer_matrix(path: Path):
    """(operator, layer, stations, arrays) from a file of es-sensitivity."""
    from msinv.gravity.compression import FORMAT, CompressedSensitivity
    from msinv.gravity.forward import GravityOperator
    from msinv.gravity.layer import DENSE_LAYER_FORMAT, layer_from_arrays

    if path.is_dir():
        raise UserInputError(f"{path}: expected a file, found a directory")
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: not a matrix file of es-sensitivity ({exc})") from None
    with f:
        kind = str(f["format"]) if "format" in f else ""
        if kind not in (FORMAT, DENSE_LAYER_FORMAT) or "layer_hx" not in f:
            raise UserInputError(f"{path}: not a matrix file of msinv gravity es-sensitivity")
        arrays = {k: f[k] for k in f.files if k.startswith(("mesh_", "layer_")) or k == "stations"}
        op = GravityOperator(f["g"]) if kind == DENSE_LAYER_FORMAT else None
    if op is None:
        op = CompressedSensitivity.load(path)
    return op, layer_from_arrays(arrays), arrays["stations"], arrays


@app.command("es-invert")
@friendly
def es_invert(
    control: Path | None = typer.Argument(None, help="GZINVES control file."),
    data: Path | None = typer.Option(None, help="Observations file (instead of a control file)."),
    matrix: Path | None = typer.Option(None, help="Matrix file of es-sensitivity (gzinves.mtx)."),
    chifact: float | None = typer.Option(
        None, min=0.0, help="Mode 1: beta for phi_d = chifact*N [default: 1]."
    ),
    beta: float | None = typer.Option(None, min=0.0, help="Mode 2: this fixed beta."),
    tolc: float = typer.Option(0.02, min=0.0, help="Misfit tolerance of mode 1."),
    lower: str = typer.Option("-inf", help="Lower bound, g/cc: a number or a model file."),
    upper: str = typer.Option("inf", help="Upper bound, g/cc: a number or a model file."),
    alphas: str | None = typer.Option(
        None, help="'alpha_s alpha_x alpha_y', or two length scales 'Le Ln' [default: 1e-4 1 1]."
    ),
    full_matrix: Path | None = typer.Option(
        None, help="Full matrix (gzinves_full.mtx) for the final iterations."
    ),
    out: Path | None = typer.Option(None, help="Output folder [default: the control file's]."),
) -> None:
    """Fit the layer: GZINVES (gzinves.den/.pre/.log/.json and gzinves_layer.npz).

    Mode 1 searches beta until the misfit is chifact*N (+- tolc), mode 2 uses a fixed beta;
    with the full matrix on line 8 the search is finished with it, so the phi_d reported is the
    true one (without it, the true misfit is computed with the exact forward and reported).
    Options instead of a control file: --data and --matrix, with --chifact or --beta, bounds,
    --alphas and --full-matrix.

    **Examples**

    ```
    msinv gravity es-invert gzinves.inp
    msinv gravity es-invert gzinves.inp --out fit/
    msinv gravity es-invert --data obs.grv --matrix gzinves.mtx --full-matrix gzinves_full.mtx
    ```
    """
    import discretize

    from msinv.core.outputs import check_output_dir
    from msinv.core.provenance import provenance
    from msinv.gravity.compression import CompressedSensitivity
    from msinv.gravity.control import read_layer_inversion_control
    from msinv.gravity.inversion import InversionConfig
    from msinv.gravity.regularisation import Regularisation, RegularisationConfig
    from msinv.gravity.sensitivity import check_stations
    from msinv.gravity.ubc import model_or_value, write_model
    from msinv.gravity.ubc_data import GravityData, read_observations, write_data

    if control is not None:
        c = read_layer_inversion_control(control)
    else:
        c = _layer_control_from_options(
            data, matrix, chifact, beta, tolc, lower, upper, alphas, full_matrix
        )
    out = check_output_dir(out or (control.parent if control else Path(".")), "--out")
    out.mkdir(parents=True, exist_ok=True)
    op, layer, stations, arrays = _load_layer_matrix(c.sensitivity_file)
    obs = read_observations(c.obs_file)
    check_stations(c.sensitivity_file, stations, obs.locations)
    finish = None
    if c.full_file is not None:
        finish, _, full_stations, _ = _load_layer_matrix(c.full_file)
        check_stations(c.full_file, full_stations, obs.locations)
    mesh = discretize.TensorMesh(
        [arrays["mesh_hx"], arrays["mesh_hy"], arrays["mesh_hz"]], origin=arrays["mesh_origin"]
    )
    cells = arrays["mesh_cells"]
    a_s, a_x, a_y = c.alphas
    reg = Regularisation(layer.tensor_mesh(), RegularisationConfig(a_s, a_x, a_y, 0.0))
    bounds = {
        "lower": model_or_value(c.lower, mesh)[cells],
        "upper": model_or_value(c.upper, mesh)[cells],
    }
    cfg = InversionConfig(
        mode=c.mode,
        chifact=c.par if c.mode == 1 else 1.0,
        tolc=c.tolc,
        beta=c.par if c.mode == 2 else None,
    )
    from msinv.gravity.inversion import finish as finish_with
    from msinv.gravity.pipeline import InversionProblem, run_inversion

    problem = InversionProblem(
        mesh=layer.tensor_mesh(), op=op, data=obs.values, std=obs.std, locations=obs.locations,
        observed=obs.values, reg=reg, **bounds, initial=np.zeros(layer.n_cells), config=cfg,
        sparse=None, below=np.ones(layer.n_cells, bool), fixed_data=np.zeros(obs.n_data),
    )  # fmt: skip
    res = run_inversion(problem)
    if finish is not None:
        res = finish_with(finish, res, obs.values, obs.std, reg, **bounds, config=cfg)
    elif isinstance(op, CompressedSensitivity):
        exact = layer.gz(obs.locations, res.model)
        res.phi_d_approximate, res.predicted = res.phi_d, exact
        res.phi_d = float(np.sum(((exact - obs.values) / obs.std) ** 2))
        res.converged = res.target is None or abs(res.phi_d - res.target) <= c.tolc * res.target
    full = np.zeros(mesh.n_cells)
    full[cells] = res.model
    active = np.zeros(mesh.n_cells, bool)
    active[cells] = True
    write_model(out / "gzinves.den", mesh, full, active=active)
    write_data(out / "gzinves.pre", GravityData(obs.locations, res.predicted),
               comment="msinv gravity es-invert: predicted data")  # fmt: skip
    (out / "gzinves.log").write_text(res.log_text())
    from msinv.gravity.layer import layer_arrays

    with (out / "gzinves_layer.npz").open("wb") as fh:
        np.savez(fh, format=LAYER_MODEL_FORMAT, density=res.model, **layer_arrays(layer))
    record = provenance({"control": str(control), "mode": c.mode, "par": c.par,
                         "alphas": list(c.alphas), "lower": str(c.lower), "upper": str(c.upper),
                         "data": str(c.obs_file), "matrix": str(c.sensitivity_file)})  # fmt: skip
    record.update(
        beta=res.beta, phi_d=res.phi_d, phi_d_compressed=res.phi_d_approximate, phi_m=res.phi_m,
        target=res.target, converged=res.converged,
    )  # fmt: skip
    (out / "gzinves.json").write_text(json.dumps(record, indent=2) + "\n")
    _echo_result(res, f"wrote gzinves.den, .pre, .log, .json, gzinves_layer.npz in {out}")


def _layer_control_from_options(data, matrix, chifact, beta, tolc, lower, upper, alphas, full):
    """The GZINVES control that es-invert's options describe (one-line errors naming them)."""
    from msinv.gravity.control import LayerInversionControl, layer_alphas

    if data is None or matrix is None:
        raise UserInputError("give a GZINVES control file, or --data and --matrix")
    if chifact is not None and beta is not None:
        raise UserInputError("give --chifact (mode 1) or --beta (mode 2), not both")
    if beta is not None and not beta > 0:
        raise UserInputError(f"--beta: expected > 0, got {beta}")
    if chifact is not None and not chifact > 0:
        raise UserInputError(f"--chifact: expected > 0, got {chifact}")

    def bound(text: str, option: str):
        try:
            return float(text)
        except ValueError:
            path = Path(text)
            if not path.is_file():
                raise UserInputError(
                    f"{option}: expected a number or a model file, got {text!r}"
                ) from None
            return path

    a = layer_alphas()
    if alphas is not None:
        try:
            values = [float(v) for v in alphas.split()]
        except ValueError:
            values = []
        if len(values) == 2 and min(values) > 0:
            a = layer_alphas(lengths=values)
        elif len(values) == 3 and values[0] > 0 and min(values) >= 0:
            a = layer_alphas(values)
        else:
            raise UserInputError(
                f"--alphas: expected 'alpha_s alpha_x alpha_y' (alpha_s > 0) or two length "
                f"scales 'Le Ln' (> 0), got {alphas!r}"
            )
    return LayerInversionControl(
        mode=2 if beta is not None else 1, par=beta if beta is not None else (chifact or 1.0),
        tolc=tolc, obs_file=data, sensitivity_file=matrix, lower=bound(lower, "--lower"),
        upper=bound(upper, "--upper"), alphas=a, full_file=full,
    )  # fmt: skip


@app.command("es-fit")
@friendly
def es_fit(
    data: Path = typer.Argument(..., help="Observations file (E N ELEV g_z sigma, sigma > 0)."),
    topography: Path | None = typer.Option(None, help="Topography file to drape the layer on."),
    cell: float | None = typer.Option(None, min=0.0, help="Cell width, m [default: chosen]."),
    depth: str | None = typer.Option(
        None, help="Depth of the cells' tops under the surface: metres, 'auto' or 'cv'."
    ),
    trend: str = typer.Option("auto", help="Regional: auto, none, 0 (a constant), 1 (a plane)."),
    trade_off: str | None = typer.Option(
        None, help="evidence (default), upre, target, gcv or cv: how beta is chosen."
    ),
    one_layer: bool = typer.Option(
        False, "--one-layer", help="One layer at any size (default: windows above 3,000 stations)."
    ),
    out: Path = typer.Option(Path("es_fit"), help="Output folder."),
    memory: float | None = typer.Option(None, help=MEMORY_HELP),
) -> None:
    """Fit a layer with every choice made for you (msinv.gravity.EquivalentLayer).

    The cell from the station spacing (refined when the data are more accurate than it can
    fit), the layer 1.5 cells under the stations' surface (or the topography), beta by the
    evidence, and a regional plane beside the layer when the data carry one; above 3,000
    stations, a regional layer on block means and windows of 1,000 stations on its residual
    (unless the data carry a regional, or --one-layer). Writes gzinves_layer.npz (for
    es-predict), gzinves.pre (the fit at the stations) and gzinves.json (the choices made, the
    true misfit, the code version) in OUT.

    **Examples**

    ```
    msinv gravity es-fit obs.grv --out fit
    msinv gravity es-fit obs.grv --topography topo.txt --depth auto --out fit
    msinv gravity es-predict fit/gzinves_layer.npz --spacing 100 --elevation 300 --out up
    ```
    """
    from msinv.core.memory import memory_limit
    from msinv.core.outputs import atomic_path, check_output_dir
    from msinv.core.provenance import provenance
    from msinv.gravity.equivalent import EquivalentLayer
    from msinv.gravity.ubc_data import GravityData, read_observations, read_topography, write_data

    trends = {"auto": "auto", "none": None, "0": 0, "1": 1}
    if trend not in trends:
        raise UserInputError(f"--trend: expected auto, none, 0 or 1, got {trend!r}")
    if depth is not None and depth not in ("auto", "cv"):
        try:
            depth = float(depth)
        except ValueError:
            raise UserInputError(
                f"--depth: expected metres, 'auto' or 'cv', got {depth!r}"
            ) from None
    out = check_output_dir(out, "--out")
    obs = read_observations(data)
    topo = None if topography is None else read_topography(topography)
    try:
        est = EquivalentLayer(
            cell=cell, depth=depth, topography=topo, trend=trends[trend], trade_off=trade_off,
            memory=memory, window=False if one_layer else None,
        )  # fmt: skip
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    width = est.core_cell(obs.locations)
    need = est.sensitivity_memory(obs.locations)
    if one_layer and need > memory_limit(memory):
        raise UserInputError(
            f"{data}: {obs.n_data} stations on a layer of {width:.4g} m cells need "
            f"{need / 2**30:.3g} GiB for G, over --memory: fit without --one-layer (in "
            "windows), or give a larger --cell or --memory"
        )
    typer.echo(f"fitting {obs.n_data} stations ...")
    est.fit(obs.locations, obs.values, obs.std)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "gzinves_layer.npz") as tmp:
        np.savez(tmp, **_fitted_arrays(est))
    with atomic_path(out / "gzinves.pre") as tmp:
        write_data(tmp, GravityData(obs.locations, est.fitted_),
                   comment=f"msinv gravity es-fit {data.name}: predicted data")  # fmt: skip
    record = provenance({"data": str(data), "topography": str(topography), "cell": cell,
                         "depth": depth, "trend": trend, "trade_off": trade_off,
                         "one_layer": one_layer})  # fmt: skip
    c = est.trend_coefficients_
    record.update(
        cell_m=est.cell_, trade_off=est.trade_off_, phi_d=est.phi_d_, n_data=obs.n_data,
        noise_ratio=est.noise_ratio_, trend=est.trend_,
        trend_coefficients=None if c is None else c.tolist(),
        trend_origin=None if c is None else list(est.trend_origin_),
    )  # fmt: skip
    windows = getattr(est, "windows_", None)
    if windows is None:
        record.update(depth_m=est.depth_, cells=est.layer_.n_cells, beta=est.beta_)
        shape = f"layer {est.layer_.shape[0]} x {est.layer_.shape[1]} cells"
        fit = f"{shape} of {est.cell_:.4g} m, {est.depth_:.4g} m deep; beta {est.beta_:.4g}"
    else:
        reg = est.regional_
        record.update(windows=len(windows), regional_cell_m=reg.cell_, regional_depth_m=reg.depth_)
        fit = (
            f"a regional layer of {reg.cell_:.4g} m cells {reg.depth_:.4g} m deep on "
            f"{reg.n_data_} block means, {len(windows)} windows of {est.cell_:.4g} m cells"
        )
    with atomic_path(out / "gzinves.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    regional = "none"
    if c is not None:
        regional = f"{c[0]:.4g} mGal" + (
            f", {c[1] * 1e3:.3g} mGal/km east, {c[2] * 1e3:.3g} north" if c.size == 3 else ""
        )
    typer.echo(
        f"{fit} ({est.trade_off_}); phi_d {est.phi_d_:.5g} for {obs.n_data} data; "
        f"regional: {regional}"
    )
    typer.echo(f"wrote gzinves_layer.npz, gzinves.pre, gzinves.json in {out}")


def _fitted_arrays(est) -> dict:
    """A fitted EquivalentLayer as arrays for gzinves_layer.npz: one layer (its geometry,
    density and regional plane), or a windowed fit (the regional layer's, prefixed
    ``regional_``, and each window's, prefixed ``w<k>_``, with the tiles and their margin)."""
    from msinv.gravity.layer import layer_arrays

    def one(layer_est, prefix: str) -> dict:
        arrays = {
            **layer_arrays(layer_est.layer_, f"{prefix}layer_"),
            f"{prefix}density": layer_est.density_,
        }
        if layer_est.trend_coefficients_ is not None:
            arrays[f"{prefix}trend_coefficients"] = layer_est.trend_coefficients_
            arrays[f"{prefix}trend_origin"] = np.asarray(layer_est.trend_origin_, dtype=float)
        return arrays

    if not hasattr(est, "windows_"):
        return {"format": LAYER_MODEL_FORMAT, **one(est, "")}
    arrays = {
        "format": WINDOWS_MODEL_FORMAT,
        "margin": float(est.margin_),
        "region": np.asarray(est.region_, dtype=float),
        "cores": np.asarray([core for core, _ in est.windows_], dtype=float),
        **one(est.regional_, "regional_"),
    }
    for k, (_, layer) in enumerate(est.windows_):
        arrays.update(one(layer, f"w{k}_"))
    return arrays


@app.command("es-predict")
@friendly
def es_predict(
    layer_file: Path = typer.Argument(
        ..., help="Fitted layer (gzinves_layer.npz of es-invert or es-fit)."
    ),
    points: Path | None = typer.Option(None, help="Locations file: predict at its stations."),
    spacing: float | None = typer.Option(None, min=0.0, help="Grid spacing, m (a grid)."),
    region: str | None = typer.Option(
        None, help="Grid region 'west,east,south,north' [default: the layer's core]."
    ),
    elevation: float | None = typer.Option(None, help="Flat grid at this elevation, m."),
    height: float | None = typer.Option(None, help="Grid draped this high above the layer, m."),
    out: Path = typer.Option(Path("gzpreds"), help="Output stem (.pre, .npz, .nc, .png)."),
) -> None:
    """The fitted layer's field at points, on a grid, upward or draped (UBC .pre, .npz, .nc).

    At the stations of a locations file (--points), or on a regular grid (--spacing) flat at
    --elevation (upward continuation) or draped --height above the layer's surface; grids are
    also written as .npz, netCDF (with xarray) and a figure.

    **Examples**

    ```
    msinv gravity es-predict gzinves_layer.npz --points new.loc --out new
    msinv gravity es-predict gzinves_layer.npz --spacing 100 --elevation 300 --out up
    ```
    """
    from msinv.gravity.ubc_data import GravityData, write_data

    if layer_file.is_dir():
        raise UserInputError(f"{layer_file}: expected a file, found a directory")
    fitted = _FittedFile.read(layer_file)
    if (points is None) == (spacing is None):
        raise UserInputError("give --points FILE, or --spacing for a grid")
    out.parent.mkdir(parents=True, exist_ok=True)
    if points is not None:
        st = _stations(points).locations
        write_data(out.with_suffix(".pre"), GravityData(st, fitted.field(st)),
                   comment=f"msinv gravity es-predict {layer_file.name}")  # fmt: skip
        typer.echo(f"wrote {out.with_suffix('.pre')} ({len(st)} points)")
        return
    if (elevation is None) == (height is None):
        raise UserInputError("a grid needs --elevation (flat) or --height (draped), one of them")
    grid = _grid(fitted, spacing, region, elevation, height)
    pts = grid.points()
    write_data(out.with_suffix(".pre"), GravityData(pts, grid.gz.ravel()),
               comment=f"msinv gravity es-predict {layer_file.name}: grid")  # fmt: skip
    np.savez(out.with_suffix(".npz"), easting=grid.easting, northing=grid.northing,
             elevation=grid.elevation, gz=grid.gz)  # fmt: skip
    written = [".pre", ".npz"]
    try:
        grid.to_xarray().to_netcdf(out.with_suffix(".nc"))
        written.append(".nc")
    except (ImportError, ModuleNotFoundError, ValueError) as exc:
        typer.echo(f"no netCDF file: {exc}")
    _figure(grid, out.with_suffix(".png"))
    written.append(".png")
    typer.echo(f"wrote {out}{{{','.join(written)}}} ({grid.gz.shape[1]} x {grid.gz.shape[0]})")


class _FittedFile:
    """The field of a gzinves_layer.npz: one layer (es-invert, es-fit) or a windowed fit
    (es-fit above 3,000 stations), each layer with its regional plane when it has one."""

    def __init__(self, layers, cores=None, margin=None, region=None):
        self.layers = layers  # [(LayerMesh, density, plane or None)], the regional's first
        self.cores, self.margin, self.region = cores, margin, region

    @classmethod
    def read(cls, path: Path) -> _FittedFile:
        from msinv.gravity.layer import layer_from_arrays

        def one(f, prefix: str):
            plane = None
            if f"{prefix}trend_coefficients" in f:
                plane = (f[f"{prefix}trend_coefficients"], tuple(f[f"{prefix}trend_origin"]))
            return layer_from_arrays(f, f"{prefix}layer_"), f[f"{prefix}density"], plane

        with np.load(path, allow_pickle=False) as f:
            fmt = str(f["format"]) if "format" in f else None
            if fmt == LAYER_MODEL_FORMAT:
                return cls([one(f, "")])
            if fmt != WINDOWS_MODEL_FORMAT:
                raise UserInputError(
                    f"{path}: not a fitted layer of msinv gravity es-invert or es-fit"
                )
            cores = f["cores"]
            layers = [one(f, "regional_")] + [one(f, f"w{k}_") for k in range(len(cores))]
            return cls(layers, cores, float(f["margin"]), tuple(f["region"]))

    @staticmethod
    def _layer_field(layer, density, plane, points) -> np.ndarray:
        from msinv.gravity.equivalent import regional_field

        gz = layer.gz(points, density)
        return gz if plane is None else gz + regional_field(points, *plane)

    def field(self, points) -> np.ndarray:
        """g_z (mGal, down) at (n, 3) points."""
        from functools import partial

        from msinv.gravity.equivalent_windows import blend_windows

        if self.cores is None:
            return self._layer_field(*self.layers[0], points)
        fields = [partial(self._layer_field, *layer) for layer in self.layers]
        try:
            return blend_windows(
                points, self.cores, self.margin, self.region, fields[0], fields[1:]
            )
        except ValueError as exc:
            raise UserInputError(str(exc)) from None

    def extent(self) -> tuple[float, float, float, float]:
        """The default grid region: the core of one layer, the stations' extent of windows."""
        if self.cores is not None:
            return self.region
        layer = self.layers[0][0]
        pad = layer.hx.max() - layer.hx.min()
        return (layer.nodes_x[0] + pad, layer.nodes_x[-1] - pad,
                layer.nodes_y[0] + pad, layer.nodes_y[-1] - pad)  # fmt: skip

    def tops(self) -> np.ndarray:
        """(n, 3) cell centres (east, north) and tops of the layer(s) the grid drapes above:
        one layer's, or each window's in its tile (not the regional layer's, deeper)."""
        if self.cores is None:
            pieces = [(self.layers[0][0], None)]
        else:
            pairs = zip(self.layers[1:], self.cores, strict=True)
            pieces = [(layer, core) for (layer, _, _), core in pairs]
        from msinv.gravity.equivalent_windows import inside_box

        out = []
        for layer, core in pieces:
            xy = layer.cell_centers()[:, :2]
            keep = np.ones(len(xy), bool) if core is None else inside_box(xy, core)
            out.append(np.column_stack([xy[keep], layer.top.ravel(order="F")[keep]]))
        return np.vstack(out)


def _grid(fitted: _FittedFile, spacing, region, elevation, height):
    from msinv.gravity.equivalent import LayerGrid
    from msinv.gravity.layer import surface_elevation

    if region is None:
        w, e, s, n = fitted.extent()
    else:
        try:
            w, e, s, n = (float(v) for v in region.split(","))
        except ValueError:
            raise UserInputError(
                f"--region: expected 'west,east,south,north', got {region!r}"
            ) from None
    east, north = np.arange(w, e + spacing / 2, spacing), np.arange(s, n + spacing / 2, spacing)
    ge, gn = np.meshgrid(east, north)
    if elevation is not None:
        z = np.full(ge.shape, elevation)
    else:
        xy = np.column_stack([ge.ravel(), gn.ravel()])
        z = surface_elevation(fitted.tops(), xy).reshape(ge.shape) + height
    values = fitted.field(np.column_stack([ge.ravel(), gn.ravel(), z.ravel()]))
    return LayerGrid(east, north, z, values.reshape(ge.shape))


def _figure(grid, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
    extent = (grid.easting[0], grid.easting[-1], grid.northing[0], grid.northing[-1])
    im = ax.imshow(grid.gz, origin="lower", extent=extent, cmap="RdBu_r")
    fig.colorbar(im, ax=ax, label="g_z (mGal, down)")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
