"""A literal secret in a RUN line ships in the image's history and shows in the build log; what
the plugin prints of either — a failed build's text and log sections, the JSON report's layer
instructions — has it masked."""

from __future__ import annotations

import json
import random

import docker
import pytest

from tests.plugin.support import write_context

_RNG = random.Random(7)
KEY_ID = "AK" + "IA" + "".join(_RNG.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
"""Made at run time, so the repository holds no secret-shaped text."""


def test_secrets_in_run_lines_are_masked(pytester: pytest.Pytester, docker_engine: docker.DockerClient) -> None:
    write_context(pytester, "leaky", f'FROM busybox:latest\nRUN echo {KEY_ID} > /k\nCMD ["true"]\n')
    write_context(pytester, "broken", f"FROM busybox:latest\nRUN echo {KEY_ID} && exit 3\n")
    pytester.makepyfile(
        test_masked="""
import pytest
from pytest_slimimage import image_fixture

leaky = image_fixture("leaky")
broken = image_fixture("broken")


@pytest.mark.slimimage(max_size="1kB")
def test_leaky(leaky):
    pass


def test_broken(broken):
    pass
"""
    )
    result = pytester.runpytest("-rA", "--slimimage-report", "report.json")
    result.assert_outcomes(failed=1, errors=1)
    output = result.stdout.str()
    assert "exit 3" in output  # the failing step is shown ...
    assert KEY_ID not in output  # ... with the key masked
    assert "AKIA****" in output
    report = (pytester.path / "report.json").read_text()
    assert KEY_ID not in report
    leaky = next(image for image in json.loads(report)["images"] if image["name"] == "leaky")
    assert any("AKIA****" in layer["instruction"] for layer in leaky["layers"])
