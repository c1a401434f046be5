"""Under ``pytest -n 2`` each unique image is found or built once across the workers (a file lock
and a shared record in a folder the controller hands them), and the controller merges the workers'
reports: the same verdicts and report rows as a serial run, no row duplicated or lost, and the
``slimimage: N image build(s), M reused`` line sums the workers' real builds and reuses. A file no
Dockerfile reads (``nonce.txt``) is new before each cold run: the content key changes, the image
does not, so each run must build (once per image) and the next, unchanged, run must not."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.support import SUITE_WORD, outcomes, summary_lines

pytestmark = pytest.mark.usefixtures("docker_engine")

DOCKERFILE = f'FROM busybox:latest\nCOPY payload /payload\nCMD ["echo", "{SUITE_WORD}"]\n'

PYPROJECT = f"""\
[tool.pytest.ini_options]
slimimage_baseline = "baseline.json"

[tool.slimimage.images.small]
context = "small"
max_size = "10MB"
max_growth = "5%"
exec_form = true
runs = "{SUITE_WORD}"

[tool.slimimage.images.large]
context = "large"
max_size = "1kB"
final_base = "busybox"
max_growth = "5%"

[tool.slimimage.images.alias]      # the same build as small, under another name
context = "small"
warn_size = "1kB"
"""

MARKER_TESTS = f"""
import pytest
from pytest_slimimage import image_fixture

small = image_fixture("small")
large = image_fixture("large")


@pytest.mark.slimimage(max_size="10MB", runs="{SUITE_WORD}")
def test_small(small):
    pass


@pytest.mark.slimimage(exec_form=True)
def test_large(large):
    pass


@pytest.mark.parametrize("n", range(4))
def test_both(small, large, n):
    assert small.id != large.id
"""

EXPECTED = {
    ("PASSED", "pyproject.toml::small::max_size"),
    ("PASSED", "pyproject.toml::small::max_growth"),
    ("PASSED", "pyproject.toml::small::exec_form"),
    ("PASSED", "pyproject.toml::small::runs"),
    ("FAILED", "pyproject.toml::large::max_size"),
    ("FAILED", "pyproject.toml::large::max_growth"),
    ("PASSED", "pyproject.toml::large::final_base"),
    ("PASSED", "pyproject.toml::alias::warn_size"),
    ("PASSED", "test_images.py::test_small"),
    ("PASSED", "test_images.py::test_large"),
    *(("PASSED", f"test_images.py::test_both[{n}]") for n in range(4)),
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.makepyfile(test_images=MARKER_TESTS)
    for name, payload in (("small", 10_000), ("large", 50_000)):
        context = pytester.mkdir(name)
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "payload").write_bytes(b"\0" * payload)
    # large was 1MB (it grew past 5%: fails), small 100MB (it shrank: passes)
    (pytester.path / "baseline.json").write_text(
        '{"version": 1, "images": {"large": {"size": 1000000}, "small": {"size": 100000000}}}'
    )
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A fresh process each time: xdist and the plugin's per-process state."""
    return pytester.runpytest_subprocess("-rA", "-p", "no:randomly", "--slimimage-report", "report.json", *args)


def new_content(pytester: pytest.Pytester) -> None:
    """A new content key for both images (a file in their contexts that no Dockerfile reads): the
    plugin finds neither in its build cache, and the builder makes the same images again."""
    for name in ("small", "large"):
        (pytester.path / name / "nonce.txt").write_text(uuid.uuid4().hex)


def rows(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    """The JSON report's rows, without the ids' and the session's particulars."""
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    return [{key: value for key, value in row.items() if key != "id"} for row in report["images"]]


def table(result: pytest.RunResult) -> list[str]:
    start = next(i for i, line in enumerate(result.outlines) if re.fullmatch(r"-+ slimimage -+", line))
    return result.outlines[start + 1 : start + 6]


def test_parallel_runs_match_the_serial_run_and_build_each_image_once(project: pytest.Pytester) -> None:
    new_content(project)
    serial = run(project)
    assert outcomes(serial) == EXPECTED
    serial_rows = rows(project)
    assert [row["name"] for row in serial_rows] == ["alias", "large", "small"]
    assert serial_rows[1]["checks"] == {
        "max_size": "failed",
        "max_growth": "failed",
        "final_base": "passed",
        "exec_form": "passed",
    }
    assert serial_rows[1]["delta"] == serial_rows[1]["size"] - 1_000_000
    assert serial_rows[2]["delta"] == serial_rows[2]["size"] - 100_000_000
    built_once = "slimimage: 2 image build(s), 0 reused, 11 check(s) (2 failed); 2 image tag(s) cached, "
    assert summary_lines(serial)[0].startswith(built_once), summary_lines(serial)

    for dist in ("load", "loadfile"):
        # load: the default; loadfile: pyproject.toml on one worker, test_images.py on the other,
        # so both workers need both images at once
        new_content(project)
        parallel = run(project, "-v", "-n", "2", "--dist", dist)
        assert outcomes(parallel) == EXPECTED, dist
        assert rows(project) == serial_rows, dist
        assert table(parallel) == table(serial), dist
        assert summary_lines(parallel)[0].startswith(built_once), (dist, summary_lines(parallel))
        workers = {match.group(1) for line in parallel.outlines if (match := re.match(r"\[(gw\d)\] ", line))}
        assert workers == {"gw0", "gw1"}, (dist, parallel.outlines)
        assert "INTERNALERROR" not in parallel.stdout.str() + parallel.stderr.str()

    # unchanged: found by their keys, once across the workers, and not built
    warm = run(project, "-n", "2")
    assert outcomes(warm) == EXPECTED
    assert rows(project) == serial_rows
    reused_once = "slimimage: 0 image build(s), 2 reused, 11 check(s) (2 failed); 2 image tag(s) cached, "
    assert summary_lines(warm)[0].startswith(reused_once), summary_lines(warm)


def test_parallel_update_baseline_writes_every_image(project: pytest.Pytester) -> None:
    path: Path = project.path / "baseline.json"
    path.unlink()
    result = run(project, "-n", "2", "--slimimage-update-baseline")
    assert outcomes(result) == {
        (("PASSED" if node != "pyproject.toml::large::max_size" else "FAILED"), node) for _, node in EXPECTED
    }
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data["images"]) == ["alias", "large", "small"]
    assert data["images"]["alias"] == data["images"]["small"]
    assert f"slimimage: wrote {path} (size baseline, 3 image(s))" in summary_lines(result)
