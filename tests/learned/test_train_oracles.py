"""The trainer against independent computations: one step by hand, the EMA of the raw weights,
the learning-rate schedule, checkpoint cadence, DDP = one process, every model trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from msinv.learned.data import Normalisation, PairDataset, load_pairs
from msinv.learned.diffusion.ema import ema_decay
from msinv.learned.loading import load
from msinv.learned.models import MODELS
from msinv.learned.train import (
    OptimConfig,
    TrainConfig,
    batch_indices,
    build_from_config,
    resolve,
    train,
)

TINY_CNN = {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]}
TINY_UVIT = {"widths": [16, 32], "blocks": 1, "depth": 1, "heads": 2, "emb_dim": 32}
HEAD = {"rounds": 2}


def _config(store, out, name="equinet", **run) -> TrainConfig:
    net = MODELS[name][1]
    model = {"name": name, "head": HEAD}
    if net is not None:
        model["score"] = TINY_CNN if net == "cnn" else TINY_UVIT
    optim = run.pop("optim", {"lr": 3e-3, "lr_start": 1e-3, "warmup": 0.2, "betas": [0.8, 0.95]})
    data = run.pop("data", {"train": str(store), "start": 1, "count": 6})
    return TrainConfig.from_dict(
        {
            "seed": run.pop("seed", 4),
            "data": data,
            "model": model,
            "optim": optim,
            "run": {
                "steps": 10,
                "batch": 4,
                "ema": 0.6,
                "checkpoint_every": 1000,
                "log_every": 1,
                "out": str(out),
                "device": "cpu",
                "progress": False,
                **run,
            },
        }
    )


def _load(path):
    return torch.load(path, weights_only=True)


def _flat(state: dict) -> torch.Tensor:
    """The floating-point tensors of a state dict, in key order, as one float64 vector."""
    return torch.cat(
        [state[k].double().ravel() for k in sorted(state) if state[k].is_floating_point()]
    )


def test_two_steps_of_the_deterministic_model_by_hand(tiny_store, tmp_path):
    """Samples start..start+count, their normalisation, the seeded initial weights, the global
    batches, plain MSE, Adam with the configured betas and the warm-up learning rate; the log
    (every step) holds each step's loss."""
    cfg = _config(tiny_store, tmp_path / "run")
    ckpt = _load(train(cfg, stop_after=2))
    assert ckpt["step"] == 2

    pairs = load_pairs(tiny_store, 1, 6)
    norm = Normalisation.fit(pairs.eta, pairs.data)
    ds = PairDataset(pairs, norm)
    torch.manual_seed(4)
    model = build_from_config(resolve(cfg, pairs).model)
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.8, 0.95))
    losses = []
    for step, lr in enumerate([1e-3, 2e-3]):  # warm-up over 2 of 10 steps from lr_start
        assert 3e-3 * OptimConfig(3e-3, 1e-3, 1e-8, 0.2).factor(step, 10) == pytest.approx(lr)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.from_numpy(batch_indices(4, step, 4, 6))
        loss = ((model(ds.data[idx]) - ds.eta[idx]) ** 2).mean()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ckpt["model"][name], value, rtol=1e-5, atol=1e-7, msg=name)
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    assert [r["loss"] for r in log] == pytest.approx(losses, rel=1e-5)
    for name in ("eta_mean", "eta_std", "data_mean", "data_std"):
        torch.testing.assert_close(
            ckpt["normalisation"][name], torch.as_tensor(getattr(norm, name), dtype=torch.float64)
        )


@pytest.mark.parametrize(("decay", "warmup"), [(0.6, True), (0.6, False), (0.3, False)])
def test_ema_is_the_configured_average_of_the_raw_weights(tiny_store, tmp_path, decay, warmup):
    cfg = _config(tiny_store, tmp_path / "run", ema=decay, ema_warmup=warmup)
    raw = []
    for step in (1, 2, 3, 4):
        raw.append(_load(train(cfg, stop_after=step))["model"])
    ema = _load(tmp_path / "run" / "checkpoint.pt")["ema"]
    for name, value in raw[0].items():
        if not value.is_floating_point():
            continue
        expected = value.double()  # the first update copies
        for k in range(1, 4):
            d = min(decay, (1 + k) / (10 + k)) if warmup else decay
            assert ema_decay(decay, k, warmup) == pytest.approx(d)
            expected = d * expected + (1 - d) * raw[k][name].double()
        torch.testing.assert_close(ema["module." + name].double(), expected, rtol=1e-5, atol=1e-7)


def test_logged_learning_rate_follows_the_schedule_and_checkpoint_cadence(
    tiny_store, tmp_path, monkeypatch
):
    from msinv.learned import train as train_module

    saved, on_disk = [], []
    real = train_module._checkpoint
    log = tmp_path / "run" / "log.jsonl"

    def checkpoint(path, config, model, ema, opt, sched, gen, norm, step, *a):
        saved.append(step)
        # each log line is on disk as soon as it is written (a crash loses none; a monitor
        # reading the file sees the run as it goes), not when the run closes the file
        on_disk.append(len(log.read_text().splitlines()))
        real(path, config, model, ema, opt, sched, gen, norm, step, *a)

    monkeypatch.setattr(train_module, "_checkpoint", checkpoint)
    cfg = _config(tiny_store, tmp_path / "run", steps=7, checkpoint_every=3, log_every=2)
    train(cfg)
    assert saved == [3, 6, 7]
    assert on_disk == [1, 3, 4]  # steps 2; 2, 4, 6; 2, 4, 6, 7
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4, 6, 7]
    o = cfg.optim
    for x in lines:  # the rate of the next step, after the scheduler stepped
        assert x["lr"] == pytest.approx(o.lr * o.factor(x["step"], 7), rel=1e-9)


def test_threads_and_seed_are_honoured(tiny_store, tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = _load(train(_config(tiny_store, tmp_path / "a", steps=1, threads=1)))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    b = _load(train(_config(tiny_store, tmp_path / "b", steps=1, seed=5)))
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def _tiny(name):
    from msinv.learned.models import build

    net = MODELS[name][1]
    score = None if net is None else TINY_CNN if net == "cnn" else TINY_UVIT
    torch.manual_seed(0)
    return build(name, n=16, n_freq=2, freqs=[2.5, 5.0], score=score, head=HEAD)


def _batch(seed, b=3):
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(b, 2, 16, 16, dtype=torch.complex64, generator=g)
    return torch.randn(b, 1, 16, 16, generator=g), data


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_depends_on_its_data_and_every_parameter_gets_a_gradient(name):
    """build() for each of the 12 names: the prediction changes with the data (a front end
    whose output is normalised away would not), and one training loss reaches every weight."""
    model = _tiny(name)
    eta, data = _batch(1)
    _, other = _batch(2)
    with torch.no_grad():
        if model.kind == "deterministic":
            a, b = model(data), model(other)
        else:
            sigma = torch.full((3,), 0.5)
            a = model(eta, model.condition(data), sigma)
            b = model(eta, model.condition(other), sigma)
    assert a.shape == (3, 1, 16, 16)
    assert float((a - b).abs().max()) > 1e-3 * float(a.abs().max()), f"{name} ignores its data"
    model.training_loss(eta, data, torch.Generator().manual_seed(3)).mean().backward()
    dead = [k for k, p in model.named_parameters() if p.grad is None or not p.grad.abs().max() > 0]
    assert not dead, f"{name}: parameters without a gradient: {dead[:6]}"


@pytest.mark.parametrize("name", ["equinet", "equinet-uvit", "switchnet-cnn", "widebnet"])
def test_training_step_through_the_trainer_loads_and_samples(tiny_store, tmp_path, name):
    """The deterministic, U-ViT, SwitchNet and WideBNet models train through the trainer; the
    checkpoint loads and gives samples of the right shape."""
    from msinv.learned.sampling import posterior

    cfg = _config(
        tiny_store,
        tmp_path / name,
        name=name,
        steps=2,
        optim={"lr": 1e-2, "warmup": 0.0},
        data={"train": str(tiny_store), "count": 4},
    )
    path = train(cfg)
    init = load(path, weights="init").model.state_dict()
    trained = _load(path)["model"]
    assert any(not torch.equal(init[k], trained[k]) for k in init if init[k].is_floating_point())
    samples = posterior(load(path), load_pairs(tiny_store, 4, 1).data, 2, n_levels=3)
    expected = (1, 1 if MODELS[name][1] is None else 2, 16, 16)
    assert samples.shape == expected and torch.isfinite(torch.from_numpy(samples)).all()


def test_ddp_two_processes_equal_one_process(tiny_store, tmp_path):
    """torchrun, 2 CPU processes (gloo) on the same global batches: the same weights as one
    process (deterministic model: no per-rank noise), and every rank's noise state saved."""
    one = train(_config(tiny_store, tmp_path / "one", steps=3))
    two = _config(tiny_store, tmp_path / "two", steps=3)
    (tmp_path / "two.toml").write_text(two.to_toml())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "msinv.learned.train", str(tmp_path / "two.toml")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = _load(one), _load(tmp_path / "two" / "checkpoint.pt")
    assert b["world_size"] == 2 and b["step"] == 3 and len(b["rng"]["noise"]) == 2
    # each rank's own generator state (seeded seed * 1_000_003 + rank), gathered to rank 0
    for rank, state in enumerate(b["rng"]["noise"]):
        expected = torch.Generator().manual_seed(two.seed * 1_000_003 + rank).get_state()
        assert isinstance(state, torch.Tensor) and torch.equal(state, expected), rank
    init = _flat(load(one, weights="init").model.state_dict())
    assert torch.equal(
        init, _flat(load(tmp_path / "two" / "checkpoint.pt", weights="init").model.state_dict())
    )
    for key in ("model", "ema"):
        # the updates agree to rounding: Adam's first steps are lr * g / (|g| + eps), so the
        # few weights whose gradient is at the rounding level move by up to lr either way;
        # a batch sharded wrongly changes the update of most weights (relative error ~1)
        one_step, two_step = _flat(a[key]) - init, _flat(b[key]) - init
        rel = float((two_step - one_step).norm() / one_step.norm())
        print(f"DDP vs one process, {key}: relative difference of the update {rel:.2e}")
        assert rel < 1e-2, f"{key}: updates differ by {rel:.2e} (relative)"


def test_sigterm_stops_a_one_process_run_at_a_checkpoint(tiny_store, tmp_path, monkeypatch):
    """SIGTERM during a one-process run (no torchrun) finishes the step, keeps it in the
    checkpoint and raises Interrupted (the CLI's exit 130 with a resume hint); it never reaches
    the handler that was installed before the run (here one that would fail the test). The
    signal is sent deterministically, right after the checkpoint of step 2."""
    from msinv.core.errors import Interrupted
    from msinv.learned import train as train_module

    class Unhandled(Exception):
        pass

    def outside_handler(signum, frame):
        raise Unhandled("SIGTERM reached the handler installed before the run")

    real_checkpoint = train_module._checkpoint

    def checkpoint_then_signal(path, *args):
        real_checkpoint(path, *args)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(train_module, "_checkpoint", checkpoint_then_signal)
    previous = signal.signal(signal.SIGTERM, outside_handler)
    try:
        with pytest.raises(Interrupted, match=r"stopped at step 2 of 10 \(SIGTERM\)"):
            train(_config(tiny_store, tmp_path / "run", checkpoint_every=2))
        assert signal.getsignal(signal.SIGTERM) is outside_handler  # restored after the run
    finally:
        signal.signal(signal.SIGTERM, previous)
    ckpt = next((tmp_path / "run").glob("*.pt"))
    assert _load(ckpt)["step"] == 2


def test_resume_from_a_checkpoint_with_damaged_random_state_says_so(tiny_store, tmp_path):
    """A checkpoint whose weights load but whose optimiser or random state does not is refused
    in one line naming the file (not a torch traceback, not a silent fresh start)."""
    from msinv.core.errors import FileFormatError

    config = _config(tiny_store, tmp_path / "run", steps=2, checkpoint_every=1)
    ckpt_path = train(config, stop_after=1)
    ckpt = _load(ckpt_path)
    ckpt["rng"]["noise"] = []  # no generator state for rank 0
    torch.save(ckpt, ckpt_path)
    with pytest.raises(FileFormatError, match="damaged checkpoint, its optimiser or random state"):
        train(config)


def test_cosine_rate_stays_at_its_end_value_after_the_last_step():
    optim = OptimConfig(lr=1e-3, lr_end=1e-6, warmup=0.1)
    assert optim.factor(100, 100) == pytest.approx(1e-3)
    for beyond in (101, 150, 1000):
        assert optim.factor(beyond, 100) == pytest.approx(1e-3)


def test_a_resumed_run_continues_the_global_random_streams(tiny_store, tmp_path, monkeypatch):
    """Third-party code may draw from torch's, NumPy's and Python's global generators: a run
    resumed from a checkpoint restores their saved states, so at its last step they are those
    of the uninterrupted run, whatever the resuming process did to them before. Here each
    training step draws once from torch's and Python's (as a dropout layer would; the tests'
    guard forbids NumPy's global draws, its state is compared all the same): the trainer's own
    ``torch.manual_seed(seed)`` at the start of every call does not give the resumed run
    the two draws of its first slice, only the restored state does."""
    import random

    import numpy as np

    from msinv.learned import train as train_module

    forward = train_module._Loss.forward

    def drawing_forward(self, eta, data, generator):
        torch.rand(1), random.random()
        return forward(self, eta, data, generator)

    monkeypatch.setattr(train_module._Loss, "forward", drawing_forward)

    def run(out, stop_first):
        np.random.seed(7)  # noqa: NPY002 - the global state is what this test is about
        random.seed(7)
        cfg = _config(tiny_store, out, steps=3)
        if stop_first:
            train(cfg, stop_after=2)
            torch.manual_seed(999)  # the resuming process's streams are elsewhere
            np.random.seed(999)  # noqa: NPY002
            random.seed(999)
        return _load(train(cfg))["rng"]

    whole, resumed = run(tmp_path / "whole", False), run(tmp_path / "resumed", True)
    assert torch.equal(whole["torch"], resumed["torch"])
    assert torch.equal(whole["numpy"]["keys"], resumed["numpy"]["keys"])
    assert whole["numpy"]["pos"] == resumed["numpy"]["pos"]
    assert whole["python"] == resumed["python"]
