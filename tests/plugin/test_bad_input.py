"""Bad build input on a real engine: one clear error naming the path (or step), never a traceback,
and a healthy image test in the same session still passes."""

from __future__ import annotations

import pytest

from tests.plugin.support import EXEC_FORM_DOCKERFILE, block, cache_masked, outcomes, plain_error, write_context

pytestmark = pytest.mark.usefixtures("docker_engine")

INNER = """
import pytest
from pytest_slimimage import image_fixture

broken = image_fixture({context!r}, dockerfile={dockerfile!r})
healthy = image_fixture("healthy")


def test_broken(broken):
    pass


@pytest.mark.slimimage(exec_form=True, runs="slimimage-plugin-suite")
def test_healthy(healthy):
    pass
"""


def run_with_broken(pytester: pytest.Pytester, context: str, dockerfile: str = "Dockerfile") -> pytest.RunResult:
    write_context(pytester, "healthy", EXEC_FORM_DOCKERFILE)
    pytester.makepyfile(test_input=INNER.format(context=context, dockerfile=dockerfile))
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=1, errors=1)
    assert outcomes(result) == {("ERROR", "test_input.py::test_broken"), ("PASSED", "test_input.py::test_healthy")}
    return result


def test_missing_dockerfile(pytester: pytest.Pytester) -> None:
    context = write_context(pytester, "broken", EXEC_FORM_DOCKERFILE).resolve()
    result = run_with_broken(pytester, "broken", "Dockerfile.missing")
    message = plain_error(block(result, "ERROR at setup of test_broken"), "test_input.py", "SlimImageError")
    assert message == f"Dockerfile not found: {context / 'Dockerfile.missing'} (context {context})"


def test_missing_context(pytester: pytest.Pytester) -> None:
    result = run_with_broken(pytester, "no-such-context")
    message = plain_error(block(result, "ERROR at setup of test_broken"), "test_input.py", "SlimImageError")
    missing = (pytester.path / "no-such-context").resolve()
    assert message == f"build context {missing} does not exist (given as 'no-such-context')"


def test_dockerfile_syntax_error_names_file_and_line(pytester: pytest.Pytester) -> None:
    write_context(pytester, "broken", '# a typo on line 2\nFORM busybox:latest\nCMD ["true"]\n')
    result = run_with_broken(pytester, "broken")
    message = plain_error(block(result, "ERROR at setup of test_broken"), "test_input.py", "DockerfileError")
    assert message.startswith("broken/Dockerfile:2: "), message
    assert "FORM" in message
    assert len(message.splitlines()) <= 3, message


@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
def test_failing_build_names_the_step_and_keeps_the_log(pytester: pytest.Pytester, builder: str) -> None:
    pytester.makeini(f"[pytest]\nslimimage_builder = {builder}\n")
    write_context(pytester, "broken", "FROM busybox:latest\nRUN exit 3\n")
    result = run_with_broken(pytester, "broken")
    lines = block(result, "ERROR at setup of test_broken")
    message = plain_error(lines, "test_input.py", "ImageBuildError")
    assert message.startswith("building broken/Dockerfile failed: "), message
    step = next(line for line in message.splitlines() if "failing step:" in line)
    if builder == "legacy":
        assert "returned a non-zero code: 3" in message.splitlines()[0]
        assert step.startswith("  failing step: Step 2/") and step.endswith(": RUN exit 3"), step
    else:
        assert message.splitlines()[0].endswith("exit code: 3"), message
        assert step.startswith("  failing step: #") and step.endswith(" [2/2] RUN exit 3"), step

    output = result.outlines
    log_heading = [i for i, line in enumerate(output) if line.strip("- ") == "slimimage build log"]
    assert len(log_heading) == 1, result.stdout.str()
    log = output[log_heading[0] + 1 :]
    if builder == "legacy":
        assert log[0].startswith("Step 1/"), log
        assert any(line.endswith(": RUN exit 3") and line.startswith("Step 2/") for line in log)
        assert any("returned a non-zero code: 3" in line for line in log)
    else:
        assert log[0].startswith("#1 [internal] load build definition"), log
        assert any(line.startswith("#") and line.endswith(" [2/2] RUN exit 3") for line in log)
        assert any(line.endswith("exit code: 3") for line in log)

    # The failed build counts, and only the healthy image is tagged as the build cache.
    assert cache_masked(result) == [
        "slimimage: 2 image(s) built or reused, 2 check(s) (0 failed); 1 image tag(s) cached, <n> older pruned,"
        " 0 leftover container(s) removed"
    ]
