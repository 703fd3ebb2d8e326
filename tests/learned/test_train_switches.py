"""GPU speed switches of the trainer (precision, channels_last, device noise, compile):
the same run within rounding, exercised on the CPU at tiny size."""

import json

import numpy as np
import pytest
import torch

from msinv.learned.train import TrainConfig, train

TINY_SCORE = {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]}


def _run(store, out, steps=30, **run):
    cfg = TrainConfig.from_dict(
        {
            "seed": 5,
            "data": {"train": str(store), "count": 8},
            "model": {"name": "equinet-cnn", "score": TINY_SCORE},
            "optim": {"lr": 3e-3, "warmup": 0.1},
            "run": {
                "steps": steps,
                "batch": 4,
                "ema": 0.9,
                "checkpoint_every": 1000,
                "log_every": 1,
                "out": str(out),
                "device": "cpu",
                "progress": False,
                **run,
            },
        }
    )
    ckpt = train(cfg)
    log = [json.loads(x)["loss"] for x in (out / "log.jsonl").read_text().splitlines()]
    return np.array(log), torch.load(ckpt, weights_only=True)


def test_channels_last_and_device_noise_give_the_same_run(tiny_store, tmp_path):
    base, a = _run(tiny_store, tmp_path / "base")
    fast, b = _run(tiny_store, tmp_path / "fast", channels_last=True, noise="device")
    # on the CPU the device generator is the CPU generator: same noise, same batches; NHWC
    # convolutions round differently and training amplifies it slowly (0.3% after 30 steps)
    np.testing.assert_allclose(fast[:5], base[:5], rtol=1e-5)
    np.testing.assert_allclose(fast, base, rtol=1e-2)
    floats = [k for k, v in a["ema"].items() if v.is_floating_point()]
    diff = sum(float((b["ema"][k] - a["ema"][k]).norm() ** 2) for k in floats) ** 0.5
    size = sum(float(a["ema"][k].norm() ** 2) for k in floats) ** 0.5
    assert diff < 1e-2 * size, diff / size
    # and NHWC really ran: the trained convolution weights are stored channels-last (those
    # of more than one input channel and a kernel wider than 1: others are both layouts)
    convs = [
        k for k, v in b["model"].items() if v.ndim == 4 and v.shape[1] > 1 and v[0, 0].numel() > 1
    ]
    assert convs and all(b["model"][k].is_contiguous(memory_format=torch.channels_last)
                         for k in convs)  # fmt: skip
    assert not any(a["model"][k].is_contiguous(memory_format=torch.channels_last) for k in convs)
    # the EMA copy (the weights that sample) too, from its first update on
    ema_convs = [f"module.{k}" for k in convs]
    assert all(b["ema"][k].is_contiguous(memory_format=torch.channels_last) for k in ema_convs)
    assert not any(a["ema"][k].is_contiguous(memory_format=torch.channels_last) for k in ema_convs)


def test_bf16_autocast_follows_the_fp32_loss_curve(tiny_store, tmp_path):
    base, _ = _run(tiny_store, tmp_path / "base")
    bf16, _ = _run(tiny_store, tmp_path / "bf16", precision="bf16")
    assert np.all(np.isfinite(bf16))
    assert not np.array_equal(bf16, base)  # autocast really ran in bf16
    # same curve up to bf16 rounding: compare smoothed curves (the loss is noisy per step)
    smooth = np.convolve(base, np.ones(10) / 10, "valid")
    smooth_bf16 = np.convolve(bf16, np.ones(10) / 10, "valid")
    np.testing.assert_allclose(smooth_bf16, smooth, rtol=0.1)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own imports under inductor
def test_compile_gives_the_same_run(tiny_store, tmp_path):
    from torch._dynamo.utils import counters

    base, _ = _run(tiny_store, tmp_path / "base", steps=10)
    counters.clear()
    compiled, _ = _run(tiny_store, tmp_path / "compiled", steps=10, compile=True)
    assert counters["stats"]["unique_graphs"] > 0  # something was compiled, not all eager
    np.testing.assert_allclose(compiled, base, rtol=1e-3)


def test_switch_values_are_checked(tmp_path):
    from msinv.core.errors import UserInputError

    for key, value in [("precision", "fp16"), ("noise", "gpu")]:
        with pytest.raises(UserInputError, match=f"run.{key}"):
            TrainConfig.from_dict(
                {
                    "data": {"train": "x"},
                    "model": {"name": "equinet-cnn"},
                    "run": {"steps": 1, "out": "o", key: value},
                }
            )


def test_the_progress_bar_counts_training_steps(tiny_store, tmp_path, monkeypatch):
    """run.progress shows a bar over the run's steps: total = steps, advanced once per step,
    ending full (a resumed run starts it at the resumed step). The log (log_every = 1) holds
    each step's loss: a weighted squared error, positive."""
    import tqdm.auto

    bars = []

    class _Bar:
        def __init__(self, total, initial=0, **kwargs):
            self.total, self.n = total, initial
            bars.append(self)

        def update(self, k=1):
            self.n += k

        def close(self):
            pass

        def set_postfix(self, *args, **kwargs):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    log, _ = _run(tiny_store, tmp_path / "bar", steps=4, progress=True)
    assert [(b.total, b.n) for b in bars] == [(4, 4)]
    assert log.shape == (4,) and np.all(log > 0)


def test_a_logged_loss_is_the_mean_of_its_window_of_steps(tiny_store, tmp_path):
    """With log_every = k each log line holds the mean training loss of the k steps since the
    last line (the last line: of the steps left), so the same run logged every step and every
    second step agree: each pair's mean, then the odd last step alone."""
    every, _ = _run(tiny_store, tmp_path / "every", steps=5)
    pairs, _ = _run(tiny_store, tmp_path / "pairs", steps=5, log_every=2)
    expected = [every[0:2].mean(), every[2:4].mean(), every[4]]
    np.testing.assert_allclose(pairs, expected, rtol=1e-12)
