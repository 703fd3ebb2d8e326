"""Benchmark of classical inversion: FWI iteration cost, and Born LS / FWI accuracy per family.

1. Cost of one FWI gradient (misfit + adjoint-state gradient) at one frequency on the paper
   geometry: ours (one LU per evaluation, the adjoint solve reuses it) versus a naive
   implementation that factorises again for the adjoint, side by side in one run, with the
   relative difference of the two gradients. And the cost of one gradient of the FWI objective
   over all ``--freqs`` (what one L-BFGS-B evaluation costs) with the inversion set-up of
   before the compact schemes (``wide6``, published PML, ``trans="H"`` adjoint) and the
   current default (``compact4``, PML per frequency, factorised ``A^H``) and the steps
   between (:data:`GRADIENT_CONFIGS`), interleaved in one run (CPU seconds of this process,
   one BLAS thread): ``--gradient-cost-only`` runs just that and writes
   ``benchmarks/results/fwi_gradient_cost_n{n}.json``.
2. RRMSE and seconds per datum of Born least squares and of FWI with frequency continuation on
   ``--count`` data of each family (squares, triangles, Shepp-Logan; samples ``0..count-1`` of
   the dataset seed ``--seed``, as ``msinv scatter generate`` draws them). Data are simulated
   with the 8th-order stencil; inversion uses ``--scheme`` (default compact4: no inverse crime).
   RRMSE is reported against the truth and against the truth blurred by 0.5 pixel (the
   paper's evaluation target).

Usage::

    python benchmarks/fwi.py --n 80 --count 3 --iterations 50 --workers 16

writes ``benchmarks/results/fwi_n{n}.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process (set before numpy)

import numpy as np  # noqa: E402

#: The paper's classical rows (Zhang et al. 2025, Table 1): RRMSE in %.
PAPER = {
    "fwi": {"shepp_logan": 52, "triangles": 29, "squares": 39},
    "born": {"shepp_logan": 155, "triangles": 42, "squares": 163},
}
FAMILIES = ("squares", "triangles", "shepp_logan")


def iteration_cost(n: int, freq: float, order: str, repeats: int) -> dict:
    """Seconds per misfit+gradient evaluation: reused factorisation vs refactorising."""
    from msinv.scattering.dataset import sample_eta
    from msinv.scattering.geometry import Geometry
    from msinv.scattering.helmholtz import HelmholtzSolver, simulate

    g = Geometry.paper(n)
    eta = sample_eta("shepp_logan", 0, 0, n)
    d = simulate(eta, g, [freq], scheme=8, dtype=np.complex128)[0]
    model = 0.5 * eta

    def ours():
        s = HelmholtzSolver(g, model, freq, scheme=order)
        r = s.data() - d
        return s.vjp(r)

    def naive():
        s = HelmholtzSolver(g, model, freq, scheme=order)
        r = s.data() - d
        adj = HelmholtzSolver(g, model, freq, scheme=order)
        adj._u_sc = s._u_sc  # hand over the forward field; only the adjoint's LU is redone
        return adj.vjp(r)

    out = {}
    grads = {}
    for name, fun in (("reuse_lu", ours), ("refactorise", naive)):
        grads[name] = fun()  # warm-up (cached background matrix, representation matrix)
        t0 = time.perf_counter()
        for _ in range(repeats):
            fun()
        out[f"{name}_seconds"] = (time.perf_counter() - t0) / repeats
    out["ratio_naive_over_ours"] = out["refactorise_seconds"] / out["reuse_lu_seconds"]
    out["gradient_relative_difference"] = float(
        np.linalg.norm(grads["reuse_lu"] - grads["refactorise"]) / np.linalg.norm(grads["reuse_lu"])
    )
    out.update({"n": n, "freq": freq, "order": order, "repeats": repeats})
    return out


#: Inversion set-ups compared by :func:`gradient_cost`: name -> (scheme, PML of
#: ``Geometry.paper``, adjoint solve). ``"trans-H"``: the adjoint reuses the factors of A
#: (``trans="H"``, what msinv did before ``ADJOINT_FACTOR_MIN_RHS``); ``"factor-AH"``: A^H is
#: factorised and solved untransposed (the current code). The first is the old default, the
#: last the new one.
GRADIENT_CONFIGS = {
    "wide6, PML 20, trans-H (old default)": ("wide6", "published", "trans-H"),
    "compact4, PML 20, trans-H (first compact default)": ("compact4", "published", "trans-H"),
    "compact4, PML 20, factor-AH": ("compact4", "published", "factor-AH"),
    "compact4, PML per frequency, factor-AH (new default)": ("compact4", "auto", "factor-AH"),
}


def gradient_cost(n: int, freqs: list[float], repeats: int) -> dict:
    """CPU seconds of one FWI objective + gradient over ``freqs`` per inversion set-up."""
    import msinv.scattering.helmholtz as helmholtz
    from msinv.scattering.dataset import sample_eta
    from msinv.scattering.fwi import Misfit
    from msinv.scattering.geometry import Geometry
    from msinv.scattering.helmholtz import simulate

    eta = sample_eta("shepp_logan", 0, 0, n)
    data = simulate(eta, Geometry.paper(n, pml_width="published"), freqs, scheme=8)
    model = 0.5 * eta
    misfits = {
        name: Misfit(Geometry.paper(n, pml_width=pml), data, freqs, scheme=scheme)
        for name, (scheme, pml, _) in GRADIENT_CONFIGS.items()
    }
    factor_min = helmholtz.ADJOINT_FACTOR_MIN_RHS

    def evaluate(name):
        adjoint = GRADIENT_CONFIGS[name][2]
        helmholtz.ADJOINT_FACTOR_MIN_RHS = factor_min if adjoint == "factor-AH" else 10**9
        try:
            return misfits[name](model)[1]
        finally:
            helmholtz.ADJOINT_FACTOR_MIN_RHS = factor_min

    grads = {name: evaluate(name) for name in misfits}  # warm the caches
    times = {name: [] for name in misfits}
    for _ in range(repeats):
        for name in misfits:
            t0 = time.process_time()
            evaluate(name)
            times[name].append(time.process_time() - t0)
    names = list(GRADIENT_CONFIGS)
    old, new = names[0], names[-1]
    out = {
        name: {
            "scheme": GRADIENT_CONFIGS[name][0],
            "pml": GRADIENT_CONFIGS[name][1],
            "adjoint": GRADIENT_CONFIGS[name][2],
            "seconds": float(np.mean(t)),
            "runs": t,
            "ratio_old_default_over_this": float(np.mean(times[old]) / np.mean(t)),
        }
        for name, t in times.items()
    }
    out["ratio_old_over_new"] = out[old]["seconds"] / out[new]["seconds"]
    # same scheme and PML, the two adjoint paths: the same gradient up to rounding
    a, b = names[1], names[2]
    out["adjoint_paths_relative_difference"] = float(
        np.linalg.norm(grads[a] - grads[b]) / np.linalg.norm(grads[a])
    )
    out["gradient_relative_difference_old_new"] = float(
        np.linalg.norm(grads[old] - grads[new]) / np.linalg.norm(grads[old])
    )
    out.update({"n": n, "freqs": freqs, "repeats": repeats, "load_average": os.getloadavg()})
    return out


def one_datum(task: dict) -> dict:
    """Invert one datum by one method; returns RRMSEs and seconds."""
    from msinv.metrics import melr
    from msinv.scattering import invert
    from msinv.scattering.dataset import sample_eta
    from msinv.scattering.fwi import Misfit
    from msinv.scattering.geometry import Geometry
    from msinv.scattering.helmholtz import simulate
    from msinv.scattering.phantoms import blur_target

    g = Geometry.paper(task["n"])
    eta = sample_eta(task["family"], task["seed"], task["index"], task["n"])
    freqs = task["freqs"]
    data = simulate(eta, g, freqs, scheme=8)  # complex64, as stored in the datasets
    kwargs = {"iterations": task["iterations"], "scheme": task["order"]}
    if task["method"] == "born":
        kwargs["reg"] = task["born_reg"]
    else:
        kwargs["bounds"] = tuple(task["bounds"])
    t0 = time.perf_counter()
    est = invert(data, g, freqs, method=task["method"], **kwargs)
    seconds = time.perf_counter() - t0
    blurred = blur_target(eta, 0.5)
    # the data misfit needs a physical model (1 + eta > 0); a wild Born estimate has none
    physical = bool((1 + est).min() > 0)
    misfit = Misfit(g, data, freqs, scheme=task["order"]).relative_misfit(est) if physical else None
    return {
        **{k: task[k] for k in ("family", "index", "method")},
        "rrmse": float(np.linalg.norm(est - eta) / np.linalg.norm(eta)),
        "rrmse_blurred_target": float(np.linalg.norm(est - blurred) / np.linalg.norm(blurred)),
        "melr": float(melr(est, eta)),
        "data_misfit": misfit,
        "eta_min": float(est.min()),
        "seconds": seconds,
    }


def _mean(values: list) -> str:
    """Mean of the defined values, or 'n/a (k unphysical)' when some are undefined."""
    ok = [v for v in values if v is not None]
    text = f"{np.mean(ok):.3g}" if ok else "n/a"
    return text + (f" ({len(values) - len(ok)} unphysical)" if len(ok) < len(values) else "")


def _summarise(rows: list[dict]) -> dict:
    """Per (method, family): count, mean and sd of RRMSE; and the Markdown table."""
    table = [
        "| method | family | data | RRMSE (mean ± sd) | RRMSE vs blurred | MELR | data misfit | s / datum | paper RRMSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for m in ("born", "fwi"):
        for f in FAMILIES:
            sel = [r for r in rows if r["method"] == m and r["family"] == f and "rrmse" in r]
            if not sel:
                continue
            rr = np.array([r["rrmse"] for r in sel])
            summary[f"{m}/{f}"] = {
                "count": len(sel),
                "rrmse_mean": float(rr.mean()),
                "rrmse_sd": float(rr.std()),
            }
            table.append(
                f"| {m} | {f} | {len(sel)} | {100 * rr.mean():.1f}% ± {100 * rr.std():.1f} | "
                f"{100 * np.mean([r['rrmse_blurred_target'] for r in sel]):.1f}% | "
                f"{np.mean([r['melr'] for r in sel]):.3f} | "
                f"{_mean([r['data_misfit'] for r in sel])} | "
                f"{np.mean([r['seconds'] for r in sel]):.0f} | {PAPER[m][f]}% |"
            )
    return {"summary": summary, "table": "\n".join(table)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=80)
    p.add_argument("--freqs", type=float, nargs="+", default=[2.5, 5.0, 10.0])
    p.add_argument("--count", type=int, default=3, help="data per family")
    p.add_argument("--seed", type=int, default=1000, help="dataset seed of the test data")
    p.add_argument("--iterations", type=int, default=50, help="FWI L-BFGS-B iterations per stage")
    p.add_argument("--scheme", default="compact4", help="inversion scheme (data: wide8)")
    p.add_argument("--bounds", type=float, nargs=2, default=[-0.9, float("inf")])
    p.add_argument("--born-reg", default="tikhonov:auto")
    p.add_argument("--born-iterations", type=int, default=100, help="LSQR limit per solve")
    p.add_argument("--repeats", type=int, default=3, help="timing repeats of the cost test")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--skip-cost", action="store_true")
    p.add_argument(
        "--gradient-cost-only",
        action="store_true",
        help="only the per-scheme cost of one gradient over --freqs",
    )
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    from msinv.core.provenance import provenance

    result = {"provenance": provenance(vars(a) | {"out": str(a.out)}), "cpu_count": os.cpu_count()}
    if a.gradient_cost_only:
        result["gradient_cost"] = gradient_cost(a.n, a.freqs, a.repeats)
        out = (
            a.out or Path(__file__).resolve().parent / "results" / f"fwi_gradient_cost_n{a.n}.json"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result["gradient_cost"], indent=1))
        return
    if not a.skip_cost:
        result["iteration_cost"] = iteration_cost(a.n, max(a.freqs), a.scheme, a.repeats)
        print(json.dumps(result["iteration_cost"], indent=1), flush=True)
    bounds = [a.bounds[0], None if np.isinf(a.bounds[1]) else a.bounds[1]]
    tasks = [
        {
            "family": f,
            "index": i,
            "method": m,
            "n": a.n,
            "freqs": a.freqs,
            "seed": a.seed,
            "iterations": a.iterations if m == "fwi" else a.born_iterations,
            "order": a.scheme,
            "bounds": bounds,
            "born_reg": a.born_reg,
        }
        for m in ("fwi", "born")
        for f in FAMILIES
        for i in range(a.count)
    ]
    out = a.out or Path(__file__).resolve().parent / "results" / f"fwi_n{a.n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max_workers=a.workers) as pool:
        futures = {pool.submit(one_datum, t): t for t in tasks}
        for future in as_completed(futures):
            try:
                rows.append(future.result())
            except Exception as exc:  # record the failure, keep the other data
                t = futures[future]
                rows.append(
                    {**{k: t[k] for k in ("family", "index", "method")}, "error": repr(exc)}
                )
            result["wall_seconds"] = time.perf_counter() - t0
            result["rows"] = rows
            result["complete"] = len(rows) == len(tasks)
            result.update(_summarise(rows))
            out.write_text(json.dumps(result, indent=1))  # partial results survive a time-out
            print(json.dumps(rows[-1]), flush=True)
    print(result["table"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
