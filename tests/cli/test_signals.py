"""Signals sent to long jobs: a parallel ``generate`` and a training run.

For SIGINT (to the whole process group, as Ctrl-C does), SIGTERM and SIGKILL: the command
stops within seconds, says what it kept (SIGINT, SIGTERM), no process it started is left, and
the same command run again completes the work byte for byte as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
GENERATE = [
    "scatter",
    "generate",
    "--family",
    "squares",
    "--count",
    "32",
    "--chunk",
    "1",
    "--n",
    "32",
    "--freqs",
    "1",
    "2",
    "--order",
    "2",
]
SIGNALS = {
    "SIGINT": signal.SIGINT,
    "SIGTERM": signal.SIGTERM,
    "SIGKILL": signal.SIGKILL,
}


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _msinv(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "msinv.cli.main", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
        **kw,
    )


def _children(pid: int) -> list[int]:
    """Pids of every live descendant of ``pid`` (from /proc)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids + [g for k in kids for g in _children(k)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _chunk_bytes(store: Path) -> dict[str, bytes]:
    """The chunk files of a store (its metadata carries the creation time, so it is left out)."""
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and p.name != "zarr.json"
    }


pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    path = tmp_path_factory.mktemp("ref") / "ref.zarr"
    p = _msinv(*GENERATE, "--out", str(path), "--no-progress")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    return _chunk_bytes(path)


@pytest.mark.parametrize("name", SIGNALS)
def test_signal_to_parallel_generate(name, reference, tmp_path):
    store = tmp_path / "s.zarr"
    p = _msinv(*GENERATE, "--out", str(store), "--workers", "2", "--no-progress")
    try:
        _wait_for(
            lambda: len(list((store / "done" / "c").glob("*"))) >= 2 if store.exists() else False,
            300,
            "two finished chunks",
        )
        workers = _children(p.pid)
        assert len(workers) >= 2, workers
        sig = SIGNALS[name]
        t0 = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(p.pid, sig)  # Ctrl-C reaches the whole foreground group
        else:
            p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        stopped = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert stopped < 20, f"took {stopped:.1f} s to stop"
    if sig == signal.SIGKILL:
        assert p.returncode == -signal.SIGKILL
    else:
        assert p.returncode == 130, err
        assert "interrupted:" in err and "kept" in err and "Traceback" not in err, err
    _wait_for(lambda: not any(_alive(w) for w in workers), 10, "the workers to exit")
    resumed = _msinv(*GENERATE, "--out", str(store), "--workers", "2", "--no-progress")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert _chunk_bytes(store) == reference


TRAIN = {
    "seed": 1,
    "model": {
        "name": "none-cnn",
        "score": {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]},
    },
    "optim": {"lr": 3e-3, "warmup": 0.1},
    "run": {
        "steps": 400,
        "batch": 4,
        "ema": 0.9,
        "checkpoint_every": 25,
        "log_every": 5,
        "device": "cpu",
        "progress": False,
        "threads": 1,
    },
}


@pytest.fixture(scope="module")
def train_store(tmp_path_factory) -> Path:
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    path = tmp_path_factory.mktemp("train") / "sq16.zarr"
    generate(
        path,
        family="squares",
        count=8,
        geometry=Geometry.paper(16),
        freqs=[1.0, 2.0],
        order=2,
        progress=False,
    )
    return path


def _train_config(folder: Path, store: Path) -> Path:
    import tomli_w

    doc = json.loads(json.dumps(TRAIN))
    doc["data"] = {"train": str(store)}
    doc["run"]["out"] = str(folder / "run")
    path = folder / "train.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def _weights(run: Path) -> dict:
    import torch

    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    return {"step": ckpt["step"], "model": ckpt["model"], "ema": ckpt["ema"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_store) -> dict:
    folder = tmp_path_factory.mktemp("train-ref")
    p = _msinv("learn", "train", str(_train_config(folder, train_store)))
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err
    return {"weights": _weights(folder / "run"), "log": (folder / "run" / "log.jsonl").read_text()}


@pytest.mark.parametrize("name", SIGNALS)
def test_signal_to_training(name, trained, train_store, tmp_path):
    import torch

    config = _train_config(tmp_path, train_store)
    log = tmp_path / "run" / "log.jsonl"
    p = _msinv("learn", "train", str(config))
    try:
        _wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 8, 600, "30 steps")
        sig = SIGNALS[name]
        t0 = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        stopped = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert stopped < 20, f"took {stopped:.1f} s to stop"
    if sig == signal.SIGKILL:
        assert p.returncode == -signal.SIGKILL
    else:
        assert p.returncode == 130, err
        assert "interrupted: stopped at step" in err and "Traceback" not in err, err
        step = _weights(tmp_path / "run")["step"]
        assert f"stopped at step {step} " in err  # the checkpoint holds the step it names
    assert _children(p.pid) == []
    resumed = _msinv("learn", "train", str(config))
    _, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err
    got, want = _weights(tmp_path / "run"), trained["weights"]
    assert got["step"] == want["step"]
    for part in ("model", "ema"):
        for key, value in want[part].items():
            assert torch.equal(got[part][key], value), f"{part}.{key} differs after resume"
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == sorted(set(steps)), "a resumed run duplicated log lines"
