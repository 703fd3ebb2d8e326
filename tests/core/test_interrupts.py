"""Signal handling of long runs (``msinv.core.interrupts``), in this process.

Properties: a first SIGINT/SIGTERM only sets the flag, a second interrupts; handlers are
restored on exit; a signal inherited as ignored (how a shell without job control starts
background jobs, and how some CI runners start tests) stays ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msinv.core.interrupts import DeferredInterrupt, sigterm_as_interrupt, worker_pool

SRC = Path(__file__).resolve().parents[2] / "src"
linux = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@contextlib.contextmanager
def _set(sig, handler):
    previous = signal.signal(sig, handler)
    try:
        yield
    finally:
        signal.signal(sig, previous)


def _ignored(sig):
    return _set(sig, signal.SIG_IGN)


def _handled(sig):
    """``sig`` not ignored, whatever this test process inherited (``nohup pytest &`` starts it
    with SIGINT ignored, which the code under test rightly leaves alone)."""
    return _set(sig, signal.default_int_handler)


def _send(sig):
    os.kill(os.getpid(), sig)  # delivered before os.kill returns to Python code


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_defers_second_interrupts(sig):
    with _handled(sig):
        _defers_then_interrupts(sig)


def _defers_then_interrupts(sig):
    before = signal.getsignal(sig)
    with DeferredInterrupt() as stop:
        _send(sig)
        assert stop.requested and stop.signal_name == signal.Signals(sig).name
        with pytest.raises(KeyboardInterrupt):
            _send(sig)
    assert signal.getsignal(sig) is before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_ignored_signal_stays_ignored(sig):
    with _ignored(sig):
        with DeferredInterrupt() as stop:
            assert signal.getsignal(sig) == signal.SIG_IGN
            _send(sig)
            assert not stop.requested
        assert signal.getsignal(sig) == signal.SIG_IGN


def test_sigterm_raises_keyboard_interrupt_and_is_restored():
    with _set(signal.SIGTERM, signal.SIG_DFL):
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"), sigterm_as_interrupt():
            _send(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_sigterm_ignored_stays_ignored():
    with _ignored(signal.SIGTERM), sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        _send(signal.SIGTERM)  # ignored: the block goes on


def _worker_state(_):
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    blocked = int(status.split("SigBlk:")[1].split()[0], 16)
    return os.getpid(), bool(blocked & (1 << (signal.SIGINT - 1))), signal.getsignal(signal.SIGINT)


@linux
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_pool_workers_never_see_sigint(start_method):
    with worker_pool(2, start_method=start_method) as pool:
        states = list(pool.map(_worker_state, range(4)))
    assert os.getpid() not in {pid for pid, _, _ in states}
    assert all(blocked and handler == signal.SIG_IGN for _, blocked, handler in states), states
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, set()) & {signal.SIGINT}  # ours unblocked


_CTRL_C_SCRIPT = """
import sys, time
from msinv.core.interrupts import worker_pool
if __name__ == "__main__":  # spawned workers import this file again
    with worker_pool(2, start_method=sys.argv[1]) as pool:
        futures = [pool.submit(time.sleep, 30) for _ in range(6)]
        print("ready", *(p.pid for p in pool._processes.values()), flush=True)
        for f in futures:
            f.result()
"""


@linux
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_ctrl_c_stops_a_busy_pool_at_once(start_method, tmp_path):
    """Ctrl-C to the whole process group: the parent stops within seconds (not after the 30 s
    tasks), one traceback (the parent's KeyboardInterrupt, none from a worker), no worker left."""
    script = tmp_path / "pool.py"
    script.write_text(_CTRL_C_SCRIPT)
    p = subprocess.Popen(
        [sys.executable, str(script), start_method],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        words = p.stdout.readline().split()
        assert words[:1] == ["ready"], p.stderr.read()
        workers = [int(w) for w in words[1:]]
        time.sleep(0.5)
        t0 = time.monotonic()
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=20)
        assert time.monotonic() - t0 < 10
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0 and err.count("Traceback") == 1 and "KeyboardInterrupt" in err, err
    time.sleep(0.5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()]


@linux
def test_pool_workers_started_from_another_thread_never_see_sigint():
    """A pool opened in a thread other than the main one (a GUI's or a scheduler's) starts
    its workers with SIGINT blocked too: the signal mask is per thread."""
    import threading

    states = []

    def run():
        with worker_pool(2, start_method="fork") as pool:
            states.extend(pool.map(_worker_state, range(4)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert len(states) == 4
    assert all(blocked and handler == signal.SIG_IGN for _, blocked, handler in states), states
