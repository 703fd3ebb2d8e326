"""Training set-up contracts (written from a survivor of the sampled mutation run,
docs/testing.md)."""

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
    """seed defaults to 0 and 0 is a valid seed; a negative one is refused in one line."""
    assert _config().seed == 0
    assert _config(seed=0).seed == 0
    with pytest.raises(UserInputError, match="seed = -1: expected an integer >= 0"):
        _config(seed=-1)


def test_an_empty_list_of_training_stores_is_refused():
    with pytest.raises(UserInputError, match=r"data\.train must name at least one store"):
        DataConfig(train=[])
    assert DataConfig(train=["a", "b"]).stores == ["a", "b"]


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
