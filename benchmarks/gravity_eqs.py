"""Equivalent sources: msinv's draped layer vs Harmonica and SimPEG 0.26, side by side.

Synthetic surveys of our own making (:func:`msinv.gravity.equivalent_example.synthetic_survey`:
stations 1 m above Gaussian hills over 10 km x 10 km, a 500 m wide band without stations,
eight buried prisms, noise 0.005 mGal). Each method fits the stations and predicts on an
80 x 80 grid draped 1 m above the ground (gridding; scored in the interior and in the gap) and on
the same grid at 300 m elevation (upward continuation; interior). RMS errors in mGal against the
exact field of the prisms; fit time (wall clock, and CPU time of the process, all threads: the
fairer figure on a loaded machine) and peak memory (max RSS of the method's own process).
``--survey``: ``band`` (the benchmark's), ``disc`` (a second make), and the robustness surveys
of :data:`SURVEYS` (other seeds, gap sizes and source depths; ``gravity_eqs_variants.py``).

Methods (each in its own subprocess, results cached per method in the output folder, so a
rerun resumes):

* ``msinv``: ``EquivalentLayer()`` with its defaults (σ given, β by the evidence, depth 1.5
  cells, the cell refined when the layer is too coarse for the data: ``max_noise_ratio``).
* ``msinv-daub2``: the same layer with 2-D db2 compression at r* = 5 % and the full-G finish.
* ``msinv-unrefined`` (on request): the default cell kept whatever the fit's noise ratio
  (``max_noise_ratio=None``, what the default did until 1 Dec 2026).
* ``msinv-target`` (on request): β for GZES's target misfit χ² = N instead of UPRE.
* ``msinv-auto`` (on request): the depth chosen among 1, 1.5, 2.5, 4 cells by UPRE.
* ``msinv-padded`` (on request): the same, on a layer padded by 4 cells growing 1.5× (the
  default before padding was dropped); its UPRE scores sit beside ``msinv-auto``'s.
* ``msinv-notrend`` (on request): no regional plane beside the layer (``trend=None``).
* ``msinv-shallow`` (on request): the default layer only, no coarser deeper layers tried
  (``deep_factors=()``).
* ``msinv-w500`` (on request): the two-scale windowed fit (a regional layer on 500 block
  means, then windows of about 500 stations on its residual) at any size.
* ``harmonica-cv``: ``EquivalentSources`` with depth and damping chosen by 5-fold
  cross-validation (verde's R² score) on a grid of depths (1 to 6 station spacings) and
  dampings (1e-2 to 100) that is extended beyond any edge its best lies on
  (:func:`grid_search`), the time of the search reported apart from the final fit.
* ``harmonica-trend`` (on request): the same after removing a plane fitted to the data by
  weighted least squares (``verde.Trend(degree=1)``), added back to the predictions: how
  Harmonica's users grid data that carry a regional.
* ``harmonica-gb``: ``EquivalentSourcesGB`` (gradient boosting, Soler & Uieda 2021) at the
  depth and damping the CV chose (at 100,000 stations: at Harmonica's defaults).
* ``simpeg``: SimPEG 0.26 ``SimulationEquivalentSourceLayer`` on the same layer as msinv
  (``gravity_eqs_simpeg.py``, run with ``--simpeg-python``, Python >= 3.12).

Usage::

    nice python benchmarks/gravity_eqs.py --stations 2000 --out benchmarks/results/gravity_eqs
    nice python benchmarks/gravity_eqs.py --stations 100000 --methods msinv harmonica-gb

Writes ``OUT/N<stations>.json`` (and one ``.json`` per method) and, for 2,000 stations, a figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
METHODS = ("msinv", "harmonica-cv", "harmonica-gb", "simpeg", "msinv-daub2")
#: msinv's variants: the options of ``EquivalentLayer`` (more methods, run on request).
MSINV = {
    "msinv": {},
    "msinv-daub2": {"wavelet": "daub2"},
    "msinv-upre": {"trade_off": "upre"},  # the default rule until December 2026
    "msinv-unrefined": {"max_noise_ratio": None},  # the default cell always (until 1 Dec 2026)
    "msinv-target": {"trade_off": "target"},
    "msinv-auto": {"depth": "auto"},
    "msinv-padded": {"padding": 4, "depth": "auto"},
    "msinv-w500": {"window": 500},  # the two-scale fit in windows of 500 stations
    "msinv-w1000": {"window": 1000},  # ... of 1,000 stations
    "msinv-w2000": {"window": 2000},  # ... of 2,000 stations
    "msinv-whole": {"window": False},  # one layer at any size (the default to 4,000 stations)
    "msinv-notrend": {"trend": None},  # no regional plane (the default until 2 Dec 2026)
    "msinv-shallow": {"deep_factors": ()},  # the default layer only (until 2 Dec 2026)
}
MACHINE = "shared 2-core x86_64 VM, under load from parallel work"


#: The synthetic surveys (options of ``synthetic_survey``): the benchmark's, and a second one
#: of another make (other seed, a 1,000 m disc instead of the 500 m band, twelve shallower
#: prisms) on which changes made on the first are checked.
SURVEYS = {
    "band": {"seed": 0},
    "disc": {
        "seed": 7,
        "gap_shape": "disc",
        "gap_width": 1000.0,
        "sources": 12,
        "source_tops": (150.0, 600.0),
    },
    # robustness surveys (benchmarks/gravity_eqs_variants.py): changes to the default layer are
    # checked on these too, so that they are not tuned to the two above
    "disc1500": {
        "seed": 21,
        "gap_shape": "disc",
        "gap_width": 1500.0,
        "sources": 10,
        "source_tops": (200.0, 800.0),
    },
    "band800": {"seed": 5, "gap_width": 800.0, "sources": 6, "source_tops": (250.0, 900.0)},
}
SURVEYS.update({f"band-s{k}": {"seed": 100 + k} for k in (1, 2, 3)})
SURVEYS.update({f"disc-s{k}": {**SURVEYS["disc"], "seed": 200 + k} for k in (1, 2, 3)})
#: Quiet surveys: the two benchmark surveys with less noise (σ = 0.001 and 0.0002 mGal instead
#: of 0.005), where a layer too coarse for the data shows (``max_noise_ratio``); summarised
#: apart from the ten above.
QUIET = {
    f"{name}-{label}": {**SURVEYS[name], "noise": noise}
    for name in ("band", "disc")
    for label, noise in (("quiet", 0.001), ("silent", 0.0002))
}
SURVEYS.update(QUIET)
#: A regional survey: the benchmark's band survey plus a regional field of distant sources
#: (2 mGal at the centre, 0.5 mGal/km east, -0.3 mGal/km north), as Bouguer anomalies carry;
#: summarised apart from the ten above.
REGIONAL = {"band-regional": {**SURVEYS["band"], "regional": (2.0, 0.5, -0.3)}}
SURVEYS.update(REGIONAL)
#: Deep-source surveys: prisms with tops 800-2,000 m or 1,500-3,000 m deep (the ten have
#: 150-1,000 m), band and disc gaps; where the default layer gave way to coarser, deeper ones
#: (``EquivalentLayer.deep_factors``). Summarised apart from the ten.
DEEP = {
    f"deep{tops[0]:g}-{seed}": {
        "seed": seed,
        "source_tops": tops,
        "gap_shape": shape,
        "gap_width": 500.0 if shape == "band" else 1000.0,
    }
    for tops in ((800.0, 2000.0), (1500.0, 3000.0))
    for seed, shape in ((11, "band"), (12, "disc"), (13, "band"))
}
SURVEYS.update(DEEP)
#: The surveys summarised apart from the ten.
APART = {**QUIET, **REGIONAL, **DEEP}


def prefix(n: int, survey: str) -> str:
    """File prefix of a run: ``N2000`` for the benchmark survey, ``N2000-disc`` for others."""
    return f"N{n}" if survey == "band" else f"N{n}-{survey}"


def survey_and_grids(n: int, survey: str = "band"):
    """The survey and the evaluation points (surface grid 1 m above ground, 300 m grid)."""
    from msinv.gravity.equivalent_example import synthetic_survey

    sv = synthetic_survey(n, **SURVEYS[survey])
    g = np.linspace(0, 10_000, 80)
    e, nn = (a.ravel() for a in np.meshgrid(g, g))
    surface = np.column_stack([e, nn, sv.surface(e, nn) + 1.0])
    upward = np.column_stack([e, nn, np.full(e.size, 300.0)])
    return sv, surface, upward


def synthetic_survey_small():
    """A 100-station survey to compile numba kernels before a method is timed."""
    from msinv.gravity.equivalent_example import synthetic_survey

    return synthetic_survey(100, seed=1, size=2000.0, gap_width=100.0)


def grid_search(score, depths: list, dampings: list):
    """Maximise ``score(depth, damping)`` on a grid that grows until its best is inside it.

    Starts from ``depths`` (in station spacings) x ``dampings``; while the best lies on an
    edge of the grid, the grid gains a row or column beyond that edge (depths x1.5 up or /1.5
    down, dampings x10 or /10), so that the reported optimum is a true interior optimum of
    the search (a dozen extensions at most). Returns the best (depth, damping) and all scores.
    """
    depths, dampings, scores = sorted(depths), sorted(dampings), {}
    for _ in range(12):
        for key in ((d, a) for d in depths for a in dampings):
            if key not in scores:
                scores[key] = score(*key)
                print(f"  harmonica CV depth {key[0]:g} spacings damping {key[1]:g}: "
                      f"R2 {scores[key]:.5f}", flush=True)  # fmt: skip
        best = max(scores, key=scores.get)
        grown = False
        if best[0] == depths[-1]:
            depths, grown = [*depths, depths[-1] * 1.5], True
        elif best[0] == depths[0] and depths[0] > 0.3:
            depths, grown = [depths[0] / 1.5, *depths], True
        if best[1] == dampings[-1]:
            dampings, grown = [*dampings, dampings[-1] * 10], True
        elif best[1] == dampings[0]:
            dampings, grown = [dampings[0] / 10, *dampings], True
        if not grown:
            break
    return best, scores


def run_method(method: str, n: int, folder: Path, simpeg_python: str, survey: str) -> dict:
    """Fit and predict with one method (in this process); returns times and predictions."""
    sv, surface, upward = survey_and_grids(n, survey)
    out: dict = {}
    if method.startswith("msinv"):
        from msinv.gravity.equivalent import EquivalentLayer

        layer = EquivalentLayer(**MSINV[method])
        small = synthetic_survey_small()  # compile the numba kernels outside the timing
        EquivalentLayer().fit(small.points, small.data, small.sigma).predict(small.points)
        t0, c0 = time.perf_counter(), time.process_time()
        layer.fit(sv.points, sv.data, sv.sigma)
        out["fit_seconds"] = time.perf_counter() - t0
        out["fit_cpu_seconds"] = time.process_time() - c0
        t1 = time.perf_counter()
        out["eval_surface"], out["eval_upward"] = layer.predict(surface), layer.predict(upward)
        out["predict_seconds"] = time.perf_counter() - t1
        out["phi_d"] = layer.phi_d_
        out["phi_d_compressed"] = getattr(layer, "phi_d_compressed_", None)
        out["timings"] = layer.timings_
        out["beta"], out["trade_off"] = getattr(layer, "beta_", None), layer.trade_off_
        out["noise_ratio"] = layer.noise_ratio_
        if "cell" in layer.cv_scores_:  # the refinement's score per cell width tried
            out["cell_scores"] = {f"{k:.1f}": v for k, v in layer.cv_scores_["cell"].items()}
        if "deeper" in layer.cv_scores_:  # the coarser, deeper layers tried: cell/depth (m)
            out["deeper_scores"] = {
                f"{c:.1f}/{z:.1f}": v for (c, z), v in layer.cv_scores_["deeper"].items()
            }
        if "depth" in layer.cv_scores_:
            out["depth_scores"] = {f"{k:.1f}": v for k, v in layer.cv_scores_["depth"].items()}
        if hasattr(layer, "windows_"):
            out["windows"] = len(layer.windows_)
        else:
            out["cells"] = layer.layer_.n_cells
            out["cell_m"] = layer.cell_
            out["depth_m"] = layer.depth_
        if method == "msinv-daub2":
            comp = layer.compression_
            out["compression_ratio"] = comp.shape_out[0] * comp.shape_in[0] / comp.matrix.nnz
    elif method.startswith("harmonica"):
        import harmonica as hm
        import verde as vd

        coords = tuple(sv.points.T)
        weights = np.full(sv.data.size, 1 / sv.sigma**2)
        data = sv.data
        if method == "harmonica-trend":  # the plane removed before, added back after
            trend = vd.Trend(degree=1).fit(coords[:2], sv.data, weights=weights)
            data = sv.data - trend.predict(coords[:2])
        spacing = float(np.sqrt(1e8 / sv.data.size))
        cv_file = folder / f"{prefix(n, survey)}_harmonica-cv.json"
        best = None
        if method in ("harmonica-cv", "harmonica-trend"):
            t0, c0 = time.perf_counter(), time.process_time()

            def cv_score(depth, damping):
                est = hm.EquivalentSources(depth=depth * spacing, damping=damping)
                return float(np.mean(vd.cross_val_score(est, coords, data, weights=weights)))

            best, scores = grid_search(
                cv_score, [1.0, 2.0, 3.0, 4.5, 6.0], [1e-2, 1e-1, 1, 10, 100]
            )
            out["cv_seconds"] = time.perf_counter() - t0
            out["cv_cpu_seconds"] = time.process_time() - c0
            out["cv_scores"] = [[d * spacing, a, v] for (d, a), v in sorted(scores.items())]
            best = (best[0] * spacing, best[1])
            out["depth_m"], out["damping"] = best
        elif cv_file.exists():
            prev = json.loads(cv_file.read_text())
            best = (prev["depth_m"], prev["damping"])
            out["depth_m"], out["damping"] = best
        small = synthetic_survey_small()  # compile the numba kernels outside the timing
        for cls in (hm.EquivalentSources, hm.EquivalentSourcesGB):
            cls(damping=1.0).fit(tuple(small.points.T), small.data).predict(tuple(small.points.T))
        if method in ("harmonica-cv", "harmonica-trend"):
            est = hm.EquivalentSources(depth=best[0], damping=best[1])
        elif best is not None:
            est = hm.EquivalentSourcesGB(
                depth=best[0], damping=best[1], window_size=10 * spacing, random_state=0
            )
        else:  # no cross-validation at this size (too slow): Harmonica's defaults
            est = hm.EquivalentSourcesGB(random_state=0)
            out["settings"] = "harmonica defaults"
        t0, c0 = time.perf_counter(), time.process_time()
        est.fit(coords, data, weights=weights)
        out["fit_seconds"] = time.perf_counter() - t0
        out["fit_cpu_seconds"] = time.process_time() - c0
        t1 = time.perf_counter()
        out["eval_surface"] = est.predict(tuple(surface.T))
        out["eval_upward"] = est.predict(tuple(upward.T))
        if method == "harmonica-trend":
            out["eval_surface"] = out["eval_surface"] + trend.predict(tuple(surface.T[:2]))
            out["eval_upward"] = out["eval_upward"] + trend.predict(tuple(upward.T[:2]))
        out["predict_seconds"] = time.perf_counter() - t1
    elif method == "simpeg":
        from msinv.gravity.equivalent import EquivalentLayer

        msinv_layer = EquivalentLayer()
        layer = msinv_layer.build_layer(sv.points)
        cell = float(layer.hx.min())
        src, dst = (folder / f"{prefix(n, survey)}_simpeg_{k}.npz" for k in ("in", "out"))
        np.savez(
            src, points=sv.points, data=sv.data, sigma=np.full(sv.data.size, sv.sigma),
            hx=layer.hx, hy=layer.hy, origin=np.asarray(layer.origin), top=layer.top,
            thickness=layer.thickness, alphas=np.array([cell**-2, 1.0, 1.0]),
            eval_surface=surface, eval_upward=upward,
        )  # fmt: skip
        subprocess.run(
            [simpeg_python, str(HERE / "gravity_eqs_simpeg.py"), str(src), str(dst)], check=True
        )
        with np.load(dst) as f:
            out.update({k: f[k] for k in f.files})
        out = {k: (v.item() if np.ndim(v) == 0 else v) for k, v in out.items()}
        src.unlink()
        dst.unlink()
    else:
        raise SystemExit(f"unknown method {method!r}; expected one of {METHODS}")
    if method != "simpeg":
        out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def masks(sv, surface, upward) -> dict:
    """The scored columns' points: ``{metric: (evaluation grid, mask)}`` — upward (interior),
    surface (interior, outside the gap) and the gap."""
    inner, gap = sv.interior(surface), sv.in_gap(surface)
    return {
        "rms_upward_300m": (upward, sv.interior(upward)),
        "rms_surface_interior": (surface, inner & ~gap),
        "rms_surface_gap": (surface, inner & gap),
    }


def columns(n: int, survey: str) -> dict:
    """The scored columns: ``{metric: (mask of its evaluation grid, exact field there)}``."""
    sv, surface, upward = survey_and_grids(n, survey)
    return {
        key: (mask, sv.true_gz(pts[mask]))
        for key, (pts, mask) in masks(sv, surface, upward).items()
    }


def score(out: dict, n: int, survey: str) -> dict:
    """RMS errors against the exact field: upward (interior), surface (interior, gap)."""
    res = {}
    for key, (mask, true) in columns(n, survey).items():
        res[key] = float(np.sqrt(np.mean((np.asarray(out[key_of(key)])[mask] - true) ** 2)))
    return res


def key_of(metric: str) -> str:
    return "eval_upward" if "upward" in metric else "eval_surface"


def figure(folder: Path, n: int, results: dict, survey: str) -> Path:
    """Data, msinv's fitted field, residuals and the continued field (and its error)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from msinv.gravity.equivalent import EquivalentLayer

    sv = survey_and_grids(n, survey)[0]
    layer = EquivalentLayer().fit(sv.points, sv.data, sv.sigma)
    resid = sv.data - layer.predict(sv.points)
    grid = layer.grid(spacing=125.0, region=(0, 10_000, 0, 10_000), height=1.0)
    up = layer.upward(300.0, spacing=125.0, region=(0, 10_000, 0, 10_000))
    up_err = up.gz - sv.true_gz(up.points()).reshape(up.gz.shape)
    fig, ax = plt.subplots(2, 2, figsize=(11, 9.5), constrained_layout=True)
    extent = (0, 10, 0, 10)
    a = ax[0, 0].scatter(
        sv.points[:, 0] / 1e3, sv.points[:, 1] / 1e3, c=sv.data, s=4, cmap="RdBu_r"
    )
    ax[0, 0].set_title(f"data: {sv.data.size} stations on hills, a {sv.gap_shape} gap (mGal)")
    fig.colorbar(a, ax=ax[0, 0])
    b = ax[0, 1].imshow(grid.gz, origin="lower", extent=extent, cmap="RdBu_r")
    ax[0, 1].set_title("msinv layer: field 1 m above the ground (gridded, gap filled)")
    fig.colorbar(b, ax=ax[0, 1])
    c = ax[1, 0].scatter(sv.points[:, 0] / 1e3, sv.points[:, 1] / 1e3, c=resid, s=4, cmap="RdBu_r",
                         vmin=-3 * sv.sigma, vmax=3 * sv.sigma)  # fmt: skip
    ax[1, 0].set_title(f"residuals (σ = {sv.sigma} mGal, χ²/N = {layer.phi_d_ / sv.data.size:.2f})")
    fig.colorbar(c, ax=ax[1, 0])
    d = ax[1, 1].imshow(up_err, origin="lower", extent=extent, cmap="RdBu_r")
    r = results["methods"]["msinv"]
    ax[1, 1].set_title(
        f"upward to 300 m: error vs true field (interior RMS {r['rms_upward_300m']:.4f})"
    )
    fig.colorbar(d, ax=ax[1, 1])
    for axis in ax.ravel():
        axis.set_xlabel("east (km)")
        axis.set_ylabel("north (km)")
    fig.suptitle(f"benchmarks/gravity_eqs.py --stations {n}; {MACHINE}")
    path = folder / f"{prefix(n, survey)}_figure.png"
    fig.savefig(path, dpi=90)
    return path


def table(results: dict) -> str:
    """The results as a Markdown table (RMS errors in mGal, times in s, memory in MB)."""
    rows = [
        "| method | upward 300 m | surface (interior) | gap | fit wall s | fit CPU s | peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results["methods"].items():
        cpu = r.get("fit_cpu_seconds")
        rows.append(
            f"| {name} | {r['rms_upward_300m']:.5f} | {r['rms_surface_interior']:.5f} | "
            f"{r['rms_surface_gap']:.5f} | {r['fit_seconds']:.1f} | "
            f"{'-' if cpu is None else f'{cpu:.1f}'} | {r['peak_rss_bytes'] / 1e6:.0f} |"
        )
    return "\n".join(rows) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stations", type=int, default=2000)
    p.add_argument("--survey", choices=sorted(SURVEYS), default="band")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--out", type=Path, default=HERE / "results" / "gravity_eqs")
    p.add_argument("--simpeg-python", default="/work/simpeg312/bin/python")
    p.add_argument("--run", help=argparse.SUPPRESS)  # internal: one method in this process
    p.add_argument("--no-figure", action="store_true")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    n, survey = args.stations, args.survey
    tag = prefix(n, survey)
    if args.run:
        out = run_method(args.run, n, args.out, args.simpeg_python, survey)
        np.savez(args.out / f"{tag}_{args.run}_pred.npz", **{
            k: v for k, v in out.items() if isinstance(v, np.ndarray)})  # fmt: skip
        meta = {k: v for k, v in out.items() if not isinstance(v, np.ndarray)}
        (args.out / f"{tag}_{args.run}.json").write_text(json.dumps(meta, indent=2) + "\n")
        return
    from msinv.core.provenance import provenance

    results = {
        "stations": n,
        "survey": {"name": survey, **SURVEYS[survey]},
        "machine": MACHINE,
        "command": "python benchmarks/gravity_eqs.py " + " ".join(argv or sys.argv[1:]),
        "python": platform.python_version(),
        "provenance": provenance({"stations": n, "survey": survey}),
        "methods": {},
    }
    for method in args.methods:
        meta_file = args.out / f"{tag}_{method}.json"
        if not meta_file.exists():
            with open("/proc/loadavg") as fh:
                load = fh.read().split()[0]
            print(f"[{time.strftime('%H:%M:%S')}] {method} (load {load})", flush=True)
            subprocess.run(
                [sys.executable, __file__, "--stations", str(n), "--survey", survey,
                 "--out", str(args.out), "--simpeg-python", args.simpeg_python, "--run", method],
                check=True,
            )  # fmt: skip
        meta = json.loads(meta_file.read_text())
        with np.load(args.out / f"{tag}_{method}_pred.npz") as f:
            meta.update(score({k: f[k] for k in f.files}, n, survey))
        results["methods"][method] = meta
        print(method, {k: v for k, v in meta.items() if k.startswith(("rms", "fit_", "peak"))})
    with open("/proc/loadavg") as fh:
        results["load_average_at_end"] = fh.read().split()[:3]
    if n <= 5000 and not args.no_figure and "msinv" in results["methods"]:
        results["figure"] = str(figure(args.out, n, results, survey).relative_to(HERE.parent))
    (args.out / f"{tag}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{tag}.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
