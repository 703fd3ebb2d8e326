"""CPU cost of the learned engine's training steps: B-EquiNet's F*, the score CNN, a reduced step.

Measures, on one torch thread, the process CPU time (not wall time: the shared machine's load
changes wall time, much less CPU time) of

* ``bequinet_f``: B-EquiNet's F* (3 frequencies) forward and backward at ``n = 80``, batch 16;
* ``score_cnn``: one denoising-loss forward and backward of the paper's score CNN
  (``ScoreCNN(3)``) at ``n = 80``, batch 16, with msinv's circular padding and with torch's,
  alternated in one process;
* ``score_cnn_profile``: the shares of that step's CPU time spent in concatenations
  (``aten::cat``), copies and zero fills (torch profiler, self time);
* ``reduced_equinet_cnn``: one training step (F*, CNN, loss, backward) of the reduced
  benchmark's EquiNet-CNN (configs/learned-reduced-equinet-cnn.toml) at ``n = 32``, batch 16.

Each: one warm-up, then the minimum over ``--reps``. The msinv imported (its path and git
commit) is recorded, so running the script with two source trees compares them::

    PYTHONPATH=/path/to/old/src python benchmarks/learned_cpu_step.py --out before.json
    PYTHONPATH=src python benchmarks/learned_cpu_step.py --out after.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch


def cpu_seconds(step, reps: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    return round(min(times), 3)


def bequinet_f(reps: int) -> float:
    from msinv.learned.backprojection import build_backprojection

    torch.manual_seed(0)
    bp = build_backprojection("b-equinet", 80, 3)
    data = torch.randn(16, 3, 80, 80, dtype=torch.complex64)

    def step():
        bp.zero_grad()
        bp(data).square().sum().backward()

    return cpu_seconds(step, reps)


def _loss_step(model, condition, eta, reps):
    from msinv.learned.diffusion.loss import DenoisingLoss

    loss = DenoisingLoss()
    g = torch.Generator().manual_seed(0)

    def step():
        model.zero_grad()
        loss(model, eta, condition(), g).mean().backward()

    return cpu_seconds(step, reps)


def score_cnn(reps: int) -> float | dict:
    """The score CNN's step; where msinv has its own circular padding, also torch's, the two
    alternated in one process (same weights) so that the machine's load hits both alike."""
    from msinv.learned.diffusion.precond import EDMDenoiser
    from msinv.learned.networks import cnn

    torch.manual_seed(0)
    score = cnn.ScoreCNN(3)
    alpha, eta = torch.randn(16, 3, 80, 80), torch.randn(16, 1, 80, 80)
    model = EDMDenoiser(score)
    if not hasattr(cnn, "CircularConv2d"):
        return _loss_step(model, lambda: score.condition(alpha), eta, reps)
    convs = [m for m in score.modules() if isinstance(m, cnn.CircularConv2d)]
    best = {"circular_pad1": [], "torch_circular_pad": []}
    for _ in range(reps):
        for name, cls in (
            ("torch_circular_pad", torch.nn.Conv2d),
            ("circular_pad1", cnn.CircularConv2d),
        ):
            for m in convs:
                m.__class__ = cls
            best[name].append(_loss_step(model, lambda: score.condition(alpha), eta, 1))
    return {name: min(v) for name, v in best.items()}


def score_cnn_profile(reps: int) -> dict:
    """Shares of the score CNN step's CPU time (torch profiler, self time): concatenation
    (``aten::cat``, the DenseNet rounds and the trunk's input), copies and zero fills."""
    from torch.profiler import ProfilerActivity, profile

    from msinv.learned.diffusion.loss import DenoisingLoss
    from msinv.learned.diffusion.precond import EDMDenoiser
    from msinv.learned.networks import cnn

    torch.manual_seed(0)
    score = cnn.ScoreCNN(3)
    model, loss = EDMDenoiser(score), DenoisingLoss()
    alpha, eta = torch.randn(16, 3, 80, 80), torch.randn(16, 1, 80, 80)
    g = torch.Generator().manual_seed(0)

    def step():
        model.zero_grad()
        loss(model, eta, score.condition(alpha), g).mean().backward()

    def shares() -> dict:
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        return {
            name: round(sum(e.self_cpu_time_total for e in events if e.key in keys) / total, 4)
            for name, keys in groups.items()
        }

    groups = {
        "cat": ("aten::cat",),
        "copy": ("aten::copy_",),
        "fill": ("aten::fill_", "aten::zero_"),
    }
    if not hasattr(cnn, "CircularConv2d"):
        return shares()
    out = {"circular_pad1": shares()}
    for m in score.modules():
        if isinstance(m, cnn.CircularConv2d):
            m.__class__ = torch.nn.Conv2d
    out["torch_circular_pad"] = shares()
    return out


def reduced_equinet_cnn(reps: int) -> float:
    import tomllib

    from msinv.learned.models import build

    repo = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((repo / "configs" / "learned-reduced-equinet-cnn.toml").read_text())
    torch.manual_seed(0)
    model = build("equinet-cnn", 32, 3, score=cfg["model"]["score"])
    data = torch.randn(16, 3, 32, 32, dtype=torch.complex64)
    eta = torch.randn(16, 1, 32, 32)
    return _loss_step(model, lambda: model.condition(data), eta, reps)


PARTS = {
    "bequinet_f": bequinet_f,
    "score_cnn": score_cnn,
    "score_cnn_profile": score_cnn_profile,
    "reduced_equinet_cnn": reduced_equinet_cnn,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import msinv

    src = Path(msinv.__file__).resolve().parents[1]
    commit = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(src), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    record = {
        "msinv": str(src),
        "commit": commit + (" + uncommitted changes" if dirty else ""),
        "machine": f"{platform.machine()} {platform.node()}, torch {torch.__version__}, 1 thread",
        "reps": args.reps,
        "cpu_seconds": {},
    }
    for part in args.parts.split(","):
        key = "profile_shares" if part.endswith("_profile") else "cpu_seconds"
        record.setdefault(key, {})[part] = PARTS[part](args.reps)
        print(part, record[key][part], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
