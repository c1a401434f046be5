"""A bad ``slimimage`` marker is an error of that test alone, raised at setup before any fixture
(so no image is built, and no engine is needed), shown as a plain message without a traceback."""

from __future__ import annotations

import pytest

from tests.plugin.support import block, outcomes, plain_error

INNER = """
import pytest
from pytest_slimimage import image_fixture

hello = image_fixture("ctx")  # never built: the marker is rejected before fixtures run


@pytest.fixture
def witness():
    raise RuntimeError("the witness fixture was set up")


def test_before():
    pass


{marker}
def test_bad(witness, hello):
    raise RuntimeError("the test body ran")


def test_after():
    pass
"""


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        pytest.param(
            '@pytest.mark.slimimage(max_sise="1kB")',
            [
                "@pytest.mark.slimimage on test_bad_marker.py::test_bad: unknown keyword 'max_sise'"
                " (did you mean 'max_size'?); known keywords: max_size, warn_size, max_growth, final_base, exec_form,"
                " no_compilers, no_shell, no_package_manager, non_root, no_setuid, no_secrets, lint, runnable,"
                " max_waste, max_pull_size, reproducible, runs, serves, healthy, image"
            ],
            id="unknown-keyword",
        ),
        pytest.param(
            '@pytest.mark.slimimage(max_size="12 parsecs")',
            ["@pytest.mark.slimimage on test_bad_marker.py::test_bad: max_size: not a size: '12 parsecs'"],
            id="bad-size",
        ),
        pytest.param(
            '@pytest.mark.slimimage("1kB")',
            [
                "@pytest.mark.slimimage on test_bad_marker.py::test_bad: takes keywords only (e.g. max_size='1MB'),"
                " got positional ('1kB',)"
            ],
            id="positional",
        ),
        pytest.param(
            "@pytest.mark.slimimage()",
            [
                "@pytest.mark.slimimage on test_bad_marker.py::test_bad: asks for no check; give at least one of"
                " max_size, warn_size, max_growth, final_base, exec_form, no_compilers, no_shell, no_package_manager,"
                " non_root, no_setuid, no_secrets, lint, runnable, max_waste, max_pull_size, reproducible, runs,"
                " serves, healthy"
            ],
            id="no-check",
        ),
        pytest.param(
            '@pytest.mark.slimimage(image="hello")',
            ["@pytest.mark.slimimage on test_bad_marker.py::test_bad: asks for no check;"],
            id="image-only",
        ),
        pytest.param(
            '@pytest.mark.slimimage(runs={"stdout": 1})',
            [
                "@pytest.mark.slimimage on test_bad_marker.py::test_bad: runs: stdout expects a str or a compiled"
                " regex, got 1"
            ],
            id="runs-stdout-not-text",
        ),
        pytest.param(
            '@pytest.mark.slimimage(exec_form="yes")',
            ["@pytest.mark.slimimage on test_bad_marker.py::test_bad: exec_form expects True or False, got 'yes'"],
            id="exec-form-not-bool",
        ),
        pytest.param(
            "@pytest.mark.slimimage(exec_form=True, image=3)",
            [
                "@pytest.mark.slimimage on test_bad_marker.py::test_bad: image expects the name of an image fixture,"
                " got 3"
            ],
            id="image-not-a-name",
        ),
        pytest.param(
            '@pytest.mark.slimimage(max_size="1MB")\n@pytest.mark.slimimage(max_sise="1MB")',
            ["@pytest.mark.slimimage on test_bad_marker.py::test_bad: unknown keyword 'max_sise'"],
            id="second-marker",
        ),
    ],
)
def test_bad_marker_is_a_setup_error_of_its_test(
    pytester: pytest.Pytester, no_engine: str, marker: str, expected: list[str]
) -> None:
    pytester.makepyfile(test_bad_marker=INNER.format(marker=marker))
    # No engine, and one demanded: had any image fixture been set up, the error would be the engine's.
    result = pytester.runpytest("--slimimage-require-engine", "-rA")

    result.assert_outcomes(passed=2, errors=1)
    assert outcomes(result) == {
        ("PASSED", "test_bad_marker.py::test_before"),
        ("ERROR", "test_bad_marker.py::test_bad"),
        ("PASSED", "test_bad_marker.py::test_after"),
    }
    message = plain_error(block(result, "ERROR at setup of test_bad"), "test_bad_marker.py", "SpecError")
    first_line = message.splitlines()[0]
    for fragment in expected:
        assert first_line.startswith(fragment), message
    output = result.stdout.str()
    for never in ("the witness fixture was set up", "the test body ran", "no Docker engine", "Traceback"):
        assert never not in output
    result.stdout.fnmatch_lines(["ERROR test_bad_marker.py::test_bad - SpecError: @pytest.mark.slimimage on *"])


def test_marker_on_class_and_module_merge_closest_wins(pytester: pytest.Pytester, no_engine: str) -> None:
    """Markers from module, class and function merge (the closest wins); a bad keyword anywhere counts."""
    pytester.makepyfile(
        test_merge="""
        import pytest

        pytestmark = pytest.mark.slimimage(max_size="nonsense")


        class TestImages:
            @pytest.mark.slimimage(max_size="1MB")
            def test_overridden(self):
                pass


        def test_inherits():
            pass
        """
    )
    result = pytester.runpytest("-rA")
    # test_overridden: the closest max_size is valid, so the marker is fine, and the test uses
    # no image fixture: a setup error saying so. test_inherits: the module's bad size.
    result.assert_outcomes(errors=2)
    overridden = plain_error(block(result, "ERROR at setup of TestImages.test_overridden"), "test_merge.py", "\\w+")
    assert "the test uses no image fixture" in overridden
    assert "request one (def test_x(hello): ...) or name it with image='hello'" in overridden
    inherits = plain_error(block(result, "ERROR at setup of test_inherits"), "test_merge.py", "SpecError")
    assert inherits.startswith(
        "@pytest.mark.slimimage on test_merge.py::test_inherits: max_size: not a size: 'nonsense'"
    )
