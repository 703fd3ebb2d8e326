"""Training set-up contracts (written from a survivor of the sampled mutation run,
docs/testing.md)."""

import re

import pytest
import torch

from msinv.core.errors import UserInputError
from msinv.learned.train import (
    DataConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    _device,
    accelerate,
)


def test_device_choice():
    """'cpu' is the CPU, 'auto' a GPU only when one exists, and 'cuda' without a GPU is
    refused in one line (not a torch error at the first tensor)."""
    assert _device("cpu", 0) == torch.device("cpu")
    assert _device("auto", 0).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert _device("cuda", 0) == torch.device("cuda", 0)
    else:
        with pytest.raises(UserInputError, match="no CUDA device"):
            _device("cuda", 0)


@pytest.mark.parametrize("field", ["steps", "batch", "checkpoint_every", "log_every"])
def test_run_counts_must_be_positive(field):
    """Step, batch and interval counts of [run] are >= 1: 1 is accepted, 0 refused."""
    base = {"steps": 10, "out": "run"}
    assert getattr(RunConfig(**{**base, field: 1}), field) == 1
    with pytest.raises(UserInputError, match="must be >= 1"):
        RunConfig(**{**base, field: 0})


def _config(**top):
    doc = {
        "data": {"train": "x"},
        "model": {"name": "equinet-cnn"},
        "run": {"steps": 1, "out": "o"},
    }
    return TrainConfig.from_dict({**doc, **top})


def test_seed_is_any_integer_from_zero():
    """seed defaults to 0 and 0 is a valid seed; a negative one is refused in one line. The
    default is the same for a config built in Python (TrainConfig(...) without a seed) as
    for a TOML file without one: the two run the same training."""
    assert _config().seed == 0
    built = TrainConfig(data=_config().data, model=_config().model, run=_config().run)
    assert built.seed == 0 and built == _config()
    assert _config(seed=0).seed == 0
    with pytest.raises(UserInputError, match="seed = -1: expected an integer >= 0"):
        _config(seed=-1)


def test_an_empty_list_of_training_stores_is_refused():
    with pytest.raises(UserInputError, match=r"data\.train must name at least one store"):
        DataConfig(train=[])
    assert DataConfig(train=["a", "b"]).stores == ["a", "b"]


def test_each_process_of_a_cuda_run_takes_the_gpu_of_its_local_rank(monkeypatch):
    """On a machine with CUDA (availability faked: a device object needs no GPU) process k of a
    distributed run computes on cuda:k, for run.device = "cuda" and "auto" alike."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _device("cuda", 1) == torch.device("cuda", 1)
    assert _device("auto", 2) == torch.device("cuda", 2)
    assert _device("cpu", 3) == torch.device("cpu")


def test_run_device_names_are_checked():
    for device in ("auto", "cpu", "cuda"):
        assert RunConfig(steps=1, out="o", device=device).device == device
    with pytest.raises(UserInputError, match=r"run\.device must be auto, cpu or cuda"):
        RunConfig(steps=1, out="o", device="gpu")


def test_exponential_decay_rate_is_in_the_half_open_unit_interval():
    """decay_rate in (0, 1]: 1 (no decay) is accepted, 0 (the rate collapses to 0 after the
    first decay_steps) is refused, and so is decay_steps = 0."""
    assert OptimConfig(schedule="exponential", decay_rate=1.0).factor(10_000, 20_000) == 1.0
    for bad in ({"decay_rate": 0.0}, {"decay_rate": 1.5}, {"decay_steps": 0}):
        with pytest.raises(UserInputError, match=r"optim\.decay_rate must be in"):
            OptimConfig(schedule="exponential", **bad)


def test_speed_switches_are_off_unless_asked_for():
    """The GPU switches are opt-in (docs/learned.md): by default the convolution weights keep
    the NCHW layout; channels_last = true moves them to NHWC."""
    run = RunConfig(steps=1, out="o")
    assert (run.precision, run.noise, run.compile) == ("fp32", "cpu", False)

    def conv_weight(run):
        model = accelerate(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), run, torch.device("cpu"))
        return model[0].weight

    weight = conv_weight(run)
    assert weight.is_contiguous()
    assert not weight.is_contiguous(memory_format=torch.channels_last)
    nhwc = conv_weight(RunConfig(steps=1, out="o", channels_last=True))
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and not nhwc.is_contiguous()


def test_training_noise_is_drawn_on_the_cpu_unless_asked_for_on_the_device():
    """run.noise = "cpu" (default) draws the diffusion noise from a CPU generator on any
    device (the same noise on a GPU as on the CPU); "device" draws it on the model's device.
    A CUDA device object needs no GPU."""
    cuda = torch.device("cuda", 0)
    assert RunConfig(steps=1, out="o").noise_device(cuda) == torch.device("cpu")
    assert RunConfig(steps=1, out="o", noise="device").noise_device(cuda) == cuda
    cpu = torch.device("cpu")
    assert RunConfig(steps=1, out="o", noise="device").noise_device(cpu) == cpu


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_tf32_precision_turns_on_tf32_for_both_cuda_matmuls_and_convolutions(device):
    """run.precision = "tf32" on a CUDA device allows TF32 in cuBLAS matrix products and in
    cuDNN convolutions (both process-wide flags; the back-projection is matmuls, the score
    network convolutions); on the CPU, or with fp32, neither flag is touched. A CUDA device
    object needs no GPU."""
    cublas, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = cublas.allow_tf32, cudnn.allow_tf32
    try:
        cublas.allow_tf32 = cudnn.allow_tf32 = False
        net = torch.nn.Linear(2, 2)
        accelerate(net, RunConfig(steps=1, out="o"), torch.device(device))
        assert (cublas.allow_tf32, cudnn.allow_tf32) == (False, False)
        accelerate(net, RunConfig(steps=1, out="o", precision="tf32"), torch.device(device))
        on = device == "cuda"
        assert (cublas.allow_tf32, cudnn.allow_tf32) == (on, on)
    finally:
        cublas.allow_tf32, cudnn.allow_tf32 = saved


def test_compile_falls_back_to_eager_where_compilation_fails(monkeypatch):
    """run.compile = true never fails a run on a graph torch.compile cannot handle: accelerate
    turns on dynamo's eager fallback (suppress_errors) before it compiles anything."""
    from torch import _dynamo

    monkeypatch.setattr(_dynamo.config, "suppress_errors", False)
    accelerate(
        torch.nn.Linear(2, 2), RunConfig(steps=1, out="o", compile=True), torch.device("cpu")
    )
    assert _dynamo.config.suppress_errors is True


def test_defaults_are_the_papers_diffusion_recipe():
    """With no optim/run settings a run follows the paper's recipe (spec, learned.md): Adam
    (0.9, 0.999), learning rate 1e-5 rising linearly to the peak 1e-3 over the first 5% of
    the steps, then a cosine down to 1e-8 at the last step; batch 16; EMA decay 0.999."""
    optim, run, steps = OptimConfig(), RunConfig(steps=20_000, out="o"), 20_000
    lr = [optim.lr * optim.factor(k, steps) for k in (0, 500, 1000, steps)]
    assert lr == pytest.approx([1e-5, 0.5 * (1e-5 + 1e-3), 1e-3, 1e-8], rel=1e-12)
    assert optim.betas == (0.9, 0.999) and optim.schedule == "cosine"
    assert (run.batch, run.ema) == (16, 0.999)


def test_a_negative_warmup_in_steps_is_refused():
    assert OptimConfig(warmup_steps=0).factor(0, 10) == 1.0  # no warm-up: the peak at once
    with pytest.raises(UserInputError, match=r"optim\.warmup_steps must be >= 0"):
        OptimConfig(warmup_steps=-1)


def test_an_output_that_is_a_file_is_refused_before_any_work(tmp_path):
    """run.out is checked before the data are read: a file where the run folder should be
    gives one line naming run.out (the store named here does not even exist)."""
    from msinv.core.errors import OutputError
    from msinv.learned.train import ModelConfig, train

    (tmp_path / "taken").write_text("a file")
    cfg = TrainConfig(
        data=DataConfig(train=str(tmp_path / "missing.zarr")),
        model=ModelConfig(name="equinet-cnn"),
        run=RunConfig(steps=1, out=str(tmp_path / "taken")),
    )
    with pytest.raises(OutputError, match=r"run\.out"):
        train(cfg)


def test_data_slice_settings_are_checked():
    """data.start >= 0 and data.count >= 1 (or absent: every sample); 0 and 1 are the edges."""
    assert DataConfig(train=["a"], start=0, count=1).count == 1
    assert DataConfig(train=["a"]).count is None
    for bad in ({"start": -1}, {"count": 0}):
        with pytest.raises(UserInputError, match=r"data\.start must be >= 0 and data\.count >= 1"):
            DataConfig(train=["a"], **bad)


def test_optimiser_rates_and_warmup_fraction_are_checked():
    """lr > 0, lr_start and lr_end >= 0 (0 allowed), warm-up fraction in [0, 1)."""
    OptimConfig(lr=1e-3, lr_start=0.0, lr_end=0.0, warmup=0.0)
    for bad in ({"lr": 0.0}, {"lr_start": -1e-9}, {"lr_end": -1e-9}):
        with pytest.raises(UserInputError, match=r"optim\.lr must be > 0"):
            OptimConfig(**{"lr": 1e-3, **bad})
    for warmup in (1.0, -0.1):
        with pytest.raises(UserInputError, match=r"optim.warmup must be in \[0, 1\)"):
            OptimConfig(lr=1e-3, warmup=warmup)


def test_run_threads_zero_means_torch_default_and_negative_is_refused():
    assert RunConfig(steps=1, out="o", threads=0).threads == 0
    with pytest.raises(UserInputError, match=r"run\.threads must be >= 0, got -1"):
        RunConfig(steps=1, out="o", threads=-1)


def test_a_section_given_as_a_value_is_refused():
    """`run = 3` where a [run] table is expected: one line naming the key."""
    from msinv.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"run = 3: expected a section \[run\]"):
        _config(run=3)


def test_ema_decay_is_in_the_half_open_unit_interval():
    """run.ema in [0, 1): 0 (the EMA is the raw weights) is accepted, 1 (the EMA never moves
    from the initial weights) and anything below 0 are refused in one line."""
    assert RunConfig(steps=1, out="o", ema=0.0).ema == 0.0
    assert RunConfig(steps=1, out="o", ema=0.999999).ema == 0.999999
    for bad in (1.0, -1e-9):
        with pytest.raises(UserInputError, match=rf"run\.ema must be in \[0, 1\), got {bad}"):
            RunConfig(steps=1, out="o", ema=bad)


def test_precision_and_noise_names_are_checked():
    """run.precision is one of fp32, tf32, bf16 and run.noise one of cpu, device; anything
    else is one line naming the field and the choices."""
    for precision in ("fp32", "tf32", "bf16"):
        assert RunConfig(steps=1, out="o", precision=precision).precision == precision
    with pytest.raises(UserInputError, match=r"run\.precision must be one of fp32, tf32, bf16"):
        RunConfig(steps=1, out="o", precision="fp16")
    with pytest.raises(UserInputError, match=r"run\.noise must be cpu or device, got 'gpu'"):
        RunConfig(steps=1, out="o", noise="gpu")


def test_one_training_store_may_be_given_as_a_string():
    """data.train = "a.zarr" (one store) is the list of that one store, not of its letters;
    a list is kept in its order."""
    assert DataConfig(train="a.zarr").stores == ["a.zarr"]
    assert DataConfig(train=["b.zarr", "a.zarr"]).stores == ["b.zarr", "a.zarr"]


def test_one_step_per_decay_is_the_shortest_staircase():
    """decay_steps >= 1: with 1 the rate decays at every step after the warm-up,
    lr * rate ** step; 0 is refused (test_exponential_decay_rate_is_in_the_half_open_...)."""
    optim = OptimConfig(schedule="exponential", decay_rate=0.5, decay_steps=1, warmup_steps=0)
    assert [optim.factor(s, 10) for s in range(4)] == [1.0, 0.5, 0.25, 0.125]


def test_every_setting_survives_the_config_written_into_a_checkpoint():
    """TrainConfig.to_toml (what a checkpoint stores and a resume compares) read back by
    from_dict is the same configuration, for one whose every field differs from its default:
    a field dropped or renamed on either side would come back as the default and go unseen
    with a default configuration."""
    import dataclasses
    import tomllib

    doc = {
        "seed": 5,
        "data": {"train": ["a.zarr", "b.zarr"], "start": 3, "count": 7, "freqs": [2.5]},
        "model": {
            "name": "equinet",
            "score": {"width": 8},
            "head": {"rounds": 2},
            "n": 16,
            "n_freq": 1,
            "n_sc": 20,
            "freqs": [2.5],
            "geometry": {"n": 16},
        },
        "run": {
            "steps": 9,
            "out": "o",
            "batch": 3,
            "ema": 0.5,
            "ema_warmup": False,
            "checkpoint_every": 4,
            "log_every": 2,
            "device": "cpu",
            "progress": False,
            "threads": 2,
            "precision": "bf16",
            "compile": True,
            "channels_last": True,
            "noise": "device",
        },
        "optim": {
            "lr": 2e-3,
            "lr_start": 1e-6,
            "lr_end": 1e-9,
            "warmup": 0.1,
            "betas": [0.8, 0.99],
            "schedule": "exponential",
            "warmup_steps": 5,
            "decay_rate": 0.9,
            "decay_steps": 7,
        },
    }
    config = TrainConfig.from_dict(doc)
    for part in ("data", "model", "run", "optim"):  # the premise: nothing left at its default
        value, kind = getattr(config, part), type(getattr(config, part))
        for f in dataclasses.fields(kind):
            if f.default is not dataclasses.MISSING:
                assert getattr(value, f.name) != f.default, (part, f.name)
            elif f.default_factory is not dataclasses.MISSING:
                assert getattr(value, f.name) != f.default_factory(), (part, f.name)
    again = TrainConfig.from_dict(tomllib.loads(config.to_toml()))
    assert dataclasses.asdict(again) == dataclasses.asdict(config)
    assert again == config


@pytest.mark.parametrize("older", [False, True])
def test_export_copies_every_inference_field_and_drops_the_training_state(tmp_path, older):
    """export() keeps exactly what inference and provenance need, each unchanged: the EMA
    weights, normalisation, config, step, kind, code version, provenance, architecture and
    training-data record; the raw weights, optimiser, scheduler and RNG states go. A
    checkpoint of an older layout (no architecture, no train_data) exports as architecture 1
    without a train_data record."""
    from msinv.learned.train import export

    ckpt = {
        "model": {"w": torch.ones(2)},
        "ema": {"w": torch.arange(3.0)},
        "optimizer": {"state": {}},
        "scheduler": {"last_epoch": 4},
        "step": 7,
        "world_size": 1,
        "rng": {"torch": torch.zeros(2, dtype=torch.uint8)},
        "normalisation": {"eta_std": torch.tensor(2.0, dtype=torch.float64)},
        "config": 'seed = 3\n[run]\nsteps = 9\nout = "o"\n',
        "kind": "diffusion",
        "code_version": "1.2.3+gabc",
        "provenance": '{"config": {}}',
        "architecture": 2,
        "train_data": [{"path": "/d/a.zarr", "start": 0, "stop": 8}],
    }
    if older:
        del ckpt["architecture"], ckpt["train_data"]
    torch.save(ckpt, tmp_path / "full.pt")
    out = export(tmp_path / "full.pt", tmp_path / "sub" / "slim.pt")
    slim = torch.load(out, weights_only=True)
    kept = ["ema", "normalisation", "config", "step", "kind", "code_version", "provenance"]
    expected = {k: ckpt[k] for k in kept} | {"architecture": 1 if older else 2}
    if not older:
        expected["train_data"] = ckpt["train_data"]
    assert set(slim) == set(expected)
    for key, value in expected.items():
        if key in ("ema", "normalisation"):
            assert value.keys() == slim[key].keys()
            assert all(torch.equal(value[k], slim[key][k]) for k in value), key
        else:
            assert slim[key] == value, key


def test_a_resume_may_change_exactly_the_documented_run_settings_and_the_store_paths():
    """_check_same_run compares every key of every section: out, checkpoint_every, log_every,
    device, progress, threads and compile of [run] may change between the slices of a run,
    and so may data.train (a moved store); any other key (run.steps, run.batch, data.count,
    an optimiser or model setting, the seed) is one ConfigError naming it and both values."""
    from msinv.core.errors import ConfigError
    from msinv.learned.train import _check_same_run

    base = {
        "seed": 1,
        "data": {"train": "a.zarr", "count": 4},
        "model": {"name": "equinet-cnn"},
        "run": {"steps": 10, "out": "o"},
    }
    ckpt = {"config": TrainConfig.from_dict(base).to_toml()}

    def now(section, **changes):
        doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
        if section == "seed":
            doc["seed"] = changes["seed"]
        else:
            doc.setdefault(section, {}).update(changes)
        return TrainConfig.from_dict(doc)

    free = dict(out="elsewhere", checkpoint_every=3, log_every=2, device="cpu", progress=False,
                threads=2, compile=True)  # fmt: skip
    for key, value in free.items():
        _check_same_run("c.pt", ckpt, now("run", **{key: value}))
    _check_same_run("c.pt", ckpt, now("data", train="moved/a.zarr"))
    for section, change, words in [
        ("run", {"steps": 11}, "run.steps = 10, the config now says 11"),
        ("run", {"batch": 8}, "run.batch = 16, the config now says 8"),
        ("data", {"count": 5}, "data.count = 4, the config now says 5"),
        ("optim", {"lr": 2e-3}, "optim.lr = 0.001, the config now says 0.002"),
        ("seed", {"seed": 2}, "seed = 1, the config now says 2"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(f"c.pt: written with {words}")):
            _check_same_run("c.pt", ckpt, now(section, **change))


def test_a_resume_with_many_changed_keys_names_the_same_one_every_time():
    """Several keys changed at once: the error names the first in alphabetical order (the same
    message from the same command, whatever the process's string hashing). Five sets of
    changes, so that an order left to hashing would be caught on almost every run."""
    import itertools

    from msinv.core.errors import ConfigError
    from msinv.learned.train import _check_same_run

    base = {"seed": 1, "data": {"train": "a.zarr"}, "model": {"name": "equinet-cnn"},
            "run": {"steps": 10, "out": "o"}}  # fmt: skip
    ckpt = {"config": TrainConfig.from_dict(base).to_toml()}
    changes = {"lr": 2e-3, "lr_start": 2e-5, "lr_end": 2e-8, "warmup": 0.1, "decay_rate": 0.5,
               "decay_steps": 7, "schedule": "exponential", "warmup_steps": 3}  # fmt: skip
    for keys in itertools.islice(
        itertools.combinations(sorted(changes, reverse=True), 4), 0, 50, 10
    ):
        now = TrainConfig.from_dict({**base, "optim": {k: changes[k] for k in keys}})
        first = min(keys)
        with pytest.raises(ConfigError, match=rf"written with optim\.{first} = "):
            _check_same_run("c.pt", ckpt, now)


@pytest.mark.parametrize("block", [1, 2, 3, 512])
def test_each_step_trains_on_its_own_global_batch_whatever_the_index_blocks(monkeypatch, block):
    """The indices of step s are batch_indices(seed, s, batch, N), read INDEX_BLOCK steps at a
    time: any block size (one step, a size that does not divide the run, more than the run)
    gives every step from a resumed start to the last once, in order; process r of W takes
    columns r, r + W, ... of each global batch."""
    from msinv.learned import train as train_module
    from msinv.learned.train import _step_indices, batch_indices

    monkeypatch.setattr(train_module, "INDEX_BLOCK", block)
    config = TrainConfig.from_dict(
        {"seed": 4, "data": {"train": "x"}, "model": {"name": "equinet-cnn"},
         "run": {"steps": 10, "out": "o", "batch": 4}}
    )  # fmt: skip
    cpu = torch.device("cpu")
    for rank, world in [(0, 1), (0, 2), (1, 2)]:
        got = list(_step_indices(config, 3, 10, 7, rank, world, cpu))
        want = [batch_indices(4, s, 4, 7)[rank::world] for s in range(3, 10)]
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
        assert all(g.dtype == torch.int64 for g in got)


def test_exponential_decay_counts_its_steps_from_the_end_of_the_warm_up():
    """After a linear warm-up of W steps the rate is lr at step W and decays by decay_rate every
    decay_steps from there: factor(W + k·decay_steps + j) = decay_rate**k (0 <= j <
    decay_steps), the deterministic baselines' recipe (§5.3) with a warm-up."""
    optim = OptimConfig(schedule="exponential", warmup_steps=300, decay_rate=0.5, decay_steps=100)
    assert optim.factor(299, 10_000) < 1.0  # still warming up
    for k in range(4):
        for j in (0, 50, 99):
            assert optim.factor(300 + 100 * k + j, 10_000) == 0.5**k


def test_resolve_fills_every_data_field_of_the_model_and_keeps_the_rest():
    """resolve() copies from the data exactly the model's grid size, frequency count,
    receiver/source count, frequencies and geometry record, keeps the model's own settings
    and every other section as they were, and refuses data with more receivers than sources
    (the models take square data) in one line."""
    import dataclasses

    import numpy as np

    from msinv.learned.data import Pairs
    from msinv.learned.train import ModelConfig, resolve
    from msinv.scattering import Geometry

    geometry = Geometry(n=16, n_sources=5, n_receivers=5)
    data = np.ones((3, 2, 5, 5), np.complex64)
    pairs = Pairs(np.zeros((3, 16, 16), np.float32), data, np.array([2.5, 5.0]), geometry)
    config = TrainConfig(
        data=DataConfig(train="x", count=3),
        model=ModelConfig(name="equinet-cnn", head={"rounds": 2}),
        run=RunConfig(steps=4, out="o", batch=2),
        seed=7,
    )
    resolved = resolve(config, pairs)
    assert resolved.model == dataclasses.replace(
        config.model, n=16, n_freq=2, n_sc=5, freqs=[2.5, 5.0], geometry=geometry.to_dict()
    )
    assert dataclasses.replace(resolved, model=config.model) == config
    wide = Pairs(pairs.eta, np.ones((3, 2, 6, 5), np.complex64), pairs.freqs, geometry)
    with pytest.raises(UserInputError, match="the data have 6 receivers and 5 sources"):
        resolve(config, wide)


@pytest.mark.parametrize("steps, warmup_steps", [(1, 0), (5, 4), (2, 0)])
def test_the_cosine_ends_at_lr_end_even_for_the_shortest_schedules(steps, warmup_steps):
    """The cosine runs from lr at the end of the warm-up to lr_end at the last step, also when
    only one or two steps are left after the warm-up (a smoke run, a resumed tail)."""
    optim = OptimConfig(lr=1e-3, lr_end=1e-8, warmup_steps=warmup_steps)
    assert optim.factor(warmup_steps, steps) == pytest.approx(1.0)
    assert optim.factor(steps, steps) * optim.lr == pytest.approx(1e-8, rel=1e-9)


_DOC = {
    "data": {"train": "x"},
    "model": {"name": "equinet-cnn"},
    "run": {"steps": 1, "out": "o"},
}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(sede=1), "config: unknown key(s) ['sede']; expected ['data', 'model'"),
        (lambda d: d.pop("model"), "config: missing section [model]"),
        (lambda d: d["run"].pop("steps"), "config: [run] is missing steps"),
        (lambda d: d["run"].update(steps="3"), 'config: [run] steps = "3": expected an integer'),
        (lambda d: d["run"].update(progress=1), "config: [run] progress = 1: expected true or"),
        (lambda d: d["optim"].update(lr=True), "config: [optim] lr = true: expected a number"),
        (lambda d: d["run"].update(steps=0), "config: [run] run.steps, run.batch"),
        (lambda d: d.update(seed=True), "config: seed = True: expected an integer >= 0"),
        (lambda d: d.update(seed=1.5), "config: seed = 1.5: expected an integer >= 0"),
    ],
)
def test_each_bad_training_config_is_one_line_naming_its_key(change, words):
    """TrainConfig.from_dict refuses, in one UserInputError line that starts with the source and
    names the key: an unknown top-level key, a missing required section or field, a value of
    the wrong type (a bool is not a number, a string not an integer), a section's own range
    check (prefixed by its section), a seed that is not an integer >= 0. [optim] may be left
    out (the paper's recipe)."""
    doc = {k: dict(v) for k, v in _DOC.items()} | {"optim": {}}
    change(doc)
    with pytest.raises(UserInputError) as info:
        TrainConfig.from_dict(doc)
    assert str(info.value).startswith(words), str(info.value)
    assert "\n" not in str(info.value)


def test_betas_may_be_a_toml_list_and_optim_may_be_left_out():
    """[optim] betas = [0.8, 0.99] (TOML has no tuples) is the tuple (0.8, 0.99); a config
    without [optim] gets OptimConfig's defaults."""
    with_betas = TrainConfig.from_dict(_DOC | {"optim": {"betas": [0.8, 0.99]}})
    assert with_betas.optim.betas == (0.8, 0.99)
    assert TrainConfig.from_dict(_DOC).optim == OptimConfig()


@pytest.mark.parametrize("train", ["../data/a.zarr", ["../data/a.zarr", "b.zarr"]])
def test_paths_in_a_config_file_are_relative_to_the_file(tmp_path, train):
    """from_toml reads data.train (one store or a list) and run.out relative to the folder of
    the config file, whatever the working directory; every other setting is as written."""
    import tomli_w

    folder = tmp_path / "configs"
    folder.mkdir()
    doc = {**_DOC, "data": {"train": train, "count": 5}, "seed": 2}
    (folder / "c.toml").write_text(tomli_w.dumps(doc))
    config = TrainConfig.from_toml(folder / "c.toml")
    base = folder.resolve()
    stores = [train] if isinstance(train, str) else train
    assert config.data.stores == [str(base / s) for s in stores]
    assert isinstance(config.data.train, type(train))
    assert config.run.out == str(base / "o")
    assert (config.data.count, config.seed, config.model.name) == (5, 2, "equinet-cnn")


def test_a_config_path_that_is_not_a_toml_text_file_is_one_line(tmp_path):
    """A folder, a binary file or invalid TOML given as the config: one ConfigError line
    naming the path and what was expected (a missing file: 'config file not found')."""
    from msinv.core.errors import ConfigError

    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00\x01")
    (tmp_path / "bad.toml").write_text("[run\nsteps = 1\n")
    for path, words in [
        (tmp_path, "is a folder; expected a TOML config file"),
        (tmp_path / "bin.toml", "not a text file; expected a TOML config"),
        (tmp_path / "bad.toml", "invalid TOML ("),
    ]:
        with pytest.raises(ConfigError, match=re.escape(f"{path}: {words}")):
            TrainConfig.from_toml(path)


@pytest.mark.parametrize("outcome", ["returns", "raises"])
def test_a_distributed_run_closes_its_process_group_however_it_ends(tmp_path, monkeypatch, outcome):
    """Under torchrun (WORLD_SIZE > 1) train() opens the process group (gloo on the CPU) and
    destroys it when the run returns or fails, so that the launcher's processes end cleanly
    and a caller can start another run. The collective work itself is stubbed out here (the
    two-process run is test_train_oracles' DDP test)."""
    import torch.distributed as dist

    import msinv.learned.train as train_module

    events = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(
        dist, "init_process_group", lambda backend: events.append(("init", backend))
    )
    monkeypatch.setattr(dist, "destroy_process_group", lambda: events.append(("destroy",)))

    def fake_train(*args):
        events.append(("train",))
        if outcome == "raises":
            raise RuntimeError("a failed step")
        return tmp_path / "run" / "checkpoint.pt"

    monkeypatch.setattr(train_module, "_train", fake_train)
    cfg = _config(run={"steps": 1, "batch": 4, "out": str(tmp_path / "run"), "device": "cpu"})
    if outcome == "raises":
        with pytest.raises(RuntimeError, match="a failed step"):
            train_module.train(cfg)
    else:
        train_module.train(cfg)
    assert events == [("init", "gloo"), ("train",), ("destroy",)]


def test_the_torchrun_entry_point_resumes_unless_told_fresh(monkeypatch):
    """``python -m msinv.learned.train CONFIG [--fresh]`` (what torchrun starts in each process)
    resumes the run in run.out by default and starts over with --fresh; without a config it
    prints its usage."""
    from msinv.learned import train as train_module

    calls = []
    monkeypatch.setattr(
        train_module, "train", lambda config, resume: calls.append((config, resume))
    )
    train_module.main(["run.toml"])
    train_module.main(["run.toml", "--fresh"])
    assert calls == [("run.toml", True), ("run.toml", False)]
    with pytest.raises(SystemExit, match=r"usage: python -m msinv\.learned\.train CONFIG"):
        train_module.main([])


@pytest.mark.parametrize("available", [False, True])
def test_cuda_random_states_are_restored_only_where_there_are_some_and_a_gpu(
    monkeypatch, available
):
    """Resuming restores the CUDA generators' states only when the checkpoint holds some (it
    was written where CUDA was available) and CUDA is available now: a GPU run resumed on a
    CPU-only machine leaves torch.cuda alone (no lazily queued calls), a CPU run resumed on a
    GPU machine leaves the GPU's fresh streams as they are."""
    from msinv.learned.train import _rng_state, _set_rng_state

    state = _rng_state()  # this process's own states: restoring them changes nothing
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", calls.append)
    gpu_states = [torch.zeros(16, dtype=torch.uint8)]
    _set_rng_state({**state, "cuda": []})
    _set_rng_state({**state, "cuda": gpu_states})
    assert calls == ([gpu_states] if available else [])


_UNPICKLED = []


def _mark_unpickled(what):
    _UNPICKLED.append(what)


class _Payload:
    """An object whose unpickling calls a function (what a hostile checkpoint would do)."""

    def __reduce__(self):
        return (_mark_unpickled, ("ran",))


def test_export_never_runs_code_pickled_in_a_checkpoint(tmp_path):
    """export reads a checkpoint with torch's weights-only unpickler: a file holding an
    arbitrary pickled object is refused in one line naming it, before that object's code
    runs; so is a damaged file."""
    from msinv.core.errors import FileFormatError
    from msinv.learned.train import export

    path = tmp_path / "hostile.pt"
    torch.save({"ema": {}, "step": 1, "payload": _Payload()}, path)
    with pytest.raises(FileFormatError, match=r"hostile\.pt: not a readable msinv checkpoint"):
        export(path, tmp_path / "slim.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(FileFormatError, match=r"damaged\.pt: not a readable"):
        export(damaged, tmp_path / "slim.pt")
    assert _UNPICKLED == []
    assert not (tmp_path / "slim.pt").exists()


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("none-cnn", {"score": {"width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]}}),
        ("equinet", {"head": {"rounds": 2}}),
    ],
)
def test_the_model_of_a_config_is_built_with_its_score_and_head_options(name, options):
    """build_from_config passes [model.score] and [model.head] to build(): the model has the
    parameter shapes of build() with those options, not those of the defaults."""
    from msinv.learned.models import build
    from msinv.learned.train import ModelConfig, build_from_config

    sizes = {"n": 16, "n_freq": 2, "n_sc": 16, "freqs": [2.5, 5.0]}

    def shapes(model):
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}

    configured = shapes(build_from_config(ModelConfig(name=name, **options, **sizes)))
    assert configured == shapes(build(name, **options, **sizes))
    assert configured != shapes(build(name, **sizes))


def test_numpys_global_state_round_trips_with_a_cached_gaussian():
    """NumPy's legacy global generator may hold the second Gaussian of a Box-Muller pair
    (has_gauss = 1 and its value): a checkpoint's random state keeps the flag and the value
    apart, and restoring it gives back exactly the state that was saved."""
    import numpy as np

    from msinv.learned.train import _rng_state, _set_rng_state

    before = np.random.get_state()  # noqa: NPY002 - the global state is what is tested
    keys = np.arange(624, dtype=np.uint32) * np.uint32(2654435761)
    saved = ("MT19937", keys, 17, 1, 0.75)
    try:
        np.random.set_state(saved)  # noqa: NPY002
        state = _rng_state()
        assert (state["numpy"]["pos"], state["numpy"]["has_gauss"]) == (17, 1)
        assert state["numpy"]["cached_gaussian"] == 0.75
        np.random.seed(3)  # noqa: NPY002 - elsewhere
        _set_rng_state(state)
        restored = np.random.get_state()  # noqa: NPY002
        assert restored[0] == "MT19937" and restored[2:] == saved[2:]
        np.testing.assert_array_equal(restored[1], keys)
    finally:
        np.random.set_state(before)  # noqa: NPY002
