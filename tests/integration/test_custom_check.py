"""A user's own check, registered from a ``conftest.py``, behaves exactly like a built-in one: the
marker keyword, a declarative key, ``assert_check`` and ``assert_<name>`` all run it, with the
same failure text; a typo's did-you-mean knows it; a name clash is an error at registration."""

from __future__ import annotations

import json

import pytest

from pytest_slimimage.checks.registry import REGISTRY
from tests.plugin.support import block, outcomes

pytestmark = pytest.mark.usefixtures("docker_client")

DOCKERFILE = 'FROM busybox:latest\nRUN echo one > /one\nRUN echo two > /two\nCMD ["cat", "/one"]\n'

CONFTEST = """
import json
from pathlib import Path

import pytest

import pytest_slimimage as si

layered = si.image_fixture("layered")
TEXTS = {}


@si.register_check("max_layers", value="a number of layers", passes="the image has at most that many layers")
def max_layers(facts: si.ImageFacts, limit: int) -> si.CheckResult:
    n = sum(1 for layer in facts.layers if not layer.empty)
    return si.CheckResult(
        check="max_layers",
        image=facts.name,
        passed=n <= limit,
        headline=f"{facts.name}: max_layers: {n} layers, limit {limit}",
        hint="merge RUN steps" if n > limit else "",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call" and call.excinfo is not None:
        TEXTS[item.nodeid] = str(call.excinfo.value)
    return report


def pytest_sessionfinish(session):
    Path("texts.json").write_text(json.dumps(TEXTS, indent=1))
"""

TESTS = """
import pytest
import pytest_slimimage as si


@pytest.mark.slimimage(max_layers=1)
def test_marker(layered):
    pass


@pytest.mark.slimimage(max_layers=10)
def test_marker_passes(layered):
    pass


def test_assert_check(layered):
    si.assert_check(layered, "max_layers", 1)


def test_generated_helper(layered):
    si.assert_max_layers(layered, limit=1)


def test_helper_passes(layered):
    assert si.assert_max_layers(layered, 10).passed
"""


def project(pytester: pytest.Pytester) -> None:
    context = pytester.mkdir("layered")
    (context / "Dockerfile").write_text(DOCKERFILE)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_custom=TESTS)
    pytester.makefile(".toml", pyproject='[tool.slimimage.images.layered]\ncontext = "layered"\nmax_layers = 1\n')


def test_marker_table_and_helpers_run_it_with_the_same_text(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest("-p", "no:randomly", "-rA")
    assert outcomes(result) >= {
        ("FAILED", "test_custom.py::test_marker"),
        ("PASSED", "test_custom.py::test_marker_passes"),
        ("FAILED", "test_custom.py::test_assert_check"),
        ("FAILED", "test_custom.py::test_generated_helper"),
        ("PASSED", "test_custom.py::test_helper_passes"),
        ("FAILED", "pyproject.toml::layered::max_layers"),
    }, result.stdout.str()
    texts = json.loads((pytester.path / "texts.json").read_text())
    expected = "layered: max_layers: 4 layers, limit 1\n  hint: merge RUN steps"  # busybox has 2
    assert texts == {
        "test_custom.py::test_marker": expected,
        "test_custom.py::test_assert_check": expected,
        "test_custom.py::test_generated_helper": expected,
        "pyproject.toml::layered::max_layers": expected,
    }
    # the marker's failure is shown as its text alone, like a built-in check's
    assert [line for line in block(result, "test_marker") if line.startswith("E   ")] == [
        "E   layered: max_layers: 4 layers, limit 1",
        "E     hint: merge RUN steps",
    ]


def test_the_check_goes_with_the_session_that_registered_it(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.runpytest("--collect-only", "-q")
    assert "max_layers" not in REGISTRY


def test_a_typo_is_told_the_registered_name(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_custom="import pytest\n\n@pytest.mark.slimimage(max_layer=3)\ndef test_typo(layered):\n    pass\n"
    )
    result = pytester.runpytest("-rA", "test_custom.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["E   @pytest.mark.slimimage on test_custom.py::test_typo: unknown keyword 'max_layer'"
         " (did you mean 'max_layers'?); known keywords: max_size, *, healthy, max_layers, image"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("max_size", "register_check: 'max_size' is a built-in check of pytest-slimimage; choose another name"),
        ("image", "register_check: 'image' is a reserved keyword of the marker and the tables"),
    ],
)
def test_a_clash_is_an_error_at_registration(pytester: pytest.Pytester, name: str, message: str) -> None:
    pytester.makeconftest(
        "import pytest_slimimage as si\n\n"
        f"@si.register_check({name!r})\n"
        "def mine(facts, value):\n"
        "    raise AssertionError('never called')\n"
    )
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret != pytest.ExitCode.OK
    assert message in result.stderr.str() + result.stdout.str()
