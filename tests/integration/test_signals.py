"""``SIGTERM`` and ``SIGHUP`` end a session as ``Ctrl-C`` does: whatever is running is stopped and
removed -- a container being run, an archived image loaded for runs, a build (BuildKit's docker
client, or the legacy builder's step container), the session's temporary folder -- the session
says what it stopped, and the process exits with ``128 + the signal's number``. Under xdist the
controller and each worker clean up what they own.

Each inner session is a subprocess on the main engine, with a ``TMPDIR`` of its own (its
temporary folder is looked at there); each step or run that is interrupted runs a ``sleep`` of a
duration of its own, which is how the test knows it is running.
"""

from __future__ import annotations

import io
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.integration.conftest import cache_tags, clean_env, drop_cache, session_leftovers
from tests.integration.private_engine import processes_running

SAFETY_NET = 180
"""Seconds an inner session may take after the signal before this test fails it as hung."""


@dataclass
class Inner:
    path: Path
    tmp: Path
    fixture: str
    """The image fixture's name (its cache repository is this test's own)."""
    sleep: str
    """What the interrupted step or run runs: ``sleep <a duration of its own>``."""

    def run_until_signalled(self, signum: int, *args: str, group: bool = False) -> tuple[int, str]:
        env = clean_env()
        env.pop("CI", None)
        env["TMPDIR"] = str(self.tmp)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-rA", *args],
            cwd=self.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a process group of its own: a CI system signals the group
        )
        try:
            deadline = time.monotonic() + 120
            while not processes_running(self.sleep):
                assert proc.poll() is None, f"the inner session ended before its step ran:\n{proc.communicate()[0]}"
                assert time.monotonic() < deadline, "the step never ran"
                time.sleep(0.1)
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)
            output, _ = proc.communicate(timeout=SAFETY_NET)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        return proc.returncode, output

    def folders(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir() if p.name.startswith(("pytest-slimimage-", "slimimage-")))


@pytest.fixture
def inner(pytester: pytest.Pytester, docker_client: docker.DockerClient) -> Iterator[Inner]:
    pytester.makeini("[pytest]\n")
    fixture = f"signalled_{uuid.uuid4().hex[:8]}"
    yield Inner(pytester.path, pytester.mkdir("tmp"), fixture, f"sleep {random.randint(100_000, 999_999)}")
    drop_cache(docker_client, fixture)


def token_from(output: str, fixture: str) -> str:
    found = re.search(rf"slimimage-([0-9a-f]{{10}})-{fixture}-", output) or re.search(
        r"pytest-slimimage-([0-9a-f]{10})\b", output
    )
    assert found is not None, output
    return found[1]


def stopped_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("slimimage: stopped by ")]
    assert len(lines) == 1, output
    return lines[0]


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll ``condition`` (the engine cancels a build whose client or connection went away)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def archive_of(client: docker.DockerClient, path: Path) -> str:
    """A ``docker save`` tarball of a new image at ``path``, which the engine then no longer has
    (so a run loads it); its id."""
    dockerfile = f'FROM busybox:latest\nLABEL nonce={uuid.uuid4().hex}\nCMD ["echo", "from the archive"]\n'
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
    with path.open("wb") as out:
        for chunk in image.save():
            out.write(chunk)
    client.images.remove(str(image.id), noprune=True)
    return str(image.id)


@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, pytest.ExitCode.INTERRUPTED, "an interrupt")],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_mid_run_removes_the_container_the_loaded_archive_and_the_folder(
    inner: Inner, docker_client: docker.DockerClient, signum: int, status: int, said: str
) -> None:
    """``SIGTERM`` as ``Ctrl-C`` (``SIGINT``, pytest's own ``KeyboardInterrupt``) always did."""
    image_id = archive_of(docker_client, inner.path / "app.tar")
    (inner.path / "sleeper").mkdir()
    duration = inner.sleep.split()[1]
    (inner.path / "sleeper" / "Dockerfile").write_text(f'FROM busybox:latest\nCMD ["sleep", "{duration}"]\n')
    (inner.path / "test_inner.py").write_text(
        "from pytest_slimimage import archive_fixture, image_fixture\n\n"
        'app = archive_fixture("app.tar")\n'
        f'{inner.fixture} = image_fixture("sleeper")\n\n\n'
        "def test_archive(app):\n"
        '    assert app.run().stdout == "from the archive\\n"\n\n\n'
        f"def test_sleeps({inner.fixture}):\n"
        f"    {inner.fixture}.run(timeout=120)\n\n\n"
        "def test_never_runs():\n"
        "    pass\n"
    )
    code, output = inner.run_until_signalled(signum)
    assert code == status, output
    token = token_from(output, inner.fixture)
    loaded = f"pytest-slimimage-archive/app:{token}-{image_id.split(':')[1][:12]}"
    container = re.search(rf"slimimage-{token}-{inner.fixture}-[0-9a-f]{{8}}", output)
    assert container is not None, output
    assert stopped_line(output) == (
        f"slimimage: stopped by {said} (exit status {int(status)}): removed the running container {container[0]},"
        f" the loaded archive image {loaded} and the temporary folder {inner.tmp / f'pytest-slimimage-{token}'}"
    )
    if signum == signal.SIGTERM:
        assert "SessionSignalled: SIGTERM: the session stops, removing what it made" in output
    assert re.search(r"^PASSED test_inner\.py::test_archive$", output, re.M), output
    assert "test_never_runs" not in output  # the session stopped, as on Ctrl-C
    assert session_leftovers(docker_client, token) == []
    assert docker_client.api.images(name=loaded) == []
    assert inner.folders() == []
    assert not processes_running(inner.sleep)


def test_sighup_mid_build_stops_the_docker_client(inner: Inner, docker_client: docker.DockerClient) -> None:
    """BuildKit (``auto`` here): the docker client is stopped, which cancels the build."""
    (inner.path / "slow").mkdir()
    (inner.path / "slow" / "Dockerfile").write_text(f"FROM busybox:latest\nRUN {inner.sleep}\n")
    (inner.path / "test_inner.py").write_text(
        f'from pytest_slimimage import image_fixture\n\n{inner.fixture} = image_fixture("slow")\n\n\n'
        f"def test_slow({inner.fixture}):\n    pass\n"
    )
    code, output = inner.run_until_signalled(signal.SIGHUP)
    assert code == 128 + signal.SIGHUP, output
    token = token_from(output, inner.fixture)
    assert stopped_line(output) == (
        "slimimage: stopped by SIGHUP (exit status 129): stopped the build of"
        f" {inner.fixture} (slow/Dockerfile); removed the temporary folder {inner.tmp / f'pytest-slimimage-{token}'}"
    )
    assert not processes_running(str(inner.path / "slow"))  # the docker client
    wait_for(lambda: not processes_running(inner.sleep), "the build's step still runs")
    assert cache_tags(docker_client, inner.fixture) == set()
    assert session_leftovers(docker_client, token) == []
    assert inner.folders() == []


def test_sigterm_mid_legacy_build_removes_the_step_container(inner: Inner, docker_client: docker.DockerClient) -> None:
    (inner.path / "slow").mkdir()
    (inner.path / "slow" / "Dockerfile").write_text(f"FROM busybox:latest\nRUN {inner.sleep}\n")
    (inner.path / "test_inner.py").write_text(
        f'from pytest_slimimage import image_fixture\n\n{inner.fixture} = image_fixture("slow")\n\n\n'
        f"def test_slow({inner.fixture}):\n    pass\n"
    )
    code, output = inner.run_until_signalled(signal.SIGTERM, "--slimimage-builder=legacy")
    assert code == 128 + signal.SIGTERM, output
    assert f"stopped the build of {inner.fixture} (slow/Dockerfile)" in stopped_line(output)

    def steps() -> list[str]:
        found = docker_client.api.containers(all=True)
        return [c["Id"] for c in found if inner.sleep.split()[1] in str(c.get("Command"))]

    wait_for(lambda: steps() == [], "the legacy build's step container is still there")
    wait_for(lambda: not processes_running(inner.sleep), "the build's step still runs")
    assert cache_tags(docker_client, inner.fixture) == set()
    assert inner.folders() == []


def test_sigterm_to_an_xdist_run_cleans_up_every_process(inner: Inner, docker_client: docker.DockerClient) -> None:
    """A CI system signals the whole process group: each worker removes the container it runs,
    the controller the run's folder, and says it was stopped."""
    (inner.path / "sleeper").mkdir()
    duration = inner.sleep.split()[1]
    (inner.path / "sleeper" / "Dockerfile").write_text(f'FROM busybox:latest\nCMD ["sleep", "{duration}"]\n')
    (inner.path / "test_inner.py").write_text(
        "import pytest\nfrom pytest_slimimage import image_fixture\n\n"
        f'{inner.fixture} = image_fixture("sleeper")\n\n\n'
        '@pytest.mark.parametrize("n", [1, 2])\n'
        f"def test_sleeps({inner.fixture}, n):\n"
        f"    {inner.fixture}.run(timeout=120)\n"
    )
    code, output = inner.run_until_signalled(signal.SIGTERM, "-n", "2", group=True)
    assert code == 128 + signal.SIGTERM, output
    line = stopped_line(output)
    assert line.startswith("slimimage: stopped by SIGTERM (exit status 143): removed the temporary folder "), line
    token = re.search(r"pytest-slimimage-([0-9a-f]{10})", line)
    assert token is not None, line
    wait_for(lambda: session_leftovers(docker_client, token[1]) == [], "a worker's container is still there", 30)
    assert inner.folders() == []
    assert not processes_running(inner.sleep)
