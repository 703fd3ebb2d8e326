"""Training throughput of a model with each of the trainer's speed switches, in one run.

For every variant (plain fp32; channels_last + device noise; + TF32; + bf16 autocast; + compile)
the script trains ``--steps`` steps on a synthetic store of ``--pairs`` pairs at the paper's
geometry (``--n``, f = 2.5, 5, 10 scaled with n) and reports steps/s after ``--warmup`` steps,
from the trainer's own log. JSON to ``--out`` (default ``benchmarks/results/learned_train_speed.json``).

    python benchmarks/learned_train_speed.py --device cuda                      # GPU, n = 80
    python benchmarks/learned_train_speed.py --device cpu --n 16 --steps 6 --warmup 2
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "fp32": {},
    "channels_last+device_noise": {"channels_last": True, "noise": "device"},
    "tf32+channels_last+device_noise": {
        "precision": "tf32",
        "channels_last": True,
        "noise": "device",
    },
    "bf16+channels_last+device_noise": {
        "precision": "bf16",
        "channels_last": True,
        "noise": "device",
    },
    "bf16+channels_last+device_noise+compile": {
        "precision": "bf16",
        "channels_last": True,
        "noise": "device",
        "compile": True,
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default="equinet-cnn")
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument(
        "--out", default=str(REPO / "benchmarks" / "results" / "learned_train_speed.json")
    )
    args = ap.parse_args()

    import torch

    from msinv.learned.train import TrainConfig, train
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    work = Path(tempfile.mkdtemp(prefix="msinv-speed-"))
    freqs = [f * args.n / 80 for f in (2.5, 5.0, 10.0)]
    store = work / "pairs.zarr"
    generate(
        store,
        family="squares",
        count=args.pairs,
        geometry=Geometry.paper(args.n),
        freqs=freqs,
        seed=0,
        progress=False,
    )
    result = {
        "device": torch.cuda.get_device_name(0)
        if args.device == "cuda"
        else f"CPU {platform.machine()}",
        "torch": torch.__version__,
        "model": args.model,
        "n": args.n,
        "batch": args.batch,
        "steps_timed": args.steps - args.warmup,
        "command": "python benchmarks/learned_train_speed.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "steps_per_s": {},
    }
    for name in args.variants.split(","):
        cfg = TrainConfig.from_dict(
            {
                "data": {"train": str(store)},
                "model": {"name": args.model},
                "run": {
                    "steps": args.steps,
                    "batch": args.batch,
                    "out": str(work / name),
                    "device": args.device,
                    "progress": False,
                    "log_every": 1,
                    "checkpoint_every": 10**9,
                    **VARIANTS[name],
                },
            }
        )
        t0 = time.perf_counter()
        train(cfg, resume=False)
        wall = time.perf_counter() - t0
        log = [json.loads(x) for x in (work / name / "log.jsonl").read_text().splitlines()]
        timed = log[-1]["seconds"] - log[args.warmup - 1]["seconds"]
        result["steps_per_s"][name] = {
            "steps_per_s": round((args.steps - args.warmup) / timed, 3),
            "wall_s_incl_warmup": round(wall, 1),
            "final_loss": log[-1]["loss"],
        }
        print(name, result["steps_per_s"][name], flush=True)
    base = result["steps_per_s"].get("fp32", {}).get("steps_per_s")
    if base:
        result["speedup_vs_fp32"] = {
            k: round(v["steps_per_s"] / base, 3) for k, v in result["steps_per_s"].items()
        }
    shutil.rmtree(work, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
