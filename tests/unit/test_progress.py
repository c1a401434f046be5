"""Build progress: the display's words and modes over a fake terminal and a fake clock, fed fake
builder events (no engine); the terminal reporter behind it (fresh lines after the progress
dots, capturing suspended); and a pytester session without a tty, with and without xdist."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_slimimage.engine.builder import BuildProgress
from pytest_slimimage.errors import ImageBuildError
from pytest_slimimage.glue.progress import BuildDisplay, ReporterTerminal

DOCKERFILE = "Dockerfile.static"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeTerminal:
    """A screen: finished lines, plus the live line being rewritten; ``ops`` is every call."""

    def __init__(self, width: int = 100) -> None:
        self.width = width
        self.lines: list[str] = []
        self.live: str | None = None
        self.ops: list[tuple[str, str]] = []

    def line(self, text: str) -> None:
        self.ops.append(("line", text))
        self._commit()
        self.lines.append(text)

    def show(self, text: str) -> None:
        self.ops.append(("show", text))
        assert len(text) <= self.width, text
        self.live = text

    def done(self) -> None:
        self.ops.append(("done", ""))
        self._commit()

    def restore(self) -> None:
        self.ops.append(("restore", ""))

    def _commit(self) -> None:
        if self.live is not None:
            self.lines.append(self.live)
            self.live = None


def step(n: int, of: int, instruction: str) -> BuildProgress:
    return BuildProgress(DOCKERFILE, step=n, steps=of, instruction=instruction)


def make(live: bool, width: int = 100) -> tuple[BuildDisplay, FakeTerminal, FakeClock]:
    terminal, clock = FakeTerminal(width), FakeClock()
    return BuildDisplay(terminal, live=live, clock=clock), terminal, clock


# ------------------------------------------------------------------------------- without a tty
def test_without_a_terminal_a_build_is_one_line_when_it_starts_and_one_when_it_ends() -> None:
    display, terminal, clock = make(live=False)
    report = display.started("hello", DOCKERFILE)
    clock.advance(1.0)
    report(step(1, 2, "FROM gcc:latest AS build"))
    clock.advance(1.0)
    report(step(2, 2, "RUN gcc -static -o hello hello.c"))
    clock.advance(1.2)
    report(BuildProgress(DOCKERFILE, done=True))
    display.finished(builder="buildkit")
    assert terminal.lines == [
        "slimimage: building hello (Dockerfile.static) ...",
        "slimimage: built hello in 3.2s (buildkit)",
    ]
    assert [op for op, _ in terminal.ops] == ["line", "line", "restore"]  # the steps write nothing


def test_a_failed_build_says_so_with_its_last_step() -> None:
    display, terminal, clock = make(live=False)
    report = display.started("hello", DOCKERFILE)
    report(step(1, 3, "FROM busybox:latest"))
    clock.advance(0.5)
    report(step(2, 3, "RUN   make \\\n   all"))
    clock.advance(1.0)
    display.finished(error=ImageBuildError("building Dockerfile.static failed: exit code 2"))
    assert terminal.lines[-1] == "slimimage: building hello failed after 1.5s, at step 2/3 RUN make \\ all"


def test_a_failure_before_any_step_and_an_interrupt() -> None:
    display, terminal, clock = make(live=False)
    display.started("hello", DOCKERFILE)
    display.finished(error=ImageBuildError("building Dockerfile.static failed: no such file"))
    display.started("other", "other/Dockerfile")
    clock.advance(2.0)
    display.finished(error=KeyboardInterrupt())
    assert terminal.lines[1] == "slimimage: building hello failed after 0.0s"
    assert terminal.lines[3] == "slimimage: building other interrupted after 2.0s"


def test_the_time_is_the_builders_until_it_said_done() -> None:
    """Describing the image after the build is not the build's time."""
    display, terminal, clock = make(live=False)
    report = display.started("hello", DOCKERFILE)
    clock.advance(2.0)
    report(BuildProgress(DOCKERFILE, done=True))
    clock.advance(5.0)
    display.finished(builder="legacy")
    assert terminal.lines[-1] == "slimimage: built hello in 2.0s (legacy)"


def test_no_line_ends_when_no_build_started() -> None:
    """An image found in a cache (the session's, another worker's, the engine's) started no build."""
    display, terminal, _ = make(live=False)
    display.finished(builder="buildkit")
    display.finished(error=ImageBuildError("cached failure"))
    assert terminal.ops == []


def test_a_builder_name_is_optional_and_late_events_are_ignored() -> None:
    display, terminal, _ = make(live=True)
    report = display.started("hello", DOCKERFILE)
    display.finished()
    ops = len(terminal.ops)
    report(step(2, 2, 'CMD ["/hello"]'))
    assert len(terminal.ops) == ops
    assert terminal.lines == ["slimimage: built hello in 0.0s"]


# ---------------------------------------------------------------------------------- on a tty
def test_on_a_terminal_one_live_line_is_rewritten_and_ends_as_the_result() -> None:
    display, terminal, clock = make(live=True)
    report = display.started("hello", DOCKERFILE)
    assert terminal.live == "slimimage: building hello (Dockerfile.static) ... (0.0s)"
    clock.advance(0.5)
    report(step(1, 3, "FROM gcc:latest AS build"))
    assert terminal.live == "slimimage: building hello (Dockerfile.static) step 1/3 FROM gcc:latest AS build (0.5s)"
    clock.advance(2.0)
    report(step(2, 3, "RUN gcc -static -Os -o hello hello.c"))
    assert terminal.live == (
        "slimimage: building hello (Dockerfile.static) step 2/3 RUN gcc -static -Os -o hello hello.c (2.5s)"
    )
    assert terminal.lines == []  # all of it on one line, rewritten
    clock.advance(0.7)
    display.finished(builder="buildkit")
    assert terminal.live is None
    assert terminal.lines == ["slimimage: built hello in 3.2s (buildkit)"]
    assert [op for op, _ in terminal.ops] == ["show", "show", "show", "show", "done", "restore"]


def test_events_within_a_step_redraw_at_most_every_quarter_second() -> None:
    """BuildKit reports a step again when its output resumes: a new step redraws at once, the
    same step only when the time shown would have moved on."""
    display, terminal, clock = make(live=True)
    report = display.started("hello", DOCKERFILE)
    report(step(1, 2, "RUN make"))
    shows = sum(op == "show" for op, _ in terminal.ops)
    clock.advance(0.1)
    report(step(1, 2, "RUN make"))
    assert sum(op == "show" for op, _ in terminal.ops) == shows
    clock.advance(0.2)
    report(step(1, 2, "RUN make"))
    assert sum(op == "show" for op, _ in terminal.ops) == shows + 1
    assert terminal.live is not None and terminal.live.endswith("(0.3s)")


def test_a_long_instruction_is_cut_to_the_terminal_keeping_the_time() -> None:
    display, terminal, clock = make(live=True, width=72)
    report = display.started("hello", DOCKERFILE)
    clock.advance(12.0)
    report(step(4, 9, "RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev make"))
    assert terminal.live is not None
    assert len(terminal.live) <= 72
    assert terminal.live.startswith("slimimage: building hello (Dockerfile.static) step 4/9 RUN apt")
    assert terminal.live.endswith("… (12.0s)")


def test_steps_without_a_count() -> None:
    display, terminal, _ = make(live=True)
    report = display.started("hello", DOCKERFILE)
    report(BuildProgress(DOCKERFILE, step=3, instruction="COPY . /src"))
    assert terminal.live == "slimimage: building hello (Dockerfile.static) step 3 COPY . /src (0.0s)"


# ---------------------------------------------------------------------- the terminal reporter
class FakeWriter:
    """pytest's TerminalWriter as far as ReporterTerminal uses it; ``out`` is what was written."""

    def __init__(self, fullwidth: int = 40) -> None:
        self.fullwidth = fullwidth
        self.out = ""

    @property
    def width_of_current_line(self) -> int:
        return len(self.out.rsplit("\n", 1)[-1])

    def line(self, s: str = "", **markup: bool) -> None:
        self.out += s + "\n"

    def write(self, msg: str, *, flush: bool = False, **markup: bool) -> None:
        self.out += msg


class FakeReporter:
    """The terminal reporter's line state: ``currentfspath`` set while a file's dots are open."""

    def __init__(self, writer: FakeWriter) -> None:
        self.writer = writer
        self.currentfspath: Path | str | None = None

    def ensure_newline(self) -> None:
        if self.currentfspath:
            self.writer.line()
            self.currentfspath = None


class FakeCapture:
    """Counts the writes made with capturing suspended (and those made without)."""

    def __init__(self, writer: FakeWriter) -> None:
        self.writer = writer
        self.suspended = False
        self.writes: list[tuple[bool, str]] = []
        original = writer.write

        def write(msg: str, *, flush: bool = False, **markup: bool) -> None:
            self.writes.append((self.suspended, msg))
            original(msg, flush=flush, **markup)

        writer.write = write  # type: ignore[method-assign]
        writer.line = lambda s="", **markup: write(s + "\n")  # type: ignore[method-assign]

    @contextlib.contextmanager
    def global_and_fixture_disabled(self) -> Iterator[None]:
        self.suspended = True
        try:
            yield
        finally:
            self.suspended = False


def test_lines_start_after_the_progress_dots_and_the_files_line_is_restored(tmp_path: Path) -> None:
    writer = FakeWriter()
    reporter = FakeReporter(writer)
    writer.write("tests/test_images.py ..")
    reporter.currentfspath = tmp_path / "tests" / "test_images.py"
    terminal = ReporterTerminal(reporter, writer, startpath=tmp_path)
    terminal.line("slimimage: building hello (Dockerfile) ...")
    assert reporter.currentfspath is None
    terminal.line("slimimage: built hello in 1.0s")
    terminal.restore()
    writer.write(".")  # the result of the test whose fixture built the image
    assert writer.out.splitlines() == [
        "tests/test_images.py ..",
        "slimimage: building hello (Dockerfile) ...",
        "slimimage: built hello in 1.0s",
        "tests/test_images.py .",
    ]
    assert reporter.currentfspath == tmp_path / "tests" / "test_images.py"
    terminal.restore()  # once only
    assert writer.out.endswith("tests/test_images.py .")


def test_under_v_the_tests_location_is_restored() -> None:
    writer = FakeWriter()
    reporter = FakeReporter(writer)
    writer.write("test_images.py::test_hello ")
    reporter.currentfspath = "test_images.py::test_hello "
    terminal = ReporterTerminal(reporter, writer)
    terminal.show("slimimage: building hello (Dockerfile) ... (0.0s)")
    terminal.show("slimimage: built hello in 1.0s")
    terminal.done()
    terminal.restore()
    writer.write("PASSED")
    assert writer.out.splitlines()[-1] == "test_images.py::test_hello PASSED"
    assert reporter.currentfspath == "test_images.py::test_hello "


def test_nothing_is_restored_when_pytest_wrote_a_line_of_its_own_meanwhile(tmp_path: Path) -> None:
    writer = FakeWriter()
    reporter = FakeReporter(writer)
    reporter.currentfspath = tmp_path / "test_a.py"
    terminal = ReporterTerminal(reporter, writer, startpath=tmp_path)
    terminal.line("slimimage: building hello (Dockerfile) ...")
    reporter.currentfspath = tmp_path / "test_b.py"
    written = writer.out
    terminal.restore()
    assert writer.out == written


def test_under_q_the_dots_line_ends_too() -> None:
    """``-q`` dots carry no file name: the reporter does not know its line is open."""
    writer = FakeWriter()
    writer.write("....")
    ReporterTerminal(FakeReporter(writer), writer).line("slimimage: built hello in 1.0s")
    assert writer.out == "....\nslimimage: built hello in 1.0s\n"


def test_the_live_line_is_padded_rewritten_and_ended() -> None:
    writer = FakeWriter(fullwidth=30)
    terminal = ReporterTerminal(FakeReporter(writer), writer)
    writer.write("..")
    terminal.show("slimimage: a")
    terminal.show("slimimage: b, and then far too long for it")
    terminal.done()
    terminal.done()  # nothing open: nothing written
    width = terminal.width
    assert width == 29
    assert writer.out == (
        "..\n" + "\rslimimage: a".ljust(width + 1) + "\r" + "slimimage: b, and then far too long for it"[:width] + "\n"
    )


def test_every_write_happens_with_capturing_suspended(tmp_path: Path) -> None:
    """During a fixture's set-up pytest captures the test's output, its own terminal's too."""
    writer = FakeWriter()
    capture = FakeCapture(writer)
    reporter = FakeReporter(writer)
    writer.write("test_a.py .")
    reporter.currentfspath = tmp_path / "test_a.py"
    terminal = ReporterTerminal(reporter, writer, capture, startpath=tmp_path)
    terminal.line("one")
    terminal.show("two")
    terminal.done()
    terminal.restore()
    assert [msg for _, msg in capture.writes] == [
        "test_a.py .",
        "\n",  # the reporter ends its line
        "one\n",
        "\rtwo" + " " * (terminal.width - 3),
        "\n",
        "test_a.py ",
    ]
    assert [suspended for suspended, _ in capture.writes] == [False, True, True, True, True, True]


# ------------------------------------------------------------------------------- in a session
INNER = """
import pathlib

from pytest_slimimage.engine.builder import BuildProgress
from pytest_slimimage.glue.progress import shown_build
from pytest_slimimage.glue.state import session_of


def test_before():
    pass


def test_build(request):
    display = session_of(request.config).progress
    pathlib.Path(request.config.rootpath, "mode.txt").write_text(repr(display))
    if display is None:
        return

    def build():  # what ImageBuilder.build does for a build the engine runs
        report = display.started("hello", "Dockerfile.static")
        report(BuildProgress("Dockerfile.static", step=1, steps=2, instruction="FROM busybox:latest"))
        report(BuildProgress("Dockerfile.static", done=True))
        return "image"

    assert shown_build(request.config, build) == "image"
    assert shown_build(request.config, lambda: "cached") == "cached"  # no build: no line


def test_after():
    pass
"""


def test_without_a_tty_the_session_writes_the_two_lines_on_their_own(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert (pytester.path / "mode.txt").read_text() == "<BuildDisplay lines, 0 build(s) open>"
    lines = result.outlines
    start = lines.index("slimimage: building hello (Dockerfile.static) ...")
    assert lines[start - 1] == "test_inner.py .", lines
    assert lines[start + 1].startswith("slimimage: built hello in ")
    assert lines[start + 1].endswith("s")
    assert lines[start + 2].startswith("test_inner.py .."), lines  # the file's line again, its dots go on
    assert sum(line.startswith("slimimage: buil") for line in lines) == 2


def test_under_q_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    lines = result.outlines
    start = lines.index("slimimage: building hello (Dockerfile.static) ...")
    assert lines[start - 1] == ".", lines
    assert lines[start + 1].startswith("slimimage: built hello in ")
    assert lines[start + 2].startswith(".."), lines


def test_an_xdist_worker_shows_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert (pytester.path / "mode.txt").read_text() == "None"
    assert not [line for line in result.outlines if line.startswith("slimimage: buil")]
