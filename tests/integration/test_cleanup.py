"""Nothing left behind: a whole pytest session runs containers (three time out, two never start, a
test fails), or is interrupted mid-run, and afterwards neither its containers nor its image tags
exist. Each inner session is a subprocess with its own token, so what it made is known exactly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from tests.integration.conftest import (
    EXAMPLE,
    LABEL_SESSION,
    STATIC_C_CONTEXT,
    TAG,
    clean_env,
    session_leftovers,
)

SLEEPER_DOCKERFILE = 'FROM busybox:latest\nCMD ["sleep", "30"]\n'

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
    made = {{"tags": [tag for image in images for tag in image.tags], "ids": [image.id for image in images]}}
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
    """A project of its own: an ini (so it is its own rootdir) and a ``sleeper`` context."""
    pytester.makeini("[pytest]\n")
    context = pytester.mkdir("sleeper")
    (context / "Dockerfile").write_text(SLEEPER_DOCKERFILE)
    return pytester.path


def remove_session(client: docker.DockerClient, token: str) -> None:
    """Best effort, only after a failed test: remove what the inner session ``token`` left."""
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={token}"}):
        container.remove(force=True, v=True)
    for image in client.images.list(filters={"label": f"{LABEL_SESSION}={token}"}):
        for tag in image.tags:
            client.images.remove(tag, noprune=True)


@pytest.fixture
def tokens(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Inner session tokens; if a test fails and leaves something of theirs, remove it."""
    found: list[str] = []
    yield found
    for token in found:
        if session_leftovers(docker_client, token):
            remove_session(docker_client, token)


def test_a_session_removes_its_containers_and_tags(
    pytester: pytest.Pytester, inner_project: Path, docker_client: docker.DockerClient, tokens: list[str]
) -> None:
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf", "--slimimage-run-timeout=2")
    made = json.loads((inner_project / "made.json").read_text())
    matches = [TAG.match(tag) for tag in made["tags"]]
    assert all(matches), made
    session_tokens = {match.group("token") for match in matches if match}
    assert len(session_tokens) == 1
    tokens.extend(session_tokens)
    token = tokens[0]

    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(
        [
            "E   sleeper: runs: timed out after 1s (killed)",
            "slimimage: 3 image build(s), 4 check(s) (4 failed); removed 3 image tag(s) and 0 leftover container(s)",
            "FAILED test_inner.py::test_fails_on_purpose - *",
            "FAILED test_inner.py::test_marker_times_out - *",
        ]
    )
    assert session_leftovers(docker_client, token) == []
    assert docker_client.containers.list(all=True, filters={"name": f"slimimage-{token}"}) == []
    for image_id in made["ids"]:
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(image_id)
    # noprune: the base image and the build cache of other images are still there
    docker_client.images.get("busybox:latest")
    docker_client.images.get("gcc:latest")


def test_an_interrupted_session_removes_its_running_container(
    inner_project: Path, docker_client: docker.DockerClient, tokens: list[str]
) -> None:
    """Ctrl-C while a container runs: the run's own clean-up removes it, the session removes its tag."""
    fixture = f"sleeper_{uuid.uuid4().hex[:8]}"  # its containers are named slimimage-<token>-<fixture>-<random>
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
    assert "slimimage: 1 image build(s), 0 check(s) (0 failed); removed 1 image tag(s)" in output
    assert session_leftovers(docker_client, tokens[0]) == []
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(str(running[0].id))
