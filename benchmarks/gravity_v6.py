"""GRAV3D v6 example: msinv against SimPEG, side by side in one run.

Measures, on the published example (76x76x38 cells, 676 stations): forward time; dense G build
time and peak memory (tracemalloc, numpy allocations); wavelet compression at r* = 0.05 (db2)
with the true model's data error; full L2 inversion time, phi_d against the target, the recovered
maximum and its depth. Both codes use the example's distance weights, bounds [-10, 10] and
alphas (1e-4, 1, 1, 1). SimPEG is a benchmark-only dependency (``pip install msinv[bench]``).

Run from the repository root::

    python benchmarks/gravity_v6.py [--example DIR] [--out benchmarks/results/gravity_v6.json]

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

from msinv.core.provenance import provenance
from msinv.gravity.compression import CompressedSensitivity, CompressionConfig
from msinv.gravity.forward import GravityOperator, gz
from msinv.gravity.inversion import InversionConfig, invert
from msinv.gravity.regularisation import Regularisation, RegularisationConfig
from msinv.gravity.sensitivity import build_sensitivity
from msinv.gravity.ubc import read_mesh, read_model
from msinv.gravity.ubc_data import read_observations

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


def run_msinv(mesh, obs, true, w, res):
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
    scaling = w * np.sqrt(mesh.cell_volumes / mesh.cell_volumes.min())
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
        }
    return res


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=DEFAULT_EXAMPLE)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/gravity_v6.json")
    parser.add_argument("--table", type=Path, help="print the Markdown table of a result JSON")
    args = parser.parse_args()
    if args.table is not None:
        print(table(json.loads(args.table.read_text())))
        return
    ex = args.example
    mesh = read_mesh(ex / "fwd" / "mesh.txt")
    true = read_model(ex / "fwd" / "model.den", mesh)
    obs = read_observations(ex / "inv_L2" / "dobs.grv")
    w = read_model(ex / "inv_L2" / "distance_weight.txt", mesh)
    with open("/proc/loadavg") as fh:
        load_before = fh.read().split()[:3]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores ({platform.node()})",
        "command": "python benchmarks/gravity_v6.py",
        "load_average_before": load_before,
        "n_data": obs.n_data,
        "n_cells": mesh.n_cells,
    }
    result["msinv"] = run_msinv(mesh, obs, true, w, {})
    print(json.dumps(result["msinv"], indent=1), flush=True)
    result["simpeg"] = run_simpeg(mesh, obs, true, w, {})
    print(json.dumps(result["simpeg"], indent=1), flush=True)
    with open("/proc/loadavg") as fh:
        result["load_average_after"] = fh.read().split()[:3]
    m, s = result["msinv"], result["simpeg"]
    result["ratios_simpeg_over_msinv"] = {
        "forward_time": s["forward_s"] / m["forward_s"],
        "G_build_time": s["G_build_s"] / m["G_build_s"],
        "G_peak_memory": s["G_peak_bytes"] / m["G_peak_bytes"],
        "inversion_time_dense": s["inversion_dense"]["seconds"] / m["inversion_dense"]["seconds"],
        "inversion_time_compressed": s["inversion_dense"]["seconds"]
        / m["inversion_compressed"]["seconds"],
    }
    result["provenance"] = provenance(
        {"example": str(ex), "alphas": ALPHAS, "bounds": [LOWER, UPPER]}
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
