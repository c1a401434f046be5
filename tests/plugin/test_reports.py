"""The reports of a run, from marker tests and declarative items alike: the terminal summary (a
table, one short line per image under -q), the JSON report (valid against its schema), the
Markdown table, the SVG chart, and JUnit XML properties ``slimimage.<image>.size`` etc."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_slimimage.report import REPORT_SCHEMA
from tests.plugin.support import SUITE_WORD, cache_masked, outcomes

pytestmark = pytest.mark.usefixtures("docker_engine")

PAYLOAD_DOCKERFILE = f'FROM busybox:latest\nCOPY payload /payload\nCMD ["echo", "{SUITE_WORD}"]\n'

PYPROJECT = """\
[tool.slimimage.images.declared]
context = "declared"
max_size = "10MB"
exec_form = true
"""

MARKER_TESTS = f"""
import pytest
from pytest_slimimage import image_fixture

fixtured = image_fixture("fixtured")


@pytest.mark.slimimage(max_size="1kB", runs="{SUITE_WORD}")
def test_fixtured(fixtured):
    pass


def test_unmarked(fixtured):
    pass
"""

SVG = "{http://www.w3.org/2000/svg}"
SIZE = r"\d+(?:\.\d+)?[kM]B"  # busybox:latest's size is whatever the local tag holds


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A declared image (passes) and an image fixture checked by a marker (max_size fails)."""
    pytester.makefile(".toml", pyproject=PYPROJECT)
    for name, payload in (("declared", 10_000), ("fixtured", 20_000)):
        context = pytester.mkdir(name)
        (context / "Dockerfile").write_text(PAYLOAD_DOCKERFILE)
        (context / "payload").write_bytes(b"\0" * payload)
    pytester.makepyfile(test_images=MARKER_TESTS)
    return pytester


def test_every_report_of_one_run(project: pytest.Pytester) -> None:
    out = project.path / "out"
    result = project.runpytest(
        "-rA",
        "-p",
        "no:randomly",
        "--slimimage-report",
        "out/report.json",
        "--slimimage-markdown",
        "out/sizes.md",
        "--slimimage-chart",
        "out/sizes.svg",
        "--junitxml",
        "out/junit.xml",
    )
    assert outcomes(result) == {
        ("PASSED", "pyproject.toml::declared::max_size"),
        ("PASSED", "pyproject.toml::declared::exec_form"),
        ("FAILED", "test_images.py::test_fixtured"),
        ("PASSED", "test_images.py::test_unmarked"),
    }

    # terminal: a table, one row per image, after the run
    start = result.outlines.index(next(line for line in result.outlines if re.fullmatch(r"-+ slimimage -+", line)))
    header, rule, declared, fixtured, *_ = result.outlines[start + 1 :]
    assert header.split() == [
        "image", "size", "budget", "headroom", "vs", "baseline", "final", "base", "builder", "checks"
    ]  # fmt: skip
    assert set(rule) == {"-", " "}
    builder = "(buildkit|legacy)"  # auto: BuildKit where a docker client here runs it
    assert re.fullmatch(
        rf"declared  +{SIZE} +10MB +{SIZE} \(80%\) +- +busybox:latest +{builder} +2 passed", declared
    ), declared
    assert re.fullmatch(
        rf"fixtured  +{SIZE} +1kB +over {SIZE} +- +busybox:latest +{builder} +1 passed, 1 failed \(max_size\)", fixtured
    ), fixtured
    assert cache_masked(result) == [
        "slimimage: 2 image(s) built or reused, 4 check(s) (1 failed); 2 image tag(s) cached, <n> older pruned,"
        " 0 leftover container(s) removed",
        f"slimimage: wrote {out / 'report.json'}",
        f"slimimage: wrote {out / 'sizes.md'}",
        f"slimimage: wrote {out / 'sizes.svg'}",
    ]

    # JSON: valid against the documented schema, one entry per image
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(report)
    images = {image["name"]: image for image in report["images"]}
    assert list(images) == ["declared", "fixtured"]
    assert images["declared"]["checks"] == {"max_size": "passed", "exec_form": "passed"}
    assert images["fixtured"]["checks"] == {"max_size": "failed", "runs": "passed"}
    assert images["fixtured"]["failures"]["max_size"].startswith("fixtured: max_size: ")
    assert (images["declared"]["limit"], images["fixtured"]["limit"]) == (10_000_000, 1_000)
    assert images["declared"]["layers"][-1]["size"] == 10_000
    assert images["fixtured"]["headroom"] == 1_000 - images["fixtured"]["size"]
    assert images["declared"]["dockerfile"] == "declared/Dockerfile"
    assert images["declared"]["builder"] in ("buildkit", "legacy")  # auto: BuildKit where a client here runs it
    assert set(report["meta"]) == {"duration", "session", "exitstatus"}
    assert report["meta"]["exitstatus"] == 1

    # Markdown: a table with a bar per image
    markdown = (out / "sizes.md").read_text(encoding="utf-8").splitlines()
    assert markdown[:4] == [
        "### Image sizes (pytest-slimimage)",
        "",
        "| image | size | budget | of budget | vs baseline | final base | builder | checks |",
        "|---|--:|--:|---|--:|---|---|---|",
    ]
    assert re.fullmatch(
        rf"\| `declared` \| {SIZE} \| 10MB \| `[█▏▎▍▌▋▊▉]{{3,4}}·{{16}}` 20% \| - \| busybox:latest"
        r" \| (buildkit|legacy) \| ✅ 2 passed \|",
        markdown[4],
    ), markdown[4]
    assert re.match(rf"\| `fixtured` \| {SIZE} \| 1kB \| ", markdown[5]), markdown[5]
    assert "`████████████████████▶`" in markdown[5]
    assert markdown[5].endswith("| ❌ 1 passed, 1 failed (max_size) |")
    assert len(markdown) == 6

    # SVG: well-formed, one bar per image
    chart = ET.parse(out / "sizes.svg").getroot()
    assert chart.tag == f"{SVG}svg"
    assert [bar.findtext(f"{SVG}title", "").split(":")[0] for bar in chart.iter(f"{SVG}rect")] == [
        "declared",
        "fixtured",
    ]

    # JUnit XML: the facts of each image a test used, on marker tests and declarative items
    properties = junit_properties(out / "junit.xml")
    sizes = {name: images[name]["size"] for name in images}
    assert all(images[name]["platform"].startswith("linux/") for name in images)
    for test, image in (
        ("pyproject.toml.declared::max_size", "declared"),
        ("pyproject.toml.declared::exec_form", "declared"),
        ("test_images::test_fixtured", "fixtured"),
        ("test_images::test_unmarked", "fixtured"),
    ):
        assert properties[test] == {
            f"slimimage.{image}.id": images[image]["id"],
            f"slimimage.{image}.size": str(sizes[image]),
            f"slimimage.{image}.platform": images[image]["platform"],
            f"slimimage.{image}.final_base": "busybox:latest",
            f"slimimage.{image}.dockerfile": f"{image}/Dockerfile",
        }, test


def junit_properties(path: Path) -> dict[str, dict[str, str]]:
    root = ET.parse(path).getroot()
    found: dict[str, dict[str, str]] = {}
    for case in root.iter("testcase"):
        props = {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
        found[f"{case.get('classname')}::{case.get('name')}"] = props
    return found


def test_short_summary_under_q(project: pytest.Pytester) -> None:
    result = project.runpytest("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    start = next(i for i, line in enumerate(result.outlines) if re.fullmatch(r"-+ slimimage -+", line))
    assert [re.sub(SIZE, "<size>", line, count=1) for line in result.outlines[start + 1 : start + 3]] == [
        "declared: <size>/10MB",
        "fixtured: <size>/1kB FAILED",
    ]


def test_no_table_under_qq(project: pytest.Pytester) -> None:
    result = project.runpytest("-qq", "-p", "no:randomly")
    assert not [line for line in result.outlines if re.fullmatch(r"-+ slimimage -+", line)]
    assert cache_masked(result)[0].startswith("slimimage: 2 image(s) built or reused, 4 check(s) (1 failed)")


def test_report_paths_from_ini_relative_to_the_rootdir(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makeini(
        "[pytest]\nslimimage_report = r/report.json\nslimimage_markdown = r/sizes.md\nslimimage_chart = r/sizes.svg\n"
    )
    monkeypatch.chdir(project.mkdir("elsewhere"))  # run from another folder: the paths stay at the rootdir
    result = project.runpytest("-p", "no:randomly", str(project.path))
    result.assert_outcomes(passed=3, failed=1)
    assert not (project.path / "elsewhere" / "r").exists()
    for name in ("report.json", "sizes.md", "sizes.svg"):
        assert (project.path / "r" / name).is_file(), name
    data: dict[str, Any] = json.loads((project.path / "r" / "report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(data)
