"""The ``slimimage`` marker on tiny real images (FROM busybox:latest): passes, failures reported
together, choosing the image with ``image=``, and the same text under ``--assert=plain``."""

from __future__ import annotations

import pytest

from tests.plugin.support import (
    EXEC_FORM_DOCKERFILE,
    SHELL_FORM_DOCKERFILE,
    SUITE_WORD,
    block,
    blocks,
    cache_masked,
    masked_blocks,
    outcomes,
    plain_error,
    write_context,
)

pytestmark = pytest.mark.usefixtures("docker_engine")

FIXTURES = """
import pytest
from pytest_slimimage import assert_max_size, image_fixture

good = image_fixture("good")  # CMD ["echo", "..."]
shell = image_fixture("shell")  # CMD echo ...
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    write_context(pytester, "good", EXEC_FORM_DOCKERFILE)
    write_context(pytester, "shell", SHELL_FORM_DOCKERFILE)
    return pytester


def test_every_check_passes_on_a_slim_exec_form_image(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_good=FIXTURES
        + f"""
@pytest.mark.slimimage(
    max_size="10MB", final_base="busybox", exec_form=True, no_compilers=True, runs="{SUITE_WORD}"
)
def test_good(good):
    pass


@pytest.mark.slimimage(runs={{"args": ["echo", "other"], "stdout_regex": "^oth"}})
def test_runs_with_args(good):
    pass
"""
    )
    result = project.runpytest("-rA")
    result.assert_outcomes(passed=2)
    assert cache_masked(result) == [
        "slimimage: 1 image(s) built or reused, 6 check(s) (0 failed); 1 image tag(s) cached, <n> older pruned,"
        " 0 leftover container(s) removed"
    ]


def test_all_failures_of_one_marker_in_one_report(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_shell=FIXTURES
        + f"""
@pytest.mark.slimimage(max_size="1kB", exec_form=True, runs="{SUITE_WORD}", final_base="debian")
def test_shell(shell):
    pass
"""
    )
    result = project.runpytest("-rA")
    result.assert_outcomes(failed=1)
    assert list(blocks(result)) == ["test_shell"]
    message = plain_error(block(result, "test_shell"), "test_shell.py", "MarkerCheckFailed")
    lines = message.splitlines()
    assert lines[0] == "shell: 3 of 4 checks failed (max_size, final_base, exec_form)"
    headlines = [line for line in lines if line.startswith("shell: ")]
    assert len(headlines) == 4, message
    assert headlines[1].startswith("shell: max_size: 1.99MB (")
    assert headlines[1].endswith(" exceeds the budget of 1kB by +1.98MB")
    assert headlines[2] == "shell: final_base: the final stage is FROM busybox:latest, expected debian"
    assert headlines[3] == "shell: exec_form: CMD is shell form, so Docker runs it through /bin/sh -c"
    assert f'  hint: use exec form (a JSON array of double-quoted strings): CMD ["echo", "{SUITE_WORD}"]' in lines
    assert "  shell/Dockerfile, line 2: CMD echo " + SUITE_WORD in lines
    assert sum(line.startswith("  hint: ") for line in lines) == 3
    # the passing check (runs) is counted, not shown
    assert not any(line.startswith("shell: runs:") for line in headlines)
    # the failing test's report carries the image's build log
    assert any(line.startswith("-") and "slimimage build log: shell (pytest-slimimage/shell:" in line
               for line in result.outlines)  # fmt: skip
    assert cache_masked(result)[0].startswith("slimimage: 1 image(s) built or reused, 4 check(s) (3 failed);")


def test_choosing_the_image(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_choose=FIXTURES
        + """
@pytest.mark.slimimage(exec_form=True, image="good")
def test_picks_good(good, shell):
    pass


@pytest.mark.slimimage(exec_form=True, image="shell")
def test_picks_shell(good, shell):
    pass


@pytest.mark.slimimage(exec_form=True)
def test_ambiguous(good, shell):
    raise AssertionError("the test body ran")


@pytest.mark.slimimage(exec_form=True, image="good")
def test_adds_good():
    pass


@pytest.mark.slimimage(exec_form=True, image="shell")
def test_adds_shell():
    pass


@pytest.mark.slimimage(exec_form=True)
def test_no_image():
    raise AssertionError("the test body ran")


@pytest.mark.slimimage(exec_form=True, image="tmp_path")
def test_not_an_image():
    pass


@pytest.mark.slimimage(exec_form=True, image="nothing_by_that_name")
def test_unknown_fixture():
    pass
"""
    )
    result = project.runpytest("-rA")
    assert outcomes(result) == {
        ("PASSED", "test_choose.py::test_picks_good"),
        ("FAILED", "test_choose.py::test_picks_shell"),
        ("ERROR", "test_choose.py::test_ambiguous"),
        ("PASSED", "test_choose.py::test_adds_good"),
        ("FAILED", "test_choose.py::test_adds_shell"),
        ("ERROR", "test_choose.py::test_no_image"),
        ("ERROR", "test_choose.py::test_not_an_image"),
        ("ERROR", "test_choose.py::test_unknown_fixture"),
    }
    assert "the test body ran" not in result.stdout.str()
    for title in ("test_picks_shell", "test_adds_shell"):
        message = plain_error(block(result, title), "test_choose.py", "MarkerCheckFailed")
        assert message.startswith("shell: exec_form: CMD is shell form"), message

    ambiguous = plain_error(block(result, "ERROR at setup of test_ambiguous"), "test_choose.py", "SlimImageError")
    assert ambiguous == (
        "@pytest.mark.slimimage on test_choose.py::test_ambiguous: the test uses several image fixtures"
        " (good, shell); pick one with image='...'"
    )
    no_image = plain_error(block(result, "ERROR at setup of test_no_image"), "test_choose.py", "SlimImageError")
    assert no_image == (
        "@pytest.mark.slimimage on test_choose.py::test_no_image: the test uses no image fixture;"
        " request one (def test_x(hello): ...) or name it with image='hello'"
    )
    not_image = plain_error(block(result, "ERROR at setup of test_not_an_image"), "test_choose.py", "SlimImageError")
    assert not_image == (
        "@pytest.mark.slimimage on test_choose.py::test_not_an_image: fixture 'tmp_path' is not an image fixture"
    )
    block(result, "ERROR at setup of test_unknown_fixture")
    result.stdout.fnmatch_lines(["*fixture 'nothing_by_that_name' not found*"])


INNER_FAILURES = (
    FIXTURES
    + """
@pytest.mark.slimimage(max_size="1kB", exec_form=True)
def test_marker(shell):
    pass


@pytest.mark.slimimage(max_sise="1kB")
def test_bad_marker(shell):
    pass


def test_helper(shell):
    assert_max_size(shell, "1kB")
"""
)


def test_same_text_under_assert_plain(project: pytest.Pytester) -> None:
    project.makepyfile(test_plain=INNER_FAILURES)
    rewritten = project.runpytest("-rA")
    plain = project.runpytest("-rA", "--assert=plain")
    for result in (rewritten, plain):
        result.assert_outcomes(failed=2, errors=1)
    assert masked_blocks(rewritten) == masked_blocks(plain)
    marker = "\n".join(blocks(plain)["test_marker"])
    assert "E   shell: 2 of 2 checks failed (max_size, exec_form)" in marker
    helper = "\n".join(blocks(plain)["test_helper"])
    assert "shell: max_size: 1.99MB (" in helper
