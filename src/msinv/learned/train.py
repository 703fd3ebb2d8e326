"""One trainer for every model: TOML config -> checkpoints, exact resume, JSONL logs, DDP.

Run ``msinv learn train CONFIG`` (or ``torchrun --nproc_per_node K -m msinv.learned.train
CONFIG`` for K processes). The config (see ``configs/*.toml``)::

    seed = 0
    [data]      train = "data/squares-train.zarr", start = 0, count = 3000
    [model]     name = "equinet-cnn", [model.score] / [model.head]: network options
    [optim]     lr = 1e-3, lr_start = 1e-5, lr_end = 1e-8, warmup = 0.05, betas = [0.9, 0.999]
    [run]       steps, batch, ema, checkpoint_every, log_every, out, device, progress

Notes
-----
Batches depend only on (seed, step): sample k of the stream is
``permutation(seed, epoch)[k mod N]`` with ``epoch = k // N``; the noise of the diffusion loss
comes from a CPU ``torch.Generator`` per process whose state is checkpointed, so resuming
from a checkpoint continues the same run bit for bit. The learning rate rises linearly from
``lr_start`` to ``lr`` over the first ``warmup`` fraction of the steps, then follows a cosine
to ``lr_end``. With K processes each takes every K-th sample of the global batch and DDP
averages the gradients.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
import tomllib
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from msinv.core.errors import ConfigError, FileFormatError, Interrupted, UserInputError
from msinv.core.fields import expected_type
from msinv.core.interrupts import DeferredInterrupt
from msinv.core.outputs import check_output_dir, write_text
from msinv.core.provenance import code_version, provenance
from msinv.learned.checkpoint_file import load_weights, read_checkpoint
from msinv.learned.data import (
    Normalisation,
    PairDataset,
    concat_pairs,
    load_pairs,
    store_slice,
)
from msinv.learned.diffusion.ema import ema_model
from msinv.learned.models import ARCHITECTURE, MODELS, build, check_options

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
PRECISIONS = ("fp32", "tf32", "bf16")
INDEX_BLOCK = 512  # batches whose sample indices are sent to the device at once


@dataclass(frozen=True)
class DataConfig:
    """Training data: one or several dataset stores and the range of samples of each."""

    train: str | list[str]  # zarr store(s), relative to the config file (several: mixed)
    start: int = 0  # first sample (of each store)
    count: int | None = None  # number of samples of each store (None: all)
    freqs: list[float] | None = None  # frequencies kept from the store (None: all)

    def __post_init__(self) -> None:
        if self.start < 0 or (self.count is not None and self.count < 1):
            raise UserInputError(
                f"data.start must be >= 0 and data.count >= 1, got {self.start}, {self.count}"
            )
        if not self.stores:
            raise UserInputError("data.train must name at least one store")

    @property
    def stores(self) -> list[str]:
        """The training stores as a list."""
        return [self.train] if isinstance(self.train, str) else list(self.train)


@dataclass(frozen=True)
class ModelConfig:
    """Arguments of :func:`msinv.learned.build` (n, n_freq, n_sc, freqs filled from the data)."""

    name: str  # a Table-1 name
    score: dict[str, Any] = field(default_factory=dict)  # score network options
    head: dict[str, Any] = field(default_factory=dict)  # deterministic head options
    n: int | None = None
    n_freq: int | None = None
    n_sc: int | None = None
    freqs: list[float] | None = None
    geometry: dict[str, Any] | None = None  # the data's Geometry.to_dict() (filled from them)

    def __post_init__(self) -> None:
        if self.name not in MODELS:
            raise UserInputError(
                f"model.name must be one of {', '.join(MODELS)}, got {self.name!r}"
            )
        check_options(self.name, self.score, self.head)


@dataclass(frozen=True)
class OptimConfig:
    """Adam with a linear warm-up, then a cosine or a staircase exponential decay.

    ``schedule = "cosine"`` (the diffusion recipe, and the deterministic EquiNet's of the
    paper's §5.3): ``lr_start`` -> ``lr`` linearly over the warm-up, then a cosine to ``lr_end``
    at the last step. ``schedule = "exponential"`` (SwitchNet/WideBNet, §5.3): after the warm-up
    ``lr * decay_rate ** floor((step - warm-up) / decay_steps)``. The warm-up lasts
    ``warmup_steps`` steps when given, else the fraction ``warmup`` of the run.

    Attributes
    ----------
    lr : float, default 1e-3
        Peak learning rate.
    lr_start : float, default 1e-5
        Learning rate at step 0.
    lr_end : float, default 1e-8
        Learning rate at the last step (cosine schedule).
    warmup : float, default 0.05
        Fraction of steps of linear warm-up.
    betas : tuple[float, float], default (0.9, 0.999)
        Adam's coefficients of the running averages.
    schedule : str, default "cosine"
        ``"cosine"`` or ``"exponential"``.
    warmup_steps : int or None
        Warm-up in steps (overrides the fraction; None: use ``warmup``).
    decay_rate : float, default 0.95
        Exponential schedule: factor per ``decay_steps``.
    decay_steps : int, default 2000
        Exponential schedule: steps per factor.
    """

    lr: float = 1e-3
    lr_start: float = 1e-5
    lr_end: float = 1e-8
    warmup: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "cosine"
    warmup_steps: int | None = None
    decay_rate: float = 0.95
    decay_steps: int = 2000

    def __post_init__(self) -> None:
        if not (self.lr > 0 and self.lr_start >= 0 and self.lr_end >= 0):
            raise UserInputError("optim.lr must be > 0 and optim.lr_start, optim.lr_end >= 0")
        if not 0 <= self.warmup < 1:
            raise UserInputError(f"optim.warmup must be in [0, 1), got {self.warmup}")
        if self.schedule not in ("cosine", "exponential"):
            raise UserInputError(
                f"optim.schedule must be cosine or exponential, got {self.schedule!r}"
            )
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise UserInputError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 < self.decay_rate <= 1 or self.decay_steps < 1:
            raise UserInputError("optim.decay_rate must be in (0, 1] and optim.decay_steps >= 1")

    def factor(self, step: int, steps: int) -> float:
        """Learning rate at ``step`` divided by ``lr``."""
        warm = int(self.warmup * steps) if self.warmup_steps is None else self.warmup_steps
        if step < warm:
            return (self.lr_start + (self.lr - self.lr_start) * step / warm) / self.lr
        if self.schedule == "exponential":
            return self.decay_rate ** ((step - warm) // self.decay_steps)
        progress = min(1.0, (step - warm) / max(1, steps - warm))
        return (
            self.lr_end + 0.5 * (self.lr - self.lr_end) * (1 + math.cos(math.pi * progress))
        ) / self.lr


@dataclass(frozen=True)
class RunConfig:
    """Length, batch, EMA, output and device of a run.

    Attributes
    ----------
    steps : int
        Optimiser steps.
    out : str
        Output folder (relative to the config file).
    batch : int, default 16
        Global batch size (all processes together).
    ema : float, default 0.999
        EMA decay of the sampling weights.
    ema_warmup : bool, default True
        Decay ``min(ema, (1 + k) / (10 + k))`` after k updates (False: ``ema`` throughout).
    checkpoint_every : int, default 1000
        Steps between checkpoints.
    log_every : int, default 50
        Steps between JSONL log lines.
    device : str, default "auto"
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    progress : bool, default True
        Show a tqdm progress bar.
    threads : int, default 0
        torch intra-op threads per process (0: torch's default).
    precision : str, default "fp32"
        ``"fp32"``, ``"tf32"`` (CUDA matmuls and convolutions in TF32) or ``"bf16"``
        (bfloat16 autocast).
    compile : bool, default False
        ``torch.compile`` the back-projection and the score network.
    channels_last : bool, default False
        NHWC memory layout for the convolutions.
    noise : str, default "cpu"
        ``"cpu"``: training noise from a CPU generator (the same on any device);
        ``"device"``: drawn on the model's device.
    """

    steps: int
    out: str
    batch: int = 16
    ema: float = 0.999
    ema_warmup: bool = True
    checkpoint_every: int = 1000
    log_every: int = 50
    device: str = "auto"
    progress: bool = True
    threads: int = 0
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    noise: str = "cpu"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise UserInputError(
                "run.steps, run.batch, run.checkpoint_every, run.log_every must be >= 1"
            )
        if not 0 <= self.ema < 1:
            raise UserInputError(f"run.ema must be in [0, 1), got {self.ema}")
        if self.threads < 0:
            raise UserInputError(f"run.threads must be >= 0, got {self.threads}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserInputError(f"run.device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise UserInputError(
                f"run.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.noise not in ("cpu", "device"):
            raise UserInputError(f"run.noise must be cpu or device, got {self.noise!r}")

    def noise_device(self, device: torch.device) -> torch.device:
        """Where the training noise is drawn when the model runs on ``device``: the CPU (the
        same noise on any device, the default) or the model's device (``noise = "device"``)."""
        return device if self.noise == "device" else torch.device("cpu")


@dataclass(frozen=True)
class TrainConfig:
    """A full training configuration (one TOML file)."""

    data: DataConfig
    model: ModelConfig
    run: RunConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> TrainConfig:
        """Validate a parsed TOML document; errors name the file and the field."""
        sections = {
            "data": DataConfig,
            "model": ModelConfig,
            "run": RunConfig,
            "optim": OptimConfig,
        }
        unknown = set(d) - {*sections, "seed"}
        if unknown:
            raise UserInputError(
                f"{source}: unknown key(s) {sorted(unknown)}; expected {sorted([*sections, 'seed'])}"
            )
        parts = {}
        for key, kind in sections.items():
            if key not in d:
                if key == "optim":
                    continue
                raise UserInputError(f"{source}: missing section [{key}]")
            if not isinstance(d[key], dict):
                raise ConfigError(f"{source}: {key} = {d[key]!r}: expected a section [{key}]")
            names = {f.name for f in dataclasses.fields(kind)}
            bad = set(d[key]) - names
            if bad:
                raise ConfigError(
                    f"{source}: unknown key(s) {sorted(bad)} in [{key}]; expected {sorted(names)}"
                )
            hints = typing.get_type_hints(kind)
            for name, value in d[key].items():
                expected = expected_type(value, hints[name])
                if expected is not None:
                    raise ConfigError(
                        f"{source}: [{key}] {name} = {json.dumps(value)}: expected {expected}"
                    )
            missing = [
                f.name
                for f in dataclasses.fields(kind)
                if f.name not in d[key]
                and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
            ]
            if missing:
                raise ConfigError(f"{source}: [{key}] is missing {', '.join(missing)}")
            try:
                values = dict(d[key])
                if "betas" in values:
                    values["betas"] = tuple(values["betas"])
                parts[key] = kind(**values)
            except (TypeError, ValueError) as exc:
                where = "" if str(exc).startswith("[") else f"[{key}] "
                raise ConfigError(f"{source}: {where}{exc}") from None
        seed = d.get("seed", 0)
        if expected_type(seed, int) is not None or seed < 0:
            raise ConfigError(f"{source}: seed = {seed!r}: expected an integer >= 0")
        return cls(**parts, seed=seed)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config file; relative paths in it are taken relative to the file."""
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; expected a TOML config file")
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserInputError(f"{path}: config file not found") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file; expected a TOML config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from None
        cfg = cls.from_dict(doc, str(path))
        base = path.resolve().parent
        return dataclasses.replace(
            cfg,
            data=dataclasses.replace(
                cfg.data,
                train=[str(base / t) for t in cfg.data.train]
                if isinstance(cfg.data.train, list)
                else str(base / cfg.data.train),
            ),
            run=dataclasses.replace(cfg.run, out=str(base / cfg.run.out)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (TOML-serialisable: None values dropped)."""

        def clean(x):
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items() if v is not None}
            if isinstance(x, tuple | list):
                return [clean(v) for v in x]
            return x

        return clean(dataclasses.asdict(self))

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())


# ------------------------------------------------------------------------------ helpers
def batch_indices(seed: int, step: int, batch: int, n_samples: int) -> np.ndarray:
    """Global batch of ``step``: sample k is permutation(seed, k // N)[k % N]."""
    k = np.arange(step * batch, (step + 1) * batch)
    out = np.empty(batch, dtype=np.int64)
    for epoch in np.unique(k // n_samples):
        perm = np.random.default_rng([seed, int(epoch)]).permutation(n_samples)
        sel = k // n_samples == epoch
        out[sel] = perm[k[sel] % n_samples]
    return out


def _index_block(config: TrainConfig, start: int, stop: int, n_samples: int) -> torch.Tensor:
    """Global batches of steps ``start`` to ``stop - 1`` as one (steps, batch) int64 tensor."""
    rows = [batch_indices(config.seed, s, config.run.batch, n_samples) for s in range(start, stop)]
    return torch.from_numpy(np.stack(rows))


def _step_indices(
    config: TrainConfig,
    start: int,
    last: int,
    n_samples: int,
    rank: int,
    world: int,
    device: torch.device,
) -> Iterator[torch.Tensor]:
    """This process's sample indices for steps ``start`` to ``last - 1``, one tensor per step.

    Process ``rank`` of ``world`` takes columns ``rank, rank + world, ...`` of each global
    batch (:func:`batch_indices`); the indices go to ``device`` :data:`INDEX_BLOCK` steps at a
    time (one host-to-device copy per block, not per step).
    """
    for first in range(start, last, INDEX_BLOCK):
        block = _index_block(config, first, min(last, first + INDEX_BLOCK), n_samples)
        yield from block[:, rank::world].to(device, non_blocking=True)


def accelerate(model: nn.Module, run: RunConfig, device: torch.device) -> nn.Module:
    """Apply the run's speed switches to ``model`` in place and return it.

    ``precision = "tf32"`` lets CUDA matrix products and convolutions use TF32 (a process-wide
    setting); ``channels_last`` stores the convolution weights in NHWC layout; ``compile``
    compiles the back-projection, the score network (or deterministic head) and the score
    network's conditioning branch with :func:`torch.compile`, falling back to eager execution
    wherever compilation fails. None of them changes the model's parameters or state dict;
    results agree with the plain run up to floating-point rounding (bf16 autocast, applied
    in the training loop, to bf16 rounding).
    """
    if run.precision == "tf32" and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if run.channels_last:
        model.to(memory_format=torch.channels_last)
    if run.compile:
        from torch import _dynamo

        _dynamo.config.suppress_errors = True  # eager fallback, never a failed run
        for name in ("backprojection", "score", "head"):
            part = getattr(model, name, None)
            if isinstance(part, nn.Module):
                part.compile()
                if callable(getattr(part, "condition", None)):
                    part.condition = torch.compile(part.condition)
    return model


class _Loss(nn.Module):
    """Per-sample training loss as a forward pass (what DDP wraps)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, eta, data, generator):
        return self.model.training_loss(eta, data, generator).mean()


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError("run.device = 'cuda' but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _rng_state() -> dict[str, Any]:
    legacy = np.random.get_state()  # noqa: NPY002 - third-party code may use the global RNG
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(legacy[1].astype(np.int64)),
            "pos": int(legacy[2]),
            "has_gauss": int(legacy[3]),
            "cached_gaussian": float(legacy[4]),
        },
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    s = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            s["keys"].numpy().astype(np.uint32),
            s["pos"],
            s["has_gauss"],
            s["cached_gaussian"],
        )
    )
    random.setstate(state["python"])


def resolve(config: TrainConfig, pairs) -> TrainConfig:
    """Fill the model's grid, frequency and acquisition (sizes and geometry) from the data.

    The models take square data (as many receivers as sources, ``n_sc`` of each): other data
    are refused here, before a model is built.
    """
    n_r, n_s = (int(k) for k in pairs.data.shape[-2:])
    if n_r != n_s:
        raise UserInputError(
            f"the data have {n_r} receivers and {n_s} sources: the learned models take square "
            "data (n_receivers == n_sources; the paper's acquisition)"
        )
    model = dataclasses.replace(
        config.model,
        n=pairs.n,
        n_freq=int(pairs.data.shape[1]),
        n_sc=int(pairs.data.shape[-1]),
        freqs=[float(f) for f in pairs.freqs],
        geometry=pairs.geometry.to_dict(),
    )
    return dataclasses.replace(config, model=model)


def build_from_config(model: ModelConfig, architecture: int = ARCHITECTURE) -> nn.Module:
    """The model of a resolved [model] section (as built by code of ``architecture``)."""
    return build(
        model.name,
        n=model.n,
        n_freq=model.n_freq,
        n_sc=model.n_sc,
        freqs=model.freqs,
        score=model.score or None,
        head=model.head or None,
        architecture=architecture,
        geometry=model.geometry,
    )


# ------------------------------------------------------------------------------ the trainer
def train(
    config: TrainConfig | str | os.PathLike, *, resume: bool = True, stop_after: int | None = None
) -> Path:
    """Train (or resume) a model; returns the path of the final checkpoint.

    Parameters
    ----------
    config : TrainConfig or path
        The configuration or its TOML file.
    resume : bool, default True
        Continue from ``<out>/checkpoint.pt`` when it exists (the same run, exactly).
    stop_after : int, optional
        Checkpoint and return once this step is reached (a pre-emptible slice of the run;
        calling again resumes it).

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE`` > 1) the processes join a DDP group (NCCL on CUDA,
    gloo on CPU); only rank 0 writes logs and checkpoints.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_toml(config)
    check_output_dir(config.run.out, "run.out")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(config.run.device, local_rank)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if config.run.batch % world:
            raise UserInputError(
                f"run.batch = {config.run.batch} is not divisible by {world} processes"
            )
    try:
        return _train(config, resume, world, rank, device, stop_after)
    finally:
        if world > 1:
            dist.destroy_process_group()


def _train(
    config: TrainConfig,
    resume: bool,
    world: int,
    rank: int,
    device: torch.device,
    stop_after: int | None,
) -> Path:
    d = config.data
    pairs = concat_pairs([load_pairs(t, d.start, d.count, d.freqs) for t in d.stores])
    config = resolve(config, pairs)
    norm = Normalisation.fit(pairs.eta, pairs.data)
    dataset = PairDataset(pairs, norm)
    eta_all, data_all = dataset.eta.to(device), dataset.data.to(device)
    out = Path(config.run.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(config.seed)
    model = build_from_config(config.model).to(device)
    ema = ema_model(model, config.run.ema, warmup=config.run.ema_warmup)
    accelerate(model, config.run, device)
    if config.run.channels_last:
        ema.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=config.optim.lr, betas=config.optim.betas)
    steps = config.run.steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: config.optim.factor(s, steps))
    generator = torch.Generator(device=config.run.noise_device(device))
    generator.manual_seed(config.seed * 1_000_003 + rank)
    step = 0
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.exists():
        ckpt = read_checkpoint(ckpt_path, required=_RESUME_KEYS)
        if ckpt.get("architecture", 1) != ARCHITECTURE:
            raise UserInputError(
                f"{ckpt_path}: written by architecture {ckpt.get('architecture', 1)} of the "
                f"networks, this is {ARCHITECTURE}; start a fresh run (another run.out)"
            )
        _check_same_run(ckpt_path, ckpt, config)
        if ckpt["world_size"] != world:
            raise UserInputError(
                f"{ckpt_path}: written by {ckpt['world_size']} processes, resumed with {world}"
            )
        try:
            load_weights(model, ckpt["model"], ckpt_path, "model")
            load_weights(ema, ckpt["ema"], ckpt_path, "EMA")
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            generator.set_state(ckpt["rng"]["noise"][rank])
            _set_rng_state(ckpt["rng"])
        except (KeyError, IndexError, ValueError, RuntimeError, TypeError) as exc:
            raise FileFormatError(
                f"{ckpt_path}: damaged checkpoint, its optimiser or random state ({exc})"
            ) from None
        step = int(ckpt["step"])
        if rank == 0:
            _trim_log(out / LOG, step)
    loss_module = _Loss(model)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        loss_module = DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None
        )

    bar = None
    if rank == 0 and config.run.progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=steps,
            initial=step,
            desc=config.model.name,
            dynamic_ncols=True,
            file=sys.stderr,
            disable=None,  # only on a terminal
        )
    log = _open_log(out / LOG, step) if rank == 0 else None
    amp = config.run.precision == "bf16"
    # the window's losses are summed on the device: the host waits for the GPU only at log time
    window_sum, window_count = torch.zeros((), dtype=torch.float64, device=device), 0
    t0 = time.perf_counter()
    # Ctrl-C or SIGTERM: finish the step, checkpoint, stop (one process; torchrun has its own)
    stop = DeferredInterrupt() if world == 1 else None
    saved = step
    try:
        with stop or contextlib.nullcontext():
            last = steps if stop_after is None else min(steps, stop_after)
            indices = _step_indices(config, step, last, len(dataset), rank, world, device)
            model.train()
            while step < last:
                if stop is not None and stop.requested:
                    if saved != step:
                        _checkpoint(
                            ckpt_path, config, model, ema, opt, sched, generator, norm, step, 1, 0
                        )
                    raise Interrupted(
                        f"stopped at step {step} of {steps} ({stop.signal_name}); checkpoint "
                        f"{ckpt_path} holds it: run the same command to resume"
                    )
                idx_t = next(indices)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = loss_module(eta_all[idx_t], data_all[idx_t], generator)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                ema.update_parameters(model)
                step += 1
                window_sum += loss.detach().double()
                window_count += 1
                if bar is not None:
                    bar.update(1)
                if log is not None and (step % config.run.log_every == 0 or step == steps):
                    mean_loss = float(window_sum) / window_count
                    log.write(
                        json.dumps(
                            {
                                "step": step,
                                "loss": mean_loss,
                                "lr": sched.get_last_lr()[0],
                                "seconds": round(time.perf_counter() - t0, 3),
                            }
                        )
                        + "\n"
                    )
                    log.flush()
                    if bar is not None:
                        bar.set_postfix(loss=f"{mean_loss:.4g}")
                    window_sum.zero_()
                    window_count = 0
                if step % config.run.checkpoint_every == 0 or step == last:
                    _checkpoint(
                        ckpt_path,
                        config,
                        model,
                        ema,
                        opt,
                        sched,
                        generator,
                        norm,
                        step,
                        world,
                        rank,
                    )
                    saved = step
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    return ckpt_path


def _open_log(path: Path, step: int):
    """The JSONL log, open for appending: a fresh run (step 0) starts it empty, instead of
    adding its lines to a discarded run's (a resumed run has trimmed it, :func:`_trim_log`)."""
    if step == 0:
        write_text(path, "")
    return open(path, "a")


#: Keys a checkpoint needs to resume training (an exported one lacks the raw weights).
_RESUME_KEYS = ("model", "ema", "optimizer", "scheduler", "step", "world_size", "rng", "config")
#: Run settings that may change between the slices of one run.
_MAY_CHANGE = {"out", "checkpoint_every", "log_every", "device", "progress", "threads", "compile"}


def _check_same_run(path: Path, ckpt: dict, config: TrainConfig) -> None:
    """Refuse to resume a checkpoint written with a different configuration."""
    try:
        stored = tomllib.loads(ckpt["config"])
    except (TypeError, tomllib.TOMLDecodeError) as exc:
        raise FileFormatError(f"{path}: damaged checkpoint, its config ({exc})") from None
    now = config.to_dict()
    for section in ("data", "model", "optim", "run"):
        keys = set(stored.get(section, {})) | set(now.get(section, {}))
        for key in sorted(keys - (_MAY_CHANGE if section == "run" else {"train"})):
            have, want = stored.get(section, {}).get(key), now.get(section, {}).get(key)
            if have != want:
                raise ConfigError(
                    f"{path}: written with {section}.{key} = {json.dumps(have)}, the config now "
                    f"says {json.dumps(want)}; use the same config to resume, or --fresh to "
                    "start over (the checkpoint is replaced)"
                )
    if stored.get("seed", 0) != now.get("seed", 0):
        raise ConfigError(
            f"{path}: written with seed = {stored.get('seed', 0)}, the config now says "
            f"{now.get('seed', 0)}; use the same config to resume, or --fresh to start over"
        )


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a run resumes from)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            if json.loads(line)["step"] > step:
                continue
        except (ValueError, KeyError, TypeError):
            pass
        kept.append(line)
    write_text(path, "".join(kept))


def _checkpoint(path, config, model, ema, opt, sched, generator, norm, step, world, rank) -> None:
    states = [generator.get_state()]
    if world > 1:
        import torch.distributed as dist

        states = [None] * world
        dist.all_gather_object(states, generator.get_state())
    if rank == 0:
        rng = _rng_state()
        rng["noise"] = states
        ckpt = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "world_size": world,
            "rng": rng,
            "normalisation": norm.state_dict(),
            "config": config.to_toml(),
            "kind": model.kind,
            "architecture": ARCHITECTURE,
            "train_data": [
                store_slice(t, config.data.start, config.data.count) for t in config.data.stores
            ],
            "code_version": code_version(),
            "provenance": json.dumps(provenance(config.to_dict())),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    if world > 1:
        torch.distributed.barrier()


def export(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write an inference-only copy of a checkpoint: EMA weights, normalisation, config.

    Drops the raw weights, optimiser, scheduler and RNG states (about 4x smaller); the
    result is what :func:`msinv.learned.loading.load` needs with ``weights="ema"``. The file is
    read with torch's weights-only unpickler: a damaged, foreign or hostile file is a
    :class:`~msinv.core.errors.FileFormatError` naming it, and no pickled code runs.
    """
    keep = ("ema", "normalisation", "config", "step", "kind", "code_version", "provenance")
    ckpt = read_checkpoint(checkpoint, required=keep)  # weights only; one-line errors
    slim = {k: ckpt[k] for k in keep} | {"architecture": ckpt.get("architecture", 1)}
    if "train_data" in ckpt:
        slim["train_data"] = ckpt["train_data"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, out)
    return out


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - torchrun entry point
    """``python -m msinv.learned.train CONFIG [--fresh]``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m msinv.learned.train CONFIG [--fresh]")
    train(argv[0], resume="--fresh" not in argv)


if __name__ == "__main__":  # pragma: no cover
    main()
