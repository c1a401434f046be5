"""Multi-platform images on the real engine: the example project's Dockerfile.cross (a builder
stage on $BUILDPLATFORM, Debian's aarch64 cross gcc, a static hello, FROM scratch) built for
linux/amd64 and linux/arm64 with BuildKit, each image checked and named for its platform; the
foreign one run under QEMU emulation (scripts/emulation.sh registers it with binfmt_misc).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import pytest_slimimage as si
from pytest_slimimage import BuiltImage, image_fixture
from pytest_slimimage.emulation import elf_header
from pytest_slimimage.engine.emulation import engine_emulates
from pytest_slimimage.errors import ImageBuildError
from pytest_slimimage.glue.fixtures import BuildFactory
from tests.integration.conftest import EXAMPLE

PLATFORMS = ["linux/amd64", "linux/arm64"]
QEMU = "/usr/bin/qemu-aarch64-static"
"""The emulator scripts/emulation.sh registers."""
xplat = image_fixture("example_project", dockerfile="Dockerfile.cross", platforms=PLATFORMS)


def platform_of(image: BuiltImage) -> str:
    return image.name.removeprefix("xplat[").removesuffix("]")


def test_each_platform_is_its_own_image(xplat: BuiltImage) -> None:
    platform = platform_of(xplat)
    assert platform in PLATFORMS
    assert xplat.platform == platform
    assert xplat.config.architecture == platform.split("/")[1]
    assert xplat.builder.startswith("buildkit")
    facts = xplat.facts(filesystem=True)
    elf = facts.filesystem.entries["/hello"].elf if facts.filesystem else None
    assert elf is not None and elf.machine == xplat.config.architecture and elf.interp is None


def test_the_foreign_platform_runs_under_emulation_and_says_so(xplat: BuiltImage) -> None:
    result = si.assert_runs(xplat, "hello world")
    if xplat.config.architecture == xplat.engine_arch:
        assert result.emulation == ""
        return
    assert result.emulation.startswith(f"{xplat.platform} under QEMU (binfmt_misc qemu-aarch64")
    check = si.check_runs(xplat.facts(), si.RunExpectation(stdout="hello world"), result)
    assert check.headline.endswith(f'["/hello"] exited 0 as expected ({result.emulation})')


def test_runnable_knows_before_running_whether_the_engine_can_start_it(xplat: BuiltImage) -> None:
    facts = xplat.facts(filesystem=True)
    assert si.check_runnable(facts).passed
    if xplat.config.architecture == xplat.engine_arch:
        return
    arch = xplat.config.architecture
    assert f"the {xplat.engine_arch} engine runs {arch} programs under QEMU" in si.check_runnable(facts).headline
    # the same image on an engine that emulates nothing: the static diagnosis says it cannot start
    result = si.check_runnable(replace(facts, engine_emulates={}))
    assert not result.passed
    assert result.headline == (
        f"xplat[{xplat.platform}]: runnable: /hello is built for {arch}, but the engine runs {xplat.engine_arch}"
        f" and emulates no {arch}: an {arch} program cannot start on an {xplat.engine_arch} engine without emulation"
    )
    assert 'the engine reports this as "exec format error"' in result.evidence


@pytest.mark.slimimage(
    image="xplat",
    max_size={"linux/amd64": "1MB", "linux/arm64": "800kB"},
    final_base="scratch",
    runs="hello world",
)
def test_the_marker_checks_each_platform_with_its_budget() -> None:
    pass


MARKED = """
import pytest
from pytest_slimimage import image_fixture

hello = image_fixture("ctx", dockerfile="Dockerfile.cross", platforms=["linux/amd64", "linux/arm64"])
odd = image_fixture("ctx", dockerfile="Dockerfile.cross", platforms=["linux/amd64", "linux/s390x"])


@pytest.mark.slimimage(max_size={"linux/amd64": "1MB", "linux/arm64": "100kB"}, runs="hello world")
def test_budgets(hello):
    pass


@pytest.mark.slimimage(max_size={"linux/amd64": "1MB"})
def test_missing_budget(hello):
    pass


@pytest.mark.slimimage(max_size="1MB")
def test_odd(odd):
    pass
"""

DECLARED = """
[tool.slimimage.images.declared]
context = "ctx"
dockerfile = "Dockerfile.cross"
platforms = ["linux/amd64", "linux/arm64"]
max_size = { "linux/amd64" = "1MB", "linux/arm64" = "800kB" }
runs = "hello world"
"""


def test_results_reports_and_errors_are_per_platform(pytester: pytest.Pytester) -> None:
    """In one session: a budget per platform fails on one platform only; a platform without a
    budget is an error naming it; a platform the Dockerfile cannot build fails that build only;
    a table's platforms are built and checked each; the report's rows are name[platform]."""
    context = pytester.path / "ctx"
    context.mkdir()
    for name in ("Dockerfile.cross", "hello.c"):
        shutil.copy(EXAMPLE / name, context / name)
    pytester.makepyfile(test_inner=MARKED)
    pytester.makefile(".toml", pyproject=DECLARED)
    result = pytester.runpytest_subprocess(
        "--slimimage-require-engine", "-p", "no:cacheprovider", "-rA", "--slimimage-report=report.json"
    )
    outcomes = {
        line.split()[1]: line.split()[0]
        for line in result.outlines
        if line.split()[:1] in (["PASSED"], ["FAILED"], ["ERROR"])
    }
    assert outcomes == {
        "test_inner.py::test_budgets[linux/amd64]": "PASSED",
        "test_inner.py::test_budgets[linux/arm64]": "FAILED",
        "test_inner.py::test_missing_budget[linux/amd64]": "PASSED",
        "test_inner.py::test_missing_budget[linux/arm64]": "FAILED",
        "test_inner.py::test_odd[linux/amd64]": "PASSED",
        "test_inner.py::test_odd[linux/s390x]": "ERROR",
        "pyproject.toml::declared::max_size": "PASSED",
        "pyproject.toml::declared::runs": "PASSED",
    }, result.stdout.str()
    text = result.stdout.str()
    assert re.search(r"hello\[linux/arm64\]: max_size: [\d.]+kB \(\d+ bytes\) exceeds the budget of 100kB", text)
    assert (
        "hello[linux/arm64]: max_size is given for linux/amd64, not for linux/arm64 (the image's platform);"
        " add 'linux/arm64': ... to the max_size dict"
    ) in text
    assert "building ctx/Dockerfile.cross for linux/s390x failed: executor failed running" in text
    assert "no cross compiler for s390x" in text
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    rows = {image["name"]: image for image in report["images"]}
    assert sorted(rows) == [
        "declared[linux/amd64]",
        "declared[linux/arm64]",
        "hello[linux/amd64]",
        "hello[linux/arm64]",
        "odd[linux/amd64]",
    ]
    assert {name: row["platform"] for name, row in rows.items()} == {
        name: name.partition("[")[2].rstrip("]") for name in rows
    }
    assert rows["declared[linux/arm64]"]["limit"] == 800_000
    assert rows["hello[linux/arm64]"]["checks"] == {"max_size": "failed", "runs": "passed"}


svc_multiarch = image_fixture(
    "tests/integration/contexts/serves", dockerfile="Dockerfile.multiarch", platforms=PLATFORMS
)


def test_a_service_of_each_platform_answers_and_says_how_it_ran(svc_multiarch: BuiltImage) -> None:
    platform = svc_multiarch.name.removeprefix("svc_multiarch[").removesuffix("]")
    assert svc_multiarch.platform == platform
    result = si.assert_serves(svc_multiarch, 8080, http="/index.html", body="hello service")
    if svc_multiarch.config.architecture == svc_multiarch.engine_arch:
        assert "under QEMU" not in result.headline
    else:
        assert result.headline.endswith(f"({platform} under QEMU (binfmt_misc qemu-aarch64: {QEMU}))"), result.headline


def test_a_run_step_of_a_machine_the_engine_does_not_emulate_names_the_cause(
    tmp_path: Path, slimimage_build: BuildFactory
) -> None:
    """A RUN step whose program is for a machine the kernel neither runs nor emulates: BuildKit's
    log says "exec format error"; the failure names that cause and how to set up emulation."""
    emulated = emulates_here()
    machine = next(arch for arch in ("s390x", "riscv64", "ppc64le", "mips64le") if arch not in emulated)
    # an ELF executable header for that machine: the kernel refuses it before reading further
    (tmp_path / "prog").write_bytes(elf_header(machine).ljust(64, b"\0"))
    (tmp_path / "Dockerfile").write_text('FROM scratch\nCOPY --chmod=755 prog /prog\nRUN ["/prog"]\n', encoding="utf-8")
    with pytest.raises(ImageBuildError) as excinfo:
        slimimage_build(tmp_path, builder="buildkit", name=f"foreign_{os.getpid()}")
    lines = str(excinfo.value).splitlines()
    assert lines[0] == (
        f"building {tmp_path / 'Dockerfile'} failed: a RUN step started a program built for another architecture"
        ' than the engine\'s, which does not emulate it ("exec format error"): the RUN steps of a build for another'
        " platform run under emulation"
    ), lines
    assert lines[1].startswith("  failing step: #") and lines[1].endswith('RUN ["/prog"]'), lines
    assert lines[-1].startswith("  hint: set up QEMU user-mode emulation on the engine's machine")


def emulates_here() -> dict[str, str]:
    """What this machine's kernel emulates (the engine under test runs here)."""
    return engine_emulates("http+docker://localhost", None) or {}
