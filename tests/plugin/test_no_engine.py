"""No Docker engine: image tests skip with one reason naming the engine, or error when the engine
is required (option or ini), naming where it was looked for. Runs in subprocesses that see a
DOCKER_HOST pointing at a socket that does not exist."""

from __future__ import annotations

import pytest

from tests.plugin.support import block, outcomes, plain_error

INNER = """
import pytest
from pytest_slimimage import image_fixture

hello = image_fixture("ctx")


@pytest.mark.slimimage(max_size="10MB")
def test_image(hello):
    pass


def test_plain():
    pass
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "ctx").mkdir()
    (pytester.path / "ctx" / "Dockerfile").write_text('FROM busybox:latest\nCMD ["true"]\n')
    pytester.makepyfile(test_images=INNER)
    return pytester


def test_missing_engine_skips_with_one_reason(project: pytest.Pytester, no_engine: str) -> None:
    result = project.runpytest_subprocess("-rA")
    result.assert_outcomes(passed=1, skipped=1)
    skips = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert len(skips) == 1, result.outlines
    assert skips[0].startswith("SKIPPED [1] test_images.py:")
    assert f": slimimage: no Docker engine answers at {no_engine}: " in skips[0]
    assert skips[0].endswith("(--slimimage-require-engine makes this an error)")
    assert "Traceback" not in result.stdout.str()
    assert not [line for line in result.outlines if line.startswith("slimimage:")]


@pytest.mark.parametrize("how", ["option", "ini", "pyproject"])
def test_required_engine_missing_is_an_error(project: pytest.Pytester, no_engine: str, how: str) -> None:
    args = ["-rA"]
    if how == "option":
        args.append("--slimimage-require-engine")
    elif how == "ini":
        project.makeini("[pytest]\nslimimage_require_engine = true\n")
    else:
        project.makepyprojecttoml("[tool.pytest.ini_options]\nslimimage_require_engine = true\n")
    result = project.runpytest_subprocess(*args)

    result.assert_outcomes(passed=1, errors=1)
    assert outcomes(result) == {("ERROR", "test_images.py::test_image"), ("PASSED", "test_images.py::test_plain")}
    message = plain_error(block(result, "ERROR at setup of test_image"), "test_images.py", "EngineUnavailable")
    assert message.startswith(f"no Docker engine answers at {no_engine}: ")
    assert message.endswith("(required by slimimage_require_engine)")
    assert "skipped" not in result.stdout.str()
