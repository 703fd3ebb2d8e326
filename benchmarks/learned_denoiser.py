"""Denoising error of a Back-Projection Diffusion checkpoint against the noise level.

For held-out pairs (eta, Lambda) and noise levels sigma, prints and stores the mean relative
error ||D(eta + sigma eps, sigma | F* Lambda) - eta|| / ||eta|| in normalised units (eta minus
the per-pixel training mean, over the scalar std), next to that of the noisy input. At large
sigma, D is the model's conditional mean E[eta | Lambda], the quantity a deterministic network
is trained to output; a deterministic checkpoint gives its own error on the same pairs.

Usage: ``python benchmarks/learned_denoiser.py CHECKPOINT TEST_STORE [--count 50]
[--weights ema|model] [--out benchmarks/results/learned_denoiser.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from msinv.core.provenance import provenance
from msinv.learned.data import load_pairs
from msinv.learned.loading import load

SIGMAS = [1e-3, 1e-2, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over the batch of ||a - b|| / ||b|| (images flattened)."""
    return float(((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).mean())


@torch.no_grad()
def denoiser_errors(checkpoint, store, *, count: int, weights: str, seed: int = 0) -> dict:
    loaded = load(checkpoint, weights=weights)
    pairs = load_pairs(store, 0, count)
    eta = torch.from_numpy(np.asarray(loaded.norm.eta(pairs.eta), dtype=np.float32))[:, None]
    data = torch.from_numpy(np.asarray(loaded.norm.data(pairs.data)).astype(np.complex64))
    model = loaded.model
    if model.kind == "deterministic":
        return {"deterministic": relative(model(data), eta)}
    cond = model.condition(data)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for s in SIGMAS:
        noisy = eta + s * torch.randn(eta.shape, generator=g)
        sigma = torch.full((eta.shape[0],), s)
        rows.append(
            {
                "sigma": s,
                "denoised": relative(model(noisy, cond, sigma), eta),
                "noisy": relative(noisy, eta),
            }
        )
    return {"sigma": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("store")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--weights", default="ema", choices=["ema", "model"])
    ap.add_argument("--out", default=None, help="JSON output (default: print only)")
    args = ap.parse_args()
    result = denoiser_errors(args.checkpoint, args.store, count=args.count, weights=args.weights)
    for row in result.get("sigma", []):
        print(
            f"sigma {row['sigma']:8.3f}  denoised {row['denoised']:.4f}  noisy {row['noisy']:.4f}"
        )
    if "deterministic" in result:
        print(f"deterministic {result['deterministic']:.4f}")
    if args.out:
        record = {
            "machine": f"{platform.machine()} {platform.node()}",
            "command": "python benchmarks/learned_denoiser.py "
            f"{args.checkpoint} {args.store} --count {args.count} --weights {args.weights}",
            "result": result,
            "provenance": provenance(vars(args)),
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
