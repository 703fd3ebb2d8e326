"""The trainer: config validation, loss falls, exact resume, checkpoint format (DDP: see
test_train_oracles.py)."""

import json

import pytest
import torch

from msinv.core.errors import UserInputError
from msinv.learned.models import ARCHITECTURE
from msinv.learned.train import TrainConfig, batch_indices, train

TINY_SCORE = {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]}


def _config(store, out, name="none-cnn", steps=6, **run):
    d = {
        "seed": 3,
        "data": {"train": str(store), "count": 8},
        "model": {"name": name, "score": TINY_SCORE, "head": {"rounds": 2}},
        "optim": {"lr": 3e-3, "warmup": 0.1},
        "run": {
            "steps": steps,
            "batch": 4,
            "ema": 0.9,
            "checkpoint_every": 100,
            "log_every": 1,
            "out": str(out),
            "device": "cpu",
            "progress": False,
            **run,
        },
    }
    return TrainConfig.from_dict(d)


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[data]\ntrain = "x"\n[model]\nname = "equinet-cnn"\n[run]\nsteps = 1\nout = "o"\nbatchsize = 3\n'
    )
    with pytest.raises(
        UserInputError, match=r"bad.toml: unknown key\(s\) \['batchsize'\] in \[run\]"
    ):
        TrainConfig.from_toml(bad)
    bad.write_text(
        '[data]\ntrain = "x"\n[model]\nname = "equinet-cnn"\n[run]\nsteps = 1\nout = "o"\nema = 1.5\n'
    )
    with pytest.raises(UserInputError, match=r"\[run\] run.ema must be in"):
        TrainConfig.from_toml(bad)
    with pytest.raises(UserInputError, match="not found"):
        TrainConfig.from_toml(tmp_path / "missing.toml")


def test_batches_cover_each_epoch_once():
    idx = [batch_indices(0, s, 4, 10) for s in range(5)]  # 20 samples = 2 epochs
    flat = torch.tensor([int(i) for b in idx for i in b])
    assert sorted(flat[:10].tolist()) == list(range(10)) and sorted(flat[10:].tolist()) == list(
        range(10)
    )
    assert not torch.equal(flat[:10], flat[10:])  # reshuffled each epoch


def test_warmup_cosine_schedule():
    from msinv.learned.train import OptimConfig

    o = OptimConfig(lr=1e-3, lr_start=1e-5, lr_end=1e-8, warmup=0.1)
    assert o.factor(0, 100) * 1e-3 == pytest.approx(1e-5)
    assert o.factor(10, 100) == pytest.approx(1.0)
    assert o.factor(100, 100) * 1e-3 == pytest.approx(1e-8)


def test_deterministic_recipes_of_the_paper():
    """§5.3: EquiNet 2,000 warm-up steps to peak 5e-3, cosine to 1e-7; SwitchNet/WideBNet
    exponential decay 0.95 every 2,000 steps."""
    from msinv.learned.train import OptimConfig

    equinet = OptimConfig(lr=5e-3, lr_start=0.0, lr_end=1e-7, warmup_steps=2000)
    assert equinet.factor(1000, 45_938) == pytest.approx(0.5)
    assert equinet.factor(2000, 45_938) == pytest.approx(1.0)
    assert equinet.factor(45_938, 45_938) * 5e-3 == pytest.approx(1e-7)
    expo = OptimConfig(lr=1e-3, schedule="exponential", warmup_steps=0)
    assert [expo.factor(s, 10**6) for s in (0, 1999, 2000, 4000, 5999)] == pytest.approx(
        [1.0, 1.0, 0.95, 0.95**2, 0.95**2]
    )
    with pytest.raises(UserInputError, match=r"optim\.schedule must be cosine or exponential"):
        TrainConfig.from_dict(
            {
                "data": {"train": "x"},
                "model": {"name": "equinet"},
                "run": {"steps": 1, "out": "o"},
                "optim": {"schedule": "step"},
            }
        )


def _fixed_loss(model, store, repeats=8):
    """Mean training loss on the first 8 pairs with fixed noise draws."""
    from msinv.learned.data import Normalisation, PairDataset, load_pairs

    pairs = load_pairs(store, 0, 8)
    ds = PairDataset(pairs, Normalisation.fit(pairs.eta, pairs.data))
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return float(sum(model.training_loss(ds.eta, ds.data, g).mean() for _ in range(repeats)))


def test_loss_falls_on_tiny_problem(tiny_store, tmp_path):
    from msinv.learned.loading import load

    cfg = _config(tiny_store, tmp_path / "run", name="equinet-cnn", steps=100, log_every=25)
    ckpt = train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [25, 50, 75, 100]
    trained = load(ckpt, weights="model").model
    torch.manual_seed(cfg.seed)
    initial = load(ckpt, weights="init").model
    before, after = _fixed_loss(initial, tiny_store), _fixed_loss(trained, tiny_store)
    assert after < 0.7 * before, (before, after)


def test_resume_is_exact_and_checkpoint_is_plain(tiny_store, tmp_path):
    # run.out may lie in folders that do not exist yet: the trainer makes them all
    straight = train(_config(tiny_store, tmp_path / "new" / "runs" / "a"))
    cfg_b = _config(tiny_store, tmp_path / "b")
    train(cfg_b, stop_after=3)
    half = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert half["step"] == 3
    # as if the first slice had logged step 4 and been killed before its next checkpoint:
    # the resumed run (from step 3) drops that line and logs step 4 again
    log_b = tmp_path / "b" / "log.jsonl"
    log_b.write_text(log_b.read_text() + '{"step": 4, "loss": -1.0}\n')
    resumed = train(cfg_b)
    a = torch.load(straight, weights_only=True)
    b = torch.load(resumed, weights_only=True)
    assert a["step"] == b["step"] == 6
    for key in ("model", "ema"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), (key, name)
    # a plain dict with everything needed to reproduce and to use the model
    assert {"optimizer", "scheduler", "rng", "normalisation", "config", "code_version"} <= set(a)
    assert a["architecture"] == ARCHITECTURE
    # a run written by other network definitions is not resumed with these
    torch.save({**half, "architecture": ARCHITECTURE - 1}, tmp_path / "b" / "checkpoint.pt")
    with pytest.raises(UserInputError, match="architecture 1 of the networks"):
        train(cfg_b)
    assert set(a["rng"]) >= {"torch", "numpy", "python", "noise"}
    resolved = TrainConfig.from_dict(__import__("tomllib").loads(a["config"]))
    assert resolved.model.n == 16 and resolved.model.n_freq == 2
    logged = [json.loads(line) for line in log_b.read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 5, 6]
    assert all(r["loss"] > 0 for r in logged)


def test_resume_refuses_a_changed_config_and_accepts_a_changed_run_setting(tiny_store, tmp_path):
    """A checkpoint resumes only with the configuration that wrote it: a changed learning
    rate, model option or seed is one ConfigError naming the key and both values; the settings
    that may change between slices (log_every, checkpoint_every, progress, ...) do not block
    the resume; a checkpoint written by 2 processes is not resumed by 1."""
    from msinv.core.errors import ConfigError, FileFormatError

    out = tmp_path / "run"
    train(_config(tiny_store, out), stop_after=2)
    ckpt_path = out / "checkpoint.pt"
    saved = torch.load(ckpt_path, weights_only=True)

    changed = _config(tiny_store, out)
    changed = TrainConfig.from_dict({**changed.to_dict(), "optim": {"lr": 1e-3, "warmup": 0.1}})
    with pytest.raises(
        ConfigError, match=r"written with optim\.lr = 0\.003, the config now says 0\.001"
    ):
        train(changed)
    reseeded = TrainConfig.from_dict({**_config(tiny_store, out).to_dict(), "seed": 4})
    with pytest.raises(ConfigError, match="written with seed = 3, the config now says 4"):
        train(reseeded)
    torch.save({**saved, "world_size": 2}, ckpt_path)
    with pytest.raises(UserInputError, match="written by 2 processes, resumed with 1"):
        train(_config(tiny_store, out))
    torch.save({**saved, "config": "not = [toml"}, ckpt_path)
    with pytest.raises(FileFormatError, match="damaged checkpoint, its config"):
        train(_config(tiny_store, out))
    torch.save(saved, ckpt_path)
    resumed = train(_config(tiny_store, out, log_every=2, checkpoint_every=50))
    assert torch.load(resumed, weights_only=True)["step"] == 6


def test_a_resumed_run_drops_the_log_lines_written_after_its_checkpoint(tmp_path):
    """Log lines past the checkpoint's step (written before the run was killed) are removed;
    lines that are not a step record (a note, a damaged line) are kept; no log, nothing to do."""
    from msinv.learned.train import _trim_log

    log = tmp_path / "log.jsonl"
    _trim_log(log, 3)
    assert not log.exists()
    lines = ['{"step": 2, "loss": 1}', '{"step": 3}', "not json", '{"note": 1}', '{"step": 4}']
    log.write_text("\n".join(lines) + "\n")
    _trim_log(log, 3)
    assert log.read_text().splitlines() == lines[:4]
