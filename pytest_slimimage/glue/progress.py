"""Build progress on pytest's terminal: long builds show what they are doing.

On a terminal, one live line per image being built (its step n/m, the instruction, the time
so far as of the builder's last report), rewritten in place; without one (CI logs), or under
``-q``, one line when a build starts and one when it ends::

    slimimage: building hello (Dockerfile.static) ...
    slimimage: built hello in 3.2s (buildkit)

Everything goes through pytest's terminal reporter, with output capturing suspended for the
write (builds run while a fixture is set up, when pytest captures the test's output), never
straight to stdout. An xdist worker has no terminal of its own: it shows nothing, and the
controller's summary counts its builds.

:class:`BuildDisplay` holds the state and the words, over a :class:`Terminal` (unit-tested with
a fake one); :class:`ReporterTerminal` is the terminal reporter behind that interface. The
session's :class:`~pytest_slimimage.engine.builds.ImageBuilder` calls
:meth:`BuildDisplay.started` when a build really starts (not for an image found in a cache), the
builder sends that build's :class:`~pytest_slimimage.engine.builder.BuildProgress` events to the
callable it returns, and :func:`shown_build` ends the line when the build call returns or raises.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest

from pytest_slimimage.analysis.secrets import mask_text
from pytest_slimimage.glue.state import SESSION_KEY

if TYPE_CHECKING:  # the engine side (docker-py) loads when a test first needs an image
    from pytest_slimimage.engine.builder import BuildProgress

__all__ = ["BuildDisplay", "ReporterTerminal", "Terminal", "display_for", "pytest_sessionstart", "shown_build"]

PREFIX = "slimimage:"
_T = TypeVar("_T")


class Terminal(Protocol):
    """Where :class:`BuildDisplay` writes."""

    @property
    def width(self) -> int:
        """Columns a live line may use without wrapping."""
        ...

    def line(self, text: str) -> None:
        """``text`` as a line of its own: started on a fresh line, ended with a newline."""
        ...

    def show(self, text: str) -> None:
        """Rewrite the live line with ``text`` (the first call starts it on a fresh line)."""
        ...

    def done(self) -> None:
        """End the live line (a newline)."""
        ...

    def restore(self) -> None:
        """No build is open any more: give pytest its line back (its progress goes on below)."""
        ...


@dataclass
class _Build:
    name: str
    display: str
    started: float
    step: int | None = None
    steps: int | None = None
    instruction: str = ""
    ended: float | None = None
    """When the builder said it was done (its last event), if it did."""

    def where(self) -> str:
        """``step 3/7 RUN make`` so far; empty before the first step."""
        if self.step is None:
            return self.instruction
        count = f"step {self.step}/{self.steps}" if self.steps else f"step {self.step}"
        return f"{count} {self.instruction}".rstrip()


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.1f}s"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class BuildDisplay:
    """The builds of one pytest process, shown on ``terminal``: ``live`` rewrites one line per
    build while it runs; otherwise a line when each build starts and one when it ends.

    ``clock`` gives the time in seconds (``time.monotonic``; a fake one in tests). A live line is
    redrawn when the build moves to another step, or at most every ``redraw_every`` seconds for
    an event within the same step.
    """

    def __init__(
        self,
        terminal: Terminal,
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
        redraw_every: float = 0.25,
    ) -> None:
        self.terminal = terminal
        self.live = live
        self.clock = clock
        self.redraw_every = redraw_every
        self._open: list[_Build] = []
        self._lock = threading.RLock()  # a builder may report from a thread of its own
        self._drawn_at: float | None = None

    def __repr__(self) -> str:
        return f"<BuildDisplay {'live' if self.live else 'lines'}, {len(self._open)} build(s) open>"

    # ---------------------------------------------------------------------------------- events
    def started(self, name: str, display: str) -> Callable[[BuildProgress], None]:
        """A build of the image ``name`` from the Dockerfile ``display`` starts now; returns where
        its builder sends its progress events."""
        build = _Build(name=name, display=display, started=self.clock())
        with self._lock:
            self._open.append(build)
            if self.live:
                self._draw()
            else:
                self.terminal.line(f"{PREFIX} building {name} ({display}) ...")
        return functools.partial(self._event, build)

    def _event(self, build: _Build, event: BuildProgress) -> None:
        with self._lock:
            if build not in self._open:  # ended already (an event after the build call returned)
                return
            if event.done:
                build.ended = self.clock()
                return
            moved = event.step is not None and event.step != build.step
            if event.step is not None:
                build.step = event.step
            if event.steps is not None:
                build.steps = event.steps
            if event.instruction:
                build.instruction = _one_line(mask_text(event.instruction))  # RUN lines may hold secrets
            if self.live:
                due = self._drawn_at is None or self.clock() - self._drawn_at >= self.redraw_every
                if moved or due:
                    self._draw()

    def finished(self, *, builder: str | None = None, error: BaseException | None = None) -> None:
        """The build call returned (``builder`` built the image) or raised ``error``: every build
        still open ends, with one line each saying so. Nothing happens when none is open (the
        image came from a cache)."""
        with self._lock:
            ended, self._open = self._open, []
            if not ended:
                return
            now = self.clock()
            lines = [self._end_line(build, now, builder, error) for build in ended]
            if self.live:
                self.terminal.show(lines[0])
                self.terminal.done()
                lines = lines[1:]
            for line in lines:
                self.terminal.line(line)
            self._drawn_at = None
            self.terminal.restore()

    # ----------------------------------------------------------------------------------- words
    def live_line(self, width: int) -> str:
        """The open builds in at most ``width`` columns (the instruction is cut to fit)."""
        now = self.clock()
        parts = [self._live_part(build, now, width) for build in self._open]
        text = f"{PREFIX} " + " | ".join(parts)
        return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

    def _live_part(self, build: _Build, now: float, width: int) -> str:
        head = f"building {build.name} ({build.display})"
        tail = f"({_seconds(now - build.started)})"
        where = build.where() or "..."
        room = width - len(PREFIX) - len(head) - len(tail) - 4
        if len(where) > room:
            where = where[: max(room - 1, 0)] + "…"
        return f"{head} {where} {tail}"

    @staticmethod
    def _end_line(build: _Build, now: float, builder: str | None, error: BaseException | None) -> str:
        took = _seconds((build.ended if build.ended is not None else now) - build.started)
        if error is None:
            return f"{PREFIX} built {build.name} in {took}" + (f" ({builder})" if builder else "")
        if isinstance(error, KeyboardInterrupt):
            return f"{PREFIX} building {build.name} interrupted after {took}"
        at = f", at {build.where()}" if build.step is not None else ""
        return f"{PREFIX} building {build.name} failed after {took}{at}"

    def _draw(self) -> None:
        self._drawn_at = self.clock()
        self.terminal.show(self.live_line(self.terminal.width))


class _Writer(Protocol):
    """What is used of pytest's terminal writer (``config.get_terminal_writer()``)."""

    @property
    def fullwidth(self) -> int: ...

    @property
    def width_of_current_line(self) -> int: ...

    def line(self, s: str = "", **markup: bool) -> None: ...

    def write(self, msg: str, *, flush: bool = False, **markup: bool) -> None: ...


class ReporterTerminal:
    """pytest's terminal reporter as a :class:`Terminal`.

    The first line starts on a fresh line (after the reporter's progress dots, or a ``-v`` test
    location); :meth:`restore` then writes the reporter's line prefix again (the test file's
    name, or the location), so that the test's result goes on where pytest expects it. Each
    write happens with output capturing suspended, as pytest's live logging does. ``startpath``
    is where pytest was invoked (the reporter's file names are relative to it).
    """

    def __init__(self, reporter: Any, writer: _Writer, capture: Any = None, *, startpath: Path | None = None) -> None:
        self.reporter = reporter
        self.writer = writer
        self.capture = capture
        self.startpath = startpath or Path.cwd()
        self._showing = False
        self._taken = False
        self._prefix: object = None
        """The reporter's ``currentfspath`` when its line was taken over."""

    @property
    def width(self) -> int:
        return max(int(self.writer.fullwidth) - 1, 20)

    def line(self, text: str) -> None:
        with self._uncaptured():
            self._fresh_line()
            self.writer.line(text)

    def show(self, text: str) -> None:
        with self._uncaptured():
            if not self._showing:
                self._fresh_line()
                self._showing = True
            text = text[: self.width]
            self.writer.write("\r" + text + " " * (self.width - len(text)), flush=True)

    def done(self) -> None:
        if self._showing:
            with self._uncaptured():
                self.writer.line()
            self._showing = False

    def restore(self) -> None:
        if not self._taken:
            return
        prefix, self._taken, self._prefix = self._prefix, False, None
        if self.reporter.currentfspath is not None:  # pytest wrote a line of its own meanwhile
            return
        if isinstance(prefix, Path):  # a file's dots: its name again, the next dot goes after it
            text = os.path.relpath(prefix, self.startpath) + " "
        elif isinstance(prefix, str) and prefix:  # -v: the test's location, its result goes after it
            text = prefix
        else:
            return
        with self._uncaptured():
            self.writer.write(text, flush=True)
        self.reporter.currentfspath = prefix

    def _fresh_line(self) -> None:
        if not self._taken:
            self._taken, self._prefix = True, self.reporter.currentfspath
        self.reporter.ensure_newline()  # the reporter's own line (a file's dots, a -v location) ends
        if self.writer.width_of_current_line:  # -q dots carry no location: end their line too
            self.writer.line()

    @contextlib.contextmanager
    def _uncaptured(self) -> Iterator[None]:
        disabled = getattr(self.capture, "global_and_fixture_disabled", None)
        if disabled is None:
            yield
            return
        with disabled():
            yield


def display_for(config: pytest.Config) -> BuildDisplay | None:
    """The session's display: live on a terminal (unless ``-q``), lines otherwise; None on an
    xdist worker, or without pytest's terminal reporter (``-p no:terminal``)."""
    if hasattr(config, "workerinput"):
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None
    terminal = ReporterTerminal(
        reporter,
        config.get_terminal_writer(),
        config.pluginmanager.get_plugin("capturemanager"),
        startpath=config.invocation_params.dir,
    )
    live = bool(reporter.isatty()) and config.get_verbosity() >= 0
    return BuildDisplay(terminal, live=live)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Give the session's state its build display (the terminal reporter exists by now)."""
    state = session.config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.progress = display_for(session.config)


def shown_build(config: pytest.Config, build: Callable[[], _T]) -> _T:
    """``build()`` (a call of the session's ``ImageBuilder.build``), its progress line ended when
    it returns or raises."""
    __tracebackhide__ = True
    state = config.stash.get(SESSION_KEY, None)
    display = state.progress if state is not None else None
    if display is None:
        return build()
    try:
        image = build()
    except BaseException as exc:
        display.finished(error=exc)
        raise
    builder = getattr(image, "builder", None)  # BuiltImage.builder: which builder built it
    display.finished(builder=str(builder) if builder else None)
    return image
