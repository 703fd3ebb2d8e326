"""Worker pools leave nothing running, handlers are restored exactly (written from survivors of
the sampled mutation run, docs/testing.md)."""

import signal
import time
from pathlib import Path

import pytest

from msinv.core.interrupts import DeferredInterrupt, _kill_workers, worker_pool

linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a dead, not yet reaped process is a zombie, Z)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@linux
def test_killed_workers_are_gone_when_kill_returns():
    """Leaving a worker pool by an exception kills its workers "at once": when
    :func:`_kill_workers` returns, no worker runs any more (none is left computing a task whose
    result will be thrown away)."""
    with worker_pool(2, start_method="spawn") as pool:
        for _ in range(2):
            pool.submit(time.sleep, 60)
        pids = [p.pid for p in pool._processes.values()]
        assert len(pids) == 2 and all(_running(pid) for pid in pids)
        _kill_workers(pool)
        assert not [pid for pid in pids if _running(pid)]


def test_a_reused_deferred_interrupt_restores_only_what_it_replaced():
    """One DeferredInterrupt entered twice: the second time SIGINT is inherited as ignored, so
    it is left alone, and leaving must not put back the handler of the first use."""
    stop = DeferredInterrupt()
    before = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with stop:
            pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with stop:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_leaving_a_worker_pool_normally_waits_for_its_tasks():
    """Leaving the block without an exception waits for every submitted task (the
    ProcessPoolExecutor contract); only an exception kills the workers."""
    with worker_pool(1, start_method="fork") as pool:
        future = pool.submit(time.sleep, 0.5)
    assert future.done() and not future.cancelled() and future.result() is None
