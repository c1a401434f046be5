"""Under pytest-xdist the marker works as it does serially: the same outcomes, the same report
text (plain messages survive the trip from worker to controller), and one merged summary."""

from __future__ import annotations

import re

import pytest

from tests.plugin.support import (
    EXEC_FORM_DOCKERFILE,
    SHELL_FORM_DOCKERFILE,
    SUITE_WORD,
    blocks,
    masked_blocks,
    outcomes,
    summary_lines,
    write_context,
)

pytestmark = pytest.mark.usefixtures("docker_engine")

INNER = f"""
import pytest
from pytest_slimimage import image_fixture

good = image_fixture("good")
shell = image_fixture("shell")
broken = image_fixture("broken")


@pytest.mark.slimimage(max_size="10MB", exec_form=True, runs="{SUITE_WORD}")
def test_good(good):
    pass


@pytest.mark.slimimage(max_size="1kB", exec_form=True)
def test_shell(shell):
    pass


@pytest.mark.slimimage(exec_form=True, image="good")
def test_picks(good, shell):
    pass


@pytest.mark.slimimage(exec_form=True)
def test_ambiguous(good, shell):
    pass


@pytest.mark.slimimage(max_sise="1kB")
def test_bad_marker(good):
    pass


def test_broken(broken):
    pass


def test_plain():
    pass
"""


def test_xdist_matches_serial(pytester: pytest.Pytester) -> None:
    write_context(pytester, "good", EXEC_FORM_DOCKERFILE)
    write_context(pytester, "shell", SHELL_FORM_DOCKERFILE)
    write_context(pytester, "broken", "FROM busybox:latest\nRUN exit 3\n")
    pytester.makepyfile(test_parallel=INNER)

    serial = pytester.runpytest("-rA", "-p", "no:randomly")
    parallel = pytester.runpytest("-rA", "-p", "no:randomly", "-n", "2")

    expected = {
        ("PASSED", "test_parallel.py::test_good"),
        ("FAILED", "test_parallel.py::test_shell"),
        ("PASSED", "test_parallel.py::test_picks"),
        ("ERROR", "test_parallel.py::test_ambiguous"),
        ("ERROR", "test_parallel.py::test_bad_marker"),
        ("ERROR", "test_parallel.py::test_broken"),
        ("PASSED", "test_parallel.py::test_plain"),
    }
    for result in (serial, parallel):
        result.assert_outcomes(passed=3, failed=1, errors=3)
        assert outcomes(result) == expected
    assert parallel.ret == serial.ret == pytest.ExitCode.TESTS_FAILED
    assert "created: 2/2 workers" in parallel.stdout.str()

    # the same report entries, with the same "E   " lines, on the controller as serially
    assert masked_blocks(parallel) == masked_blocks(serial)
    shell = "\n".join(blocks(parallel)["test_shell"])
    assert "E   shell: 2 of 2 checks failed (max_size, exec_form)" in shell
    assert any(line.strip("- ") == "slimimage build log" for line in parallel.outlines)

    # one summary line, merged over the workers: the same checks; the images that built stay as the
    # build cache (good and shell: the failed build has no tag), the workers' containers are gone
    pattern = re.compile(
        r"slimimage: (\d+) image build\(s\), (\d+) reused, 6 check\(s\) \(2 failed\);"
        r" 2 image tag\(s\) cached, \d+ older pruned, 0 leftover container\(s\) removed"
    )
    for result in (serial, parallel):
        [line] = summary_lines(result)
        match = pattern.fullmatch(line)
        assert match, line
        builds, reused = map(int, match.groups())
        assert builds >= 1  # broken fails every time: it is never in the cache
        assert builds + reused >= 3  # good, shell and broken, at least once each
    [serial_line] = summary_lines(serial)
    assert re.match(r"slimimage: (\d+) image build\(s\), (\d+) reused, ", serial_line)
    assert sum(map(int, re.findall(r"(\d+) (?:image build\(s\)|reused)", serial_line))) == 3
