"""One command for a row of the paper's Table 1: data, training, sampling and metrics.

``msinv learn paper-row --family squares --device cuda --budget-minutes 12`` generates the
training and test pairs at the paper's geometry (80x80, f = 2.5, 5, 10), trains EquiNet-CNN
with the paper's recipe (131,250 steps at batch 16, or as many as a wall-clock budget allows,
stated in the report), draws posterior samples for the test set and writes the row beside the
paper's numbers with every timing.

Stages, each resumable (a killed run continues where it stopped when run again):

``data``
    the test store (seed ``seed + 1000``) then the training store (seed ``seed``), with the
    batched Lippmann--Schwinger solver of :mod:`msinv.accel` on a GPU or the finite-difference
    solver on the CPU. Under a budget the training store holds as many pairs as fit in the
    data share of the budget (measured on the test store's rate).
``train``
    :func:`msinv.learned.train.train` on a config built here (written as ``train.toml``); under
    a budget the step count is set from a short throughput probe so that training ends in its
    share (the warm-up cosine schedule is scaled to that count).
``evaluate``
    posterior samples for the test data in blocks (``samples/block-NNNNN.npz``, skipped when
    present), batched across data and draws, conditioning computed once per datum.
``report``
    RRMSE (per draw and of the mean), MELR (plain and energy-weighted), the Sinkhorn divergence,
    CRPS and the mean posterior spread on the sampled test data, the paper's numbers beside
    them, the timings, the device and the configuration: ``row.json`` and ``row.md``, and the
    figure of the first test datum.

Reference: Zhang, Guerra, Li, Zepeda-Nunez, "Back-Projection Diffusion", Table 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from msinv.core.errors import UserInputError
from msinv.core.outputs import atomic_path, write_text

#: The paper's Table 1 for EquiNet-CNN (RRMSE %, MELR x100, SD) and its CRPS x 1e4.
PAPER_EQUINET_CNN = {
    "squares": {"rrmse_pct": 1.744, "melr_x100": 1.979, "sd": 3.860, "crps_x1e4": 3.916},
    "triangles": {"rrmse_pct": 1.590, "melr_x100": 1.385, "sd": 0.949, "crps_x1e4": 0.815},
    "shepp_logan": {"rrmse_pct": 1.323, "melr_x100": 1.564, "sd": 3.734, "crps_x1e4": 4.964},
}
#: The deterministic EquiNet of the same table (RRMSE %), the bar the diffusion model must beat.
PAPER_EQUINET = {"squares": 10.891, "triangles": 2.741, "shepp_logan": 1.693}
PAPER_STEPS = 131_250
STAGES = ("data", "train", "evaluate", "report")
BUDGET_SHARES = {"data": 0.30, "evaluate": 0.20}  # of the budget; training gets the rest


@dataclass(frozen=True)
class PaperRowConfig:
    """What a paper-row run makes; every field is recorded in ``row.json``."""

    family: str = "squares"  # squares | triangles | shepp_logan
    out: str = "out/paper-row"  # output folder (stores, run, samples, report)
    device: str = "auto"  # auto | cpu | cuda
    n: int = 80  # grid (paper: 80)
    freqs: tuple[float, ...] = (2.5, 5.0, 10.0)  # frequencies (paper: 2.5, 5, 10)
    train_count: int = 21_000  # training pairs (paper: 21,000; fewer under a budget)
    test_count: int = 500  # test pairs (paper: 500)
    steps: int = PAPER_STEPS  # training steps (paper: 131,250; fewer under a budget)
    batch: int = 16  # training batch (paper: 16)
    draws: int = 10  # posterior draws per test datum
    levels: int = 256  # sampler noise levels (paper: 256)
    budget_minutes: float | None = None  # wall-clock budget of the whole run (None: none)
    seed: int = 0  # training data and training seed; test data use seed + 1000
    model: str = "equinet-cnn"  # a Table-1 name
    score: dict[str, Any] = field(default_factory=dict)  # score-network options (toy runs)
    solver: str = "auto"  # auto (torch on cuda, fd on cpu) | torch | fd
    workers: int = 1  # CPU worker processes of the fd solver
    precision: str = "auto"  # auto (bf16 on cuda, fp32 on cpu) | fp32 | tf32 | bf16
    compile: bool = False  # torch.compile the networks
    sample_batch: int = 2000  # images integrated together by the sampler
    sample_precision: str = "fp32"  # fp32 | bf16 (network evaluations of the sampler)
    target_blur: float = 0.5  # the published pipeline's 0.5-pixel blur of the stored target

    def __post_init__(self) -> None:
        from msinv.learned.models import MODELS
        from msinv.scattering.phantoms import get_family

        get_family(self.family)  # one-line error for an unknown family
        if self.model not in MODELS:
            raise UserInputError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        for name in ("n", "train_count", "test_count", "steps", "batch", "draws", "levels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserInputError(f"{name} must be an integer >= 1, got {value!r}")
        if self.levels < 2:
            raise UserInputError(f"levels must be >= 2, got {self.levels}")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise UserInputError(f"budget_minutes must be > 0, got {self.budget_minutes}")
        choices = {
            "device": ("auto", "cpu", "cuda"),
            "solver": ("auto", "torch", "fd"),
            "precision": ("auto", "fp32", "tf32", "bf16"),
            "sample_precision": ("fp32", "bf16"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserInputError(f"{name} must be one of {', '.join(allowed)}")

    # ------------------------------------------------------------------------ resolved values
    def torch_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserInputError("device = 'cuda' but no CUDA device is available")
        return self.device

    def resolved_solver(self) -> str:
        if self.solver != "auto":
            return self.solver
        return "torch" if self.torch_device() == "cuda" else "fd"

    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        return "bf16" if self.torch_device() == "cuda" else "fp32"

    def peak_lr(self) -> float:
        """The paper's peak learning rate: 5e-4 for Shepp-Logan, 1e-3 otherwise."""
        return 5e-4 if self.family == "shepp_logan" else 1e-3


class _Clock:
    """Wall-clock budget of a run: what is spent, what is left."""

    def __init__(self, minutes: float | None) -> None:
        self.total = None if minutes is None else 60.0 * minutes
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return math.inf if self.total is None else self.total - self.elapsed()

    def share(self, name: str) -> float:
        return math.inf if self.total is None else BUDGET_SHARES[name] * self.total


# ------------------------------------------------------------------------------------ data
def _generate(cfg: PaperRowConfig, path: Path, count: int, seed: int) -> float:
    """Generate (or complete) one store; returns the seconds spent."""
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {}
    if cfg.resolved_solver() == "torch":
        kwargs["backend"] = "torch"
        kwargs["device"] = cfg.torch_device()
    generate(
        path,
        family=cfg.family,
        count=count,
        geometry=Geometry.paper(cfg.n),
        freqs=list(cfg.freqs),
        seed=seed,
        workers=cfg.workers,
        target_blur=cfg.target_blur,
        progress=_interactive(),
        **kwargs,
    )
    return time.perf_counter() - t0


def stage_data(cfg: PaperRowConfig, clock: _Clock, state: dict, log: Callable) -> None:
    """Test store, then the training store sized to the data budget."""
    out = Path(cfg.out)
    seconds = _generate(cfg, out / "test.zarr", cfg.test_count, cfg.seed + 1000)
    rate = cfg.test_count / max(seconds, 1e-9)
    train_count = cfg.train_count
    if "train_count" in state:  # a resumed run keeps the size it chose
        train_count = state["train_count"]
    elif clock.total is not None:
        affordable = int(rate * max(clock.share("data") - clock.elapsed(), 0.0))
        train_count = max(min(cfg.train_count, affordable), min(cfg.train_count, 4 * cfg.batch))
    state["train_count"] = train_count
    log(f"data: {cfg.test_count} test pairs in {seconds:.1f} s ({rate:.1f} pairs/s)")
    seconds_train = _generate(cfg, out / "train.zarr", train_count, cfg.seed)
    state["timings"]["data_test_s"] = round(seconds, 2)
    state["timings"]["data_train_s"] = round(seconds_train, 2)
    state["data_pairs_per_s"] = round((cfg.test_count + train_count) / (seconds + seconds_train), 2)
    log(f"data: {train_count} training pairs in {seconds_train:.1f} s")


# ----------------------------------------------------------------------------------- train
def train_config(cfg: PaperRowConfig, steps: int, out: Path, train_count: int):
    """The :class:`~msinv.learned.train.TrainConfig` of the row (the paper's recipe)."""
    from msinv.learned.train import TrainConfig

    cuda = cfg.torch_device() == "cuda"
    return TrainConfig.from_dict(
        {
            "seed": cfg.seed,
            "data": {"train": str(Path(cfg.out) / "train.zarr"), "count": train_count},
            "model": {"name": cfg.model, "score": dict(cfg.score)},
            "optim": {
                "lr": cfg.peak_lr(),
                "lr_start": 1e-5,
                "lr_end": 1e-8,
                "warmup": 0.05,
                "betas": [0.9, 0.999],
            },
            "run": {
                "steps": steps,
                "batch": cfg.batch,
                "ema": 0.999,
                "checkpoint_every": max(1, min(5000, steps // 4)),
                "log_every": max(1, min(100, steps // 20)),
                "out": str(out),
                "device": cfg.torch_device(),
                "progress": _interactive(),
                "precision": cfg.resolved_precision(),
                "compile": cfg.compile,
                "channels_last": cuda,
                "noise": "device" if cuda else "cpu",
            },
        },
        "paper-row",
    )


def _probe_rate(cfg: PaperRowConfig, train_count: int) -> float:
    """Training steps per second, measured on a short throw-away run after a warm-up."""
    import shutil

    from msinv.learned.train import train

    probe = Path(cfg.out) / "probe"
    shutil.rmtree(probe, ignore_errors=True)
    warm, timed = (10, 40) if cfg.torch_device() == "cuda" else (2, 3)
    c = train_config(cfg, warm + timed, probe, train_count)
    c = dataclasses.replace(c, run=dataclasses.replace(c.run, log_every=1, progress=False))
    train(c, resume=False)
    lines = [json.loads(x) for x in (probe / "log.jsonl").read_text().splitlines()]
    seconds = lines[-1]["seconds"] - lines[warm - 1]["seconds"]
    shutil.rmtree(probe, ignore_errors=True)
    return timed / max(seconds, 1e-9)


def stage_train(cfg: PaperRowConfig, clock: _Clock, state: dict, log: Callable) -> None:
    """Train the row's model; under a budget, as many steps as fit in its share."""
    from msinv.learned.train import train

    run = Path(cfg.out) / "run"
    train_count = state.get("train_count", cfg.train_count)
    if "steps" not in state:
        steps = cfg.steps
        if clock.total is not None:
            rate = _probe_rate(cfg, train_count)
            state["train_steps_per_s_probe"] = round(rate, 2)
            seconds = clock.left() - clock.share("evaluate")
            steps = max(1, min(cfg.steps, int(rate * seconds * 0.95)))
            log(f"train: {rate:.1f} steps/s measured; {steps} steps fit the budget")
        state["steps"] = steps
    config = train_config(cfg, state["steps"], run, train_count)
    Path(cfg.out, "train.toml").write_text(config.to_toml())
    t0 = time.perf_counter()
    done_before = _steps_done(run)
    train(config)
    seconds = time.perf_counter() - t0
    state["timings"]["train_s"] = round(state["timings"].get("train_s", 0.0) + seconds, 2)
    trained = state["steps"] - done_before
    if trained > 0:
        state["train_steps_per_s"] = round(trained / seconds, 2)
    log(f"train: {state['steps']} steps done ({seconds:.1f} s this call)")


def _steps_done(run: Path) -> int:
    path = run / "checkpoint.pt"
    if not path.exists():
        return 0
    from msinv.learned.checkpoint_file import read_checkpoint

    return int(read_checkpoint(path, required=("step",))["step"])


# -------------------------------------------------------------------------------- evaluate
def stage_evaluate(cfg: PaperRowConfig, clock: _Clock, state: dict, log: Callable) -> None:
    """Posterior draws for the test data, block by block (resumable, budget-aware)."""
    from msinv.learned.data import load_pairs
    from msinv.learned.loading import load
    from msinv.learned.sampling import posterior

    loaded = load(Path(cfg.out) / "run" / "checkpoint.pt", device=cfg.torch_device())
    pairs = load_pairs(Path(cfg.out) / "test.zarr")
    folder = Path(cfg.out) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    per_block = max(1, cfg.sample_batch // cfg.draws)
    seconds, done = 0.0, 0
    for start in range(0, cfg.test_count, per_block):
        stop = min(cfg.test_count, start + per_block)
        path = folder / f"block-{start:05d}.npz"
        if path.exists():
            done = stop
            continue
        if clock.left() < 0 and done > 0:
            log(f"evaluate: budget spent after {done} test data")
            break
        t0 = time.perf_counter()
        samples = posterior(
            loaded,
            pairs.data[start:stop],
            cfg.draws,
            seed=cfg.seed + start,
            n_levels=cfg.levels,
            batch=cfg.sample_batch,
            precision=cfg.sample_precision,
        )
        _save_npz(path, samples=samples)
        seconds += time.perf_counter() - t0
        done = stop
        log(f"evaluate: test data {start}..{stop - 1} sampled ({time.perf_counter() - t0:.1f} s)")
    state["timings"]["sampling_s"] = round(state["timings"].get("sampling_s", 0.0) + seconds, 2)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


# ---------------------------------------------------------------------------------- report
def stage_report(cfg: PaperRowConfig, clock: _Clock, state: dict, log: Callable) -> dict:
    """The row's metrics on the sampled test data beside the paper's; writes row.json/.md."""
    from msinv import metrics
    from msinv.learned.data import load_pairs

    folder = Path(cfg.out) / "samples"
    blocks = sorted(folder.glob("block-*.npz"))
    if not blocks:
        raise UserInputError(f"{folder}: no posterior samples; run the evaluate stage first")
    samples = np.concatenate([np.load(b)["samples"] for b in blocks])
    m, k = samples.shape[:2]
    truth = load_pairs(Path(cfg.out) / "test.zarr", 0, m).eta.astype(np.float64)
    flat = samples.reshape(m * k, *truth.shape[1:]).astype(np.float64)
    rep = np.repeat(truth, k, axis=0)
    mean = samples.mean(axis=1).astype(np.float64)
    per_draw = np.asarray(metrics.rrmse(flat, rep)).reshape(m, k)
    row = {
        "test_data": m,
        "draws": k,
        "rrmse_pct": 100 * float(per_draw.mean()),
        "rrmse_pct_ci95": metrics.bootstrap_ci(100 * per_draw.mean(axis=1)),
        "rrmse_mean_pct": 100 * float(np.mean(metrics.rrmse(mean, truth))),
        "melr_x100": 100 * float(np.mean(metrics.melr(flat, rep))),
        "melr_weighted_x100": 100 * float(np.mean(metrics.melr(flat, rep, weighted=True))),
        "sd": metrics.sinkhorn_or_nan(metrics.sinkhorn_divergence, samples[:, 0], truth),
        "crps_x1e4": 1e4 * float(np.mean(metrics.crps(samples, truth))),
        "mean_std": float(samples.std(axis=1).mean()) if k > 1 else 0.0,
    }
    paper = PAPER_EQUINET_CNN.get(cfg.family, {}) if cfg.model == "equinet-cnn" else {}
    report = {
        "row": row,
        "paper": paper,
        "paper_deterministic_equinet_rrmse_pct": PAPER_EQUINET.get(cfg.family),
        "steps": state.get("steps"),
        "paper_steps": PAPER_STEPS,
        "train_pairs": state.get("train_count"),
        "timings": state["timings"],
        "rates": {
            k_: state[k_]
            for k_ in ("data_pairs_per_s", "train_steps_per_s", "train_steps_per_s_probe")
            if k_ in state
        },
        "device": _device_name(cfg),
        "config": _plain(dataclasses.asdict(cfg)),
        "provenance": _provenance(cfg),
    }
    out = Path(cfg.out)
    _export(cfg, out)
    write_text(out / "row.json", json.dumps(report, indent=2))
    write_text(out / "row.md", row_markdown(cfg, report))
    from msinv.learned.figures import plot_posterior

    plot_posterior(truth[0], samples[0], out / "row-figure.png")
    log(row_markdown(cfg, report))
    return report


def _export(cfg: PaperRowConfig, out: Path) -> None:
    """The inference checkpoint (EMA weights, ``model.pt``) and the first test datum with its
    truth and acquisition (``example.npz``, the layout of the shipped demo example)."""
    from msinv.learned.train import export
    from msinv.scattering import open_dataset

    export(out / "run" / "checkpoint.pt", out / "model.pt")
    ds = open_dataset(out / "test.zarr")
    eta, data = ds[0:1]
    _save_npz(
        out / "example.npz",
        eta=eta[0].astype(np.float32),
        data=data[0].astype(np.complex64),
        freqs=np.asarray(ds.freqs, dtype=np.float64),
        geometry=np.asarray(json.dumps(ds.geometry.to_dict())),
        source=np.asarray(f"{cfg.family} test pair 0 (seed {cfg.seed + 1000}), msinv paper-row"),
    )


def row_markdown(cfg: PaperRowConfig, report: dict) -> str:
    """The row beside the paper's, with the budget and timings."""
    r, p = report["row"], report["paper"]

    def paper(key: str) -> str:
        return f"{p[key]:.3f}" if key in p else "-"

    lines = [
        f"| {cfg.model} on {cfg.family} | RRMSE % | RRMSE of mean % | MELR x100 | SD | CRPS x1e4 |",
        "|---|---|---|---|---|---|",
        f"| msinv ({report['steps']} steps, {report['train_pairs']} pairs, {r['test_data']} test "
        f"x {r['draws']} draws) | {r['rrmse_pct']:.3f} | {r['rrmse_mean_pct']:.3f} | "
        f"{r['melr_x100']:.3f} | {r['sd']:.3f} | {r['crps_x1e4']:.3f} |",
        f"| paper (Table 1, {PAPER_STEPS} steps, 21,000 pairs, 500 test) | {paper('rrmse_pct')} "
        f"| - | {paper('melr_x100')} | {paper('sd')} | {paper('crps_x1e4')} |",
        "",
        "Timings (s): "
        + ", ".join(f"{k} {v}" for k, v in report["timings"].items())
        + f"; device: {report['device']}.",
    ]
    return "\n".join(lines) + "\n"


def _device_name(cfg: PaperRowConfig) -> str:
    import platform

    import torch

    if cfg.torch_device() == "cuda":
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()} x {os.cpu_count()} (torch {torch.__version__})"


def _provenance(cfg: PaperRowConfig) -> dict:
    from msinv.core.provenance import provenance

    return provenance(_plain(dataclasses.asdict(cfg)))


def _plain(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def _interactive() -> bool:
    import sys

    return sys.stderr.isatty()


# ------------------------------------------------------------------------------------ plan
def plan(cfg: PaperRowConfig, *, log: Callable[[str], None] = print) -> dict:
    """Measure the three rates on this machine with tiny probes and project the run's times.

    Solves 2 samples, times 3 training steps after a warm-up one and one sampler step on
    ``sample_batch`` images (in a scratch folder under ``out``), then prints and returns the
    projected seconds of each stage at the configured sizes, and what a budget would cut.
    """
    import shutil

    import torch

    from msinv.learned.train import train

    scratch = Path(cfg.out) / "plan-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    probe = dataclasses.replace(cfg, out=str(scratch), test_count=2, train_count=2 * cfg.batch)
    t0 = time.perf_counter()
    _generate(probe, scratch / "test.zarr", 2, cfg.seed + 1000)
    solve_rate = 2 / (time.perf_counter() - t0)
    _generate(probe, scratch / "train.zarr", probe.train_count, cfg.seed)
    c = train_config(probe, 4, scratch / "run", probe.train_count)
    c = dataclasses.replace(c, run=dataclasses.replace(c.run, log_every=1, progress=False))
    train(c, resume=False)
    lines = [json.loads(x) for x in (scratch / "run" / "log.jsonl").read_text().splitlines()]
    train_rate = 3 / max(lines[-1]["seconds"] - lines[0]["seconds"], 1e-9)
    from msinv.learned.loading import load

    loaded = load(scratch / "run" / "checkpoint.pt", device=cfg.torch_device())
    b = min(cfg.sample_batch, cfg.test_count * cfg.draws)
    eta = torch.zeros((b, 1, cfg.n, cfg.n), device=cfg.torch_device())
    data = torch.zeros(
        (1, len(cfg.freqs), loaded.config.model.n_sc, loaded.config.model.n_sc),
        dtype=torch.complex64,
        device=cfg.torch_device(),
    )
    with torch.no_grad():
        cond = loaded.model.condition(data).expand(b)
        loaded.model(eta, cond, torch.ones(b, device=eta.device))  # warm-up
        t0 = time.perf_counter()
        loaded.model(eta, cond, torch.ones(b, device=eta.device))
        if eta.is_cuda:
            torch.cuda.synchronize()
        call = time.perf_counter() - t0
    shutil.rmtree(scratch, ignore_errors=True)
    blocks = math.ceil(cfg.test_count * cfg.draws / b)
    projected = {
        "data_s": (cfg.train_count + cfg.test_count) / solve_rate,
        "train_s": cfg.steps / train_rate,
        "sampling_s": blocks * cfg.levels * call,
    }
    result = {
        "rates": {
            "pairs_per_s": round(solve_rate, 3),
            "train_steps_per_s": round(train_rate, 3),
            "sampler_step_s": round(call, 4),
        },
        "projected_s": {k: round(v, 3) for k, v in projected.items()},
        "projected_total_s": round(sum(projected.values()), 3),
        "device": _device_name(cfg),
    }
    if cfg.budget_minutes is not None:
        total = 60 * cfg.budget_minutes
        result["under_budget"] = {
            "train_pairs": min(cfg.train_count, int(solve_rate * BUDGET_SHARES["data"] * total)),
            "steps": min(
                cfg.steps,
                int(train_rate * (1 - sum(BUDGET_SHARES.values())) * total),
            ),
        }
    log(json.dumps(result, indent=2))
    return result


# ------------------------------------------------------------------------------------- run
def run(
    cfg: PaperRowConfig,
    stages: Sequence[str] = STAGES,
    *,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the stages of a paper row (each resumes what an earlier call left).

    Returns the state: chosen sizes, timings and, after ``report``, the report.
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise UserInputError(f"unknown stage(s) {sorted(unknown)}; expected {', '.join(STAGES)}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    state: dict[str, Any] = {"timings": {}}
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("config") != _plain(dataclasses.asdict(cfg)):
            raise UserInputError(
                f"{state_path}: made with another configuration; use another --out or the same options"
            )
    state["config"] = _plain(dataclasses.asdict(cfg))
    clock = _Clock(cfg.budget_minutes)
    steps = {"data": stage_data, "train": stage_train, "evaluate": stage_evaluate}
    for name in STAGES:
        if name not in stages:
            continue
        if name == "report":
            state["report"] = stage_report(cfg, clock, state, log)
        else:
            steps[name](cfg, clock, state, log)
        write_text(state_path, json.dumps(state, indent=2))
    return state
