"""``SIGTERM`` and ``SIGHUP`` end a session in order, as ``Ctrl-C`` (``SIGINT``) does.

CI systems cancel a job with ``SIGTERM`` (a closed terminal sends ``SIGHUP``); by default Python
dies of either at once, and a container being run, a build's docker client, an archive image
loaded for a run and the session's temporary folder stay behind. While a session runs,
:class:`SignalGuard` turns the first of these signals into :class:`SessionSignalled`, a
``KeyboardInterrupt``: pytest stops as it does on ``Ctrl-C`` (the test running is interrupted,
the session finishes, its fixtures are torn down), so each thing is removed where it was made
(a run's container by the run, a build by its builder) and the session's end removes the rest,
then says what it stopped. The process then exits with ``128 + the signal's number`` (143 for
``SIGTERM``, 129 for ``SIGHUP``), the status a shell reports for a process the signal killed, so a
CI system still sees the job as terminated.

Installed in the main thread only (Python runs signal handlers there), and only over the default
handler or a Python one, which is called first (a signal ignored, as under ``nohup``, stays
ignored); the previous handlers are put back when the session ends. Under xdist the controller
and each worker guard themselves and clean up what they own. Signals after the first, or once
the session's end has begun, are noted and do not interrupt the cleanup.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["SIGNALS", "SessionSignalled", "SignalGuard"]

SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""The signals a session ends in order on (``SIGINT`` is pytest's own ``KeyboardInterrupt``)."""

_Handler = Callable[[int, FrameType | None], Any] | int | None


class SessionSignalled(KeyboardInterrupt):
    """The session was told to stop by a signal; pytest ends it as on ``Ctrl-C``."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"{self.name}: the session stops, removing what it made")


class SignalGuard:
    """The session's handlers for :data:`SIGNALS`: :meth:`install`, :meth:`disarm` as the
    session's end begins, :meth:`restore` after it."""

    def __init__(self, signals: tuple[signal.Signals, ...] = SIGNALS) -> None:
        self.signals = signals
        self.received: int | None = None
        """The first signal received (its number), if any."""
        self._previous: dict[int, _Handler] = {}
        self._armed = False

    def __repr__(self) -> str:
        return f"<SignalGuard {sorted(self._previous)} received={self.received}>"

    @property
    def name(self) -> str:
        """The received signal's name (``SIGTERM``); empty when none was."""
        return signal.Signals(self.received).name if self.received is not None else ""

    @property
    def exit_status(self) -> int | None:
        """``128 + signum`` once a signal was received: the process's exit status."""
        return 128 + self.received if self.received is not None else None

    def install(self) -> None:
        """Handle :data:`SIGNALS` from now on (main thread only; an ignored signal stays ignored)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.signals:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN or previous is None:  # ignored, or a handler outside Python
                continue
            signal.signal(signum, self._handle)
            self._previous[signum] = previous
        self._armed = bool(self._previous)

    def disarm(self) -> None:
        """The session's end has begun: signals are noted, no longer raised."""
        self._armed = False

    def restore(self) -> None:
        """Put the previous handlers back (where this guard's is still the one installed)."""
        self._armed = False
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        previous = self._previous.get(signum)
        if callable(previous):  # a handler installed before the session's: it runs first
            previous(signum, frame)
        if first and self._armed:
            self._armed = False
            raise SessionSignalled(signum)
