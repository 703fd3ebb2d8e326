"""Trial of sparse direct solvers on the default forward operator, side by side in one run.

The matrix is ``A(eta, omega)`` of :class:`~msinv.scattering.helmholtz.HelmholtzSolver` with its
defaults (the ``compact-opt`` 3 x 3 scheme, the PML chosen per frequency) on
``Geometry.paper(80)`` for one squares phantom, at each ``--freqs``; the right-hand sides are
the 80 scattered-field sources ``-omega^2 M (eta u_in)``. Each solver factorises ``A`` and
solves the 80 columns; the CPU seconds of this process (``time.process_time``, one BLAS/MKL/
OpenMP thread) are the mean of ``--repeats`` runs, and the relative residual
``||A x - b|| / ||b||`` checks the answer. Solvers that are not installed are skipped (and
listed as such):

* ``superlu-msinv``: SciPy SuperLU as msinv calls it (METIS nested dissection, symmetric mode,
  diagonal pivot threshold 0.001), complex64 and complex128;
* ``superlu-colamd``: SciPy SuperLU with its defaults (COLAMD), complex128;
* ``umfpack``: ``scikits.umfpack`` (``scikit-umfpack``), complex128; it solves one column at
  a time;
* ``mumps-<ordering>``: ``python-mumps`` (sequential MUMPS; METIS, SCOTCH where the
  library has them, and its automatic choice), complex64 and complex128;
* ``pardiso-real``: ``pypardiso`` (MKL PARDISO, real float64 only): the real equivalent
  system ``[[Re A, -Im A], [Im A, Re A]]`` of twice the size;
* ``mkl-pardiso``: ``py-mkl-pardiso`` (MKL PARDISO, complex structurally symmetric,
  complex128).

MUMPS and PARDISO can keep the symbolic analysis of a pattern and factorise new values only
(every sample of a dataset has the same pattern): ``refactor_s`` is that numeric
factorisation (SciPy's SuperLU always analyses again).

Usage::

    python benchmarks/direct_solvers.py --repeats 3

writes ``benchmarks/results/direct_solvers.json`` and prints a Markdown table.
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
import scipy.sparse as sp  # noqa: E402
from scipy.sparse.linalg import splu  # noqa: E402

from msinv.core.provenance import provenance  # noqa: E402
from msinv.scattering import Geometry, HelmholtzSolver  # noqa: E402
from msinv.scattering.helmholtz import SUPERLU_OPTIONS, incident_fields, one_blas_thread  # noqa: E402
from msinv.scattering.phantoms import squares  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def problem(freq: float, seed: int) -> dict:
    """The default operator at ``freq`` in natural and nested-dissection order, and its 80
    right-hand sides (complex128)."""
    g = Geometry.paper(80)
    eta = squares(np.random.default_rng(seed), 80)
    s = HelmholtzSolver(g, eta, freq, dtype=np.complex128)
    bg = s._bg
    a_perm = s._permuted_matrix().tocsc()
    rhs_perm = s._source(-(s.omega**2) * eta[None] * incident_fields(s.geometry, s.omega))
    inverse = np.empty_like(bg.perm)
    inverse[bg.perm] = np.arange(bg.perm.size)
    a_nat = a_perm[inverse][:, inverse].tocsc()
    rhs_nat = np.asfortranarray(rhs_perm[inverse])
    return {
        "geometry": s.geometry,
        "scheme": s.scheme.name,
        "a_perm": a_perm,
        "rhs_perm": np.asfortranarray(rhs_perm),
        "a_nat": a_nat,
        "rhs_nat": rhs_nat,
    }


def _superlu(a, b, dtype, options):
    a = a.astype(dtype)
    b = np.asfortranarray(b, dtype=dtype)
    t0 = time.process_time()
    lu = splu(a, **options)
    t1 = time.process_time()
    x = lu.solve(b)
    t2 = time.process_time()
    return t1 - t0, t2 - t1, x, lu.L.nnz + lu.U.nnz, None


def _umfpack(a, b):
    import scikits.umfpack as um

    t0 = time.process_time()
    lu = um.splu(a.astype(np.complex128).tocsc())
    t1 = time.process_time()
    x = np.column_stack([lu.solve(b[:, j]) for j in range(b.shape[1])])
    t2 = time.process_time()
    return t1 - t0, t2 - t1, x, None, None


def _mumps(a, b, dtype, ordering):
    import mumps

    a = sp.coo_matrix(a.astype(dtype))
    b = np.asfortranarray(b, dtype=dtype)
    with mumps.Context() as ctx:
        t0 = time.process_time()
        ctx.factor(a, ordering=ordering)
        t1 = time.process_time()
        x = ctx.solve(b)
        t2 = time.process_time()
        ctx.factor(a, ordering=ordering, reuse_analysis=True)
        t3 = time.process_time()
    return t1 - t0, t2 - t1, np.asarray(x).reshape(b.shape), None, t3 - t2


def _pardiso_real(a, b):
    import pypardiso

    a = sp.csr_matrix(a.astype(np.complex128))
    big = sp.bmat([[a.real, -a.imag], [a.imag, a.real]], format="csr")
    rb = np.vstack([b.real, b.imag])
    solver = pypardiso.PyPardisoSolver()
    t0 = time.process_time()
    solver.factorize(big)
    t1 = time.process_time()
    xr = solver.solve(big, rb)
    t2 = time.process_time()
    n = a.shape[0]
    return t1 - t0, t2 - t1, xr[:n] + 1j * xr[n:], None, None


def _mkl_pardiso(a, b):
    import pymklpardiso as pp

    a = sp.csr_matrix(a.astype(np.complex128))
    a.sort_indices()
    b = np.asarray(b, dtype=np.complex128)
    t0 = time.process_time()
    solver = pp.PardisoSolver(a, pp.MTYPE_COMPLEX_STRUCT_SYM)
    t1 = time.process_time()
    x = solver.solve(b)
    t2 = time.process_time()
    solver.refactor(a.data)
    t3 = time.process_time()
    return t1 - t0, t2 - t1, np.asarray(x).reshape(b.shape), None, t3 - t2


def candidates(p: dict) -> dict:
    """name -> (module needed or None, zero-argument runner)."""
    c64, c128 = np.complex64, np.complex128
    default = {"permc_spec": "COLAMD"}
    out = {
        "superlu-msinv complex64": (
            None,
            lambda: _superlu(p["a_perm"], p["rhs_perm"], c64, SUPERLU_OPTIONS),
            "perm",
        ),
        "superlu-msinv complex128": (
            None,
            lambda: _superlu(p["a_perm"], p["rhs_perm"], c128, SUPERLU_OPTIONS),
            "perm",
        ),
        "superlu-colamd complex128": (
            None,
            lambda: _superlu(p["a_nat"], p["rhs_nat"], c128, default),
            "nat",
        ),
        "umfpack complex128": (
            "scikits.umfpack",
            lambda: _umfpack(p["a_nat"], p["rhs_nat"]),
            "nat",
        ),
        "mkl-pardiso complex128": (
            "pymklpardiso",
            lambda: _mkl_pardiso(p["a_nat"], p["rhs_nat"]),
            "nat",
        ),
        "pardiso-real float64 (2N real system)": (
            "pypardiso",
            lambda: _pardiso_real(p["a_nat"], p["rhs_nat"]),
            "nat",
        ),
    }
    for ordering in _mumps_orderings():
        for dtype in (c64, c128):
            out[f"mumps-{ordering} {np.dtype(dtype).name}"] = (
                "mumps",
                lambda o=ordering, d=dtype: _mumps(p["a_nat"], p["rhs_nat"], d, o),
                "nat",
            )
    return out


def _mumps_orderings() -> list[str]:
    """The MUMPS orderings tried: METIS and SCOTCH where the library has them, and "auto"."""
    try:
        import mumps
    except ImportError:
        return ["auto"]  # listed, then skipped as not installed
    return [o for o in ("metis", "scotch", "auto") if o in mumps.possible_orderings()]


def available(module: str | None) -> bool:
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:  # also a build for another NumPy ABI
        return False


def run(freqs: list[float], repeats: int, seed: int) -> dict:
    result = {"load_average_start": os.getloadavg(), "freqs": {}, "skipped": []}
    for f in freqs:
        p = problem(f, seed)
        g = p["geometry"]
        row = {
            "grid": f"{g.n_total} x {g.n_total}",
            "pml_width": g.pml_width,
            "scheme": p["scheme"],
            "nnz_A": int(p["a_nat"].nnz),
            "rhs": int(p["rhs_nat"].shape[1]),
            "solvers": {},
        }
        for name, (module, runner, order) in candidates(p).items():
            if not available(module):
                if module not in result["skipped"]:
                    result["skipped"].append(module)
                continue
            a, b = (p["a_perm"], p["rhs_perm"]) if order == "perm" else (p["a_nat"], p["rhs_nat"])
            runs = []
            with one_blas_thread():
                for _ in range(repeats):
                    tf, ts, x, nnz, tr = runner()
                    runs.append((tf, ts, tr))
            res = np.linalg.norm(a @ x - b) / np.linalg.norm(b)
            row["solvers"][name] = {
                "factorise_s": float(np.mean([r[0] for r in runs])),
                "solve_80_rhs_s": float(np.mean([r[1] for r in runs])),
                "total_s": float(np.mean([r[0] + r[1] for r in runs])),
                "refactor_s": None if runs[0][2] is None else float(np.mean([r[2] for r in runs])),
                "runs": runs,
                "nnz_factors": nnz,
                "relative_residual": float(res),
            }
            print(f"f={f} {name}: {json.dumps(row['solvers'][name])}", file=sys.stderr, flush=True)
        result["freqs"][str(f)] = row
    result["load_average_end"] = os.getloadavg()
    return result


def markdown(result: dict, command: str, machine: str) -> str:
    lines = [
        f"Machine: {machine}. Command: `{command}`. Load average "
        f"{result['load_average_start'][0]:.1f} at the start, "
        f"{result['load_average_end'][0]:.1f} at the end. Not installed: "
        f"{', '.join(result['skipped']) or 'none'}.",
        "",
        "| f | grid | solver | factorise (s) | solve 80 RHS (s) | total (s) | numeric refactorisation (s) | nnz(L+U) | residual |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f, row in result["freqs"].items():
        for name, r in row["solvers"].items():
            nnz = f"{r['nnz_factors'] / 1e6:.2f} M" if r["nnz_factors"] else "-"
            lines.append(
                f"| {f} | {row['grid']} | {name} | {r['factorise_s']:.3f} | "
                f"{r['solve_80_rhs_s']:.3f} | {r['total_s']:.3f} | "
                + ("-" if r["refactor_s"] is None else f"{r['refactor_s']:.3f}")
                + f" | {nnz} | "
                f"{r['relative_residual']:.1e} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--freqs", type=float, nargs="+", default=[2.5, 10.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    command = "python benchmarks/direct_solvers.py " + " ".join(sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} cores ({platform.node()})"
    result = run(args.freqs, args.repeats, args.seed)
    result["provenance"] = provenance(
        {"command": command.strip(), "machine": machine, **vars(args)}
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "direct_solvers.json").write_text(json.dumps(result, indent=2))
    print(markdown(result, command.strip(), machine))


if __name__ == "__main__":
    main()
