"""Stopping long runs cleanly: SIGTERM handled like Ctrl-C, workers that die with their parent.

The pieces, used by every engine that runs for long or starts worker processes:

:func:`worker_pool`
    A process pool whose workers never see Ctrl-C (they start with SIGINT blocked, then ignore
    it) and die with their parent; when the block is left by an exception (a Ctrl-C in the
    parent included) the workers are killed at once instead of finishing every queued task.

:func:`sigterm_as_interrupt`
    While active, SIGTERM raises ``KeyboardInterrupt`` in the main thread (as Ctrl-C does), so
    ``finally`` blocks run: pools are stopped, finished work is kept, temporary files removed.
    Python's default for SIGTERM is to die at once, skipping all of that.
:func:`die_with_parent`
    Initializer of worker processes: the worker ignores SIGINT (the parent decides what to do
    with a Ctrl-C sent to the whole terminal process group), and it dies when its parent dies,
    even by SIGKILL -- by the Linux parent-death signal (``prctl(PR_SET_PDEATHSIG)``) and, on
    every platform, by a watchdog thread that polls the parent's pid.
:class:`DeferredInterrupt`
    SIGINT and SIGTERM only set a flag that a loop checks between steps (training checkpoints
    and stops at a step boundary, so resuming is exact); a second signal interrupts at once.

A signal the process inherited as *ignored* stays ignored by :func:`sigterm_as_interrupt` and
:class:`DeferredInterrupt`, as Python itself does for SIGINT: a shell without job control
starts background jobs (``cmd &`` in a script, some CI runners) with SIGINT ignored so that a
Ctrl-C meant for the foreground does not stop them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

__all__ = ["DeferredInterrupt", "die_with_parent", "sigterm_as_interrupt", "worker_pool"]

#: Seconds between two checks of the parent's pid by a worker's watchdog thread.
WATCHDOG_PERIOD = 0.5


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread.

    Outside the main thread (where handlers cannot be installed), or when SIGTERM is ignored
    (inherited ``SIG_IGN``), the block runs unchanged. The previous handler is restored on exit.
    """
    if _not_ours(signal.SIGTERM):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _not_ours(sig: int) -> bool:
    """True where ``sig``'s handler must be left alone: outside the main thread, or ignored."""
    if threading.current_thread() is not threading.main_thread():
        return True
    return signal.getsignal(sig) == signal.SIG_IGN


def die_with_parent(parent_pid: int) -> None:
    """Bind the calling (worker) process's lifetime to ``parent_pid``.

    Call it as the worker initializer of a process pool, with ``os.getpid()`` of the parent:
    ``ProcessPoolExecutor(..., initializer=die_with_parent, initargs=(os.getpid(),))``.

    Parameters
    ----------
    parent_pid : int
        Pid of the process that owns the pool.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watchdog, args=(parent_pid,), daemon=True).start()


def _watchdog(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCHDOG_PERIOD)
    os._exit(1)


def _init_pool_worker(parent_pid: int, initializer, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def _nothing() -> None:
    return None


@contextlib.contextmanager
def worker_pool(
    workers: int, *, start_method: str | None = None, initializer=None, initargs: tuple = ()
) -> Iterator[ProcessPoolExecutor]:
    """A :class:`~concurrent.futures.ProcessPoolExecutor` for long work that Ctrl-C can stop.

    All ``workers`` processes are started on entry with SIGINT blocked (they inherit the
    signal mask of this thread), so a Ctrl-C sent to the terminal's process group reaches only
    this process, even while a worker is still importing; each worker then runs
    :func:`die_with_parent` and ``initializer(*initargs)``. A SIGINT that arrives during the
    start is delivered here as soon as the workers are started. Leaving the block normally
    waits for the submitted tasks; leaving it by an exception (``KeyboardInterrupt``
    included) cancels queued tasks and kills the workers at once.

    Parameters
    ----------
    workers : int
        Number of worker processes (>= 1).
    start_method : str, optional
        ``"spawn"``, ``"fork"`` or ``"forkserver"``; None: the platform's default.
    initializer : callable, optional
        Run in each worker after :func:`die_with_parent` (picklable for ``"spawn"``).
    initargs : tuple, default ()
    """
    from multiprocessing import get_context

    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context(start_method),
        initializer=_init_pool_worker,
        initargs=(os.getpid(), initializer, tuple(initargs)),
    )
    ok = False
    try:
        # the mask is per thread and inherited by processes started from this thread (POSIX)
        blocking = hasattr(signal, "pthread_sigmask")
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if blocking else None
        try:
            for _ in range(workers):  # each submit to a pool without idle workers starts one
                pool.submit(_nothing)
        finally:
            if blocking:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        yield pool
        ok = True
    finally:
        if not ok:
            _kill_workers(pool)
        pool.shutdown(wait=True, cancel_futures=not ok)  # normally: every submitted task runs


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the workers of ``pool`` now instead of waiting for their tasks to finish.

    A worker killed while it was sending a result leaves a partial message in the result pipe,
    and the executor's manager thread then waits for the rest of it for ever; the interpreter
    joins that thread at exit, so the process would hang after its work was done. Once the
    workers are dead this process's own write end of the pipe is closed: the reader then sees
    the end of the file, the manager thread marks the pool broken and ends.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.kill()
    for proc in processes:
        proc.join(timeout=10)
    writer = getattr(results, "_writer", None)
    if writer is not None and not any(proc.is_alive() for proc in processes):
        with contextlib.suppress(OSError):
            writer.close()
    if manager is not None:
        manager.join(timeout=10)


class DeferredInterrupt:
    """Context manager: SIGINT/SIGTERM set :attr:`requested` instead of interrupting.

    A loop checks :attr:`requested` at points where stopping is safe (after a training step
    has been fully applied); a second signal raises ``KeyboardInterrupt`` at once. Outside the
    main thread it does nothing (:attr:`requested` stays False), and a signal inherited as
    ignored stays ignored.

    Attributes
    ----------
    requested : bool
        Whether a first signal arrived.
    signal_name : str
        Its name (``"SIGINT"``, ``"SIGTERM"``), for the message of the stop; ``""`` before.

    Examples
    --------
    >>> with DeferredInterrupt() as stop:  # doctest: +SKIP
    ...     while step < steps and not stop.requested:
    ...         step = train_one_step(step)
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name} (second)")
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> DeferredInterrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if not _not_ours(sig):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
