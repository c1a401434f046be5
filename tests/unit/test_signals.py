"""The session's signal guard, with signals no test runner uses (``SIGUSR1``, ``SIGUSR2``): the
first signal becomes a ``KeyboardInterrupt`` (pytest ends the session as on Ctrl-C), a handler
installed before is called first, an ignored signal stays ignored, later signals and signals once
the session's end has begun only are noted, and the previous handlers come back. The real
``SIGTERM`` and ``SIGHUP`` mid-run and mid-build are tests/integration/test_signals.py."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from pytest_slimimage.glue.signals import SIGNALS, SessionSignalled, SignalGuard

USR1, USR2 = signal.SIGUSR1, signal.SIGUSR2


@pytest.fixture
def handlers() -> Iterator[None]:
    """Whatever a test does to SIGUSR1 and SIGUSR2 is undone."""
    saved = {s: signal.getsignal(s) for s in (USR1, USR2)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_the_session_guards_sigterm_and_sighup() -> None:
    assert SIGNALS == (signal.SIGTERM, signal.SIGHUP)


@pytest.mark.usefixtures("handlers")
def test_the_first_signal_interrupts_once_and_sets_the_exit_status() -> None:
    signal.signal(USR1, signal.SIG_DFL)
    guard = SignalGuard((USR1,))
    guard.install()
    with pytest.raises(SessionSignalled) as raised:
        os.kill(os.getpid(), USR1)
    assert isinstance(raised.value, KeyboardInterrupt)
    assert str(raised.value) == "SIGUSR1: the session stops, removing what it made"
    assert (guard.name, guard.exit_status) == ("SIGUSR1", 128 + USR1)
    os.kill(os.getpid(), USR1)  # noted, not raised: the cleanup it started goes on
    guard.restore()
    assert signal.getsignal(USR1) is signal.SIG_DFL


@pytest.mark.usefixtures("handlers")
def test_a_previous_handler_runs_first_and_comes_back() -> None:
    seen: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    signal.signal(USR1, previous)
    guard = SignalGuard((USR1,))
    guard.install()
    with pytest.raises(SessionSignalled):
        os.kill(os.getpid(), USR1)
    assert seen == [USR1]
    guard.restore()
    assert signal.getsignal(USR1) is previous


@pytest.mark.usefixtures("handlers")
def test_an_ignored_signal_stays_ignored() -> None:
    signal.signal(USR2, signal.SIG_IGN)  # as under nohup, for SIGHUP
    guard = SignalGuard((USR2,))
    guard.install()
    assert signal.getsignal(USR2) is signal.SIG_IGN
    os.kill(os.getpid(), USR2)
    assert guard.received is None
    guard.restore()
    assert signal.getsignal(USR2) is signal.SIG_IGN


@pytest.mark.usefixtures("handlers")
def test_once_the_end_has_begun_a_signal_is_only_noted() -> None:
    signal.signal(USR1, signal.SIG_DFL)
    guard = SignalGuard((USR1,))
    guard.install()
    guard.disarm()
    os.kill(os.getpid(), USR1)
    assert guard.exit_status == 128 + USR1
    guard.restore()


@pytest.mark.usefixtures("handlers")
def test_a_handler_installed_after_the_guard_is_left_in_place() -> None:
    signal.signal(USR1, signal.SIG_DFL)
    guard = SignalGuard((USR1,))
    guard.install()
    signal.signal(USR1, signal.SIG_IGN)  # someone else's, later
    guard.restore()
    assert signal.getsignal(USR1) is signal.SIG_IGN


def test_outside_the_main_thread_nothing_is_installed() -> None:
    guard = SignalGuard((USR1,))
    thread = threading.Thread(target=guard.install)
    thread.start()
    thread.join()
    assert repr(guard) == "<SignalGuard [] received=None>"
