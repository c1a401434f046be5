"""What a session leaves behind: a whole pytest session runs containers (three time out, two never
start, a test fails), or is interrupted mid-run, and afterwards none of its containers and none of
its temporary folders exist, while its images stay as the build cache, exactly as their
Dockerfiles build them (no label), each tagged ``pytest-slimimage/<fixture>:<key>``; the next
session finds them and makes no build call at all. Each inner session is a subprocess with its own
token, so what it made is known exactly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from tests.integration.conftest import (
    EXAMPLE,
    LABEL_SESSION,
    STATIC_C_CONTEXT,
    TAG,
    cache_tags,
    clean_env,
    drop_cache,
    session_leftovers,
)

SLEEPER_DOCKERFILE = 'FROM busybox:latest\nCMD ["sleep", "30"]\n'

COUNT_BUILDS = """
import pathlib

from pytest_slimimage.engine.builds import ImageBuilder

real_build = ImageBuilder._build


def counted(self, request, dockerfile, tag, name):
    with pathlib.Path("build-calls.txt").open("a") as calls:
        calls.write(f"{name}\\n")
    return real_build(self, request, dockerfile, tag, name)


ImageBuilder._build = counted  # a subprocess of its own: nothing to restore
"""
"""A conftest that writes down every call of the builder (one line per image built)."""

INNER_TESTS = f"""
import json
import pathlib

import pytest

from pytest_slimimage import ImageCheckFailed, assert_runs, image_fixture

sleeper = image_fixture("sleeper")
dynamic = image_fixture({str(EXAMPLE)!r}, dockerfile="Dockerfile.scratch")
no_cmd = image_fixture({str(STATIC_C_CONTEXT)!r}, dockerfile="Dockerfile.nocmd")


def test_record(sleeper, dynamic, no_cmd):
    images = (sleeper, dynamic, no_cmd)
    made = {{"tags": [image.tag for image in images], "ids": [image.id for image in images], "token": sleeper.session}}
    pathlib.Path("made.json").write_text(json.dumps(made))


def test_times_out(sleeper):
    with pytest.raises(ImageCheckFailed, match=r"timed out after 1s \\(killed\\)"):
        assert_runs(sleeper, timeout=1)


def test_times_out_after_the_session_default(sleeper):  # --slimimage-run-timeout=2
    with pytest.raises(ImageCheckFailed, match=r"timed out after 2s \\(killed\\)"):
        assert_runs(sleeper)


def test_start_fails(sleeper):
    assert "executable file not found" in sleeper.run(["no-such-program"]).start_error


def test_no_command(no_cmd):
    assert no_cmd.run().start_error == "No command specified"


def test_dynamic_binary(dynamic):
    assert dynamic.run().exit_code == 1


def test_fails_on_purpose(sleeper):
    assert_runs(sleeper, args=["false"])


@pytest.mark.slimimage(runs={{"args": ["sleep", "30"], "timeout": 1}})
def test_marker_times_out(sleeper):
    pass
"""


@pytest.fixture
def inner_project(pytester: pytest.Pytester) -> Path:
    """A project of its own: an ini (so it is its own rootdir) and a ``sleeper`` context whose
    content is new (so its first session builds it)."""
    pytester.makeini("[pytest]\n")
    context = pytester.mkdir("sleeper")
    (context / "Dockerfile").write_text(SLEEPER_DOCKERFILE + f"ENV NONCE={uuid.uuid4().hex}\n")
    return pytester.path


def remove_session(client: docker.DockerClient, token: str) -> None:
    """Best effort, only after a failed test: remove the containers the inner session ``token`` left."""
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={token}"}):
        container.remove(force=True, v=True)


SUMMARY = re.compile(
    r"^slimimage: (?P<built>\d+) image build\(s\), (?P<reused>\d+) reused, 4 check\(s\) \(4 failed\);"
    r" 3 image tag\(s\) cached, \d+ older pruned, 0 leftover container\(s\) removed$"
)


@pytest.fixture
def tokens(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Inner session tokens; if a test fails and leaves something of theirs, remove it."""
    found: list[str] = []
    yield found
    for token in found:
        if session_leftovers(docker_client, token):
            remove_session(docker_client, token)


def test_a_session_removes_its_containers_and_keeps_its_images_for_the_next(
    pytester: pytest.Pytester, inner_project: Path, docker_client: docker.DockerClient, tokens: list[str]
) -> None:
    pytester.makepyfile(test_inner=INNER_TESTS)
    pytester.makeconftest(COUNT_BUILDS)
    made_by: list[dict[str, Any]] = []
    counts: list[tuple[int, int]] = []
    for _ in range(2):
        calls = inner_project / "build-calls.txt"
        calls.write_text("")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf", "--slimimage-run-timeout=2")
        made = json.loads((inner_project / "made.json").read_text())
        tokens.append(made["token"])
        result.assert_outcomes(passed=6, failed=2)
        result.stdout.fnmatch_lines(
            [
                "E   sleeper: runs: timed out after 1s (killed)",
                "FAILED test_inner.py::test_fails_on_purpose - *",
                "FAILED test_inner.py::test_marker_times_out - *",
            ]
        )
        line = next(line for line in result.outlines if re.match(r"slimimage: \d+ image build", line))
        summary = SUMMARY.match(line)
        assert summary is not None, line
        made_by.append(made)
        counts.append((int(summary["built"]), int(summary["reused"])))
        # the summary counts the builder's calls
        assert len(calls.read_text().split()) == counts[-1][0], (calls.read_text(), line)

        # nothing of the session is left but its images: no container, no temporary folder
        token = made["token"]
        assert session_leftovers(docker_client, token) == []
        assert docker_client.containers.list(all=True, filters={"name": f"slimimage-{token}"}) == []
        assert not (Path(tempfile.gettempdir()) / f"pytest-slimimage-{token}").exists()
        # its images stay, each tagged as its fixture's build, exactly as the Dockerfile builds it
        for tag, image_id in zip(made["tags"], made["ids"], strict=True):
            assert TAG.match(tag), tag
            image = docker_client.images.get(tag)
            assert image.id == image_id
            assert LABEL_SESSION not in (image.labels or {})

    (first_built, first_reused), second = counts
    assert first_built >= 1  # the sleeper's content is new
    assert first_built + first_reused == 3
    # the second session finds all three by their keys: the same images, and not one build call
    assert second == (0, 3)
    assert (made_by[1]["tags"], made_by[1]["ids"]) == (made_by[0]["tags"], made_by[0]["ids"])
    assert made_by[0]["token"] != made_by[1]["token"]
    assert made_by[0]["tags"][0] in cache_tags(docker_client, "sleeper")
    # noprune: the base image and the build cache of other images are still there
    docker_client.images.get("busybox:latest")
    docker_client.images.get("gcc:latest")


def test_an_interrupted_session_removes_its_running_container(
    inner_project: Path, docker_client: docker.DockerClient, tokens: list[str], request: pytest.FixtureRequest
) -> None:
    """Ctrl-C while a container runs: the run's own clean-up removes it, the session removes its tag."""
    fixture = f"sleeper_{uuid.uuid4().hex[:8]}"  # its containers are named slimimage-<token>-<fixture>-<random>
    request.addfinalizer(lambda: drop_cache(docker_client, fixture))
    (inner_project / "test_interrupted.py").write_text(
        "from pytest_slimimage import image_fixture\n\n"
        f'{fixture} = image_fixture("sleeper")\n\n\n'
        f"def test_sleeps({fixture}):\n"
        f"    {fixture}.run(timeout=120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_interrupted.py"],
        cwd=inner_project,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        running: list[Container] = []
        deadline = time.monotonic() + 60
        while not running and proc.poll() is None and time.monotonic() < deadline:
            running = docker_client.containers.list(filters={"name": fixture, "status": "running"})
            time.sleep(0.2)
        assert running, "the inner session never started its container"
        tokens.append(running[0].labels[LABEL_SESSION])
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert re.search(
        r"^slimimage: [01] image build\(s\), [01] reused, 0 check\(s\) \(0 failed\); 1 image tag\(s\) cached, ",
        output,
        re.M,
    ), output
    assert session_leftovers(docker_client, tokens[0]) == []
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(str(running[0].id))
    # the image stays as the fixture's build cache (this test's fixture name is its own: drop it)
    assert len(cache_tags(docker_client, fixture)) == 1
