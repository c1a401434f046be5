"""Helpers for the plugin-surface tests: tiny build contexts and reading pytester's output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SUITE_WORD = "slimimage-plugin-suite"
"""What the tiny images print. Distinct to this suite, so its build cache is its own."""

EXEC_FORM_DOCKERFILE = f'FROM busybox:latest\nCMD ["echo", "{SUITE_WORD}"]\n'
SHELL_FORM_DOCKERFILE = f"FROM busybox:latest\nCMD echo {SUITE_WORD}\n"

_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S+)")
_BLOCK_TITLE = re.compile(r"^_{3,} (.+?) _{3,}$")
_BLOCK_END = re.compile(r"^(_{3,} .+ _{3,}|={3,}.*|-{1,} .+ -{1,})$")


def write_context(pytester: pytest.Pytester, name: str, dockerfile: str) -> Path:
    """A build context ``name`` under the inner session's rootdir, holding only a Dockerfile."""
    context = pytester.path / name
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    return context


def outcomes(result: pytest.RunResult) -> set[tuple[str, str]]:
    """(outcome, node id) from a run with ``-rA`` (skips have no node id there; see ``skip_lines``)."""
    found = set()
    for line in result.outlines:
        match = _OUTCOME.match(line)
        if match:
            found.add((match.group(1), match.group(2)))
    return found


def blocks(result: pytest.RunResult) -> dict[str, list[str]]:
    """The ERRORS/FAILURES entries by title (``ERROR at setup of test_x``, ``test_y``): their lines,
    without report sections (build logs) or the xdist ``[gw0]`` line."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in result.outlines:
        title = _BLOCK_TITLE.match(line)
        if title:
            current = found.setdefault(title.group(1), [])
            continue
        if _BLOCK_END.match(line):
            current = None
            continue
        if current is not None and not re.match(r"^\[gw\d+\] ", line):
            current.append(line)
    return found


_ENGINE_IDS = re.compile(r"sha256:[0-9a-f]{12,64}|\b[0-9a-f]{12}\b")
_BUILDKIT_STEP = re.compile(r"(?<![\w#])#\d+(?= )")
"""BuildKit's step numbers in a build log (``#4 [2/2] RUN exit 3``): they depend on what its cache holds."""


def masked_blocks(result: pytest.RunResult) -> dict[str, list[str]]:
    """:func:`blocks` with engine ids (images, build containers) and BuildKit's step numbers masked:
    they differ per session."""
    return {
        title: [_BUILDKIT_STEP.sub("#<n>", _ENGINE_IDS.sub("<id>", line)) for line in lines]
        for title, lines in blocks(result).items()
    }


def block(result: pytest.RunResult, title: str) -> list[str]:
    found = blocks(result)
    assert title in found, f"no report entry titled {title!r}; entries: {sorted(found)}\n{result.stdout.str()}"
    return found[title]


def plain_error(lines: list[str], path: str, kind: str) -> str:
    """Check an entry is a plain message: ``E   `` lines, a blank line, then ``path:line: kind``.

    Returns the message (the ``E   `` prefixes removed, one line per line)."""
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    assert "pytest_slimimage" not in text, text
    assert "plugin.py" not in text, text
    body = [line for line in lines if line.strip()]
    assert body, text
    *message, where = body
    assert re.fullmatch(rf"{re.escape(path)}:\d+: {kind}", where), text
    assert message and all(line.startswith("E   ") for line in message), text
    return "\n".join(line[4:] for line in lines if line.startswith("E   "))


PROGRESS_LINE = re.compile(r"^slimimage: (building|built) ")
"""A build's progress line (``slimimage: building hello (Dockerfile) ...``, ``slimimage: built
hello in 3.2s (buildkit)``), written while the tests run: not part of the summary."""


def summary_lines(result: pytest.RunResult) -> list[str]:
    """The ``slimimage:`` lines of the terminal summary (progress lines left out)."""
    return [line for line in result.outlines if line.startswith("slimimage:") and not PROGRESS_LINE.match(line)]


_BUILT_REUSED = re.compile(r"^slimimage: (\d+) image build\(s\), (\d+) reused, ")
_PRUNED = re.compile(r"; (\d+) image tag\(s\) cached, \d+ older pruned, ")


def cache_masked(result: pytest.RunResult) -> list[str]:
    """:func:`summary_lines`, with what depends on the engine's build cache that earlier sessions
    left (whether an image was built or reused, how many older builds were pruned) masked: the
    first line reads ``slimimage: <N> image(s) built or reused, ...; ... cached, <n> older pruned, ...``."""
    lines = summary_lines(result)
    if lines and (match := _BUILT_REUSED.match(lines[0])):
        first = f"slimimage: {int(match[1]) + int(match[2])} image(s) built or reused, " + lines[0][match.end() :]
        lines[0] = _PRUNED.sub(r"; \1 image tag(s) cached, <n> older pruned, ", first)
    return lines
