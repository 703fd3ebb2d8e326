"""Signal handling of long runs (``msinv.core.interrupts``), in this process.

Properties: a first SIGINT/SIGTERM only sets the flag, a second interrupts; handlers are
restored on exit; a signal inherited as ignored (how a shell without job control starts
background jobs, and how some CI runners start tests) stays ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from msinv.core.interrupts import DeferredInterrupt, sigterm_as_interrupt


@contextlib.contextmanager
def _ignored(sig):
    previous = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(sig, previous)


def _send(sig):
    os.kill(os.getpid(), sig)  # delivered before os.kill returns to Python code


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_defers_second_interrupts(sig):
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
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), sigterm_as_interrupt():
        _send(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_ignored_stays_ignored():
    with _ignored(signal.SIGTERM), sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        _send(signal.SIGTERM)  # ignored: the block goes on
