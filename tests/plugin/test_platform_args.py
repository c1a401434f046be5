"""``image_fixture(platforms=...)`` without an engine: the tests it parametrizes, and bad values
as collection errors of their module (the other modules still run with
``--continue-on-collection-errors``)."""

from __future__ import annotations

import pytest

FIXTURES = """
import pytest
from pytest_slimimage import image_fixture

hello = image_fixture("ctx", platforms=["linux/amd64", "linux/arm64"])


def test_asks(hello):
    pass


@pytest.mark.slimimage(image="hello", max_size={"linux/amd64": "1MB", "linux/arm64": "2MB"})
def test_named():
    pass


@pytest.mark.slimimage(image="hello", max_size="1MB")
class TestNamedOnTheClass:
    def test_in_class(self):
        pass
"""


def test_each_test_that_uses_the_fixture_runs_once_per_platform(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_platforms=FIXTURES)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    ids = [line for line in result.outlines if "::" in line]
    assert sorted(ids) == sorted(
        f"test_platforms.py::{test}[{platform}]"
        for test in ("test_asks", "test_named", "TestNamedOnTheClass::test_in_class")
        for platform in ("linux/amd64", "linux/arm64")
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('platforms="linux/arm64"', "ValueError: platforms: expected a list of platforms such as"),
        ('platforms=["linux/amd64", "arm64"]', "ValueError: platforms: expected a platform os/arch[/variant]"),
        ('platforms=["linux/amd64"], platform="linux/amd64"', "ValueError: give platform= (one build) or"),
    ],
)
def test_a_bad_platforms_value_is_its_modules_collection_error(
    pytester: pytest.Pytester, arguments: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=f"from pytest_slimimage import image_fixture\nbad = image_fixture('ctx', {arguments})\n",
        test_good="def test_fine():\n    pass\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=1)
    assert any(line.startswith("E   " + message) for line in result.outlines), result.stdout.str()
