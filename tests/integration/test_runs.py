"""``assert_runs`` and ``BuiltImage.run`` on real containers: expectations, the sandbox, timeouts,
the output cap, and containers removed whatever happens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from pytest_slimimage import BuiltImage, ImageCheckFailed, RunResult, assert_runs, image_fixture
from tests.integration.conftest import EXAMPLE, session_leftovers, session_token

dynamic_scratch = image_fixture(EXAMPLE, dockerfile="Dockerfile.scratch")
"""The article's scratch image: a dynamically linked binary without its ELF loader."""

CAP = 1024 * 1024
"""Bytes of stdout and of stderr a run keeps (the sandbox's default)."""


def failure(excinfo: pytest.ExceptionInfo[ImageCheckFailed]) -> list[str]:
    return str(excinfo.value).splitlines()


def containers_of(client: docker.DockerClient, image: BuiltImage) -> list[str]:
    """Containers (any state) of the session that built ``image``, by label and by name."""
    return [item for item in session_leftovers(client, session_token(image)) if item.startswith("container ")]


# ------------------------------------------------------------------------------------ expectations
def test_runs_as_shipped_and_returns_the_result(busybox: BuiltImage) -> None:
    result = assert_runs(busybox, "hello from busybox")
    assert isinstance(result, RunResult)
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (0, "hello from busybox\n", "", False)
    assert result.argv == ("echo", "hello from busybox")
    assert not result.truncated


def test_str_must_equal_the_output(busybox: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, "hello")
    assert failure(excinfo) == [
        "busybox: runs: stdout 'hello from busybox', expected 'hello'",
        '  command: ["echo", "hello from busybox"]',
        "  exit code: 0",
        "  stdout:",
        "    | hello from busybox",
        "  stderr: (empty)",
        "  hint: run the image by hand (docker run --rm IMAGE) and compare with the expectation",
    ]


def test_compiled_regex_is_searched(busybox: BuiltImage) -> None:
    assert_runs(busybox, re.compile(r"from busy"))
    assert_runs(busybox, re.compile(r"^hello from busybox$", re.M))
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, re.compile(r"^goodbye"))
    assert failure(excinfo)[0] == "busybox: runs: stdout 'hello from busybox', expected re.compile('^goodbye')"


def test_args_replace_cmd(busybox: BuiltImage) -> None:
    result = assert_runs(busybox, "replaced", args=["echo", "replaced"])
    assert result.argv == ("echo", "replaced")


def test_args_replace_cmd_only_the_entrypoint_stays(with_entrypoint: BuiltImage) -> None:
    assert with_entrypoint.config.entrypoint == ("echo", "entrypoint:")
    assert assert_runs(with_entrypoint, "entrypoint: default cmd").argv == ("echo", "entrypoint:", "default", "cmd")
    result = assert_runs(with_entrypoint, "entrypoint: x y", args=["x", "y"])
    assert result.argv == ("echo", "entrypoint:", "x", "y")


def test_empty_args_run_the_images_cmd(with_entrypoint: BuiltImage) -> None:
    """The engine cannot clear CMD: an empty command means the image's. The result says what ran."""
    result = assert_runs(with_entrypoint, "entrypoint: default cmd", args=[])
    assert result.argv == ("echo", "entrypoint:", "default", "cmd")


def test_expected_non_zero_exit_code(busybox: BuiltImage) -> None:
    result = assert_runs(busybox, args=["sh", "-c", "echo out; echo err >&2; exit 3"], exit_code=3, stderr="err")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, args=["true"], exit_code=3)
    assert failure(excinfo)[0] == "busybox: runs: exit code 0, expected 3"


def test_any_exit_code_with_none(busybox: BuiltImage) -> None:
    assert assert_runs(busybox, "", args=["sh", "-c", "exit 42"], exit_code=None).exit_code == 42


def test_unexpected_exit_code_shows_the_output(busybox: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, args=["sh", "-c", "echo out; echo oops >&2; exit 3"])
    assert failure(excinfo) == [
        "busybox: runs: exit code 3, expected 0",
        '  command: ["sh", "-c", "echo out; echo oops >&2; exit 3"]',
        "  exit code: 3",
        "  stdout:",
        "    | out",
        "  stderr:",
        "    | oops",
        "  hint: run the image by hand (docker run --rm IMAGE) and compare with the expectation",
    ]


def test_stderr_expectation(busybox: BuiltImage) -> None:
    assert_runs(busybox, args=["sh", "-c", "echo warning >&2"], stderr="warning")
    assert_runs(busybox, args=["sh", "-c", "echo warning: 42 >&2"], stderr=re.compile(r"warning: \d+"))
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, args=["sh", "-c", "echo warning >&2"], stderr="")
    assert failure(excinfo)[0] == "busybox: runs: stderr 'warning', expected ''"


def test_a_program_that_is_not_there_does_not_start(busybox: BuiltImage, docker_client: docker.DockerClient) -> None:
    """The container is created, its start fails: it is removed all the same."""
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, args=["no-such-program"])
    lines = failure(excinfo)
    assert lines[0] == "busybox: runs: the container did not start"
    assert lines[1] == '  command: ["no-such-program"]'
    assert lines[2] == '  engine: exec: "no-such-program": executable file not found in $PATH'
    assert containers_of(docker_client, busybox) == []


def test_an_image_without_a_command_does_not_start(no_cmd: BuiltImage) -> None:
    result = no_cmd.run()
    assert result.exit_code == -1
    assert result.start_error == "No command specified"
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(no_cmd)
    assert failure(excinfo)[:3] == [
        "no_cmd: runs: the container did not start",
        "  command: (none)",
        "  engine: No command specified",
    ]


def test_a_static_binary_runs_from_scratch(no_cmd: BuiltImage) -> None:
    result = assert_runs(no_cmd, args=["/hello", "a b"])
    assert result.stdout == "hello from static C\narg 1: a b\n"


def test_dynamic_binary_in_scratch_does_not_run(dynamic_scratch: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(dynamic_scratch, "hello world")
    text = str(excinfo.value)
    lines = text.splitlines()
    assert lines[1] == '  command: ["./hello"]'
    assert "no such file or directory" in text
    assert "exec ./hello: no such file or directory" in text
    hint = lines[-1]
    assert hint.startswith("  hint: link statically (gcc -static")
    assert "/lib64/ld-linux-x86-64.so.2" in hint


# ------------------------------------------------------------------------------------------- sandbox
def test_no_network_only_loopback(busybox: BuiltImage) -> None:
    assert_runs(busybox, "lo", args=["ls", "/sys/class/net"])
    result = busybox.run(["nc", "-w", "2", "192.0.2.1", "80"])
    assert result.exit_code == 1
    assert result.stderr == "nc: can't connect to remote host (192.0.2.1): Network is unreachable\n"


def test_capabilities_dropped_and_no_new_privileges(busybox: BuiltImage) -> None:
    result = assert_runs(busybox, args=["grep", "-E", "^(CapEff|CapBnd|CapPrm|NoNewPrivs):", "/proc/self/status"])
    fields = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert fields == {"CapPrm": "0" * 16, "CapEff": "0" * 16, "CapBnd": "0" * 16, "NoNewPrivs": "1"}


def test_memory_and_process_limits(busybox: BuiltImage) -> None:
    script = (
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes;"
        " cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
    )
    assert_runs(busybox, f"{256 * 1024 * 1024}\n256", args=["sh", "-c", script])


def test_containers_are_removed_after_each_run(busybox: BuiltImage, docker_client: docker.DockerClient) -> None:
    assert_runs(busybox, "done", args=["echo", "done"])
    with pytest.raises(ImageCheckFailed):
        assert_runs(busybox, args=["false"])
    assert containers_of(docker_client, busybox) == []


# --------------------------------------------------------------------------------- timeouts and caps
def test_timeout_kills_the_container(busybox: BuiltImage, docker_client: docker.DockerClient) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, args=["sleep", "30"], timeout=2)
    assert failure(excinfo) == [
        "busybox: runs: timed out after 2s (killed)",
        '  command: ["sleep", "30"]',
        "  exit code: 137 (timed out, killed)",
        "  stdout: (empty)",
        "  stderr: (empty)",
        "  hint: the program did not exit: a long-running service wants a readiness check, not runs=",
    ]
    assert containers_of(docker_client, busybox) == []


def test_timed_out_run_keeps_its_output(busybox: BuiltImage) -> None:
    result = busybox.run(["sh", "-c", "echo started; sleep 30"], timeout=1.5)
    assert result.timed_out
    assert result.exit_code == 137
    assert result.stdout == "started\n"


class CountedStream:
    """A docker-py output stream passed through as it is, counting the frames it yields."""

    def __init__(self, stream: Any, counts: dict[str, int], kind: str) -> None:
        self._stream, self._counts, self._kind = stream, counts, kind

    def __iter__(self) -> Iterator[Any]:
        for frame in self._stream:
            self._counts[self._kind] += 1
            yield frame

    def __getattr__(self, name: str) -> Any:  # close(), and whatever else the reader asks the stream
        return getattr(self._stream, name)


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Frames of container output read in this test: from attach streams and from the engine's log.
    A spy on docker-py (the containers and the engine are real), for this test only."""
    counts = {"attach": 0, "logs": 0}

    def spy(kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(self: Container, *args: Any, **kwargs: Any) -> Any:
            output = method(self, *args, **kwargs)
            return CountedStream(output, counts, kind) if kwargs.get("stream") else output

        return counted

    monkeypatch.setattr(Container, "attach", spy("attach", Container.attach))
    monkeypatch.setattr(Container, "logs", spy("logs", Container.logs))
    return counts


def test_output_over_the_cap_is_truncated_and_says_so(busybox: BuiltImage, frames: dict[str, int]) -> None:
    script = f"yes x | head -c {CAP + 500_000}; echo done >&2"
    result = busybox.run(["sh", "-c", script])
    # read from the attach stream in blocks, not from the engine's log: one frame per line (some 770,000 here)
    assert frames["logs"] == 0
    assert 0 < frames["attach"] < 10_000, frames
    assert result.exit_code == 0
    assert result.truncated
    assert len(result.stdout) == CAP
    assert result.stdout.startswith("x\nx\n")
    assert result.stderr == "done\n"
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_runs(busybox, args=["sh", "-c", script + "; exit 1"])
    lines = failure(excinfo)
    assert lines[0] == "busybox: runs: exit code 1, expected 0"
    assert "  stdout:" in lines
    assert f"    | ... ({CAP // 2 - 20} earlier lines)" in lines
    assert "  (output beyond the cap was dropped; the lines above are the end of what was kept)" in lines


def test_output_under_the_cap_is_whole(busybox: BuiltImage) -> None:
    result = busybox.run(["sh", "-c", f"head -c {CAP} /dev/zero | tr '\\0' y"])
    assert not result.truncated
    assert result.stdout == "y" * CAP
