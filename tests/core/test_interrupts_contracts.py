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


_PARTIAL_RESULT_SCRIPT = """
import multiprocessing, os, struct, time
from msinv.core.interrupts import worker_pool

def send_half_a_result():
    # what a worker killed in the middle of sending a large result leaves in the pipe: the
    # header of a 1 MB message and a few of its bytes
    results = multiprocessing.current_process()._args[1]
    os.write(results._writer.fileno(), struct.pack("!i", 1 << 20) + b"partial")
    time.sleep(60)

if __name__ == "__main__":
    try:
        with worker_pool(1, start_method="spawn") as pool:
            pool.submit(send_half_a_result)
            time.sleep(3)  # the manager thread is now reading the partial message
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


@linux
def test_a_worker_killed_while_sending_a_result_does_not_hang_the_exit(tmp_path):
    """Interrupting a pool whose worker was killed half-way through sending a result: the
    process prints its message and exits. Before the fix the executor's manager thread waited
    for the rest of the message for ever and the interpreter, joining it at exit, hung (seen
    as a flaky ``test_signals_to_a_parallel_generate``)."""
    import os
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[2] / "src"
    script = tmp_path / "partial.py"
    script.write_text(_PARTIAL_RESULT_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=dict(os.environ, PYTHONPATH=str(src)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process hung after its interrupt; printed {out!r}")
    assert out == "interrupted\n" and proc.returncode == 0, err


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
        futures = [pool.submit(time.sleep, 0.2) for _ in range(4)]  # most still queued here
    assert all(f.done() and not f.cancelled() and f.result() is None for f in futures)


_ORPHAN_SCRIPT = """
import sys, time
if sys.argv[1] == "no-prctl":
    sys.platform = "darwin"  # as off Linux: no parent-death signal, the watchdog thread only
from msinv.core.interrupts import worker_pool
with worker_pool(1, start_method="fork") as pool:
    if sys.argv[1] == "no-prctl":
        pool.submit(time.sleep, 60)
    else:
        pool.submit(sum, range(10**12))  # a C loop that holds the GIL (no Python thread runs)
    time.sleep(0.5)
    print(*(p.pid for p in pool._processes.values()), flush=True)
    time.sleep(60)
"""


def _worker_outlives_its_killed_parent(tmp_path, mode: str, seconds: float) -> bool:
    """Start ``_ORPHAN_SCRIPT`` (a parent with one busy worker), SIGKILL the parent, and say
    whether the worker still runs ``seconds`` later; no process is left behind either way."""
    import os
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[2] / "src"
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen(
        [sys.executable, str(script), mode],
        env=dict(os.environ, PYTHONPATH=str(src)),
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = None
    try:
        worker = int(parent.stdout.readline())
        assert _running(worker)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + seconds
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        return _running(worker)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        if worker is not None and _running(worker):
            os.kill(worker, signal.SIGKILL)


@linux
def test_a_worker_dies_with_its_killed_parent_even_inside_a_long_c_call(tmp_path):
    """SIGKILL of the parent (no clean-up runs there) kills its workers at once, also one that
    is inside a long C call holding the GIL, where a watchdog thread could not run: the
    kernel's parent-death signal (prctl on Linux) does it."""
    assert not _worker_outlives_its_killed_parent(tmp_path, "gil", 5.0)


@linux
def test_without_a_parent_death_signal_the_watchdog_ends_an_orphan(tmp_path):
    """Where the kernel gives no parent-death signal (off Linux), each worker's watchdog
    thread sees the parent gone within its period and exits the worker."""
    assert not _worker_outlives_its_killed_parent(tmp_path, "no-prctl", 10.0)


def test_a_deferred_interrupt_names_no_signal_until_one_arrives():
    """requested is False and signal_name empty before a signal; a SIGTERM sets both."""
    import os

    stop = DeferredInterrupt()
    assert (stop.requested, stop.signal_name) == (False, "")
    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with stop:
            assert (stop.requested, stop.signal_name) == (False, "")
            os.kill(os.getpid(), signal.SIGTERM)
            assert (stop.requested, stop.signal_name) == (True, "SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, before)


def test_leaving_a_worker_pool_by_an_exception_cancels_its_queued_tasks():
    """Leaving by an exception cancels the tasks still queued (documented) before the workers
    are killed: the tasks never handed to a worker are cancelled futures (not failed with a
    broken pool), the few already handed over (the executor's call queue: workers + 1) fail,
    none completes, and the block's own exception is the one that propagates."""
    with pytest.raises(RuntimeError, match="stop"), worker_pool(1, start_method="fork") as pool:
        futures = [pool.submit(time.sleep, 60) for _ in range(8)]
        time.sleep(0.3)
        raise RuntimeError("stop")
    assert all(f.cancelled() for f in futures[4:])
    for f in futures:
        assert f.cancelled() or f.exception(timeout=10) is not None


def _sigterm_handler(_):
    return signal.getsignal(signal.SIGTERM)


def test_pool_workers_die_on_sigterm_even_when_the_parent_catches_it():
    """A forked worker inherits the parent's Python handlers; the parent may turn SIGTERM into
    an interrupt (sigterm_as_interrupt), but a worker must simply end on it: its SIGTERM is
    reset to the default action."""
    previous = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        with worker_pool(1, start_method="fork") as pool:
            handler = pool.submit(_sigterm_handler, 0).result(timeout=30)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert handler == signal.SIG_DFL


def test_signal_helpers_outside_the_main_thread_leave_the_handlers_alone():
    """Only the main thread may install signal handlers: in another thread (a GUI's, a
    scheduler's) sigterm_as_interrupt and DeferredInterrupt run their block unchanged instead
    of failing, and nothing is requested."""
    import threading

    from msinv.core.interrupts import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    seen, errors = [], []

    def work():
        try:
            with sigterm_as_interrupt():
                seen.append(signal.getsignal(signal.SIGTERM))
            with DeferredInterrupt() as stop:
                seen.append(stop.requested)
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert not errors, errors
    assert seen == [before[0], False]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_the_watchdog_sleeps_between_its_checks():
    """The watchdog thread every pool worker carries polls its parent once a period and sleeps
    in between: over a second it costs its process almost no CPU (a loop that polls without
    sleeping would hold a core for the worker's whole life)."""
    import subprocess
    import sys

    child = (
        "import os, threading, time\n"
        "from msinv.core.interrupts import _watchdog\n"
        "threading.Thread(target=_watchdog, args=(os.getppid(),), daemon=True).start()\n"
        "t0 = time.process_time(); time.sleep(1.0); print(time.process_time() - t0)\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 0.1, f"the watchdog used {out.stdout.strip()} s of CPU in 1 s"


_INITIALISED: dict = {}


def _remember(value):
    _INITIALISED["value"] = value


def _initialised(_):
    return _INITIALISED.get("value")


def test_every_pool_worker_runs_the_initializer_with_its_arguments():
    """worker_pool(initializer=f, initargs=a) runs f(*a) in each worker before its first task
    (as ProcessPoolExecutor does), after arming die_with_parent."""
    with worker_pool(2, start_method="fork", initializer=_remember, initargs=(42,)) as pool:
        seen = list(pool.map(_initialised, range(6)))
    assert seen == [42] * 6
    assert "value" not in _INITIALISED  # it ran in the workers, not here
