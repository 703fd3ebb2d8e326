"""Accuracy of the compact schemes: disk oracle, smooth media, jumps (one run).

For ``compact4``, ``compact-opt``, ``compact6`` and ``wide8`` (the orders of convergence are
measured by ``tests/scattering/test_compact.py``):

* **disk oracle** on ``Geometry.paper(80, pml_width="published")`` (the 20-node PML): worst
  relative data error of three pixel-averaged disks at f = 2.5, 5, 10 (budget 1 %, 1 %, 2 %),
  complex64;
* **smooth media** on the same geometry (16 sources): relative data error against the
  FFT Lippmann-Schwinger solver (spectral on smooth media) for a Gaussian bump and a pair of
  bumps of opposite signs, complex128;
* **jumps**: ``compact6`` as built (derivatives of ``k^2`` by centred differences everywhere,
  across the edges of a piecewise-constant ``eta`` too) against the same scheme with the
  derivative terms dropped everywhere (``compact6-noderiv``, defined here only: for a
  piecewise-constant ``eta`` that is the same as dropping them at jumps), on the disk oracle.

Usage::

    python benchmarks/scatter_schemes.py

writes ``benchmarks/results/scatter_schemes.json`` and prints a Markdown summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

from msinv.core.provenance import provenance  # noqa: E402
from msinv.scattering import Geometry, simulate  # noqa: E402
from msinv.scattering.analytic import (  # noqa: E402
    disk_data,
    pixel_disk,
)
from msinv.scattering.lippmann_schwinger import lippmann_schwinger_data  # noqa: E402
from msinv.scattering.schemes import SCHEMES, Compact6Scheme  # noqa: E402

FREQS = (2.5, 5.0, 10.0)
DISKS = [(0.2, 0.2, (0.0, 0.0)), (0.3, 0.1, (0.05, -0.08)), (0.15, 0.4, (-0.1, 0.12))]
COMPACT = ("compact4", "compact-opt", "compact6")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclasses.dataclass(frozen=True)
class _NoDerivatives(Compact6Scheme):
    """``compact6`` without the derivative terms of ``k^2`` (the ``k^6`` term kept)."""

    def coefficients(self, eta, geometry, omega):
        out = super().coefficients(eta, geometry, omega)
        out[1:] = 0
        return out


NODERIV = _NoDerivatives("compact6-noderiv", 4, 1 / 6, 1 / 12, 7 / 360, 1 / 240)


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def disk_errors(scheme: str) -> dict:
    g = Geometry.paper(80, pml_width="published")
    worst = dict.fromkeys(map(str, FREQS), 0.0)
    for radius, contrast, centre in DISKS:
        data = simulate(pixel_disk(g, radius, contrast, centre), g, FREQS, scheme=scheme)
        for d, f in zip(data, FREQS, strict=True):
            err = _rel(d, disk_data(g, f, radius, contrast, centre))
            worst[str(f)] = max(worst[str(f)], err)
    return worst


def smooth_media() -> dict:
    g = dataclasses.replace(Geometry.paper(80, pml_width="published"), n_sources=16)
    xx, yy = np.meshgrid(g.x, g.y)

    def bump(amp, width, cx, cy):
        return amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2))

    media = {
        "bump 0.3, width 0.1": bump(0.3, 0.1, 0.05, -0.03),
        "bumps +0.5 (width 0.06), -0.2 (width 0.08)": bump(0.5, 0.06, 0.12, 0.1)
        + bump(-0.2, 0.08, -0.15, -0.1),
    }
    out = {}
    for name, eta in media.items():
        ref = [lippmann_schwinger_data(eta, g, f) for f in FREQS]
        out[name] = {}
        for scheme in (*COMPACT, "wide8"):
            data = simulate(eta, g, FREQS, scheme=scheme, dtype=np.complex128)
            out[name][scheme] = {
                str(f): _rel(d, r) for f, d, r in zip(FREQS, data, ref, strict=True)
            }
        print(name, json.dumps(out[name]), file=sys.stderr, flush=True)
    return out


def run() -> dict:
    SCHEMES.setdefault(NODERIV.name, NODERIV)  # this process only: simulate takes names
    result = {"disk": {}, "load_average_start": os.getloadavg()}
    for scheme in (*COMPACT, NODERIV.name, "wide8"):
        t0 = time.process_time()
        result["disk"][scheme] = disk_errors(scheme)
        print(scheme, json.dumps(result["disk"][scheme]), time.process_time() - t0, file=sys.stderr)
    result["smooth"] = smooth_media()
    result["load_average_end"] = os.getloadavg()
    return result


def markdown(result: dict, command: str, machine: str) -> str:
    pct = " / ".join
    lines = [
        f"Machine: {machine}. Command: `{command}`.",
        "",
        "Disk oracle, paper(80), worst of three disks, complex64, f = 2.5 / 5 / 10:",
        "",
        "| scheme | error |",
        "|---|---|",
    ]
    for scheme, e in result["disk"].items():
        lines.append(f"| {scheme} | " + pct(f"{100 * e[str(f)]:.2f}%" for f in FREQS) + " |")
    for name, table in result["smooth"].items():
        lines += [
            "",
            f"Smooth medium ({name}), paper(80), 16 sources, complex128, against FFT "
            "Lippmann-Schwinger, f = 2.5 / 5 / 10:",
            "",
            "| scheme | error |",
            "|---|---|",
        ]
        for scheme, e in table.items():
            lines.append(f"| {scheme} | " + pct(f"{100 * e[str(f)]:.3f}%" for f in FREQS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    command = "python benchmarks/scatter_schemes.py " + " ".join(sys.argv[1:])
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores ({platform.node()})"
    )
    result = run()
    result["provenance"] = provenance({"command": command.strip(), "machine": machine})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scatter_schemes.json").write_text(json.dumps(result, indent=2))
    print(markdown(result, command.strip(), machine))


if __name__ == "__main__":
    main()
