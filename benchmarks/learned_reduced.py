"""Reduced Back-Projection Diffusion benchmark: EquiNet-CNN, B-EquiNet-CNN, Analytical-CNN and
the deterministic EquiNet on the squares family at 32x32 (configs/learned-reduced-*.toml),
three training seeds each, a validation store for decisions and a test store touched once.

The reduced problem keeps the paper's acquisition scaled to 32 nodes (f = 1, 2, 4: 8 points per
wavelength at the top frequency, as f = 10 on 80 nodes) and keeps the *size of the squares in
wavelengths*: the paper's squares are 10 h = 0.127 = 1.27 wavelengths of its top frequency; at
f = 4 that is 0.32 = 10 nodes of the 32-node grid, i.e. ``side = 25`` pixels of the 80-node grid
(:func:`msinv.scattering.phantoms.squares`). Five such squares cover a similar share of the disk
of centres as the paper's twenty.

Stages (``--stages``, comma-separated; each resumable, each run writes its own files so that
several processes can share one GPU):

* ``data``: ``<data>/squares32-{train,val,test}.zarr`` (2,000 training pairs, seed 0; 200
  validation pairs, seed 2; 200 test pairs, seed 1);
* ``train``: train ``--models`` x ``--seeds`` into ``<runs>/<model>-seed<S>`` (resumes);
* ``val`` / ``test``: evaluate those runs on the validation / test store
  (``msinv.learned.evaluation.evaluate``: 256 levels, ``--draws`` draws per datum) into
  ``<results>/<split>/<model>-seed<S>.{json,md,npz}`` (per-sample values);
* ``report``: aggregate every run found under ``<results>/<split>``: per model the mean ± std
  over training seeds, a 95 % bootstrap interval over test data (of the per-datum value averaged
  over draws and seeds), and paired bootstrap intervals of EquiNet-CNN minus each other model
  -> ``<results>/learned_reduced_<split>.{md,json}``;
* ``ship``: export ``<runs>/equinet-cnn-seed0`` (EMA weights) and the first test datum as the
  package's demo checkpoint and example (``src/msinv/learned/checkpoints/``).

On one GPU, one process per (model, seed), then the report (see docs/benchmarks.md)::

    python benchmarks/learned_reduced.py --stages data --workers 16
    for m in equinet-cnn b-equinet-cnn analytical-cnn equinet; do for s in 0 1 2; do
      python benchmarks/learned_reduced.py --stages train,val,test --models $m --seeds $s \\
          --device cuda &
    done; done; wait
    python benchmarks/learned_reduced.py --stages report,ship

``--tiny`` rehearses everything at toy size (64 training pairs, 8 validation and test pairs,
20 steps, 8 levels) into ``out/learned_reduced_tiny``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ["equinet-cnn", "b-equinet-cnn", "analytical-cnn", "equinet"]
SEEDS = [0, 1, 2]
FREQS = [1.0, 2.0, 4.0]
N = 32
FAMILY_PARAMS = {"count": 5, "side": 25}  # squares of 1.27 wavelengths at f = 4, as in the paper
#: split -> (generation seed, pairs); the test store is the one of the earlier benchmark
SPLITS = {"train": (0, 2000), "test": (1, 200), "val": (2, 200)}
TINY = {"train": 64, "test": 8, "val": 8, "steps": 20, "levels": 8, "draws": 2}


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where the stores, runs and results go."""

    data: Path
    runs: Path
    results: Path

    def store(self, split: str) -> Path:
        return self.data / f"squares{N}-{split}.zarr"

    def run(self, model: str, seed: int) -> Path:
        return self.runs / f"{model}-seed{seed}"


def config_path(model: str) -> Path:
    return REPO / "configs" / f"learned-reduced-{model}.toml"


def run_config(model: str, seed: int, paths: Paths, args, train_count: int):
    """The reduced config of ``model`` for training ``seed``, with this benchmark's paths."""
    from msinv.learned.train import TrainConfig

    cfg = TrainConfig.from_toml(config_path(model))
    run = {
        "out": str(paths.run(model, seed)),
        "device": args.device,
        "progress": False,
        "threads": args.threads,
    }
    if args.steps:
        run["steps"] = args.steps
        run["checkpoint_every"] = min(cfg.run.checkpoint_every, args.steps)
    if args.precision:
        run["precision"] = args.precision
    data = dataclasses.replace(cfg.data, train=str(paths.store("train")), count=train_count)
    return dataclasses.replace(cfg, seed=seed, data=data, run=dataclasses.replace(cfg.run, **run))


# ------------------------------------------------------------------------------------ stages
def stage_data(paths: Paths, counts: dict[str, int], workers: int, backend: str) -> dict:
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    paths.data.mkdir(parents=True, exist_ok=True)
    times = {}
    for split in ("test", "val", "train"):
        seed, _ = SPLITS[split]
        kwargs = {} if backend == "scipy" else {"backend": "torch", "device": "cuda"}
        t0 = time.perf_counter()
        generate(
            paths.store(split),
            family="squares",
            count=counts[split],
            geometry=Geometry.paper(N),
            freqs=FREQS,
            seed=seed,
            workers=workers,
            family_params=FAMILY_PARAMS,
            progress=False,
            **kwargs,
        )
        times[split] = round(time.perf_counter() - t0, 1)
        print(f"data {split}: {counts[split]} pairs (seed {seed}) in {times[split]} s", flush=True)
    return times


def stage_train(paths: Paths, models, seeds, args, train_count: int) -> dict:
    from msinv.learned.train import train

    times = {}
    for model in models:
        for seed in seeds:
            t0 = time.perf_counter()
            train(run_config(model, seed, paths, args, train_count))
            key = f"{model}-seed{seed}"
            times[key] = round(time.perf_counter() - t0, 1)
            print(f"train {key}: {times[key]} s", flush=True)
    return times


def stage_evaluate(paths: Paths, split: str, models, seeds, args) -> dict:
    from msinv.learned.evaluation import evaluate

    folder = paths.results / split
    folder.mkdir(parents=True, exist_ok=True)
    done = {}
    for model in models:
        for seed in seeds:
            key = f"{model}-seed{seed}"
            t0 = time.perf_counter()
            evaluate(
                {key: paths.run(model, seed) / "checkpoint.pt"},
                {"squares": paths.store(split)},
                draws=args.draws,
                n_levels=args.levels,
                misfit=args.misfit,
                seed=1000 * seed,
                device=args.device,
                batch=args.batch,
                references={},  # the same for every run: computed once by the report
                out=folder / key,
            )
            done[key] = round(time.perf_counter() - t0, 1)
            print(f"{split} {key}: {done[key]} s", flush=True)
    return done


def bootstrap_mean(values: np.ndarray, rng: np.random.Generator, n: int = 10_000):
    """95 % percentile-bootstrap interval of the mean of ``values`` (resampling its entries)."""
    idx = rng.integers(0, len(values), size=(n, len(values)))
    means = values[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def stage_report(paths: Paths, split: str, command: str) -> dict:
    """Aggregate every run of ``split``: seeds, bootstrap intervals, paired differences."""
    folder = paths.results / split
    runs: dict[str, dict[int, dict]] = {}
    for js in sorted(folder.glob("*-seed*.json")):
        model, seed = js.stem.rsplit("-seed", 1)
        row = json.loads(js.read_text())["rows"][0]
        with np.load(folder / f"{js.stem}-{js.stem}-squares.npz") as f:
            per = {k: f[k] for k in ("index", "rrmse", "rrmse_mean", "crps")}
        runs.setdefault(model, {})[int(seed)] = {"row": row, "per": per, "json": js}
    if not runs:
        raise SystemExit(f"report: no runs under {folder}")
    rng = np.random.default_rng(0)
    table, per_datum = {}, {}
    for model, by_seed in runs.items():
        seeds = sorted(by_seed)
        index = by_seed[seeds[0]]["per"]["index"]
        if any(not np.array_equal(by_seed[s]["per"]["index"], index) for s in seeds):
            raise SystemExit(f"report: {model} runs were evaluated on different test pairs")
        rrmse_seed = np.array([by_seed[s]["row"]["rrmse"] for s in seeds])
        datum = np.mean([by_seed[s]["per"]["rrmse"].mean(axis=1) for s in seeds], axis=0)
        per_datum[model] = (index, datum)
        rows = [by_seed[s]["row"] for s in seeds]
        entry = {
            "seeds": seeds,
            "test_pairs": len(index),
            "draws": rows[0]["draws"],
            "rrmse_per_seed": rrmse_seed.tolist(),
            "rrmse_mean": float(rrmse_seed.mean()),
            "rrmse_std_over_seeds": float(rrmse_seed.std(ddof=1)) if len(seeds) > 1 else None,
            "rrmse_ci95_over_data": bootstrap_mean(datum, rng),
        }
        for key in ("rrmse_mean", "melr", "sd", "sd_paper", "sd_reference", "crps", "crps_fair"):
            entry[f"{key}_avg"] = float(np.mean([r[key] for r in rows]))
        if "data_misfit" in rows[0]:
            entry["data_misfit_avg"] = float(np.mean([r["data_misfit"] for r in rows]))
        entry["parameters"] = _parameters(by_seed[seeds[0]]["row"]["checkpoint"])
        table[model] = entry
    comparisons = {}
    if "equinet-cnn" in per_datum:
        index, ours = per_datum["equinet-cnn"]
        for model, (idx, other) in per_datum.items():
            if model == "equinet-cnn" or not np.array_equal(idx, index):
                continue
            diff = ours - other
            comparisons[f"equinet-cnn - {model}"] = {
                "mean": float(diff.mean()),
                "ci95": bootstrap_mean(diff, rng),
            }
    from msinv.learned.evaluation import reference_sd

    reference = reference_sd(paths.store("train"), 0, None, paths.store(split))
    record = {
        "split": split,
        "machine": MACHINE,
        "command": command,
        "models": table,
        "paired_differences": comparisons,
        "reference_sd": reference,
    }
    md = report_markdown(record)
    (paths.results / f"learned_reduced_{split}.json").write_text(json.dumps(record, indent=2))
    (paths.results / f"learned_reduced_{split}.md").write_text(md)
    print(md, flush=True)
    return record


def _parameters(checkpoint: str) -> int:
    from msinv.learned.loading import load

    return sum(p.numel() for p in load(checkpoint).model.parameters())


def report_markdown(record: dict) -> str:
    lines = [
        f"Reduced benchmark, {record['split']} store: squares at 32×32, f = 1, 2, 4. "
        f"Machine: {record['machine']}. Command: `{record['command']}`.",
        "",
        "| model | parameters | seeds | test pairs × draws | RRMSE (mean ± std over seeds) | "
        "95% bootstrap CI over data | RRMSE of posterior mean | MELR×100 | SD (paper) | "
        "SD as reported | CRPS×10⁴ | fair CRPS×10⁴ | data misfit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, e in record["models"].items():
        std = (
            "" if e["rrmse_std_over_seeds"] is None else f" ± {100 * e['rrmse_std_over_seeds']:.2f}"
        )
        lo, hi = e["rrmse_ci95_over_data"]
        mis = f"{100 * e['data_misfit_avg']:.2f}%" if "data_misfit_avg" in e else "-"
        lines.append(
            f"| {model} | {e['parameters']:,} | {len(e['seeds'])} | {e['test_pairs']} × "
            f"{e['draws']} | {100 * e['rrmse_mean']:.2f}%{std} | [{100 * lo:.2f}%, "
            f"{100 * hi:.2f}%] | {100 * e['rrmse_mean_avg']:.2f}% | {100 * e['melr_avg']:.3f} | "
            f"{e['sd_paper_avg']:.4g} | {e['sd_reference_avg']:.4g} | {1e4 * e['crps_avg']:.3f} | "
            f"{1e4 * e['crps_fair_avg']:.3f} | {mis} |"
        )
    if record["reference_sd"]:
        r = record["reference_sd"]
        lines += [
            "",
            f"Reference SD (training truths against these truths): paper formula "
            f"{r['sd_paper']:.4g}, as reported {r['sd_reference']:.4g}.",
        ]
    if record["paired_differences"]:
        lines += [
            "",
            "| paired difference of per-datum RRMSE | mean | 95% bootstrap CI |",
            "|---|---|---|",
        ]
        for k, v in record["paired_differences"].items():
            lo, hi = v["ci95"]
            lines.append(
                f"| {k} | {100 * v['mean']:+.2f}% | [{100 * lo:+.2f}%, {100 * hi:+.2f}%] |"
            )
    lines += [
        "",
        "RRMSE: mean over test data and draws of ‖η̂ − η‖/‖η‖; the interval resamples test data "
        "(per-datum RRMSE averaged over draws and seeds, 10,000 resamples). Diffusion models: "
        "256 noise levels, EMA 0.999 weights.",
    ]
    return "\n".join(lines) + "\n"


def stage_ship(paths: Paths) -> dict:
    """Ship the reduced EquiNet-CNN of seed 0 (EMA weights) and the first test datum."""
    from msinv.learned.data import load_pairs
    from msinv.learned.loading import DEMO_CHECKPOINT, DEMO_EXAMPLE
    from msinv.learned.train import export

    export(paths.run("equinet-cnn", 0) / "checkpoint.pt", DEMO_CHECKPOINT)
    test = load_pairs(paths.store("test"), 0, 1)
    np.savez_compressed(
        DEMO_EXAMPLE,
        eta=test.eta[0],
        data=test.data[0],
        freqs=test.freqs,
        geometry=json.dumps(test.geometry.to_dict()),
        source=f"squares{N}-test.zarr:0",
    )
    size = DEMO_CHECKPOINT.stat().st_size
    print(f"ship: {DEMO_CHECKPOINT} ({size} bytes)", flush=True)
    return {"checkpoint": str(DEMO_CHECKPOINT.relative_to(REPO)), "bytes": size}


MACHINE = f"{platform.machine()} {platform.node()}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", default="data,train,val,test,report")
    ap.add_argument("--models", default=",".join(MODELS), help="comma list")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="training seeds")
    ap.add_argument("--data", type=Path, default=None, help="stores (default data/reduced)")
    ap.add_argument("--runs", type=Path, default=None, help="runs (default out/runs/reduced)")
    ap.add_argument("--results", type=Path, default=None, help="default benchmarks/results")
    ap.add_argument("--workers", type=int, default=2, help="data-generation processes")
    ap.add_argument("--backend", default="scipy", choices=["scipy", "torch"], help="data solver")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--levels", type=int, default=256)
    ap.add_argument("--batch", type=int, default=256, help="images per sampler batch")
    ap.add_argument("--misfit", default="mean", choices=["mean", "samples", "none"])
    ap.add_argument("--steps", type=int, default=None, help="override run.steps")
    ap.add_argument("--precision", default=None, help="override run.precision (fp32, tf32, bf16)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    ap.add_argument("--tiny", action="store_true", help="toy sizes, out/learned_reduced_tiny")
    ap.add_argument("--machine", default=None, help="machine description for the report")
    args = ap.parse_args(argv)
    global MACHINE
    if args.machine:
        MACHINE = args.machine
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    counts = {split: count for split, (_, count) in SPLITS.items()}
    base = REPO / "out" / "learned_reduced_tiny" if args.tiny else None
    if args.tiny:
        counts = {k: TINY[k] for k in counts}
        args.steps = args.steps or TINY["steps"]
        args.levels, args.draws = TINY["levels"], TINY["draws"]
    paths = Paths(
        data=args.data or (base / "data" if base else REPO / "data" / "reduced"),
        runs=args.runs or (base / "runs" if base else REPO / "out" / "runs" / "reduced"),
        results=args.results or (base / "results" if base else REPO / "benchmarks" / "results"),
    )
    stages = args.stages.split(",")
    unknown = set(stages) - {"data", "train", "val", "test", "report", "ship"}
    if unknown:
        raise SystemExit(f"unknown stage(s) {sorted(unknown)}")
    models, seeds = args.models.split(","), [int(s) for s in args.seeds.split(",")]
    command = "python benchmarks/learned_reduced.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    record = {"machine": MACHINE, "command": command}
    if "data" in stages:
        record["data_seconds"] = stage_data(paths, counts, args.workers, args.backend)
    if "train" in stages:
        record["train_seconds"] = stage_train(paths, models, seeds, args, counts["train"])
    for split in ("val", "test"):
        if split in stages:
            record[f"{split}_seconds"] = stage_evaluate(paths, split, models, seeds, args)
    if "report" in stages:
        for split in ("val", "test"):
            if (paths.results / split).is_dir():
                record[f"report_{split}"] = stage_report(paths, split, command)
    if "ship" in stages:
        record["ship"] = stage_ship(paths)
    paths.results.mkdir(parents=True, exist_ok=True)
    tag = "-".join(stages) + "_" + "-".join(models) + "_" + "-".join(map(str, seeds))
    (paths.results / f"learned_reduced_log_{tag}_{os.getpid()}.json").write_text(
        json.dumps(record, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
