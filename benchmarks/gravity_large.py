"""A gravity problem beyond a dense G: >= 10,000 stations and >= 1,000,000 cells.

A synthetic of our own making: a uniform 128 x 128 x 64 mesh of 20 m cells (1,048,576 cells;
a dense float32 G would take 10,000 x 1,048,576 x 4 B = 42 GB), 100 x 100 stations 1 m above
the surface at 24 m spacing, two blocks (0.2 and -0.1 g/cc) and a dipping sheet, 2 % noise.

Steps, timed, with the process's peak resident memory read from the kernel (``VmHWM``):

1. sensitivity: G in blocks of stations within ``--memory-gib``, each block compressed at once
   (db2, r* = 0.05 per row), written to ``WORK/gzinv3d.mtx.partial/`` (killed: run again, it
   resumes); the true model's exact data come from the dense blocks on the way and are kept in
   ``WORK/true_data.npy``; a finished build (``WORK/gzinv3d.mtx`` with that file) is loaded
   instead (``--blocks`` recovers the data and the timeline of a build finished by an older
   run from its block files);
2. compression ratio, worst row error r_i, data error of the compressed G on the true model;
3. L2 inversion (mode 1, chifact 1, tolc 0.02, depth weights, bounds [-1, 1]): time, φ_d
   against the target, β solves and CG iterations, the recovered maximum, the correlation with
   the true model, and the true misfit on ``--exact-subset`` stations with the exact forward;
   single-level and coarse-to-fine (``levels=2``: the coarse level's own compressed
   sensitivity is built inside the timed run, to ``WORK/gzinv3d_coarse1.mtx``; delete it to
   time the build again, a kept one is reused and the result says so), as ``--parts`` asks;
4. SimPEG 0.26 (``--simpeg-python``): its memory-feasible mode ``store_sensitivities=
   "forward_only"``, one forward of the true model on ``--simpeg-stations`` stations (its
   inversion would recompute the kernel at every product), extrapolated per station.

Each part is written to ``--out`` as soon as it is done (other parts' entries are kept).

Run from the repository root (hours on a shared 2-core machine)::

    nice python benchmarks/gravity_large.py --work /tmp/grav_large \\
        --simpeg-python /work/simpeg312/bin/python --out benchmarks/results/gravity_large.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far: the kernel's ``VmHWM`` (kB).

    Not ``ru_maxrss``: Linux keeps that across ``execve``, so a worker started from a large
    process would report its parent's peak.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def load() -> list[str]:
    with open("/proc/loadavg") as fh:
        return fh.read().split()[:3]


def make_problem(nx: int, ny: int, nz: int, h: float, n_side: int, seed: int):
    """Mesh, stations, true model and distance weights of the synthetic."""
    from discretize import TensorMesh

    mesh = TensorMesh(
        [np.full(nx, h), np.full(ny, h), np.full(nz, h)],
        origin=[-nx * h / 2, -ny * h / 2, -nz * h],
    )
    span = 0.47 * nx * h
    xs, ys = np.meshgrid(np.linspace(-span, span, n_side), np.linspace(-span, span, n_side))
    stations = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, 1.0)])
    c = mesh.cell_centers
    true = np.zeros(mesh.n_cells)
    true[
        (np.abs(c[:, 0] + 400) < 200)
        & (np.abs(c[:, 1]) < 200)
        & (c[:, 2] < -150)
        & (c[:, 2] > -450)
    ] = 0.2
    true[
        (np.abs(c[:, 0] - 500) < 150)
        & (np.abs(c[:, 1] - 300) < 250)
        & (c[:, 2] < -100)
        & (c[:, 2] > -300)
    ] = -0.1
    sheet = (np.abs(c[:, 2] + 200 + 0.5 * (c[:, 0] - 200)) < 30) & (np.abs(c[:, 1] + 500) < 300)
    true[sheet & (c[:, 0] > 0) & (c[:, 0] < 600)] = 0.15
    return mesh, stations, true


def run_simpeg(args, mesh, stations, true, res):
    """SimPEG forward_only on a subset of stations, in its own interpreter."""
    import tempfile

    k = min(args.simpeg_stations, stations.shape[0])
    pick = np.linspace(0, stations.shape[0] - 1, k).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in.npz"
        np.savez(
            inputs,
            hx=mesh.h[0],
            hy=mesh.h[1],
            hz=mesh.h[2],
            origin=np.asarray(mesh.origin),
            stations=stations[pick],
            true=true,
        )
        out = subprocess.run(
            [str(args.simpeg_python), __file__, "--simpeg-worker", str(inputs)],
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(out.stdout.strip().splitlines()[-1])
        pred = np.load(Path(tmp) / "in.npy")
    res["simpeg"] = {
        **info,
        "stations": int(k),
        "seconds_per_station": info["forward_seconds"] / k,
        "extrapolated_forward_seconds_all_stations": info["forward_seconds"]
        / k
        * stations.shape[0],
        "note": "forward_only recomputes the kernel at every product: an inversion costs about "
        "this forward time per CG product (twice per iteration, Jvec and Jtvec)",
    }
    return pick, pred


def simpeg_worker(inputs: Path):
    import discretize
    import simpeg
    from simpeg import maps
    from simpeg.potential_fields import gravity

    f = np.load(inputs)
    mesh = discretize.TensorMesh([f["hx"], f["hy"], f["hz"]], origin=f["origin"])
    rx = gravity.receivers.Point(f["stations"], components="gz")
    survey = gravity.survey.Survey(gravity.sources.SourceField([rx]))
    sim = gravity.simulation.Simulation3DIntegral(
        mesh=mesh,
        survey=survey,
        rhoMap=maps.IdentityMap(nP=mesh.n_cells),
        engine="choclo",
        store_sensitivities="forward_only",
    )
    small = gravity.simulation.Simulation3DIntegral(  # numba compilation, not counted
        mesh=discretize.TensorMesh([[10.0] * 2] * 3),
        survey=gravity.survey.Survey(
            gravity.sources.SourceField(
                [gravity.receivers.Point(np.zeros((1, 3)) + 30, components="gz")]
            )
        ),
        rhoMap=maps.IdentityMap(nP=8),
        engine="choclo",
        store_sensitivities="forward_only",
    )
    small.dpred(np.ones(8))
    t0 = time.perf_counter()
    d = sim.dpred(f["true"])
    seconds = time.perf_counter() - t0
    np.save(inputs.with_suffix(".npy"), -d)  # SimPEG's gz is upward: GRAV3D's is downward
    print(
        json.dumps(
            {
                "simpeg_version": simpeg.__version__,
                "forward_seconds": seconds,
                "peak_rss_bytes": peak_rss_bytes(),
            }
        )
    )


def build_timeline(partial: Path) -> dict:
    """Build time from the block files' modification times (a resumed build's gaps between
    runs left out: a gap longer than ``3 x`` the median block time counts as the median)."""
    times = sorted(f.stat().st_mtime for f in partial.glob("block_*.npz"))
    gaps = np.diff(times)
    median = float(np.median(gaps)) if gaps.size else 0.0
    counted = np.where(gaps > 3 * median, median, gaps)
    return {
        "blocks": len(times),
        "seconds_building_estimated": float(counted.sum() + median),
        "median_seconds_per_block": median,
        "pauses_left_out": int(np.count_nonzero(gaps > 3 * median)),
    }


def blocks_probe(folder: Path, true) -> np.ndarray:
    """The true model's exact data stored block by block by the build (its ``probe``)."""
    from msinv.gravity.sensitivity import _digest

    plan = json.loads((folder / "plan.json").read_text())
    if plan["probe"] != _digest(np.asarray(true, dtype=np.float64)):
        raise SystemExit(f"{folder}: the blocks were built with another probe model")
    files = sorted(folder.glob("block_*.npz"))
    if len(files) * plan["block_rows"] < plan["n_data"]:
        raise SystemExit(f"{folder}: {len(files)} blocks, not all of the build")
    out = []
    for f in files:
        with np.load(f) as z:
            out.append(z["probe"])
    return np.concatenate(out)


def exact_misfit_subset(mesh, stations, model, data, sigma, k: int) -> dict:
    """χ² of a model against the data on ``k`` evenly spread stations with the exact forward
    (the whole set would cost one full kernel pass), scaled to N."""
    from msinv.gravity.forward import gz

    pick = np.linspace(0, stations.shape[0] - 1, k).astype(int)
    t0 = time.perf_counter()
    pred = gz(mesh, stations[pick], model)
    chi2 = float(np.sum(((pred - data[pick]) / sigma[pick]) ** 2))
    return {
        "stations": int(k),
        "phi_d_scaled_to_n": chi2 * stations.shape[0] / k,
        "seconds": time.perf_counter() - t0,
    }


def recovered_max(mesh, model) -> dict:
    i = int(np.argmax(model))
    c = mesh.cell_centers[i]
    return {"value_gcc": float(model[i]), "east_m": float(c[0]), "north_m": float(c[1]),
            "elevation_m": float(c[2])}  # fmt: skip


def save_result(path: Path, result: dict) -> None:
    from msinv.core.outputs import write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(result, indent=2) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nx", type=int, default=128)
    parser.add_argument("--ny", type=int, default=128)
    parser.add_argument("--nz", type=int, default=64)
    parser.add_argument("--h", type=float, default=20.0)
    parser.add_argument("--stations-per-side", type=int, default=100)
    parser.add_argument("--rstar", type=float, default=0.05)
    parser.add_argument("--memory-gib", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/grav_large"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/gravity_large.json")
    parser.add_argument("--skip-inversion", action="store_true")
    parser.add_argument(
        "--parts",
        default="single,levels",
        help="inversions to run (comma-separated): single (one level), levels (coarse-to-fine, "
        "2 levels, the coarse level with its own compressed sensitivity)",
    )
    parser.add_argument(
        "--exact-subset",
        type=int,
        default=200,
        help="stations on which each final model's true misfit is measured with the exact "
        "forward (0: none)",
    )
    parser.add_argument(
        "--blocks",
        type=Path,
        help="a folder with the block files of a build finished by an earlier run (e.g. hard "
        "links made while it ran): its true-model data and its timeline are taken from them",
    )
    parser.add_argument(
        "--build-result",
        type=Path,
        help="the JSON of the run that built the sensitivity (--skip-inversion), kept as "
        "'build_run'",
    )
    parser.add_argument("--simpeg-python", type=Path)
    parser.add_argument("--simpeg-stations", type=int, default=100)
    parser.add_argument("--simpeg-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simpeg_worker is not None:
        simpeg_worker(args.simpeg_worker)
        return
    from msinv.core.provenance import provenance
    from msinv.gravity.inversion import InversionConfig
    from msinv.gravity.multilevel import CoarseBuild
    from msinv.gravity.pipeline import (
        InversionProblem,
        SensitivitySettings,
        row_scaling,
        run_inversion,
    )
    from msinv.gravity.regularisation import Regularisation
    from msinv.gravity.sensitivity import build_compressed, load_sensitivity
    from msinv.gravity.weighting import depth_weighting

    args.work.mkdir(parents=True, exist_ok=True)
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    if result.get("command") not in (None, "python " + " ".join(sys.argv)):
        result.setdefault("earlier_commands", []).append(result["command"])
    result.update(
        machine=f"{platform.machine()}, {os.cpu_count()} cores ({platform.node()}): shared "
        "2-core x86_64 VM, under load from parallel work",
        command="python " + " ".join(sys.argv),
        load_average_before=load(),
    )
    t0 = time.perf_counter()
    mesh, stations, true = make_problem(
        args.nx, args.ny, args.nz, args.h, args.stations_per_side, args.seed
    )
    active = np.ones(mesh.n_cells, bool)
    w = depth_weighting(mesh, 1.0, active=active)
    result.update(
        n_data=int(stations.shape[0]),
        n_cells=int(mesh.n_cells),
        dense_float32_bytes=int(stations.shape[0]) * int(mesh.n_cells) * 4,
        setup_seconds=time.perf_counter() - t0,
    )
    print(json.dumps({k: result[k] for k in ("n_data", "n_cells", "dense_float32_bytes")}))
    settings = SensitivitySettings(
        rstar=args.rstar, memory=int(args.memory_gib * 2**30), workers=args.workers
    )
    matrix, exact_file = args.work / "gzinv3d.mtx", args.work / "true_data.npy"
    if args.build_result is not None:
        result["build_run"] = json.loads(args.build_result.read_text())
    if args.blocks is not None:
        result["sensitivity_build_timeline"] = build_timeline(args.blocks)
        if matrix.exists() and not exact_file.exists():
            np.save(exact_file, blocks_probe(args.blocks, true))
    t0 = time.perf_counter()
    if matrix.exists() and exact_file.exists():  # a finished build: load it
        op = load_sensitivity(matrix, stations=stations)[0]
        clean = np.load(exact_file)
        how = f"loaded the finished build {matrix} in {time.perf_counter() - t0:.1f} s"
    else:
        partial = matrix.with_name(matrix.name + ".partial")
        timeline = build_timeline(partial) if partial.exists() else None
        op, _, clean = build_compressed(
            mesh,
            stations,
            active,
            row_scaling(mesh, active, w, True),
            settings.compression(),
            matrix,
            budget=settings.budget,
            model_weights=w,
            workers=settings.workers,
            log=lambda line: print(time.strftime("%H:%M:%S"), line, flush=True),
            probe=true,
        )
        np.save(exact_file, clean)
        how = f"built (or resumed) in this run in {time.perf_counter() - t0:.1f} s"
        result["sensitivity_build_this_run_seconds"] = time.perf_counter() - t0
        if timeline is not None:
            result["sensitivity_build_before_this_run"] = timeline
    rng = np.random.default_rng(args.seed)
    sigma = np.full(clean.size, 0.02 * np.abs(clean).max())
    data = clean + sigma * rng.standard_normal(clean.size)
    result["sensitivity"] = {
        **result.get("sensitivity", {}),
        "how": how,
        "memory_budget_bytes": settings.budget,
        **op.diagnostics(None, true, sigma, exact=clean),
        "peak_rss_bytes_so_far": peak_rss_bytes(),
    }
    print(json.dumps(result["sensitivity"]), flush=True)
    save_result(args.out, result)
    if args.simpeg_python is not None:
        pick, pred = run_simpeg(args, mesh, stations, true, result)
        result["simpeg"]["max_relative_difference_vs_msinv_exact"] = float(
            np.abs(pred - clean[pick]).max() / np.abs(clean[pick]).max()
        )
        t0 = time.perf_counter()
        from msinv.gravity.forward import gz

        gz(mesh, stations[pick], true)
        result["simpeg"]["msinv_exact_forward_same_stations_seconds"] = time.perf_counter() - t0
        result["simpeg"]["msinv_compressed_forward_all_stations_seconds"] = _timed_forward(op, true)
        print(json.dumps(result["simpeg"]), flush=True)
        save_result(args.out, result)
    if not args.skip_inversion:
        reg = Regularisation(mesh, weights=w)
        n = reg.n_active
        problem = InversionProblem(
            mesh,
            op,
            data,
            sigma,
            stations,
            data,
            reg,
            np.full(n, -1.0),
            np.full(n, 1.0),
            np.zeros(n),
            InversionConfig(mode=1),
            None,
            active,
            np.zeros(data.size),
        )
        runs = {"single": ("inversion_single_level", 1), "levels": ("inversion_coarse_to_fine", 2)}
        for part in args.parts.split(","):
            name, levels = runs[part]
            build = CoarseBuild(
                stations=stations,
                work=args.work,
                rstar=args.rstar,
                budget=settings.budget,
                workers=settings.workers,
                log=lambda line: print(time.strftime("%H:%M:%S"), line, flush=True),
            )
            t0 = time.perf_counter()
            res = run_inversion(problem, levels=levels, build=build)
            seconds = time.perf_counter() - t0
            model = res.model
            result[name] = {
                "seconds": seconds,
                "phi_d": res.phi_d,
                "target": res.target,
                "phi_d_over_target": res.phi_d / res.target,
                "converged": res.converged,
                "beta": res.beta,
                "beta_solves": len(res.log),
                "cg_iterations": sum(e.cg_iterations for e in res.log),
                "log": [
                    {"beta": e.beta, "phi_d": e.phi_d, "cg": e.cg_iterations, "s": e.seconds}
                    for e in res.log
                ],
                "correlation_with_true": float(np.corrcoef(model, true)[0, 1]),
                "recovered_max": recovered_max(mesh, model),
                "levels": res.levels,
                "peak_rss_bytes_so_far": peak_rss_bytes(),
            }
            np.save(args.work / f"{name}.npy", model)
            if args.exact_subset:
                result[name]["exact_misfit"] = exact_misfit_subset(
                    mesh, stations, model, data, sigma, args.exact_subset
                )
            print(json.dumps(result[name]), flush=True)
            save_result(args.out, result)
        files = [
            args.work / f"{n}.npy" for n in ("inversion_single_level", "inversion_coarse_to_fine")
        ]
        if all(f.exists() for f in files):
            a, b = (np.load(f) for f in files)
            result["coarse_to_fine_vs_single_relative_model_difference"] = float(
                np.linalg.norm(a - b) / np.linalg.norm(a)
            )
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["load_average_after"] = load()
    result["provenance"] = provenance({k: str(v) for k, v in vars(args).items()})
    save_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("peak_rss_bytes", "load_average_after")}))


def _timed_forward(op, model) -> float:
    t0 = time.perf_counter()
    op.forward(model)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
