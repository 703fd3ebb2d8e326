"""Reduced Back-Projection Diffusion benchmark: EquiNet-CNN, B-EquiNet-CNN, Analytical-CNN and
the deterministic EquiNet on the squares family at 32x32 (configs/learned-reduced-*.toml), three
training seeds each, with confidence intervals.

The reduced problem keeps the paper's acquisition scaled to 32 nodes (f = 1, 2, 4: 8 points per
wavelength at the top frequency, as f = 10 on 80 nodes) and keeps the *size of the squares in
wavelengths*: the paper's squares are 10 h = 0.127 = 1.27 wavelengths of its top frequency; at
f = 4 that is 0.32 = 10 nodes of the 32-node grid, i.e. ``side = 25`` pixels of the 80-node grid
(:func:`msinv.scattering.phantoms.squares`). Five such squares (instead of twenty 4-node ones,
which the data at f <= 4 cannot resolve) cover a similar share of the disk of centres.

Stores (``data`` stage): training (seed 0, 2,000 pairs), **validation** (seed 2, 200 pairs:
the one design decision, EMA or raw weights per run, is taken on it) and **test** (seed 1, 200
pairs, evaluated once at the end with the weights chosen on validation).

Stages (each resumable; a run writes only its own files, so runs can go in parallel):

* ``data``: the three stores (``--workers`` CPU processes);
* ``train``: train ``--models`` with training seed ``--seed`` (default 0; seed 0 keeps each
  config's run folder, seed S writes ``<out>-seed<S>``);
* ``evaluate``: the validation decision, then ``--eval-count`` test pairs x ``--draws`` draws
  x ``--levels`` levels; per-datum values in ``<results>/runs/<model>-seed<S>.json``;
* ``report``: every run's JSON -> ``<results>/learned_reduced.{json,md}``: per model the mean
  and standard deviation over seeds, and a 95% bootstrap interval over test data of the
  seed-averaged per-datum value (2,000 resamples of the data);
* ``ship``: seed 0's EquiNet-CNN (EMA weights) and the first test datum become the package's
  demo checkpoint and example (``--ship-to`` another folder for rehearsals).

``--work DIR`` puts the stores (``DIR/data``) and the run folders (``DIR/runs``) outside the
checkout, so that every worktree or clone can resume the same runs (default: the git-ignored
``data/reduced`` and ``out/runs/reduced`` of the checkout).

``--tiny`` shrinks everything (64/8/8 pairs, 20 steps, 8 levels) and writes under ``tiny/``
folders, never over the committed results. On one GPU the 12 runs of ``train,evaluate`` go as
parallel processes (``benchmarks/gpu_session.sh``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ["equinet-cnn", "b-equinet-cnn", "analytical-cnn", "equinet"]
FREQS = [1.0, 2.0, 4.0]
N = 32
FAMILY_PARAMS = {"count": 5, "side": 25}  # squares of 1.27 wavelengths at f = 4, as in the paper
STORES = {"train": 0, "test": 1, "val": 2}  # split -> dataset seed


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a full or a ``--tiny`` run uses, and where it writes."""

    train_count: int = 2000
    val_count: int = 200
    test_count: int = 200
    eval_count: int = 100
    val_eval_count: int = 50
    draws: int = 4
    levels: int = 256
    steps: int | None = None  # None: each config's
    data: Path = REPO / "data" / "reduced"
    results: Path = REPO / "benchmarks" / "results"
    runs: str = ""  # suffix of the run folders
    run_root: Path | None = None  # None: the folder each config names

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(
            64,
            8,
            8,
            4,
            4,
            2,
            8,
            20,
            REPO / "data" / "reduced-tiny",
            REPO / "benchmarks" / "results" / "tiny",
            "-tiny",
        )


def store(sizes: Sizes, split: str) -> Path:
    return sizes.data / f"squares{N}-{split}.zarr"


def config_path(model: str) -> Path:
    return REPO / "configs" / f"learned-reduced-{model}.toml"


def stage_data(sizes: Sizes, workers: int) -> dict:
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    sizes.data.mkdir(parents=True, exist_ok=True)
    counts = {"train": sizes.train_count, "test": sizes.test_count, "val": sizes.val_count}
    times = {}
    for split, seed in STORES.items():
        t0 = time.perf_counter()
        generate(
            store(sizes, split),
            family="squares",
            count=counts[split],
            # the published data's PML (8 nodes at n = 32), as the stores of this benchmark
            # were made before the solver's per-frequency default; pinned so they resume
            geometry=Geometry.paper(N, pml_width="published"),
            freqs=FREQS,
            seed=seed,
            workers=workers,
            family_params=FAMILY_PARAMS,
            progress=False,
        )
        times[split] = round(time.perf_counter() - t0, 1)
        print(f"data {split}: {counts[split]} pairs in {times[split]} s", flush=True)
    return times


def config(model: str, seed: int, sizes: Sizes, device: str):
    """The reduced config of ``model`` for training seed ``seed`` on ``device``."""
    from msinv.learned.train import TrainConfig

    cfg = TrainConfig.from_toml(config_path(model))
    out = cfg.run.out + sizes.runs + ("" if seed == cfg.seed else f"-seed{seed}")
    if sizes.run_root is not None:
        out = str(sizes.run_root / Path(out).name)
    cuda = device == "cuda" or (device == "auto" and _cuda())
    run = dataclasses.replace(
        cfg.run,
        out=out,
        device=device,
        progress=False,
        steps=sizes.steps or cfg.run.steps,
        checkpoint_every=min(cfg.run.checkpoint_every, sizes.steps or cfg.run.steps),
        channels_last=cuda,
        noise="device" if cuda else "cpu",
    )
    data = dataclasses.replace(cfg.data, train=str(store(sizes, "train")), count=sizes.train_count)
    return dataclasses.replace(cfg, seed=seed, run=run, data=data)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def stage_train(sizes: Sizes, device: str, models: list[str], seed: int) -> dict:
    from msinv.learned.train import train

    times = {}
    for model in models:
        cfg = config(model, seed, sizes, device)
        t0 = time.perf_counter()
        train(cfg)
        times[model] = round(time.perf_counter() - t0, 1)
        print(f"train {model} seed {seed}: {times[model]} s", flush=True)
    return times


def _scores(loaded, pairs, count: int, draws: int, levels: int, seed: int, misfit: bool) -> dict:
    """Per-datum metric values of one model on the first ``count`` pairs."""
    from msinv import metrics
    from msinv.learned.physics import resimulate_misfit
    from msinv.learned.sampling import posterior

    t0 = time.perf_counter()
    samples = posterior(loaded, pairs.data[:count], draws, seed=seed, n_levels=levels, batch=512)
    seconds = time.perf_counter() - t0
    m, k = samples.shape[:2]
    truth = pairs.eta[:count].astype(np.float64)
    flat = samples.reshape(m * k, N, N).astype(np.float64)
    rep = np.repeat(truth, k, axis=0)
    mean = samples.mean(axis=1).astype(np.float64)
    out = {
        "rrmse": np.asarray(metrics.rrmse(flat, rep)).reshape(m, k).mean(axis=1).tolist(),
        "rrmse_mean": np.asarray(metrics.rrmse(mean, truth)).tolist(),
        "melr": np.asarray(metrics.melr(flat, rep)).reshape(m, k).mean(axis=1).tolist(),
        "melr_weighted": np.asarray(metrics.melr(flat, rep, weighted=True))
        .reshape(m, k)
        .mean(axis=1)
        .tolist(),
        "crps": np.asarray(metrics.crps(samples, truth)).tolist(),
        "std": samples.std(axis=1).mean(axis=(1, 2)).tolist(),
        "sd": metrics.sinkhorn_or_nan(metrics.sinkhorn_divergence, samples[:, 0], truth),
        "draws": k,
        "sampling_seconds": round(seconds, 2),
    }
    if misfit:
        out["data_misfit_mean"] = resimulate_misfit(
            mean[:, None],
            pairs.data[:count],
            pairs.spec or pairs.geometry,
            pairs.freqs,
        )[:, 0].tolist()
    return out


def _cached_scores(path: Path, ckpt: Path, store_path: Path, loaded, *args) -> dict:
    """:func:`_scores`, kept in the run folder so that an interrupted evaluation resumes.

    Each pass (validation with EMA weights, with raw weights, test) is written atomically when
    it ends, under a key of everything that determines it (checkpoint step and its file's
    modification time, pairs, draws, levels, seed); a stored pass with another key is computed
    again.
    """
    _, count, draws, levels, seed, misfit = args
    key = {
        "checkpoint": str(ckpt),
        "step": loaded.step,
        "checkpoint_mtime_ns": ckpt.stat().st_mtime_ns,
        "store": str(store_path),
        "count": count,
        "draws": draws,
        "levels": levels,
        "seed": seed,
        "misfit": misfit,
    }
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            print(f"evaluate: {path.name} reused (same checkpoint and settings)", flush=True)
            return stored["scores"]
    scores = _scores(loaded, *args)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "scores": scores}))
    os.replace(tmp, path)
    return scores


def stage_evaluate(sizes: Sizes, device: str, models: list[str], seed: int, misfit: bool) -> dict:
    """Validation decision (EMA or raw weights), then the test set once, per model."""
    from msinv.learned.data import load_pairs
    from msinv.learned.loading import load

    val = load_pairs(store(sizes, "val"), 0, sizes.val_eval_count)
    test = load_pairs(store(sizes, "test"), 0, sizes.eval_count)
    folder = sizes.results / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    done = {}
    for model in models:
        cfg = config(model, seed, sizes, device)
        ckpt = Path(cfg.run.out) / "checkpoint.pt"
        choice = {}
        for weights in ("ema", "model"):
            loaded = load(ckpt, weights=weights, device=_device(device))
            args = (val, sizes.val_eval_count, sizes.draws, sizes.levels, 10_000, False)
            cache = Path(cfg.run.out) / f"scores-val-{weights}.json"
            v = _cached_scores(cache, ckpt, store(sizes, "val"), loaded, *args)
            choice[weights] = float(np.mean(v["rrmse_mean"]))
        weights = min(choice, key=choice.get)
        loaded = load(ckpt, weights=weights, device=_device(device))
        args = (test, sizes.eval_count, sizes.draws, sizes.levels, 0, misfit)
        cache = Path(cfg.run.out) / f"scores-test-{weights}.json"
        result = _cached_scores(cache, ckpt, store(sizes, "test"), loaded, *args)
        params = sum(p.numel() for p in loaded.model.parameters())
        log = [json.loads(x) for x in (Path(cfg.run.out) / "log.jsonl").read_text().splitlines()]
        record = {
            "model": model,
            "seed": seed,
            "weights": weights,
            "validation_rrmse_of_mean": choice,
            "parameters": params,
            "steps": loaded.step,
            "train_seconds": log[-1]["seconds"] if log else None,
            "device": _device_name(device),
            "test": result,
        }
        path = folder / f"{model}-seed{seed}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)
        done[model] = float(np.mean(result["rrmse"]))
        print(
            f"evaluate {model} seed {seed}: {weights} weights, RRMSE {done[model]:.4f}", flush=True
        )
    return done


def _device(device: str) -> str:
    return ("cuda" if _cuda() else "cpu") if device == "auto" else device


def _device_name(device: str) -> str:
    import torch

    if _device(device) == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"CPU {platform.machine()} x {os.cpu_count()}, torch {torch.__version__}"


METRICS = ["rrmse", "rrmse_mean", "melr", "melr_weighted", "crps", "std", "data_misfit_mean"]


def stage_report(sizes: Sizes) -> dict:
    """Aggregate every run's JSON: mean +- std over seeds, bootstrap CI over test data."""
    from msinv.metrics import bootstrap_ci

    runs = [json.loads(p.read_text()) for p in sorted((sizes.results / "runs").glob("*.json"))]
    if not runs:
        raise SystemExit(f"no runs in {sizes.results / 'runs'}: run the evaluate stage first")
    rows = []
    for model in [m for m in MODELS if any(r["model"] == m for r in runs)]:
        mine = [r for r in runs if r["model"] == model]
        row = {
            "model": model,
            "seeds": [r["seed"] for r in mine],
            "parameters": mine[0]["parameters"],
            "weights": [r["weights"] for r in mine],
            "train_seconds": [r["train_seconds"] for r in mine],
            "device": mine[0]["device"],
            "test_pairs": len(mine[0]["test"]["rrmse"]),
            "draws": mine[0]["test"]["draws"],
        }
        for key in METRICS:
            if not all(key in r["test"] for r in mine):
                continue
            per_seed = np.array([np.mean(r["test"][key]) for r in mine])
            per_datum = np.mean([r["test"][key] for r in mine], axis=0)
            row[key] = {
                "mean": float(per_seed.mean()),
                "std": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else None,
                "per_seed": per_seed.tolist(),
                "ci95": bootstrap_ci(per_datum),
            }
        sd = np.array([r["test"]["sd"] for r in mine])
        row["sd"] = {"mean": float(np.nanmean(sd)), "per_seed": sd.tolist()}
        rows.append(row)
    report = {"rows": rows, "levels": sizes.levels, "provenance": _provenance()}
    sizes.results.mkdir(parents=True, exist_ok=True)
    (sizes.results / "learned_reduced.json").write_text(json.dumps(report, indent=2))
    md = markdown(rows)
    (sizes.results / "learned_reduced.md").write_text(md)
    print(md, flush=True)
    return report


def markdown(rows: list[dict]) -> str:
    def cell(row, key, scale=100.0, digits=2):
        if key not in row:
            return "-"
        v = row[key]
        lo, hi = (scale * x for x in v["ci95"])
        spread = "" if v["std"] is None else f" ± {scale * v['std']:.{digits}f}"
        return f"{scale * v['mean']:.{digits}f}{spread} [{lo:.{digits}f}, {hi:.{digits}f}]"

    lines = [
        "| model | seeds | params | RRMSE % per draw | RRMSE % of mean | MELR x100 | MELR_w x100 | "
        "CRPS x1e4 | SD | data misfit % (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seeds = ",".join(str(x) for x in r["seeds"])
        lines.append(
            f"| {r['model']} | {seeds} | {r['parameters']:,} | {cell(r, 'rrmse')} | "
            f"{cell(r, 'rrmse_mean')} | "
            f"{cell(r, 'melr')} | {cell(r, 'melr_weighted')} | {cell(r, 'crps', 1e4, 1)} | "
            f"{r['sd']['mean']:.3f} | {cell(r, 'data_misfit_mean')} |"
        )
    lines.append("")
    lines.append(
        "mean ± standard deviation over training seeds (no ± with one seed) [95% bootstrap "
        "interval over test data of the seed-averaged per-datum value]; "
        f"{rows[0]['test_pairs']} test pairs x {rows[0]['draws']} draws; device {rows[0]['device']}."
    )
    return "\n".join(lines) + "\n"


def _import_everything() -> None:
    """Import every module a training or evaluation run needs, now: a run lasts hours, and a
    checkout changed meanwhile must not give it a mix of old and new modules."""
    import importlib

    for name in (
        "msinv.learned.train",
        "msinv.learned.loading",
        "msinv.learned.sampling",
        "msinv.learned.physics",
        "msinv.learned.data",
        "msinv.metrics",
        "msinv.scattering",
        "msinv.scattering.helmholtz",
        "msinv.scattering.spec",
    ):
        importlib.import_module(name)


def _provenance() -> dict:
    from msinv.core.provenance import provenance

    return provenance({"script": "benchmarks/learned_reduced.py"})


def stage_ship(sizes: Sizes, device: str, to: Path | None) -> dict:
    """Ship seed 0's EquiNet-CNN (EMA weights only) and the first test datum."""
    from msinv.learned.data import load_pairs
    from msinv.learned.loading import DEMO_CHECKPOINT, DEMO_EXAMPLE
    from msinv.learned.train import export

    checkpoint, example = DEMO_CHECKPOINT, DEMO_EXAMPLE
    if to is not None:
        to.mkdir(parents=True, exist_ok=True)
        checkpoint, example = to / DEMO_CHECKPOINT.name, to / DEMO_EXAMPLE.name
    run = Path(config("equinet-cnn", 0, sizes, device).run.out)
    export(run / "checkpoint.pt", checkpoint)
    test = load_pairs(store(sizes, "test"), 0, 1)
    np.savez_compressed(
        example,
        eta=test.eta[0],
        data=test.data[0],
        freqs=test.freqs,
        geometry=json.dumps(test.geometry.to_dict()),
        source=f"squares{N}-test.zarr:0",
    )
    size = checkpoint.stat().st_size
    print(f"ship: {checkpoint} ({size} bytes)", flush=True)
    return {"checkpoint": str(checkpoint), "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", default="data,train,evaluate,report")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS), help="models (comma list)")
    ap.add_argument("--seed", type=int, default=0, help="training seed of train/evaluate")
    ap.add_argument("--eval-count", type=int, default=None, help="test pairs evaluated")
    ap.add_argument("--draws", type=int, default=None)
    ap.add_argument("--levels", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="override run.steps")
    ap.add_argument("--misfit", choices=["mean", "none"], default="mean")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--tiny", action="store_true", help="toy sizes, separate folders")
    ap.add_argument(
        "--work", type=Path, default=None, help="stores in WORK/data, run folders in WORK/runs"
    )
    ap.add_argument("--ship-to", type=Path, default=None, help="ship into this folder instead")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    sizes = Sizes.tiny() if args.tiny else Sizes()
    over = {
        k: v
        for k, v in (
            ("eval_count", args.eval_count),
            ("draws", args.draws),
            ("levels", args.levels),
            ("steps", args.steps),
        )
        if v is not None
    }
    if args.work is not None:
        work = args.work.resolve()
        over |= {"data": work / ("data" + sizes.runs), "run_root": work / ("runs" + sizes.runs)}
    sizes = dataclasses.replace(sizes, **over)
    stages = args.stages.split(",")
    models = args.models.split(",")
    if {"train", "evaluate"} & set(stages):
        _import_everything()
    record = {
        "machine": f"{platform.machine()} {platform.node()}",
        "argv": vars(args) | {"ship_to": str(args.ship_to)},
    }
    if "data" in stages:
        record["data_seconds"] = stage_data(sizes, args.workers)
    if "train" in stages:
        record["train_seconds"] = stage_train(sizes, args.device, models, args.seed)
    if "evaluate" in stages:
        record["evaluation"] = stage_evaluate(
            sizes, args.device, models, args.seed, args.misfit == "mean"
        )
    if "report" in stages:
        stage_report(sizes)
    if "ship" in stages:
        record["ship"] = stage_ship(sizes, args.device, args.ship_to)
    print(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
