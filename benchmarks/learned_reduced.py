"""Reduced Back-Projection Diffusion benchmark: EquiNet-CNN vs deterministic EquiNet vs
Analytical-CNN on the squares family at 32x32 (configs/learned-reduced-*.toml).

The reduced problem keeps the paper's acquisition scaled to 32 nodes (f = 1, 2, 4: 8 points per
wavelength at the top frequency, as f = 10 on 80 nodes) and keeps the *size of the squares in
wavelengths*: the paper's squares are 10 h = 0.127 = 1.27 wavelengths of its top frequency; at
f = 4 that is 0.32 = 10 nodes of the 32-node grid, i.e. ``side = 25`` pixels of the 80-node grid
(:func:`msinv.scattering.phantoms.squares`). Five such squares (instead of twenty 4-node ones,
which the data at f <= 4 cannot resolve) cover a similar share of the disk of centres.

Stages (all by default; each resumable):

* ``data``: generate ``data/reduced/squares32-{train,test}.zarr`` (2,000 training pairs,
  seed 0; held-out test pairs, seed 1; f = 1, 2, 4; paper geometry at n = 32);
* ``train``: train the three models (resumes from their checkpoints);
* ``ship``: export the trained reduced EquiNet-CNN (EMA weights) and the first test datum as
  the package's demo checkpoint and example (``src/msinv/learned/checkpoints/``);
* ``evaluate``: posterior samples on the test set, one table (RRMSE, MELR, SD, CRPS, data
  misfit) -> ``benchmarks/results/learned_reduced.{json,md}``.

Usage: ``python benchmarks/learned_reduced.py [--stages data,train,evaluate] [--workers 2]
[--test-count 200] [--eval-count 50] [--draws 4] [--models equinet-cnn,...] [--device auto]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "reduced"
RESULTS = REPO / "benchmarks" / "results"
MODELS = ["equinet-cnn", "equinet", "analytical-cnn"]
FREQS = [1.0, 2.0, 4.0]
N = 32
FAMILY_PARAMS = {"count": 5, "side": 25}  # squares of 1.27 wavelengths at f = 4, as in the paper


def config_path(model: str) -> Path:
    return REPO / "configs" / f"learned-reduced-{model}.toml"


def stage_data(workers: int, train_count: int, test_count: int) -> dict:
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    DATA.mkdir(parents=True, exist_ok=True)
    times = {}
    for split, count, seed in [("test", test_count, 1), ("train", train_count, 0)]:
        t0 = time.perf_counter()
        generate(
            DATA / f"squares{N}-{split}.zarr",
            family="squares",
            count=count,
            geometry=Geometry.paper(N),
            freqs=FREQS,
            seed=seed,
            workers=workers,
            family_params=FAMILY_PARAMS,
        )
        times[split] = round(time.perf_counter() - t0, 1)
        print(f"data {split}: {count} pairs in {times[split]} s", flush=True)
    return times


def config(model: str, seed: int | None = None):
    """The reduced config of ``model``; another ``seed`` trains into ``<out>-seed<seed>``."""
    import dataclasses

    from msinv.learned.train import TrainConfig

    cfg = TrainConfig.from_toml(config_path(model))
    if seed is None or seed == cfg.seed:
        return cfg
    run = dataclasses.replace(cfg.run, out=f"{cfg.run.out}-seed{seed}")
    return dataclasses.replace(cfg, seed=seed, run=run)


def stage_train(device: str, steps: int | None, models: list[str], seed: int | None) -> dict:
    import dataclasses

    from msinv.learned.train import train

    times = {}
    for model in models:
        cfg = config(model, seed)
        run = dataclasses.replace(cfg.run, device=device, **({"steps": steps} if steps else {}))
        t0 = time.perf_counter()
        train(dataclasses.replace(cfg, run=run))
        times[model] = round(time.perf_counter() - t0, 1)
        print(f"train {model}: {times[model]} s", flush=True)
    return times


def stage_evaluate(
    count: int, draws: int, n_levels: int, device: str, models: list[str], seed: int | None
) -> dict:
    from msinv.learned.evaluation import evaluate

    checkpoints = {m: Path(config(m, seed).run.out) / "checkpoint.pt" for m in models}
    test = DATA / f"squares{N}-test.zarr"
    return evaluate(
        checkpoints,
        {"squares": test},
        draws=draws,
        count=count,
        n_levels=n_levels,
        device=device,
        out=RESULTS / ("learned_reduced" if seed is None else f"learned_reduced_seed{seed}"),
    )


def stage_ship() -> dict:
    """Ship the trained reduced EquiNet-CNN (EMA weights only) and one held-out example datum."""
    import json as _json

    import numpy as np

    from msinv.learned.data import load_pairs
    from msinv.learned.loading import DEMO_CHECKPOINT, DEMO_EXAMPLE
    from msinv.learned.train import TrainConfig, export

    run = Path(TrainConfig.from_toml(config_path("equinet-cnn")).run.out)
    export(run / "checkpoint.pt", DEMO_CHECKPOINT)
    test = load_pairs(DATA / f"squares{N}-test.zarr", 0, 1)
    np.savez_compressed(
        DEMO_EXAMPLE,
        eta=test.eta[0],
        data=test.data[0],
        freqs=test.freqs,
        geometry=_json.dumps(test.geometry.to_dict()),
        source=f"squares{N}-test.zarr:0",
    )
    size = DEMO_CHECKPOINT.stat().st_size
    print(f"ship: {DEMO_CHECKPOINT} ({size} bytes)", flush=True)
    return {"checkpoint": str(DEMO_CHECKPOINT.relative_to(REPO)), "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", default="data,train,evaluate")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-count", type=int, default=2000)
    ap.add_argument("--test-count", type=int, default=200, help="held-out pairs generated")
    ap.add_argument("--eval-count", type=int, default=50, help="held-out pairs evaluated")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--models", default=",".join(MODELS), help="models (comma list)")
    ap.add_argument("--seed", type=int, default=None, help="another training seed (repeat runs)")
    ap.add_argument("--levels", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None, help="override run.steps (smoke runs)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    stages = args.stages.split(",")
    record = {
        "machine": f"{platform.machine()} {platform.node()}",
        "command": " ".join(
            [
                "python benchmarks/learned_reduced.py",
                f"--stages {args.stages}",
                f"--test-count {args.test_count}",
                f"--eval-count {args.eval_count}",
                f"--models {args.models}",
                f"--seed {args.seed}",
                f"--draws {args.draws}",
                f"--levels {args.levels}",
                f"--device {args.device}",
                f"--threads {args.threads}",
            ]
        ),
    }
    if "data" in stages:
        record["data_seconds"] = stage_data(args.workers, args.train_count, args.test_count)
    if "train" in stages:
        record["train_seconds"] = stage_train(
            args.device, args.steps, args.models.split(","), args.seed
        )
    if "ship" in stages:
        record["ship"] = stage_ship()
    if "evaluate" in stages:
        record["evaluation"] = stage_evaluate(
            args.eval_count, args.draws, args.levels, args.device, args.models.split(","), args.seed
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = "-".join(stages) + ("" if args.seed is None else f"_seed{args.seed}")
    (RESULTS / f"learned_reduced_{stamp}_log.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
