"""How a failed run's output is shown: one line stays one line, of bounded width, with control
bytes escaped and what was cut counted (a 3 MB line or 500 MB of NULs must not flood the report)."""

from __future__ import annotations

from pytest_slimimage.checks.runs import LINE_CHARS, RunExpectation, check_runs, shown_line, tail
from pytest_slimimage.facts import ImageConfig, ImageFacts, RunResult

FACTS = ImageFacts("flood", "sha256:" + "0" * 64, 1, ImageConfig(cmd=("/flood",)))


def test_a_long_line_is_cut_and_the_cut_counted() -> None:
    line = "x" * 3_000_000
    shown = shown_line(line)
    assert shown == "x" * LINE_CHARS + f"... ({3_000_000 - LINE_CHARS:,} more characters on this line)"


def test_control_bytes_are_escaped_and_never_cut_in_half() -> None:
    assert shown_line("a\x00b\x1b[31mred\x7f\tend") == "a\\x00b\\x1b[31mred\\x7f\tend"
    assert shown_line("\x00" * 10, 6) == "\\x00... (36 more characters on this line)"
    assert shown_line("ok\r") == "ok"  # a CRLF line end is not content


def test_tail_keeps_the_last_lines_each_bounded() -> None:
    text = "\n".join(f"line {n}" for n in range(30)) + "\n" + "\x00" * 1_048_576
    rows = tail(text)
    assert rows[0] == "... (11 earlier lines)"
    assert rows[1:20] == [f"line {n}" for n in range(11, 30)]
    assert rows[-1].startswith("\\x00" * (LINE_CHARS // 4) + "... (")
    assert rows[-1].endswith(f"({4 * 1_048_576 - LINE_CHARS:,} more characters on this line)")
    assert all(len(row) < LINE_CHARS + 60 for row in rows)


def test_a_failed_run_with_a_flood_shows_bounded_text() -> None:
    result = RunResult(1, "\x00" * 1_048_576, "y" * 3_000_000, argv=("/flood",), truncated=True)
    message = check_runs(FACTS, RunExpectation(), result).message()
    assert len(message) < 4_000
    assert "more characters on this line" in message
    assert "\x00" not in message
