"""Deep image analysis without a shell, on real images: why an image would not start (read off
its layers, no container started), Dockerfile lint, wasted bytes, and the marker, declarative and
warm-cache paths that carry them.

Each verdict is also checked against the engine where that is cheap: an image the runnable check
rejects really does not start, the relative ``COPY --from`` really copies the file lint says.
A program built for another architecture cannot be made here without faking it; that case is
unit-tested (tests/unit/test_runnable.py::test_arm64_binary_on_an_amd64_engine).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_slimimage import (
    BuiltImage,
    CheckResult,
    ImageCheckFailed,
    assert_max_size,
    assert_max_waste,
    assert_no_lint,
    assert_runnable,
    assert_runs,
    format_size,
    image_fixture,
)
from pytest_slimimage.analysis.layercache import CACHE_FORMAT
from tests.integration.conftest import CONTEXTS
from tests.plugin.support import block, cache_masked, outcomes, plain_error

ANALYSIS = CONTEXTS / "analysis"
DOCKERFILES = "tests/integration/contexts/analysis"
"""How messages name the Dockerfiles: relative to the rootdir."""

static = image_fixture("example_project", dockerfile="Dockerfile.static")
dynamic_scratch = image_fixture("example_project", dockerfile="Dockerfile.scratch")
multistage = image_fixture("example_project", dockerfile="Dockerfile.multistage")
bash_script = image_fixture(ANALYSIS, dockerfile="Dockerfile.bashscript")
no_exec_bit = image_fixture(ANALYSIS, dockerfile="Dockerfile.noexec")
relative_cmd = image_fixture(ANALYSIS, dockerfile="Dockerfile.workdir")
shell_on_scratch = image_fixture(ANALYSIS, dockerfile="Dockerfile.shellscratch")
relative_copy = image_fixture(ANALYSIS, dockerfile="Dockerfile.lint")
written_then_deleted = image_fixture(ANALYSIS, dockerfile="Dockerfile.waste")
overwritten = image_fixture(ANALYSIS, dockerfile="Dockerfile.overwrite")


def failure(excinfo: pytest.ExceptionInfo[ImageCheckFailed]) -> list[str]:
    """The failure text's lines (what pytest prints after ``E``)."""
    return str(excinfo.value).splitlines()


# -------------------------------------------------------------------------------------- runnable
LOADER_HINT = (
    "  hint: link statically (gcc -static, or CGO_ENABLED=0 for Go) or use a final base with libc that provides"
    " /lib64/ld-linux-x86-64.so.2 (gcr.io/distroless/base-debian12, debian:12-slim)"
)


def test_dynamic_scratch_run_failure_names_the_missing_loader(dynamic_scratch: BuiltImage) -> None:
    """The engine only says "no such file or directory"; the diagnosis says which file."""
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(dynamic_scratch, "hello world")
    lines = failure(excinfo)
    assert lines[0] == "dynamic_scratch: runs: exit code 1, expected 0; stdout '', expected 'hello world'"
    assert "    | exec ./hello: no such file or directory" in lines
    diagnosis = lines.index("  stderr:") + 2
    assert lines[diagnosis:] == [
        "  diagnosis: ./hello (/hello) is dynamically linked, and its ELF loader /lib64/ld-linux-x86-64.so.2"
        " is not in the image",
        "    ./hello -> /hello (relative to WORKDIR /)",
        "    /hello: ELF 64-bit amd64 PIE executable, dynamically linked (loader /lib64/ld-linux-x86-64.so.2),"
        " needs libc.so.6",
        "    loader /lib64/ld-linux-x86-64.so.2: not in the image",
        '    the engine reports this as "no such file or directory" for ./hello, although /hello exists',
        "  then: libc.so.6, needed by /hello, is not in the image",
        "    looked in default /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
        LOADER_HINT,
    ]


def test_assert_runnable_says_the_same_without_starting_a_container(dynamic_scratch: BuiltImage) -> None:
    started = dynamic_scratch.runs_started
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runnable(dynamic_scratch)
    assert dynamic_scratch.runs_started == started
    assert failure(excinfo) == [
        "dynamic_scratch: runnable: ./hello (/hello) is dynamically linked, and its ELF loader"
        " /lib64/ld-linux-x86-64.so.2 is not in the image",
        '  command: ["./hello"]',
        "  ./hello -> /hello (relative to WORKDIR /)",
        "  /hello: ELF 64-bit amd64 PIE executable, dynamically linked (loader /lib64/ld-linux-x86-64.so.2),"
        " needs libc.so.6",
        "  loader /lib64/ld-linux-x86-64.so.2: not in the image",
        '  the engine reports this as "no such file or directory" for ./hello, although /hello exists',
        "  then: libc.so.6, needed by /hello, is not in the image",
        "    looked in default /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
        LOADER_HINT,
    ]
    [result] = excinfo.value.results
    assert isinstance(result, CheckResult)
    details = result.details
    assert (details["static"], details["loader"]) == (False, "/lib64/ld-linux-x86-64.so.2")
    assert [p["code"] for p in details["problems"]] == ["loader-missing", "library-missing"]


def test_a_static_binary_in_scratch_is_runnable(static: BuiltImage) -> None:
    started = static.runs_started
    result = assert_runnable(static)
    assert static.runs_started == started
    assert result.headline == "static: runnable: /hello is a static amd64 ELF executable"
    assert (result.details["static"], result.details["loader"], result.details["problems"]) == (True, None, [])
    assert assert_runs(static, "hello world").exit_code == 0  # and the engine agrees


BROKEN = {
    "bash_script": [
        "bash_script: runnable: the #! interpreter /bin/bash of /hello.sh is not in the image",
        '  command: ["/hello.sh"]',
        "  /hello.sh: script, #!/bin/bash",
        "  looked for /bin/bash",
        '  the engine reports this as "no such file or directory" for /hello.sh itself',
        "  hint: install /bin/bash in the final image (or use a base that has it), or change the #! line of"
        " /hello.sh to an interpreter the image has",
    ],
    "no_exec_bit": [
        "no_exec_bit: runnable: /hello.sh is not executable (mode 0644, no execute bit)",
        '  command: ["/hello.sh"]',
        "  /hello.sh: mode 0644, no execute bit",
        "  hint: make it executable where it is built: RUN chmod +x /hello.sh in that stage, or"
        " COPY --chmod=755 <source> /hello.sh",
    ],
    "relative_cmd": [
        "relative_cmd: runnable: the program ./hello is not in the image (relative to WORKDIR /app: /app/hello)",
        '  command: ["./hello"]',
        "  looked for /app/hello (./hello relative to WORKDIR /app)",
        "  same name elsewhere in the image: /hello",
        '  hint: use the absolute path the file has, CMD ["/hello"] (a relative program is looked up from'
        " WORKDIR /app), or COPY it to /app/hello",
    ],
    "shell_on_scratch": [
        'shell_on_scratch: runnable: the command is shell form (/bin/sh -c "/hello echo hello") and the image'
        " has no /bin/sh",
        '  command: ["/bin/sh", "-c", "/hello echo hello"]',
        "  /bin/sh: not in the image",
        '  in exec form it would run ["/hello", "echo", "hello"] directly',
        '  hint: use exec form, which needs no shell: CMD ["/hello", "echo", "hello"]',
    ],
}
"""The runnable failure of each broken image, in full."""

ENGINE_SAYS = {
    "bash_script": "exec /hello.sh: no such file or directory",
    "no_exec_bit": 'exec: "/hello.sh": permission denied',
    "relative_cmd": 'exec: "./hello": stat ./hello: no such file or directory',
    "shell_on_scratch": 'exec: "/bin/sh": stat /bin/sh: no such file or directory',
}
"""What the engine says when it runs each one (the runtime's error, or the container's stderr)."""


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_an_image_that_cannot_start_is_found_without_starting_it(name: str, request: pytest.FixtureRequest) -> None:
    """A missing #! interpreter, no execute bit, a relative CMD that WORKDIR does not hold, shell
    form on scratch: each named from the layers alone; then the engine confirms it."""
    image: BuiltImage = request.getfixturevalue(name)
    started = image.runs_started
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runnable(image)
    assert image.runs_started == started
    assert failure(excinfo) == BROKEN[name]
    run = image.run()
    assert run.exit_code != 0
    assert ENGINE_SAYS[name] in (run.start_error or run.stderr)


# ------------------------------------------------------------------------------------------ lint
def test_relative_copy_from_and_untagged_base_are_flagged(relative_copy: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_lint(relative_copy)
    assert failure(excinfo) == [
        "relative_copy: lint: 2 finding(s) (SI001, SI004)",
        f"  {DOCKERFILES}/Dockerfile.lint:8: SI004 the final image is built FROM busybox with no tag, which means"
        " busybox:latest: the same Dockerfile builds on a different base whenever latest moves",
        "    FROM busybox",
        "    fix: FROM busybox:<version> (or pin a digest: busybox@sha256:<digest>)",
        f"  {DOCKERFILES}/Dockerfile.lint:9: SI001 relative source 'greeting.txt' in COPY --from: Docker reads it"
        " from the root of stage 0 (build), not from its WORKDIR /src, so this copies /greeting.txt, not"
        " /src/greeting.txt",
        "    COPY --from=build greeting.txt /greeting.txt",
        "    fix: COPY --from=build /src/greeting.txt /greeting.txt",
        "  hint: apply the fix under each finding; a rule broken on purpose can be ignored by its id (SI001, SI004)",
    ]
    # the engine agrees: the file copied is the build stage's /greeting.txt, not /src/greeting.txt
    assert assert_runs(relative_copy, "from /").stdout == "from /\n"


def test_lint_ignore(relative_copy: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_lint(relative_copy, ignore=["SI004"])
    lines = failure(excinfo)
    assert lines[0] == "relative_copy: lint: 1 finding(s) (SI001)"
    assert not any("SI004" in line for line in lines[1:-1])
    result = assert_no_lint(relative_copy, ignore=["SI001", "SI004"])
    assert result.headline == "relative_copy: lint: no findings (2 rules checked: SI002, SI003; ignored: SI001, SI004)"
    assert result.details["ignored_findings"] == 2


def test_the_articles_multistage_dockerfile_is_linted(multistage: BuiltImage) -> None:
    """``COPY --from=build hello .`` and ``CMD ['./hello']``; its base is tagged, so no SI004."""
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_lint(multistage)
    assert failure(excinfo) == [
        "multistage: lint: 2 finding(s) (SI001, SI003)",
        "  example_project/Dockerfile.multistage:10: SI001 relative source 'hello' in COPY --from: Docker reads it"
        " from the root of stage 0 (build), not from a WORKDIR, so it works only while the file is built in /",
        "    COPY --from=build hello .",
        "    fix: COPY --from=build /hello .",
        "  example_project/Dockerfile.multistage:11: SI003 CMD uses single quotes, which are not JSON, so Docker"
        " does not read it as exec form and runs it with /bin/sh -c; the shell then looks for a program named"
        " '[./hello]'",
        "    CMD ['./hello']",
        '    fix: CMD ["./hello"]',
        "  hint: apply the fix under each finding; a rule broken on purpose can be ignored by its id (SI001, SI003)",
    ]
    assert assert_no_lint(multistage, ignore=("SI001", "SI003")).passed


# ----------------------------------------------------------------------------------------- waste
BIG_WRITTEN = "RUN head -c 50000000 /dev/zero > /big (Dockerfile line 3)"
BIG_DELETED = "RUN rm /big (Dockerfile line 4)"


def test_fifty_mb_written_then_deleted_is_wasted(written_then_deleted: BuiltImage) -> None:
    report = written_then_deleted.waste()
    assert report.wasted_bytes == pytest.approx(50_000_000, rel=0.03)
    assert report.total_bytes == pytest.approx(50_000_000 + 2_000_000, rel=0.03)  # busybox's ~2 MB, then /big
    assert report.efficiency == pytest.approx(1 - report.wasted_bytes / report.total_bytes)
    assert report.efficiency < 0.05
    [big] = report.items
    assert (big.path, big.wasted, big.copies, big.ended, big.present) == ("/big", 50_000_000, 1, "deleted", False)
    efficiency = (
        f"  efficiency: {report.efficiency * 100:.1f}% ({format_size(report.final_bytes)} of the"
        f" {format_size(report.total_bytes)} written to layers reaches the final filesystem)"
    )

    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_max_waste(written_then_deleted, "10MB")
    assert failure(excinfo) == [
        f"written_then_deleted: max_waste: 50MB wasted ({report.wasted_bytes / report.total_bytes * 100:.1f}% of"
        f" {format_size(report.total_bytes)}), over the limit of 10MB",
        "  top wasted paths:",
        f"      50MB  /big  written by {BIG_WRITTEN}, deleted by {BIG_DELETED}",
        "  wasted, by the instruction that wrote it:",
        "      50MB  RUN head -c 50000000 /dev/zero > /big  (Dockerfile line 3; 50MB written)",
        efficiency,
        "  hint: delete temporary files in the same RUN that creates them (a later RUN rm hides them but their"
        " layer still ships them), or build in a separate stage and COPY --from only the result",
    ]

    passed = assert_max_waste(written_then_deleted, "60MB")
    assert passed.headline == (
        f"written_then_deleted: max_waste: 50MB wasted, efficiency {report.efficiency * 100:.1f}%,"
        " within the limit of 60MB"
    )
    assert (passed.details["wasted"], passed.details["limit"]) == (50_000_000, 60_000_000)


def test_the_size_failure_names_the_run_that_wasted_it(written_then_deleted: BuiltImage) -> None:
    """The largest layers, then the waste: which RUN wrote the bytes and which one deleted them.

    max_size alone does not read the layers; the waste lines come once they are indexed (by
    ``waste()`` here, by any filesystem check otherwise)."""
    assert written_then_deleted.size > 10_000_000
    written_then_deleted.waste()
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_max_size(written_then_deleted, "10MB")
    lines = failure(excinfo)
    assert lines[0].startswith("written_then_deleted: max_size: 52MB (")
    assert lines[1:3] == [
        "  largest layers:",
        "      50MB  RUN head -c 50000000 /dev/zero > /big  (Dockerfile line 3)",
    ]
    waste = lines.index("  top wasted paths:")
    assert lines[waste + 1] == f"      50MB  /big  written by {BIG_WRITTEN}, deleted by {BIG_DELETED}"
    assert any(line.startswith("  efficiency: 3.") for line in lines[waste:])
    assert lines[-1].startswith("  hint: shrink the largest layers above")


def test_a_file_written_in_three_layers_wastes_two_copies(overwritten: BuiltImage) -> None:
    """100 kB, 200 kB, then 300 kB at /data: the first two copies (300 kB) are wasted, the last is the file."""
    report = overwritten.waste()
    [data] = report.items
    assert (data.path, data.copies, data.wasted, data.ended, data.present) == (
        "/data", 3, 300_000, "overwritten", True
    )  # fmt: skip
    assert len(data.written_in) == 3 and data.wasted_in == data.written_in[:2]
    assert report.wasted_bytes == 300_000
    assert [la.wasted for la in report.layers if la.added] == [0, 100_000, 200_000, 0]  # busybox, then the three
    assert assert_max_waste(overwritten, 300_000).passed
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_max_waste(overwritten, 299_999)
    lines = failure(excinfo)
    assert lines[2] == (
        "     300kB  /data  written by RUN head -c 100000 /dev/zero > /data (Dockerfile line 3),"
        " RUN head -c 200000 /dev/zero > /data (Dockerfile line 4), overwritten by"
        " RUN head -c 300000 /dev/zero > /data (Dockerfile line 5)  (2 of 3 copies wasted)"
    )
    assert lines[3:6] == [
        "  wasted, by the instruction that wrote it:",
        "     200kB  RUN head -c 200000 /dev/zero > /data  (Dockerfile line 4; 200kB written)",
        "     100kB  RUN head -c 100000 /dev/zero > /data  (Dockerfile line 3; 100kB written)",
    ]


# ------------------------------------------------------------------------- marker and declarative
ALL_THREE = str(ANALYSIS / "Dockerfile.allthree")

MARKER_TESTS = f"""
import pytest

from pytest_slimimage import image_fixture

allthree = image_fixture({str(ANALYSIS)!r}, dockerfile="Dockerfile.allthree")


@pytest.mark.slimimage(runnable=True, lint=True, max_waste="5MB")
def test_marker(allthree):
    pass
"""

DECLARED = f"""
[tool.pytest.ini_options]
addopts = "--strict-markers"

[tool.slimimage.images.x]
context = {str(ANALYSIS)!r}
dockerfile = "Dockerfile.allthree"
lint = ["SI004"]
runnable = true
max_waste = "10MB"
"""


def test_marker_and_declarative_forms(pytester: pytest.Pytester) -> None:
    """One session: the marker asks for all three on the image and reports the three failures
    together; the pyproject table asks differently (SI004 ignored, a 10 MB budget), one item per
    check, on the same build."""
    pytester.makepyfile(test_inner=MARKER_TESTS)
    pytester.makefile(".toml", pyproject=DECLARED)
    result = pytester.runpytest_subprocess("--slimimage-require-engine", "-p", "no:cacheprovider", "-rA")
    assert outcomes(result) == {
        ("FAILED", "test_inner.py::test_marker"),
        ("PASSED", "pyproject.toml::x::lint"),
        ("FAILED", "pyproject.toml::x::runnable"),
        ("PASSED", "pyproject.toml::x::max_waste"),
    }, result.stdout.str()

    text = plain_error(block(result, "test_marker"), "test_inner.py", "MarkerCheckFailed")
    marker = text.splitlines()
    assert marker[0] == "allthree: 3 of 3 checks failed (lint, runnable, max_waste)"
    for headline in (
        "allthree: lint: 1 finding(s) (SI004)",
        "allthree: runnable: the #! interpreter /bin/bash of /hello.sh is not in the image",
        "allthree: max_waste: 6MB wasted (75.2% of 7.98MB), over the limit of 5MB",
    ):
        assert headline in marker, text
    assert f"  {ALL_THREE}:3: SI004 the final image is built FROM busybox with no tag, which means" in text
    assert (  # both RUN lines, the long one cut to 60 characters
        "       6MB  /download.bin  written by RUN head -c 6000000 /dev/zero > /download.bin (Dockerfile line 4),"
        " deleted by RUN rm /download.bin && printf '#!/bin/bash\\necho hello\\n... (Dockerfile line 5)"
    ) in marker, text

    declared = plain_error(block(result, "x::runnable"), "pyproject.toml", "DeclaredCheckFailed").splitlines()
    assert declared[0] == "x: runnable: the #! interpreter /bin/bash of /hello.sh is not in the image"
    assert cache_masked(result)[0].startswith("slimimage: 1 image(s) built or reused, ")


# --------------------------------------------------------------------- compilers by content, warm
RENAMED_GCC_TESTS = f"""
import json
import pathlib

import docker
import pytest

from pytest_slimimage import image_fixture

renamed_gcc = image_fixture({str(ANALYSIS)!r}, dockerfile="Dockerfile.renamedgcc")


@pytest.mark.slimimage(no_compilers=True)
def test_no_compilers(renamed_gcc):
    client = docker.from_env()
    layers = client.images.get(renamed_gcc.id).attrs["RootFS"]["Layers"]
    client.close()
    pathlib.Path("layers.json").write_text(json.dumps(layers))
"""


def cached_layers(folder: Path) -> dict[str, tuple[int, int, int]]:
    """The cache files: name -> (inode, mtime in ns, size)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}


def test_a_renamed_gcc_driver_fails_the_marker_and_a_second_session_reads_the_cache(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/usr/local/bin/notacompiler`` is GCC's driver: the marker's no_compilers finds it by its
    content. The layers are read from the image export (forced) into the project's cache, one file
    per layer digest; a second session finds every layer there, so it writes none of them again."""
    monkeypatch.setenv("SLIMIMAGE_LAYER_SOURCE", "export")
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_inner=RENAMED_GCC_TESTS)
    folder = pytester.path / ".pytest_cache" / "d" / "slimimage-layers" / CACHE_FORMAT
    runs = []
    for _ in range(2):
        result = pytester.runpytest_subprocess("--slimimage-require-engine", "-rA")
        result.assert_outcomes(failed=1)
        message = plain_error(block(result, "test_no_compilers"), "test_inner.py", "MarkerCheckFailed")
        layers = json.loads((pytester.path / "layers.json").read_text())
        runs.append((message, layers, cached_layers(folder)))
    (message, layers, cold), (warm_message, warm_layers, warm) = runs

    lines = message.splitlines()
    assert lines[0] == "renamed_gcc: no_compilers: found 1 toolchain file(s) and 0 package(s) (gcc-driver)"
    assert "  /usr/local/bin/notacompiler (gcc-driver by content)" in lines
    assert warm_message == message
    assert warm_layers == layers and len(layers) == 3  # busybox's two, then the COPY
    assert sorted(cold) == sorted(f"{digest.removeprefix('sha256:')}.json.gz" for digest in layers)
    # A layer missing from the cache would have been read from the export and written back (a new
    # file: another inode and mtime). The same files, untouched: the second session exported nothing.
    assert warm == cold
