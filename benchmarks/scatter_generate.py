"""Benchmark of dataset generation: seconds per (sample, frequency) on one core, and accuracy.

Side by side in one run, on the paper acquisition (80 x 80, 80 sources, 80 receivers,
f = 2.5, 5, 10) and on the same ``--samples`` squares phantoms:

* ``naive``: the straight port, SciPy SuperLU with default options (COLAMD, partial pivoting),
  the 8th-order wide stencil, complex128, published 20-node PML;
* msinv's ``simulate`` (METIS nested dissection + SuperLU symmetric mode, complex64, one BLAS
  thread) in several configurations: ``paper-pml/wide8`` (the default before the compact
  schemes), ``pml10/auto`` (the fastest documented option before them), the compact 3 x 3
  schemes with the published 20-node PML (the first compact default), a 10-node PML (the
  CLI's first compact default) and the PML chosen per frequency (``auto-pml``: the defaults of
  ``simulate`` and ``msinv scatter generate`` with ``Geometry.paper(80)``), and every other
  registered compact scheme (``compact4``, ``compact6``: sixth order for variable k) with the
  PML chosen per frequency.

Every configuration is also checked against the disk series (pixel-averaged disks; the
acceptance budget is 1 % at f = 2.5 and 5, 2 % at f = 10). Times are CPU seconds of this process
(``time.process_time``) with one BLAS thread, through the public ``simulate`` (assembly,
factorisation, solves, receivers: everything but the per-frequency caches, warmed first); the
projection for the paper's dataset is ``t * 3 * 21000 / 3600`` core-hours. On a machine shared
with other jobs absolute times are inflated: compare the ratios measured in the same run (the
load average is recorded).

Usage::

    python benchmarks/scatter_generate.py --samples 3

writes ``benchmarks/results/scatter_generate.json`` and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
from scipy.sparse.linalg import splu  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from msinv.core.provenance import provenance  # noqa: E402
from msinv.scattering import Geometry, HelmholtzSolver, simulate  # noqa: E402
from msinv.scattering.analytic import disk_data, pixel_disk  # noqa: E402
from msinv.scattering.helmholtz import _background, incident_fields  # noqa: E402
from msinv.scattering.phantoms import squares  # noqa: E402
from msinv.scattering.receivers import representation_matrix  # noqa: E402
from msinv.scattering.schemes import SCHEMES  # noqa: E402
from msinv.scattering.spec import DEFAULT_SCHEME  # noqa: E402

FREQS = (2.5, 5.0, 10.0)
BUDGET = {2.5: 0.01, 5.0: 0.01, 10.0: 0.02}
DISKS = [(0.2, 0.2, (0.0, 0.0)), (0.3, 0.1, (0.05, -0.08)), (0.15, 0.4, (-0.1, 0.12))]
N_SAMPLES_PAPER = 21000
RESULTS = Path(__file__).resolve().parent / "results"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Scattering forward solver"

#: name -> (pml_width: "published" (20 nodes), an integer, or "auto" (chosen per frequency,
#: the default of ``Geometry.paper``), scheme); all complex64.
CONFIGS = {
    "paper-pml/wide8 (old default)": ("published", "wide8"),
    "pml10/auto (old best)": (10, "auto"),
    "paper-pml/compact-opt (first compact default)": ("published", "compact-opt"),
    "pml10/compact-opt (first compact CLI default)": (10, "compact-opt"),
    f"auto-pml/{DEFAULT_SCHEME} (new default)": ("auto", DEFAULT_SCHEME),
    **{
        f"auto-pml/{name}": ("auto", name)
        for name in sorted(SCHEMES)
        if name.startswith("compact") and name != DEFAULT_SCHEME
    },
}


def naive_data(geometry: Geometry, eta: np.ndarray, freq: float) -> np.ndarray:
    """The straight port: default SuperLU, order 8, complex128, representation receivers."""
    solver = HelmholtzSolver(geometry, eta, freq, scheme=8, dtype=np.complex128)
    a = solver.matrix
    nodes = _background(solver.geometry, solver.omega, solver.scheme).nodes
    u_in = incident_fields(geometry, solver.omega)
    rhs = np.zeros((a.shape[0], len(u_in)), dtype=np.complex128)
    rhs[nodes] = (-(solver.omega**2) * eta[None] * u_in).reshape(len(u_in), -1).T
    u_sc = splu(a).solve(rhs)[nodes].T.reshape(u_in.shape)
    eta_u = eta[None] * (u_in + u_sc)
    return representation_matrix(geometry, solver.omega) @ eta_u.reshape(len(u_in), -1).T


def ours_data(geometry, eta, freq, scheme):
    return simulate(eta, geometry, [freq], scheme=scheme)[0]


def timed(fn, *args) -> tuple[float, np.ndarray]:
    t0 = time.process_time()
    out = fn(*args)
    return time.process_time() - t0, out


def geometry_of(pml_width):
    return Geometry.paper(80, pml_width=pml_width)


def run(samples: int, seed: int, readers: bool) -> dict:
    rng = np.random.default_rng(seed)
    etas = [squares(rng, 80) for _ in range(samples)]
    result = {"configs": {}, "naive": {}, "load_average_start": os.getloadavg()}
    with threadpool_limits(limits=1):
        # Warm the per-frequency caches (operator, ordering, incident fields, receiver matrix):
        # built once per frequency, amortised over a dataset.
        for pml, scheme in CONFIGS.values():
            for f in FREQS:
                ours_data(geometry_of(pml), etas[0], f, scheme)
        times = []
        for eta in etas[: max(1, min(samples, 2))]:
            for f in FREQS:
                t, _ = timed(naive_data, Geometry.paper(80, pml_width="published"), eta, f)
                times.append(t)
                print(f"naive f={f}: {t:.2f} s", file=sys.stderr, flush=True)
        result["naive"] = {"seconds_per_sample_freq": float(np.mean(times)), "n_timed": len(times)}
        # Interleave the configurations sample by sample, so that a change of the machine's
        # load during the run affects them alike.
        times = {name: [] for name in CONFIGS}
        for eta in etas:
            for f in FREQS:
                for name, (pml, scheme) in CONFIGS.items():
                    t, _ = timed(ours_data, geometry_of(pml), eta, f, scheme)
                    times[name].append(t)
        for name, (pml, scheme) in CONFIGS.items():
            g = geometry_of(pml)
            errors = {}
            for f in FREQS:
                errors[str(f)] = max(
                    float(
                        np.linalg.norm(
                            ours_data(g, pixel_disk(g, r, c, ctr), f, scheme)
                            - disk_data(g, f, r, c, ctr)
                        )
                        / np.linalg.norm(disk_data(g, f, r, c, ctr))
                    )
                    for r, c, ctr in DISKS
                )
            sec = float(np.mean(times[name]))
            result["configs"][name] = {
                "pml_width": {str(f): g.at(f).pml_width for f in FREQS},
                "pml_strength": {str(f): round(g.at(f).pml_strength, 2) for f in FREQS},
                "scheme": scheme,
                "dtype": "complex64",
                "seconds_per_sample_freq": sec,
                "seconds_per_freq": {
                    str(f): float(np.mean(times[name][k :: len(FREQS)]))
                    for k, f in enumerate(FREQS)
                },
                "core_hours_21000x3": sec * 3 * N_SAMPLES_PAPER / 3600,
                "speedup_vs_naive": result["naive"]["seconds_per_sample_freq"] / sec,
                "max_disk_error": errors,
                "within_disk_budget": all(errors[str(f)] <= BUDGET[f] for f in FREQS),
            }
            print(name, json.dumps(result["configs"][name]), file=sys.stderr, flush=True)
    old = result["configs"]["paper-pml/wide8 (old default)"]["seconds_per_sample_freq"]
    for c in result["configs"].values():
        c["speedup_vs_old_default"] = old / c["seconds_per_sample_freq"]
    naive_sec = result["naive"]["seconds_per_sample_freq"]
    result["naive"]["core_hours_21000x3"] = naive_sec * 3 * N_SAMPLES_PAPER / 3600
    result["load_average_end"] = os.getloadavg()
    if readers:
        g = Geometry.paper(80, pml_width="published")
        r, c, ctr = DISKS[0]
        eta = pixel_disk(g, r, c, ctr)
        table = {}
        for reader in ("representation", "cubic", "bilinear"):
            table[reader] = {}
            for f in FREQS:
                d = HelmholtzSolver(
                    g, eta, f, scheme=8, dtype=np.complex128, receiver_interpolation=reader
                ).data()
                ref = disk_data(g, f, r, c, ctr)
                table[reader][str(f)] = float(np.linalg.norm(d - ref) / np.linalg.norm(ref))
        result["readers_disk_error"] = {"disk": [r, c, list(ctr)], "scheme": "wide8", **table}
    return result


def markdown(result: dict, command: str, machine: str) -> str:
    naive = result["naive"]
    lines = [
        SECTION,
        "",
        f"Machine: {machine}. Command: `{command}`. CPU seconds of one process with one BLAS "
        "thread (`time.process_time`), per (sample, frequency) = assembly + one factorisation "
        "+ 80 right-hand sides + receivers, through `simulate`; configurations interleaved "
        "sample by sample. The machine was shared with other jobs (load average "
        f"{result['load_average_start'][0]:.1f} at the start, {result['load_average_end'][0]:.1f} "
        "at the end, on 2 cores), which inflates absolute times: compare the ratios measured in "
        "the same run. Projection: 21,000 samples x 3 frequencies.",
        "",
        "| configuration | PML nodes f=2.5 / 5 / 10 | s / sample-freq | projected core-h | vs naive | vs old default | max disk error f=2.5 / 5 / 10 | within budget |",
        "|---|---|---|---|---|---|---|---|",
        f"| naive (SuperLU defaults, wide8, complex128) | 20 / 20 / 20 | "
        f"{naive['seconds_per_sample_freq']:.2f} | {naive['core_hours_21000x3']:.1f} | 1.0x | - "
        "| - | - |",
    ]
    for name, c in result["configs"].items():
        e = c["max_disk_error"]
        lines.append(
            f"| {name} ({c['dtype']}) | "
            + " / ".join(str(c["pml_width"][str(f)]) for f in FREQS)
            + f" | {c['seconds_per_sample_freq']:.2f} | "
            f"{c['core_hours_21000x3']:.1f} | {c['speedup_vs_naive']:.1f}x | "
            f"{c['speedup_vs_old_default']:.1f}x | "
            + " / ".join(f"{100 * e[str(f)]:.2f}%" for f in FREQS)
            + f" | {'yes' if c['within_disk_budget'] else 'no'} |"
        )
    if "readers_disk_error" in result:
        rd = result["readers_disk_error"]
        lines += [
            "",
            f"Receiver readers against the disk series (paper(80), wide8, complex128, disk "
            f"radius {rd['disk'][0]}, contrast {rd['disk'][1]}), relative data error at f = 2.5 / 5 / 10:",
            "",
            "| reader | error |",
            "|---|---|",
        ]
        for reader in ("representation", "cubic", "bilinear"):
            lines.append(
                f"| {reader} | "
                + " / ".join(f"{100 * rd[reader][str(f)]:.2f}%" for f in FREQS)
                + " |"
            )
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (other sections untouched)."""
    doc = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    if SECTION in doc:
        start = doc.index(SECTION)
        nxt = doc.find("\n## ", start + len(SECTION))
        end = len(doc) if nxt < 0 else nxt + 1
        doc = doc[:start] + text + ("\n" if nxt >= 0 else "") + doc[end:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOCS.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=3, help="squares phantoms timed (>= 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-readers", action="store_true", help="skip the reader comparison")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="also replace this benchmark's section of docs/benchmarks.md",
    )
    args = parser.parse_args()
    if args.samples < 1:
        parser.error("--samples must be >= 1")
    command = "python benchmarks/scatter_generate.py " + " ".join(sys.argv[1:])
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores ({platform.node()})"
    )
    result = run(args.samples, args.seed, not args.no_readers)
    result["provenance"] = provenance(
        {"command": command.strip(), "machine": machine, "samples": args.samples, "seed": args.seed}
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scatter_generate.json").write_text(json.dumps(result, indent=2))
    text = markdown(result, command.strip(), machine)
    print(text)
    if args.update_docs:
        write_section(text)


if __name__ == "__main__":
    main()
