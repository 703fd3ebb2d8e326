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
COUNT = 240  # long enough that no run completes between "two more chunks" and the signal
GENERATE = [
    "scatter",
    "generate",
    "--family",
    "squares",
    "--count",
    str(COUNT),
    "--chunk",
    "1",
    "--n",
    "48",  # about 70 ms a sample: the 240 chunks take ~16 s with two workers on an idle
    "--freqs",  # 2-core machine, so no run can end between "two more chunks" and the signal
    "1",
    "2",
    "4",
    "--order",
    "2",
    "--pml-width",
    "12",  # the published 20-node layer scaled to 48 nodes, as the reference store below
]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _as_terminal_job() -> None:
    """In the child before exec: SIGINT at its default, as for a job started at a terminal.

    A shell without job control (and some CI runners) starts its commands with SIGINT ignored;
    the child would inherit that and, rightly, ignore our Ctrl-C (``msinv.core.interrupts``
    leaves an inherited SIG_IGN alone).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _msinv(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "msinv.cli.main", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
        preexec_fn=_as_terminal_job,
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


def _interrupt(p: subprocess.Popen, sig: int, ready, what: str) -> str:
    """Send ``sig`` once ``ready()`` holds; return stderr after checking a prompt, clean stop."""
    try:
        _wait_for(ready, 600, what)
        started = _children(p.pid)
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
            p.communicate(timeout=60)  # reap it here: a leaked Popen warns in a later test
    assert stopped < 20, f"{signal.Signals(sig).name}: took {stopped:.1f} s to stop"
    if sig == signal.SIGKILL:
        assert p.returncode == -signal.SIGKILL
    else:
        assert p.returncode == 130, err
        assert "interrupted:" in err and "Traceback" not in err, err
    _wait_for(lambda: not any(_alive(c) for c in started), 10, "every child process to exit")
    return err


def _done_chunks(store: Path) -> int:
    return len(list((store / "done" / "c").glob("*"))) if store.exists() else 0


@pytest.mark.slow  # ~90 s
def test_signals_to_a_parallel_generate(tmp_path):
    """Ctrl-C, then SIGTERM on the resumed run, then SIGKILL; the last run completes the store
    byte for byte as one uninterrupted run of one process (same environment)."""
    reference = tmp_path / "ref.zarr"
    ref = _msinv(*GENERATE, "--out", str(reference), "--no-progress")
    _, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err
    store = tmp_path / "s.zarr"
    command = [*GENERATE, "--out", str(store), "--workers", "2", "--no-progress"]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        before = _done_chunks(store)
        p = _msinv(*command)
        err = _interrupt(
            p,
            sig,
            lambda b=before, p=p: _done_chunks(store) >= b + 2 and len(_children(p.pid)) >= 2,
            "two more finished chunks",
        )
        if sig != signal.SIGKILL:
            assert f"kept {_done_chunks(store)} of {COUNT} samples" in err, err
        assert _done_chunks(store) < COUNT, "finished before the signal: make the run longer"
    p = _msinv(*command)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert _chunk_bytes(store) == _chunk_bytes(reference)


TRAIN = {
    "seed": 1,
    "model": {
        "name": "none-cnn",
        "score": {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]},
    },
    "optim": {"lr": 3e-3, "warmup": 0.1},
    "run": {
        "steps": 300,
        "batch": 4,
        "ema": 0.9,
        "checkpoint_every": 25,
        "log_every": 5,
        "device": "cpu",
        "progress": False,
        "threads": 1,
    },
}


def _train_config(folder: Path, store: Path) -> Path:
    import tomli_w

    doc = json.loads(json.dumps(TRAIN))
    doc["data"] = {"train": str(store)}
    doc["run"]["out"] = str(folder / "run")
    path = folder / "train.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def _checkpoint(run: Path) -> dict:
    import torch

    return torch.load(run / "checkpoint.pt", weights_only=True)


def _logged_step(log: Path) -> int:
    lines = log.read_text().splitlines() if log.exists() else []
    return json.loads(lines[-1])["step"] if lines else 0


def test_signals_to_training(tmp_path):
    """Ctrl-C and SIGTERM checkpoint the step they name and stop; SIGKILL loses only the steps
    since the last checkpoint; the resumed run ends with the weights of an uninterrupted run
    and a log without repeated lines."""
    import torch

    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    store = tmp_path / "sq16.zarr"
    generate(
        store,
        family="squares",
        count=8,
        geometry=Geometry.paper(16),
        freqs=[1.0, 2.0],
        scheme="wide2",
        progress=False,
    )
    (tmp_path / "ref").mkdir()
    reference = _msinv("learn", "train", str(_train_config(tmp_path / "ref", store)))
    _, err = reference.communicate(timeout=900)
    assert reference.returncode == 0, err
    config = _train_config(tmp_path, store)
    log = tmp_path / "run" / "log.jsonl"
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        before = _logged_step(log)
        p = _msinv("learn", "train", str(config))
        err = _interrupt(
            p, sig, lambda b=before: _logged_step(log) >= b + 20, "20 more training steps"
        )
        step = int(_checkpoint(tmp_path / "run")["step"])
        assert step < TRAIN["run"]["steps"], "finished before the signal: make the run longer"
        if sig != signal.SIGKILL:
            assert f"stopped at step {step} " in err, err  # the checkpoint holds that step
    p = _msinv("learn", "train", str(config))
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err
    got, want = _checkpoint(tmp_path / "run"), _checkpoint(tmp_path / "ref" / "run")
    assert got["step"] == want["step"] == TRAIN["run"]["steps"]
    for part in ("model", "ema"):
        for key, value in want[part].items():
            assert torch.equal(got[part][key], value), f"{part}.{key} differs after resume"
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == sorted(set(steps)), "a resumed run repeated log lines"
