"""Benchmark of the batched PyTorch forward solver (FFT Lippmann--Schwinger + GMRES).

One unattended run on one device (default: CUDA when available) measures, section by section:

1. ``disk_oracle``: relative data error against the disk series for the three disks of the FD
   solver's tests at f = 2.5, 5, 10 (scaled by ``(n - 1) / 79`` when ``--n`` is not 80, so the
   points per wavelength stay the paper's), with the default tolerance; plus the solve's own
   error (against a complex128 solve at rtol 1e-10) and the GMRES iterations;
2. ``fd_agreement``: the same eta (``--fd-samples`` draws of squares, Shepp--Logan, triangles)
   through this solver and through ``msinv.scattering.simulate`` with its defaults (FD, order 8,
   complex64), the FD reference computed on the CPU inside the script;
3. ``throughput``: ``--samples`` draws of each family in batches of ``--batch`` samples (all
   frequencies and sources of a batch in one call, after a warm-up call): samples/s, the
   projected time for the paper's 21,500 samples per family, iterations per frequency, peak
   GPU memory (squares right after the disk oracle, the other families last);
4. ``store``: ``msinv scatter generate``'s path (eta drawn on the CPU, zarr writes) for
   ``--store-samples`` samples of squares into a temporary store: end-to-end samples/s.

Every section is skipped (and said so) when ``--max-seconds`` would be exceeded; the JSON is
rewritten after each section, so a run cut short keeps what it measured. Usage::

    python benchmarks/gpu_solver.py                      # GPU, paper size
    python benchmarks/gpu_solver.py --device cpu --n 16 --samples 4   # rehearsal, < 1 min

writes ``--out`` (default ``benchmarks/results/gpu_solver.json``) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from msinv.accel.lippmann_schwinger import DEFAULT_RESTART, DEFAULT_RTOL, solve
from msinv.core.provenance import provenance
from msinv.scattering import Geometry, simulate
from msinv.scattering.analytic import disk_data, pixel_disk
from msinv.scattering.dataset import generate, sample_eta

PAPER_FREQS = (2.5, 5.0, 10.0)
BUDGET = (0.01, 0.01, 0.02)
DISKS = [(0.2, 0.2, (0.0, 0.0)), (0.3, 0.1, (0.05, -0.08)), (0.15, 0.4, (-0.1, 0.12))]
FAMILIES = ("squares", "shepp_logan", "triangles")
PAPER_SAMPLES = 21500
OUT = Path(__file__).resolve().parent / "results" / "gpu_solver.json"


class OutOfTime(Exception):
    """The --max-seconds guard fired."""


def _rel(a, b, axis=None):
    return np.linalg.norm(a - b, axis=axis) / np.linalg.norm(b, axis=axis)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Run:
    """Shared state of one benchmark run: arguments, clock, results, writer."""

    def __init__(self, args):
        self.args = args
        self.start = time.perf_counter()
        self.geometry = Geometry.paper(args.n)
        self.freqs = [f * (args.n - 1) / 79 for f in PAPER_FREQS]
        self.options = {"rtol": args.rtol, "restart": args.restart, "device": args.device}
        if args.memory_gib:
            self.options["memory_bytes"] = int(args.memory_gib * 2**30)
        self.results = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": _machine(args.device),
            "config": {
                "n": args.n,
                "freqs": self.freqs,
                "paper_freqs": list(PAPER_FREQS),
                "rtol": args.rtol,
                "restart": args.restart,
                "dtype": "complex64",
                "batch": args.batch,
                "max_seconds": args.max_seconds,
            },
            "provenance": provenance(vars(args)),
            "skipped": [],
        }

    def left(self) -> float:
        return self.args.max_seconds - (time.perf_counter() - self.start)

    def section(self, name, fn, estimate: float = 0.0):
        if self.left() < estimate:
            self.results["skipped"].append(f"{name}: {self.left():.0f} s left of --max-seconds")
            return
        t0 = time.perf_counter()
        try:
            self.results[name] = fn()
        except OutOfTime:
            self.results["skipped"].append(f"{name}: stopped by --max-seconds")
        spent = self.results.setdefault("section_seconds", {})
        spent[name] = round(spent.get(name, 0) + time.perf_counter() - t0, 2)
        self.write()

    def write(self) -> None:
        self.results["elapsed_s"] = round(time.perf_counter() - self.start, 2)
        out = Path(self.args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results, indent=2))
        os.replace(tmp, out)


def _machine(device: str) -> dict:
    info = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
        }
    return info


def disk_oracle(run: Run) -> dict:
    g = run.geometry
    etas = np.stack([pixel_disk(g, *disk) for disk in DISKS])
    result = solve(etas, g, run.freqs, **run.options)
    tight = solve(etas, g, run.freqs, dtype=np.complex128, device=run.args.device, rtol=1e-10)
    errors = [
        [float(_rel(result.data[i, k], disk_data(g, f, *disk))) for k, f in enumerate(run.freqs)]
        for i, disk in enumerate(DISKS)
    ]
    worst = np.max(errors, axis=0)
    return {
        "disks": [list(map(str, d)) for d in DISKS],
        "errors": errors,
        "worst_per_freq": worst.tolist(),
        "budget_per_freq": list(BUDGET),
        "within_budget": bool(np.all(worst <= BUDGET)),
        "solve_error_vs_complex128_rtol1e-10": float(
            _rel(result.data, tight.data.astype(np.complex64))
        ),
        "iterations_max_per_freq": result.iterations.max(axis=(0, 2)).tolist(),
        "residual_max": float(result.residual.max()),
        "seconds": round(result.seconds, 3),
    }


def fd_agreement(run: Run) -> dict:
    g, count = run.geometry, run.args.fd_samples
    out = {}
    for family in FAMILIES:
        if run.left() < 5:
            raise OutOfTime
        eta = np.stack([sample_eta(family, 0, i, g.n) for i in range(count)])
        eta = eta.astype(np.float32).astype(np.float64)  # as stored
        t0 = time.perf_counter()
        fd = simulate(eta, g, run.freqs)
        fd_seconds = time.perf_counter() - t0
        ours = solve(eta, g, run.freqs, **run.options)
        err = _rel(ours.data, fd, axis=(2, 3)).max(axis=0)
        out[family] = {
            "samples": count,
            "max_error_per_freq": err.tolist(),
            "within_budget": bool(np.all(err <= BUDGET)),
            "iterations_max_per_freq": ours.iterations.max(axis=(0, 2)).tolist(),
            "fd_cpu_seconds": round(fd_seconds, 3),
            "torch_seconds": round(ours.seconds, 3),
        }
    out["note"] = (
        "FD reference: msinv.scattering.simulate defaults (order 8, complex64) on the CPU of "
        "this machine; error = max over samples of ||ours - fd|| / ||fd|| per frequency"
    )
    return out


def throughput(run: Run, families) -> dict:
    g, args = run.geometry, run.args
    out = dict(run.results.get("throughput", {}))
    if not out:
        warm = np.stack([sample_eta("squares", 99, i, g.n) for i in range(min(2, args.batch))])
        solve(warm, g, run.freqs, **run.options)  # CUDA context, cuFFT plans, caches
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
    for family in families:
        done, seconds, iters = 0, 0.0, []
        while done < args.samples:
            if run.left() < 2 * (seconds / max(done, 1)) * args.batch + 5:
                break
            count = min(args.batch, args.samples - done)
            eta = np.stack([sample_eta(family, 1, done + i, g.n) for i in range(count)])
            eta = eta.astype(np.float32).astype(np.float64)
            _sync(args.device)
            t0 = time.perf_counter()
            result = solve(eta, g, run.freqs, **run.options)
            _sync(args.device)
            seconds += time.perf_counter() - t0
            done += count
            iters.append(result.iterations)
            chunking = (result.chunks, result.columns_per_chunk)
        if not done:
            run.results["skipped"].append(f"throughput/{family}: no time left")
            continue
        it = np.concatenate(iters)
        rate = done / seconds
        out[family] = {
            "samples": done,
            "seconds": round(seconds, 3),
            "samples_per_s": round(rate, 3),
            "projected_seconds_21500": round(PAPER_SAMPLES / rate, 1),
            "iterations_mean_per_freq": it.mean(axis=(0, 2)).round(2).tolist(),
            "iterations_max_per_freq": it.max(axis=(0, 2)).tolist(),
            "gmres_chunks_per_call": chunking[0],
            "columns_per_chunk": chunking[1],
        }
        run.results["throughput"] = out
        run.write()
    if args.device.startswith("cuda"):
        out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    out["note"] = "solver only (eta drawn beforehand), all frequencies and sources per call"
    return out


def store(run: Run) -> dict:
    g, args = run.geometry, run.args
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zarr"
        t0 = time.perf_counter()
        generate(
            path,
            family="squares",
            count=args.store_samples,
            geometry=g,
            freqs=run.freqs,
            seed=0,
            chunk=16,
            progress=False,
            backend="torch",
            simulator_options={"rtol": args.rtol, "restart": args.restart},
            device=args.device,
            batch=args.batch,
        )
        seconds = time.perf_counter() - t0
    rate = args.store_samples / seconds
    return {
        "samples": args.store_samples,
        "seconds": round(seconds, 3),
        "samples_per_s": round(rate, 3),
        "projected_seconds_21500": round(PAPER_SAMPLES / rate, 1),
        "note": "msinv.scattering.dataset.generate end to end (eta on the CPU, zarr writes)",
    }


def main(argv=None) -> dict:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if cuda else "cpu", help="cpu, cuda, cuda:k")
    p.add_argument("--n", type=int, default=80, help="grid size (paper: 80)")
    p.add_argument("--samples", type=int, default=1024 if cuda else 4, help="per family")
    p.add_argument("--batch", type=int, default=256, help="samples per solver call")
    p.add_argument("--fd-samples", type=int, default=2, help="FD references per family")
    p.add_argument("--store-samples", type=int, default=None, help="default: --samples")
    p.add_argument("--memory-gib", type=float, default=None, help="GMRES memory budget")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL)
    p.add_argument("--restart", type=int, default=DEFAULT_RESTART)
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 1 with --device cpu)"
    )
    p.add_argument("--max-seconds", type=float, default=480.0, help="time guard for the run")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.store_samples is None:
        args.store_samples = args.samples
    if args.threads is None and args.device == "cpu":
        args.threads = 1  # torch's thread pool only contends on a shared CPU
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run(args)

    def alarm(*_):
        raise OutOfTime

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(max(1, int(args.max_seconds)))
    try:
        # most important first: accuracy, speed on one family, agreement, the store path, the
        # other families' speed
        run.section("disk_oracle", lambda: disk_oracle(run), estimate=5)
        run.section("throughput", lambda: throughput(run, FAMILIES[:1]), estimate=10)
        run.section("fd_agreement", lambda: fd_agreement(run), estimate=10)
        run.section("store", lambda: store(run), estimate=10)
        run.section("throughput", lambda: throughput(run, FAMILIES[1:]), estimate=10)
    except OutOfTime:
        run.results["skipped"].append("stopped by --max-seconds")
    finally:
        signal.alarm(0)
        run.write()
    print(json.dumps(run.results, indent=2))
    return run.results


if __name__ == "__main__":
    main()
