"""What a build's input can do to a session, under both builders, on the real engine: a build over
``--slimimage-build-timeout`` (busy or silent) is cancelled on the engine and is one clear error,
with nothing of it left running; a file name that is not UTF-8 builds and is in the image; a large
context is streamed (never written to disk: tests/unit/test_context.py) and warned about once,
unless ``.dockerignore`` keeps the bulk out.

Leftovers are looked for by a nonce in the steps' commands: in every container the engine has
(``docker ps -a``), and, the engine being on this machine, in every process here (BuildKit's step
processes are not containers the engine lists).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from pytest_slimimage import BuiltImage, SlimImageWarning
from pytest_slimimage.glue.fixtures import BuildFactory
from tests.integration.conftest import drop_cache

LIMIT = 3
BUSY = "RUN i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.5; done # {nonce}\n"
"""Prints every 0.5 s for 20 s: never idle for long."""
SILENT = "RUN sleep 20 # {nonce}\n"
"""Prints nothing for 20 s."""

INNER = """
from pytest_slimimage import image_fixture

slow = image_fixture("ctx", builder="{builder}")


def test_slow(slow):
    pass
"""


def eventually(condition: Callable[[], list[str]], wait: float = 60.0) -> list[str]:
    """``condition()`` once it is empty, or what it still returns after ``wait`` seconds (the
    engine ends a cancelled build's step on its own time: a bound, not a measurement)."""
    until = time.monotonic() + wait
    while True:
        found = condition()
        if not found or time.monotonic() > until:
            return found
        time.sleep(0.5)


def containers_with(client: docker.DockerClient, nonce: str) -> list[str]:
    """Containers, in any state, whose command holds ``nonce``."""
    found = client.api.containers(all=True, trunc=False)
    return [f"{c['Id'][:12]} {c['Status']}: {c['Command']}" for c in found if nonce in str(c.get("Command", ""))]


def processes_with(nonce: str) -> list[str]:
    """Processes on this machine whose command line holds ``nonce`` (none when the engine is
    elsewhere: then only the engine's own container list tells)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if nonce.encode() in cmdline:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid}: {shown}")
    return found


@pytest.mark.parametrize("step", [BUSY, SILENT], ids=["busy", "silent"])
@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
def test_a_build_over_its_time_limit_is_cancelled_and_says_so(
    pytester: pytest.Pytester, docker_client: docker.DockerClient, builder: str, step: str
) -> None:
    nonce = uuid.uuid4().hex
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_inner=INNER.format(builder=builder))
    (pytester.path / "ctx").mkdir()
    (pytester.path / "ctx" / "Dockerfile").write_text("FROM busybox:latest\n" + step.format(nonce=nonce))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", f"--slimimage-build-timeout={LIMIT}", timeout=300
    )
    result.assert_outcomes(errors=1)
    out = result.outlines
    how = {
        "legacy": "its connection to the engine was closed, which cancels it there",
        "buildkit": "the docker client was stopped, which cancels it on the engine",
    }[builder]
    headline = f"building ctx/Dockerfile failed: the build exceeded {LIMIT} s ({how})"
    assert any(line.endswith(headline) for line in out), "\n".join(out)
    at = [line for line in out if "  stopped at step: " in line]
    assert at and nonce in at[0] and "RUN " in at[0], "\n".join(out)
    assert any("hint: a build may take 3 s (--slimimage-build-timeout" in line for line in out)
    text = result.stdout.str() + result.stderr.str()
    for raw in ("Traceback", "urllib3", "ReadTimeout", "requests.exceptions", "Read timed out"):
        assert raw not in text, text
    assert eventually(lambda: containers_with(docker_client, nonce)) == []
    assert eventually(lambda: processes_with(nonce)) == []


# ------------------------------------------------------------------------------- unusual file names
@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
def test_a_file_name_that_is_not_utf8_builds(
    slimimage_build: BuildFactory,
    tmp_path: Path,
    builder: str,
    docker_client: docker.DockerClient,
    request: pytest.FixtureRequest,
) -> None:
    """``b"caf\\xe9.txt"`` is a legal Linux name: it keys, is sent, and is in the image as those bytes."""
    (tmp_path / "Dockerfile").write_text(f"FROM busybox:latest\nENV NONCE={uuid.uuid4().hex}\nCOPY . /ctx\n")
    Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.txt")).write_bytes(b"latin-1\n")
    name = f"latin1_{builder}"
    request.addfinalizer(lambda: drop_cache(docker_client, name))
    image: BuiltImage = slimimage_build(tmp_path, builder=builder, name=name)
    assert image.builder == builder
    entry = image.filesystem.get("/ctx/caf\udce9.txt")  # the name's bytes, as Python spells them
    assert entry is not None and entry.kind == "file" and entry.size == len(b"latin-1\n")


# ------------------------------------------------------------------------------------ a large context
def large_context(root: Path, *, ignore: str | None = None) -> Path:
    """A context with a sparse 120 MB file (no real disk) the Dockerfile does not copy."""
    root.mkdir()
    (root / "Dockerfile").write_text(f'FROM busybox:latest\nENV NONCE={uuid.uuid4().hex}\nCMD ["true"]\n')
    with (root / "big.bin").open("wb") as fh:
        fh.truncate(120_000_000)
    (root / "notes.txt").write_text("a few bytes\n")
    if ignore is not None:
        (root / ".dockerignore").write_text(ignore)
    return root


def slim_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, SlimImageWarning)]


def test_a_large_context_is_sent_with_one_warning_naming_its_largest_files(
    slimimage_build: BuildFactory, tmp_path: Path, docker_client: docker.DockerClient, request: pytest.FixtureRequest
) -> None:
    context = large_context(tmp_path / "large")
    request.addfinalizer(lambda: drop_cache(docker_client, "large_context"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        image = slimimage_build(context, builder="legacy", name="large_context")  # the builder that is sent it all
        again = slimimage_build(context, builder="legacy", name="large_context")
    assert again is image
    found = slim_warnings(record)
    assert len(found) == 1, found  # once per context
    dockerfile_size = (context / "Dockerfile").stat().st_size
    assert found[0].splitlines() == [
        f"build context {context} is 120MB after .dockerignore (over 100MB): every build sends all of it to the"
        " engine, and every session reads all of it for the image's key",
        f"  largest files: big.bin (120MB), Dockerfile ({dockerfile_size}B), notes.txt (12B)",
        f"  hint: list what the image does not need in {context}/.dockerignore (there is none yet)",
    ]
    assert image.config.cmd == ("true",)


def test_a_context_whose_bulk_dockerignore_keeps_out_gives_no_warning(
    slimimage_build: BuildFactory, tmp_path: Path, docker_client: docker.DockerClient, request: pytest.FixtureRequest
) -> None:
    context = large_context(tmp_path / "ignored", ignore="big.bin\n")
    request.addfinalizer(lambda: drop_cache(docker_client, "large_ignored"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        image = slimimage_build(context, builder="legacy", name="large_ignored")
    assert slim_warnings(record) == []
    assert image.config.cmd == ("true",)
