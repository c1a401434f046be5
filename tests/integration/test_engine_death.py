"""An engine that dies or freezes under a session: killed (``SIGKILL``) mid-build and mid-run,
stopped (``SIGTERM``) mid-build, frozen (``SIGSTOP``) mid-run and mid-build. Each is one
``EngineLost`` error naming the engine, the image and what was being done, within a bounded time
(the subprocess timeouts here are only a safety net: a hang would hit them), the session's
later tests that need the engine get the same error at once, and the others still report. Once
the engine is back, the next session's reaper removes what the first one could not, and nothing
of that session remains.

Never the session's main engine: a second, private dockerd (:mod:`.private_engine`), started by
the first test that needs it and removed at the end, whatever happened. Inner sessions are
subprocesses with ``DOCKER_HOST`` pointing at it; each test's images are new (a nonce), and each
step that is interrupted runs a ``sleep`` of a duration of its own, which is how the test knows
the step is running.
"""

from __future__ import annotations

import json
import random
import re
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

from tests.integration.conftest import clean_env, session_leftovers
from tests.integration.private_engine import PrivateEngine, processes_running

RUN_TIMEOUT = 3
"""The run timeout of the inner runs a frozen engine stops answering."""
BUILD_TIMEOUT = 5
"""The build limit of the inner builds a frozen engine stops answering (a build has no limit by default)."""
SAFETY_NET = 240
"""Seconds an inner session may take before this test fails it as hung."""

INNER_TESTS = """
from pytest_slimimage import image_fixture

slow = image_fixture("slow")
quick = image_fixture("quick")
other = image_fixture("other")


def test_build(slow):
    pass


def test_run(quick):
    quick.run(timeout={timeout})


def test_needs_the_engine(other):
    pass


def test_needs_no_engine():
    pass
"""

RAW = ("Traceback", "ProtocolError", "IncompleteRead", "ChunkedEncodingError", "ReadTimeout", "urllib3", "requests.")
"""What the user saw before: raw tracebacks of the client libraries."""


@dataclass
class Inner:
    """An inner project on the private engine: its folder, and the ``sleep`` its slow step runs."""

    path: Path
    engine: PrivateEngine
    sleep: str
    tmp: Path

    def env(self) -> dict[str, str]:
        env = clean_env()
        env.pop("CI", None)
        env["DOCKER_HOST"] = self.engine.host
        env["TMPDIR"] = str(self.tmp)  # its temporary folders are looked at here, by it alone
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-rA", *args]

    def run_until(self, event: Callable[[], bool], act: Callable[[], None], *args: str) -> tuple[int, str]:
        """Run the inner session with ``args``; once ``event()`` holds, ``act()``; its exit code and output."""
        proc = subprocess.Popen(
            self.argv(*args), cwd=self.path, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            deadline = time.monotonic() + 120
            while not event():
                assert proc.poll() is None, f"the inner session ended before the moment came:\n{proc.communicate()[0]}"
                assert time.monotonic() < deadline, "the moment never came"
                time.sleep(0.1)
            act()
            output, _ = proc.communicate(timeout=SAFETY_NET)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return proc.returncode, output

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            self.argv(*args), cwd=self.path, env=self.env(), capture_output=True, text=True, timeout=SAFETY_NET
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def step_running(self) -> bool:
        return bool(processes_running(self.sleep))


@pytest.fixture
def inner(private_engine: PrivateEngine, pytester: pytest.Pytester) -> Iterator[Inner]:
    private_engine.ensure_running()
    pytester.makeini("[pytest]\n")
    nonce = uuid.uuid4().hex
    duration = random.randint(100_000, 999_999)  # the slow step's sleep: no other process runs it
    dockerfiles = {
        "slow": f"FROM busybox:latest\nENV NONCE={nonce}\nRUN sleep {duration}\n",
        "quick": f'FROM busybox:latest\nENV NONCE={nonce}\nCMD ["sleep", "{duration + 1}"]\n',
        "other": f'FROM busybox:latest\nENV NONCE={nonce}\nCMD ["echo", "other"]\n',
    }
    for name, text in dockerfiles.items():
        pytester.mkdir(name)
        (pytester.path / name / "Dockerfile").write_text(text)
    pytester.makepyfile(test_inner=INNER_TESTS.format(timeout=RUN_TIMEOUT))
    tmp = pytester.mkdir("tmp")
    yield Inner(pytester.path, private_engine, f"sleep {duration}", tmp)
    private_engine.thaw()  # a failed test may leave it frozen, killed, or with containers: the next starts clean
    private_engine.ensure_running()
    client = private_engine.client()
    deadline = time.monotonic() + 60
    while True:  # a thawed engine may still be removing what the session asked it to remove
        left = client.containers.list(all=True)
        if not left or time.monotonic() > deadline:
            break
        for container in left:
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: its removal is already in progress
                    raise
        time.sleep(0.2)
    assert not client.containers.list(all=True), "containers left on the private engine"
    client.close()


def entries(output: str) -> dict[str, list[str]]:
    """The ``E   `` lines of each ERRORS/FAILURES entry, by test name."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        title = re.match(r"^_{3,} (?:ERROR at setup of )?(test_\w+) _{3,}$", line)
        if title:
            current = found.setdefault(title.group(1), [])
        elif re.match(r"^(={3,}|-{3,})", line):
            current = None
        elif current is not None and line.startswith("E   "):
            current.append(line[4:])
    return found


def token_of(inner: Inner) -> str:
    return str(json.loads((inner.path / "report.json").read_text())["meta"]["session"])


_PING = re.compile(r"answers no ping \(([^)]*)\)")
PING_REASONS = {"it refuses connections", "the connection broke mid-answer"}


def assert_one_clear_error(output: str, test: str, first: str | tuple[str, ...], later: str) -> None:
    """``test`` failed with ``first`` alone (or with one of several equivalent verdicts, when where
    the engine stopped is a race), ``test_needs_the_engine`` with ``later``, the test that needs no
    engine passed, and no raw traceback of the client libraries shows anywhere."""
    found = entries(output)
    firsts = (first,) if isinstance(first, str) else first
    # The ping's own reason depends on how far the dying engine got: its socket may still take the
    # connection and break it, or already refuse it. Either is the same verdict.
    shown = [_PING.sub("answers no ping (…)", line) for line in found.get(test) or []]
    assert shown in [[_PING.sub("answers no ping (…)", each)] for each in firsts], output
    first = next(each for each in firsts if [_PING.sub("answers no ping (…)", each)] == shown)
    expected = {m[1] for m in _PING.finditer(first)}
    allowed = PING_REASONS if expected <= PING_REASONS else expected  # a frozen engine: exactly its reason
    reasons = [m[1] for line in found.get(test) or [] for m in _PING.finditer(line)]
    assert all(reason in allowed for reason in reasons), output
    assert found.get("test_needs_the_engine") == [later], output
    assert re.search(r"^PASSED test_inner\.py::test_needs_no_engine$", output, re.M), output
    assert not [raw for raw in RAW if raw in output], output


def assert_reaped(inner: Inner, token: str, client: docker.DockerClient, said: str | None) -> None:
    """A new session on the engine (one that uses it) says what it removed, and nothing of the
    first session's remains: no container of it, nor any container at all here (the step
    containers of the legacy builder carry no label), no temporary folder."""
    output = inner.run("-k", "test_needs_the_engine")
    reaped = [line for line in output.splitlines() if line.endswith("left by ended sessions")]
    assert reaped == ([said] if said else []), output
    assert session_leftovers(client, token) == []
    assert client.containers.list(all=True) == []
    assert [p.name for p in inner.tmp.iterdir() if p.name.startswith("pytest-slimimage-")] == []


def test_killed_mid_build(inner: Inner) -> None:
    """The legacy builder's step, as in the issue (``ProtocolError: Connection broken:
    IncompleteRead``); its step container comes back with the engine, unlabelled: the session's
    will names it, and the next session's reaper removes it."""
    engine = inner.engine
    code, output = inner.run_until(
        inner.step_running,
        engine.kill,
        "-k",
        "test_build or test_needs",
        "--slimimage-builder=legacy",
        "--slimimage-report=report.json",
    )
    assert code == pytest.ExitCode.TESTS_FAILED, output
    host = engine.host
    assert_one_clear_error(
        output,
        "test_build",
        f"the Docker engine at {host} went away while building slow (slow/Dockerfile): the connection to it failed,"
        " and it answers no ping (it refuses connections)",
        f"the Docker engine at {host} is gone: it went away while building slow (slow/Dockerfile);"
        " building other (other/Dockerfile) needs it",
    )
    token = token_of(inner)
    assert (
        f"slimimage: the Docker engine at {host} is gone (it went away while building slow (slow/Dockerfile)):"
        f" what this session left there (io.github.pytest-slimimage.session={token}) is removed by a later session"
        " once it answers"
    ) in output.splitlines()
    engine.start()
    client = engine.client()
    assert any(c.attrs["Config"]["Cmd"][-1] == inner.sleep for c in client.containers.list(all=True))
    assert_reaped(inner, token, client, "slimimage: removed 1 container and 1 temporary folder left by ended sessions")


def test_killed_mid_run(inner: Inner) -> None:
    """``requests.exceptions.ChunkedEncodingError: Response ended prematurely`` before."""
    engine = inner.engine
    code, output = inner.run_until(
        lambda: bool(processes_running(f"sleep {int(inner.sleep.split()[1]) + 1}")),
        engine.kill,
        "-k",
        "test_run or test_needs",
        "--slimimage-report=report.json",
    )
    assert code == pytest.ExitCode.TESTS_FAILED, output
    token = token_of(inner)
    container = re.search(rf"\(container (slimimage-{token}-quick-[0-9a-f]{{8}})\)", output)
    assert container is not None, output
    doing = f"running quick (container {container[1]})"
    assert_one_clear_error(
        output,
        "test_run",
        f"the Docker engine at {engine.host} went away while {doing}: the connection broke mid-answer,"
        " and it answers no ping (it refuses connections)",
        f"the Docker engine at {engine.host} is gone: it went away while {doing};"
        " building other (other/Dockerfile) needs it",
    )
    engine.start()
    client = engine.client()
    assert [c.name for c in client.containers.list(all=True)] == [container[1]]  # back with the engine
    assert_reaped(inner, token, client, "slimimage: removed 1 container left by ended sessions")


def test_stopped_mid_build(inner: Inner) -> None:
    """A graceful stop kills the step (``returned a non-zero code: 137``): the engine's failure,
    not the step's."""
    engine = inner.engine
    code, output = inner.run_until(
        inner.step_running,
        engine.stop,
        "-k",
        "test_build or test_needs",
        "--slimimage-builder=legacy",
        "--slimimage-report=report.json",
    )
    assert code == pytest.ExitCode.TESTS_FAILED, output
    host = engine.host
    assert_one_clear_error(
        output,
        "test_build",
        f"the Docker engine at {host} went away while building slow (slow/Dockerfile): it answers no ping (it refuses"
        " connections), so the build's failure is the engine's (building slow/Dockerfile failed: The command"
        f" '/bin/sh -c {inner.sleep}' returned a non-zero code: 137)",
        f"the Docker engine at {host} is gone: it went away while building slow (slow/Dockerfile);"
        " building other (other/Dockerfile) needs it",
    )
    token = token_of(inner)
    engine.start()
    assert_reaped(inner, token, engine.client(), "slimimage: removed 1 temporary folder left by ended sessions")


def test_frozen_mid_run(inner: Inner) -> None:
    """A frozen engine hung the session for ever before: now the run's timeout and a ping."""
    engine = inner.engine
    code, output = inner.run_until(
        lambda: bool(processes_running(f"sleep {int(inner.sleep.split()[1]) + 1}")),
        engine.freeze,
        "-k",
        "test_run or test_needs",
        "--slimimage-report=report.json",
    )
    assert code == pytest.ExitCode.TESTS_FAILED, output
    token = token_of(inner)
    container = re.search(rf"\(container (slimimage-{token}-quick-[0-9a-f]{{8}})\)", output)
    assert container is not None, output
    doing = f"running quick (container {container[1]})"
    # The freeze comes once the container's program runs: usually while the run waits for it to
    # exit (its timeout, then a ping), sometimes before the engine answered the start call itself
    # (then that call gets no answer, and a ping none either). The same verdict, either way.
    assert_one_clear_error(
        output,
        "test_run",
        (
            f"the Docker engine at {engine.host} stopped answering while {doing}: no answer within the run's"
            f" timeout ({RUN_TIMEOUT} s), nor to a ping (no answer within 10 s)",
            f"the Docker engine at {engine.host} stopped answering while {doing}: no answer, and it answers no ping"
            " (no answer within 10 s)",
        ),
        f"the Docker engine at {engine.host} is gone: it stopped answering while {doing};"
        " building other (other/Dockerfile) needs it",
    )
    engine.thaw()
    client = engine.client()
    assert [c.name for c in client.containers.list(all=True)] == [container[1]]  # still running
    assert_reaped(inner, token, client, "slimimage: removed 1 container left by ended sessions")


def test_frozen_mid_build(inner: Inner) -> None:
    """A build is bounded by its limit (``--slimimage-build-timeout``); past it, a ping tells a
    frozen engine from a slow build."""
    engine = inner.engine
    code, output = inner.run_until(
        inner.step_running,
        engine.freeze,
        "-k",
        "test_build or test_needs",
        f"--slimimage-build-timeout={BUILD_TIMEOUT}",
        "--slimimage-report=report.json",
    )
    assert code == pytest.ExitCode.TESTS_FAILED, output
    host = engine.host
    first, later = entries(output)["test_build"], entries(output).get("test_needs_the_engine")
    assert len(first) == 1 and first[0].startswith(
        f"the Docker engine at {host} stopped answering while building slow (slow/Dockerfile): it answers no ping"
        f" (no answer within 10 s), so the build's failure is the engine's (building slow/Dockerfile failed:"
        f" the build exceeded {BUILD_TIMEOUT} s"
    ), output
    assert_one_clear_error(
        output,
        "test_build",
        first[0],
        f"the Docker engine at {host} is gone: it stopped answering while building slow (slow/Dockerfile);"
        " building other (other/Dockerfile) needs it",
    )
    assert later is not None
    token = token_of(inner)
    engine.thaw()
    assert_reaped(inner, token, engine.client(), None)
