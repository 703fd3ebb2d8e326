"""Worker pools leave nothing running (written from a survivor of the sampled mutation run,
docs/testing.md)."""

import signal
import time

from msinv.core.interrupts import _kill_workers, worker_pool


def test_killed_workers_are_gone_when_kill_returns():
    """Leaving a worker pool by an exception kills its workers "at once": when
    :func:`_kill_workers` returns, every worker has exited (SIGKILL), none is left computing a
    task whose result will be thrown away."""
    with worker_pool(2, start_method="spawn") as pool:
        for _ in range(2):
            pool.submit(time.sleep, 60)
        processes = list(pool._processes.values())
        assert len(processes) == 2 and all(p.is_alive() for p in processes)
        _kill_workers(pool)
        assert [p.exitcode for p in processes] == [-signal.SIGKILL] * 2
