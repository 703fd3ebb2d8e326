"""GRAV3D v6 example: msinv against SimPEG, side by side in one run.

Measures, on the published example (76x76x38 cells, 676 stations): forward time; dense G build
time and peak memory (tracemalloc, numpy allocations); wavelet compression at r* = 0.05 (db2)
with the true model's data error; full L2 inversion time, phi_d against the target, the recovered
maximum and its depth. Both codes use the example's distance weights, bounds [-10, 10] and
alphas (1e-4, 1, 1, 1). Then the sparse inversion: msinv runs the example's ``inv_sparse/``
folder unchanged through the library pipeline (:mod:`msinv.gravity.pipeline`, what
``msinv gravity sensitivity`` / ``invert`` call), SimPEG its ``Sparse`` regularisation with
``UpdateIRLS`` and the same norms (p, qx, qy, qz) = (0, 2, 2, 2), weights and bounds: time,
phi_d against the target, recovered maximum and its depth, correlation with the true model,
and a figure of both sections beside the truth.

SimPEG 0.26 needs Python >= 3.12: it runs in its own interpreter (``--simpeg-python``, e.g. a
venv made from pyenv's 3.12 with ``pip install simpeg==0.26``), fed the example's arrays
through an ``.npz`` file; it is never a dependency of msinv.

Run from the repository root::

    python benchmarks/gravity_v6.py --simpeg-python /work/simpeg312/bin/python \
        [--example DIR] [--out benchmarks/results/gravity_v6.json]

The machine is usually shared: compare the ratios within one run, not absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLE = Path(
    os.environ.get("MSINV_GRAV3D_EXAMPLE", REPO.parent / "shared" / "data" / "grav3d_v6_example")
)
ALPHAS = (1e-4, 1.0, 1.0, 1.0)
LOWER, UPPER = -10.0, 10.0


def timed(func, *args, **kwargs):
    """(result, seconds, peak traced bytes) of one call."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def recovered_max(mesh, model):
    k = int(np.argmax(model))
    return {
        "value_gcc": float(model[k]),
        "elevation_m": float(mesh.cell_centers[k, 2]),
        "east_m": float(mesh.cell_centers[k, 0]),
        "north_m": float(mesh.cell_centers[k, 1]),
    }


def correlation(model, true):
    return float(np.corrcoef(model, true)[0, 1])


def run_msinv(mesh, obs, true, w, res):
    from msinv.gravity.compression import CompressedSensitivity, CompressionConfig
    from msinv.gravity.forward import GravityOperator, gz
    from msinv.gravity.inversion import InversionConfig, invert
    from msinv.gravity.pipeline import row_scaling
    from msinv.gravity.regularisation import Regularisation, RegularisationConfig
    from msinv.gravity.sensitivity import build_sensitivity

    # numba compilation, not counted
    gz(mesh, obs.locations[:2], true)
    build_sensitivity(mesh, obs.locations[:2], dtype=np.float32)
    d, t, _ = timed(gz, mesh, obs.locations, true)
    res["forward_s"] = t
    res["forward_chi2_per_n_true_model"] = float(np.mean(((d - obs.values) / obs.std) ** 2))
    g, t, peak = timed(build_sensitivity, mesh, obs.locations, dtype=np.float32)
    res["G_build_s"], res["G_peak_bytes"], res["G_bytes"] = t, peak, g.nbytes
    res["G_dtype"] = "float32"
    # rows scaled as in GRAV3D's model norm, w * sqrt(V) (what `msinv gravity sensitivity` does)
    scaling = row_scaling(mesh, np.ones(mesh.n_cells, bool), w, scale_sensitivity=True)
    comp, t, peak = timed(
        CompressedSensitivity.compress,
        g,
        mesh.shape_cells,
        weights=scaling,
        config=CompressionConfig("daub2", rstar=0.05),
    )
    diag = comp.diagnostics(g, true, obs.std)
    res["compression"] = {
        "seconds": t,
        "peak_bytes": peak,
        **diag,
        "true_model_error_rms_over_sigma": diag["data_error_rms"] / float(np.mean(obs.std)),
    }
    reg = Regularisation(mesh, RegularisationConfig(*ALPHAS), weights=w)
    cfg = InversionConfig(mode=1, chifact=1.0, tolc=0.02)
    runs = (
        ("inversion_dense", GravityOperator(g), cfg),
        ("inversion_compressed", comp, cfg),
        # another first beta (10x lower), to show the cost of the beta search itself
        (
            "inversion_dense_beta_start_1e2",
            GravityOperator(g),
            InversionConfig(mode=1, chifact=1.0, tolc=0.02, beta_start=1e2),
        ),
    )
    for name, op, config in runs:
        out, t, _ = timed(
            invert,
            op,
            obs.values,
            obs.std,
            reg,
            lower=LOWER,
            upper=UPPER,
            initial=1e-4,
            config=config,
        )
        res[name] = {
            "seconds": t,
            "phi_d": out.phi_d,
            "target": out.target,
            "phi_d_over_target": out.phi_d / out.target,
            "beta": out.beta,
            "n_beta": len(out.log),
            "cg_iterations": sum(e.cg_iterations for e in out.log),
            "recovered_max": recovered_max(mesh, reg.full_model(out.model)),
            "correlation_with_true": correlation(reg.full_model(out.model), true),
        }
    return res


def run_msinv_sparse(example: Path, work: Path, true, res):
    """``inv_sparse/`` as published, through the pipeline the CLI calls (GZSEN3D then GZINV3D)."""
    import shutil

    from msinv.gravity.control import read_inversion_control, read_sensitivity_control
    from msinv.gravity.pipeline import (
        SensitivitySettings,
        build_sensitivity_file,
        problem_from_control,
        read_cell_weights,
        run_inversion,
        write_inversion_outputs,
    )
    from msinv.gravity.topography import active_from_topography
    from msinv.gravity.ubc import read_mesh
    from msinv.gravity.ubc_data import read_observations

    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(example / "inv_sparse", work)
    c = read_sensitivity_control(work / "sens.inp")
    mesh = read_mesh(c.mesh_file)
    active = active_from_topography(mesh, None)
    obs = read_observations(c.data_file)
    settings = SensitivitySettings(
        wavelet=c.wavelet or "NONE", rstar=c.eps, scale_sensitivity=c.scale_sensitivity
    )
    w = read_cell_weights(c.weights_file, mesh, active)
    tracemalloc.start()
    sens = build_sensitivity_file(mesh, obs.locations, active, w, settings, work / "gzinv3d.mtx")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    res["sensitivity"] = {
        "seconds": sens.seconds,
        "peak_traced_bytes": peak,
        "ratio_entries": sens.diagnostics["ratio_entries"],
        "r_max": sens.diagnostics["r_max"],
        "test_model_data_relative_error": sens.diagnostics["data_relative_error"],
    }
    control = read_inversion_control(work / "inv.inp")
    t0 = time.perf_counter()
    problem = problem_from_control(control)
    out = run_inversion(problem)
    seconds = time.perf_counter() - t0
    write_inversion_outputs(problem, out, work, control_path=work / "inv.inp", seconds=seconds)
    model = problem.reg.full_model(out.model)
    res["inversion"] = {
        "seconds": seconds,
        "phi_d": out.phi_d,
        "target": out.target,
        "phi_d_over_target": out.phi_d / out.target,
        "converged": out.converged,
        "irls_iterations": max(e.irls for e in out.log),
        "beta_solves": len(out.log),
        "cg_iterations": sum(e.cg_iterations for e in out.log),
        "recovered_max": recovered_max(mesh, model),
        "correlation_with_true": correlation(model, true),
        "norms": [float(np.mean(p)) for p in control.norms],
        "eps": [control.norm_scaling[1], control.norm_scaling[2]],
    }
    np.save(work / "model.npy", model)
    return res, model


def run_msinv_levels(example: Path, work: Path, true, res):
    """Single-level against coarse-to-fine (``levels=2``) L2 inversions on the same sensitivity.

    Uses ``inv_L2/``'s files (its ``sens.inp`` scales the rows by the weights, line 8 = 1);
    the sensitivity is built once through the pipeline. The coarse level's own compressed
    sensitivity (38 x 38 x 19 cells, same wavelet and r*) is built inside the timed
    coarse-to-fine run (any earlier copy is removed first), so its time counts.
    """
    import shutil

    from msinv.gravity.control import read_inversion_control, read_sensitivity_control
    from msinv.gravity.multilevel import CoarseBuild
    from msinv.gravity.pipeline import (
        SensitivitySettings,
        build_sensitivity_file,
        problem_from_control,
        read_cell_weights,
        run_inversion,
    )
    from msinv.gravity.topography import active_from_topography
    from msinv.gravity.ubc import read_mesh
    from msinv.gravity.ubc_data import read_observations

    if not (work / "gzinv3d.mtx").exists():
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(example / "inv_L2", work)
        c = read_sensitivity_control(work / "sens.inp")
        mesh = read_mesh(c.mesh_file)
        active = active_from_topography(mesh, None)
        obs = read_observations(c.data_file)
        settings = SensitivitySettings(
            wavelet=c.wavelet or "NONE", rstar=c.eps, scale_sensitivity=c.scale_sensitivity
        )
        w = read_cell_weights(c.weights_file, mesh, active)
        build_sensitivity_file(mesh, obs.locations, active, w, settings, work / "gzinv3d.mtx")
    problem = problem_from_control(read_inversion_control(work / "inv.inp"))
    models = {}
    for name, levels in (("single_level", 1), ("coarse_to_fine", 2)):
        (work / "gzinv3d_coarse1.mtx").unlink(missing_ok=True)
        build = CoarseBuild(stations=problem.locations, work=work)
        t0 = time.perf_counter()
        out = run_inversion(problem, levels=levels, build=build)
        seconds = time.perf_counter() - t0
        models[name] = problem.reg.full_model(out.model)
        res[name] = {
            "seconds": seconds,
            "phi_d_over_target": out.phi_d / out.target,
            "converged": out.converged,
            "beta_solves": len(out.log),
            "cg_iterations": sum(e.cg_iterations for e in out.log),
            "log": [
                {"beta": e.beta, "phi_d": e.phi_d, "cg": e.cg_iterations, "s": e.seconds}
                for e in out.log
            ],
            "levels": out.levels,
            "recovered_max": recovered_max(problem.mesh, models[name]),
            "correlation_with_true": correlation(models[name], true),
        }
    a, b = models["single_level"], models["coarse_to_fine"]
    res["relative_model_difference"] = float(np.linalg.norm(a - b) / np.linalg.norm(a))
    return res


def simpeg_worker(inputs: Path, output: Path):
    """SimPEG's L2 and sparse inversions on the arrays of ``inputs`` (run with SimPEG's Python)."""
    import discretize

    f = np.load(inputs)
    mesh = discretize.TensorMesh([f["hx"], f["hy"], f["hz"]], origin=f["origin"])

    class Obs:
        locations, values, std = f["locations"], f["values"], f["std"]
        n_data = f["values"].size

    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    res = run_simpeg(mesh, Obs, f["true"], f["w"], {"load_average_before": load})
    model = run_simpeg_sparse(mesh, Obs, f["true"], f["w"], res, tuple(f["norms"]))
    np.save(output.with_suffix(".npy"), model)
    output.write_text(json.dumps(res, indent=2) + "\n")


def run_simpeg_sparse(mesh, obs, true, w, res, norms):
    """SimPEG's Sparse regularisation + UpdateIRLS with the example's norms, from the start."""
    from simpeg import (
        data,
        data_misfit,
        directives,
        inverse_problem,
        inversion,
        maps,
        optimization,
        regularization,
    )
    from simpeg.potential_fields import gravity

    rx = gravity.receivers.Point(obs.locations, components="gz")
    survey = gravity.survey.Survey(gravity.sources.SourceField([rx]))
    sim = gravity.simulation.Simulation3DIntegral(
        mesh=mesh,
        survey=survey,
        rhoMap=maps.IdentityMap(nP=mesh.n_cells),
        engine="choclo",
        store_sensitivities="ram",
    )
    sign = res["forward_sign"]
    dobj = data.Data(survey, dobs=sign * obs.values, standard_deviation=obs.std)
    misfit = data_misfit.L2DataMisfit(data=dobj, simulation=sim)
    reg = regularization.Sparse(
        mesh,
        alpha_s=ALPHAS[0],
        alpha_x=ALPHAS[1],
        alpha_y=ALPHAS[2],
        alpha_z=ALPHAS[3],
        reference_model=np.zeros(mesh.n_cells),
        weights={"distance": w**2},
        norms=list(norms),
    )
    opt = optimization.ProjectedGNCG(
        maxIter=40, lower=LOWER, upper=UPPER, maxIterLS=20, cg_maxiter=10, cg_rtol=1e-3
    )
    prob = inverse_problem.BaseInvProblem(misfit, reg, opt)
    irls = directives.UpdateIRLS(max_irls_iterations=20, chifact_start=1.0)
    dirs = [
        irls,
        directives.BetaEstimate_ByEig(beta0_ratio=1e1, random_seed=0),
        directives.UpdatePreconditioner(),
    ]
    inv = inversion.BaseInversion(prob, directiveList=dirs)
    sim.G  # noqa: B018  (built before timing: the msinv row times its own build separately)
    model, t, _ = timed(inv.run, np.full(mesh.n_cells, 1e-4))
    phi_d = float(np.sum(((sim.dpred(model) - dobj.dobs) / obs.std) ** 2))
    res["inversion_sparse"] = {
        "seconds": t,
        "phi_d": phi_d,
        "target": float(obs.n_data),
        "phi_d_over_target": phi_d / obs.n_data,
        "gn_iterations": int(opt.iter),
        "irls_iterations": int(irls.metrics.irls_iteration_count),
        "recovered_max": recovered_max(mesh, model),
        "correlation_with_true": correlation(model, true),
        "settings": f"Sparse(norms={list(norms)}, weights=w**2), UpdateIRLS(max 20, chifact_start "
        "1), ProjectedGNCG(maxIter=40, cg_maxiter=10, cg_rtol=1e-3), BetaEstimate_ByEig(10)",
    }
    return model


def figure(mesh, true, models: dict, path: Path):
    """North-south section through x = 0 of the true model and each recovered model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nx, ny, nz = mesh.shape_cells
    ix = int(np.argmin(np.abs(mesh.cell_centers_x)))
    panels = {"true model": true, **models}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True)
    for ax, (name, m) in zip(axes, panels.items(), strict=True):
        sec = m.reshape((nx, ny, nz), order="F")[ix].T
        im = ax.pcolormesh(mesh.nodes_y, mesh.nodes_z, sec, cmap="viridis", shading="flat")
        ax.set_xlim(-600, 600)
        ax.set_ylim(-800, 0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("north (m)")
        ax.plot([-100, 100, 100, -100, -100], [-200, -200, -400, -400, -200], "w--", lw=0.8)
        fig.colorbar(im, ax=ax, shrink=0.8, label="g/cc")
    axes[0].set_ylabel("elevation (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_simpeg(mesh, obs, true, w, res):
    import simpeg
    from simpeg import (
        data,
        data_misfit,
        directives,
        inverse_problem,
        inversion,
        maps,
        optimization,
        regularization,
    )
    from simpeg.potential_fields import gravity

    res["simpeg_version"] = simpeg.__version__
    rx = gravity.receivers.Point(obs.locations, components="gz")
    survey = gravity.survey.Survey(gravity.sources.SourceField([rx]))

    def make(store):
        return gravity.simulation.Simulation3DIntegral(
            mesh=mesh,
            survey=survey,
            rhoMap=maps.IdentityMap(nP=mesh.n_cells),
            engine="choclo",
            store_sensitivities=store,
        )

    # SimPEG's gz is the upward component: flip to compare with GRAV3D's downward data
    make("forward_only").dpred(true)  # numba compilation, not counted
    d, t, _ = timed(make("forward_only").dpred, true)
    res["forward_s"] = t
    res["forward_sign"] = -1.0 if np.dot(d, obs.values) < 0 else 1.0
    sign = res["forward_sign"]
    res["forward_chi2_per_n_true_model"] = float(np.mean(((sign * d - obs.values) / obs.std) ** 2))
    sim = make("ram")
    _, t, peak = timed(lambda: sim.G)
    res["G_build_s"], res["G_peak_bytes"], res["G_bytes"] = t, peak, sim.G.nbytes
    res["G_dtype"] = str(sim.G.dtype)
    dobj = data.Data(survey, dobs=sign * obs.values, standard_deviation=obs.std)
    misfit = data_misfit.L2DataMisfit(data=dobj, simulation=sim)
    # GRAV3D's w sits inside the norm (phi_s = int (w m)^2): SimPEG's cell weights multiply m^2
    reg = regularization.WeightedLeastSquares(
        mesh,
        alpha_s=ALPHAS[0],
        alpha_x=ALPHAS[1],
        alpha_y=ALPHAS[2],
        alpha_z=ALPHAS[3],
        reference_model=np.zeros(mesh.n_cells),
        weights={"distance": w**2},
    )
    opt = optimization.ProjectedGNCG(
        maxIter=20, lower=LOWER, upper=UPPER, maxIterLS=20, cg_maxiter=10, cg_rtol=1e-3
    )
    prob = inverse_problem.BaseInvProblem(misfit, reg, opt)
    dirs = [
        directives.BetaEstimate_ByEig(beta0_ratio=1e1, random_seed=0),
        directives.BetaSchedule(coolingFactor=5, coolingRate=1),
        directives.UpdatePreconditioner(),
        directives.TargetMisfit(chifact=1.0),
    ]
    inv = inversion.BaseInversion(prob, directiveList=dirs)
    model, t, _ = timed(inv.run, np.full(mesh.n_cells, 1e-4))
    phi_d = float(np.sum(((sim.dpred(model) - dobj.dobs) / obs.std) ** 2))
    res["inversion_dense"] = {
        "seconds": t,
        "phi_d": phi_d,
        "target": float(obs.n_data),
        "phi_d_over_target": phi_d / obs.n_data,
        "gn_iterations": int(opt.iter),
        "recovered_max": recovered_max(mesh, model),
        "correlation_with_true": correlation(model, true),
    }
    res["settings"] = (
        "ProjectedGNCG(maxIter=20, maxIterLS=20, cg_maxiter=10, cg_rtol=1e-3), "
        "BetaEstimate_ByEig(beta0_ratio=10, seed 0), BetaSchedule(5, 1), "
        "UpdatePreconditioner, TargetMisfit(chifact=1); weights = w**2"
    )
    return res


def table(result: dict) -> str:
    """The Markdown table of docs/benchmarks.md, from a result JSON."""
    m, s, r = result["msinv"], result["simpeg"], result["ratios_simpeg_over_msinv"]
    c, md, mc, sd = (
        m["compression"],
        m["inversion_dense"],
        m["inversion_compressed"],
        s["inversion_dense"],
    )

    def mx(x):
        return f"{x['recovered_max']['value_gcc']:.4f} g/cc at {x['recovered_max']['elevation_m']:.0f} m"

    rows = [
        (
            "forward, true model (s)",
            f"{m['forward_s']:.1f}",
            f"{s['forward_s']:.1f}",
            f"{r['forward_time']:.2f}",
        ),
        (
            "true model chi^2/N",
            f"{m['forward_chi2_per_n_true_model']:.3f}",
            f"{s['forward_chi2_per_n_true_model']:.3f}",
            "",
        ),
        (
            "dense G build (s)",
            f"{m['G_build_s']:.1f}",
            f"{s['G_build_s']:.1f}",
            f"{r['G_build_time']:.2f}",
        ),
        (
            "dense G peak memory (MiB)",
            f"{m['G_peak_bytes'] / 2**20:.0f} ({m['G_dtype']})",
            f"{s['G_peak_bytes'] / 2**20:.0f} ({s['G_dtype']})",
            f"{r['G_peak_memory']:.2f}",
        ),
        (
            "db2, r* = 0.05: coefficients kept / memory vs float64 G",
            f"{c['ratio_entries']:.1f}x / {c['ratio_memory_vs_float64']:.1f}x "
            f"(vs float32 G: {c['ratio_memory_vs_float32']:.1f}x) "
            f"({c['compressed_bytes'] / 2**20:.0f} MiB)",
            "no compression",
            "",
        ),
        (
            "db2: r_i max; true-model data error RMS / sigma",
            f"{c['r_max']:.4f}; {c['true_model_error_rms_over_sigma']:.3f}",
            "",
            "",
        ),
        (
            "inversion, dense G (s)",
            f"{md['seconds']:.1f}",
            f"{sd['seconds']:.1f}",
            f"{r['inversion_time_dense']:.2f}",
        ),
        (
            "inversion, dense G, first beta 10x lower (s)",
            f"{m['inversion_dense_beta_start_1e2']['seconds']:.1f} "
            f"({m['inversion_dense_beta_start_1e2']['n_beta']} beta solves)",
            "",
            "",
        ),
        (
            "inversion, compressed G (s)",
            f"{mc['seconds']:.1f}",
            "",
            f"{r['inversion_time_compressed']:.2f}",
        ),
        (
            "beta solves / CG iterations, dense",
            f"{md['n_beta']} / {md['cg_iterations']}",
            f"{sd['gn_iterations']} GN iterations",
            "",
        ),
        (
            "phi_d / target (676), dense",
            f"{md['phi_d_over_target']:.3f}",
            f"{sd['phi_d_over_target']:.3f}",
            "",
        ),
        ("phi_d / target (676), compressed", f"{mc['phi_d_over_target']:.3f}", "", ""),
        ("recovered maximum, dense", mx(md), mx(sd), ""),
        ("recovered maximum, compressed", mx(mc), "", ""),
    ]
    lines = [
        f"| quantity | msinv | SimPEG {s['simpeg_version']} | SimPEG / msinv |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c_} | {d} |" for a, b, c_, d in rows]
    return "\n".join(lines)


def sparse_table(result: dict) -> str:
    """The Markdown table of the sparse rows, from a result JSON."""
    m, s = result["msinv_sparse"], result["simpeg"]
    mi, si = m["inversion"], s["inversion_sparse"]

    def mx(x):
        r = x["recovered_max"]
        return f"{r['value_gcc']:.4f} g/cc at {r['elevation_m']:.0f} m"

    rows = [
        ("sparse inversion (s)", f"{mi['seconds']:.1f}", f"{si['seconds']:.1f}"),
        (
            "IRLS iterations / beta solves or GN iterations",
            f"{mi['irls_iterations']} / {mi['beta_solves']}",
            f"{si['irls_iterations']} / {si['gn_iterations']}",
        ),
        (
            "phi_d / target (676)",
            f"{mi['phi_d_over_target']:.3f}",
            f"{si['phi_d_over_target']:.3f}",
        ),
        ("recovered maximum (true block: -200 to -400 m)", mx(mi), mx(si)),
        (
            "correlation with the true model",
            f"{mi['correlation_with_true']:.3f}",
            f"{si['correlation_with_true']:.3f}",
        ),
        (
            "sensitivity (inv_sparse/sens.inp, line 8 = 0): build + compression (s)",
            f"{m['sensitivity']['seconds']:.1f} ({m['sensitivity']['ratio_entries']:.0f}x)",
            "dense G, built before timing",
        ),
    ]
    lines = [
        f"| sparse, p q = {mi['norms']} | msinv | SimPEG {s['simpeg_version']} |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=DEFAULT_EXAMPLE)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/gravity_v6.json")
    parser.add_argument("--table", type=Path, help="print the Markdown tables of a result JSON")
    parser.add_argument(
        "--simpeg-python", type=Path, help="Python (>= 3.12) with simpeg 0.26 installed"
    )
    parser.add_argument(
        "--parts",
        default="l2,sparse",
        help="comma-separated: l2 (the L2 rows), sparse (inv_sparse/ beside SimPEG's Sparse), "
        "levels (inv_L2/ single-level against coarse-to-fine)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/msinv_gravity_v6"),
        help="folder for the copies of inv_sparse/ and inv_L2/ and their outputs",
    )
    parser.add_argument("--simpeg-worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simpeg_worker is not None:
        simpeg_worker(*args.simpeg_worker)
        return
    if args.table is not None:
        result = json.loads(args.table.read_text())
        if "msinv" in result:
            print(table(result))
        if "msinv_sparse" in result:
            print(sparse_table(result))
        return
    import subprocess
    import tempfile

    from msinv.core.provenance import provenance
    from msinv.gravity.ubc import read_mesh, read_model
    from msinv.gravity.ubc_data import read_observations

    parts = set(args.parts.split(","))
    ex = args.example
    mesh = read_mesh(ex / "fwd" / "mesh.txt")
    true = read_model(ex / "fwd" / "model.den", mesh)
    obs = read_observations(ex / "inv_L2" / "dobs.grv")
    w = read_model(ex / "inv_L2" / "distance_weight.txt", mesh)
    with open("/proc/loadavg") as fh:
        load_before = fh.read().split()[:3]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores ({platform.node()}): shared 2-core x86_64 VM, under load from parallel work",
        "command": f"python benchmarks/gravity_v6.py --parts {args.parts}",
        "load_average_before": load_before,
        "n_data": obs.n_data,
        "n_cells": mesh.n_cells,
    }
    models = {}
    if "l2" in parts:
        result["msinv"] = run_msinv(mesh, obs, true, w, {})
        print(json.dumps(result["msinv"], indent=1), flush=True)
    if "sparse" in parts:
        work = args.work / "inv_sparse"
        result["msinv_sparse"], models["msinv sparse (inv_sparse/)"] = run_msinv_sparse(
            ex, work, true, {}
        )
        print(json.dumps(result["msinv_sparse"], indent=1), flush=True)
    if "levels" in parts:
        result["msinv_levels"] = run_msinv_levels(ex, args.work / "inv_L2", true, {})
        print(json.dumps(result["msinv_levels"], indent=1), flush=True)
    if args.simpeg_python is not None and parts & {"l2", "sparse"}:
        with tempfile.TemporaryDirectory() as tmp:
            inputs, output = Path(tmp) / "inputs.npz", Path(tmp) / "simpeg.json"
            norms = (0.0, 2.0, 2.0, 2.0)
            if "sparse" in parts:
                norms = tuple(result["msinv_sparse"]["inversion"]["norms"])
            np.savez(
                inputs,
                hx=mesh.h[0],
                hy=mesh.h[1],
                hz=mesh.h[2],
                origin=np.asarray(mesh.origin),
                locations=obs.locations,
                values=obs.values,
                std=obs.std,
                true=true,
                w=w,
                norms=np.asarray(norms),
            )
            subprocess.run(
                [str(args.simpeg_python), __file__, "--simpeg-worker", str(inputs), str(output)],
                check=True,
            )
            result["simpeg"] = json.loads(output.read_text())
            models["SimPEG 0.26 Sparse"] = np.load(output.with_suffix(".npy"))
        print(json.dumps(result["simpeg"], indent=1), flush=True)
    with open("/proc/loadavg") as fh:
        result["load_average_after"] = fh.read().split()[:3]
    m, s = result.get("msinv"), result.get("simpeg")
    if m is not None and s is not None:
        result["ratios_simpeg_over_msinv"] = {
            "forward_time": s["forward_s"] / m["forward_s"],
            "G_build_time": s["G_build_s"] / m["G_build_s"],
            "G_peak_memory": s["G_peak_bytes"] / m["G_peak_bytes"],
            "inversion_time_dense": s["inversion_dense"]["seconds"]
            / m["inversion_dense"]["seconds"],
            "inversion_time_compressed": s["inversion_dense"]["seconds"]
            / m["inversion_compressed"]["seconds"],
        }
    if "msinv_sparse" in result and s is not None:
        result["ratios_simpeg_over_msinv"] = {
            **result.get("ratios_simpeg_over_msinv", {}),
            "sparse_inversion_time": s["inversion_sparse"]["seconds"]
            / result["msinv_sparse"]["inversion"]["seconds"],
        }
        figure(mesh, true, models, args.out.with_name(args.out.stem + "_sparse.png"))
    result["provenance"] = provenance(
        {"example": str(ex), "alphas": ALPHAS, "bounds": [LOWER, UPPER], "parts": sorted(parts)}
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if m is not None and s is not None:
        print(table(result))
    if "msinv_sparse" in result and s is not None:
        print(sparse_table(result))


if __name__ == "__main__":
    main()
