"""Container runs: an image run as shipped in a sandbox (no network unless allowed, all
capabilities dropped, memory and pids capped), its output collected, the container removed.
Through testcontainers' client (``DOCKER_HOST`` honoured, as docker-py does).

An engine that dies or freezes during a run is one :class:`~pytest_slimimage.errors.EngineLost`
(:class:`~pytest_slimimage.engine.health.EngineWatch`): a broken connection at once, a frozen
engine after the run's timeout and a ping (:data:`~pytest_slimimage.engine.health.PROBE_TIMEOUT`).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import docker.errors
import requests.exceptions

from pytest_slimimage.engine.health import EngineWatch, removed_after, transport_failure
from pytest_slimimage.engine.services import ServiceRunner
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import RunLimits, RunResult

__all__ = ["ContainerRunner"]

_NO_COMMAND = re.compile(r"no command specified", re.I)
"""The engine's answer to creating a container from an image with neither CMD nor ENTRYPOINT."""
_KILLED_WAIT = 30
"""Seconds to wait for a container killed at its timeout to be reported exited."""
_OUTPUT_WAIT = 10.0
"""Seconds to wait, after the container exited, for the end of its output stream."""


class ContainerRunner:
    """Runs images on the engine ``DOCKER_HOST`` names; its client is made on the first run.
    ``watch`` (the session's) tells a dead or frozen engine from a run's own failure."""

    def __init__(self, watch: EngineWatch | None = None) -> None:
        self._tc: Any = None
        self.watch = watch or EngineWatch()
        self.interrupted: list[str] = []
        """Containers removed because their run was interrupted (a signal, Ctrl-C), by name."""
        self.services = ServiceRunner(self.watch, self.interrupted)
        """Runs images until they serve (``serves``, ``healthy``): the same engine, watch and record."""
        self.serve = self.services.serve
        """Run an image as shipped until it serves (:meth:`ServiceRunner.serve`)."""

    def _testcontainers(self) -> Any:
        if self._tc is None:
            from testcontainers.core.docker_client import DockerClient

            self._tc = DockerClient()
        return self._tc

    def run(
        self,
        image: str,
        *,
        args: Sequence[str] | None,
        timeout: float,
        name: str,
        labels: Mapping[str, str],
        limits: RunLimits,
        argv: Sequence[str],
        display: str | None = None,
    ) -> RunResult:
        """Run ``image`` as shipped (``args`` replaces CMD only), wait, collect output, remove it.
        ``display`` names the image in messages.

        The output is read from an attach stream opened before the container starts (the
        engine's log endpoint serves one frame per line, seconds for a chatty program); the
        engine's log is the fallback when that stream breaks.
        """
        doing = f"running {display or image} (container {name})"
        with self.watch.guard(doing):
            return self._run(
                image, args=args, timeout=timeout, name=name, labels=labels, limits=limits, argv=argv, doing=doing
            )

    def cancel_services(self) -> None:
        """The session is interrupted: stop the services being awaited (in a check's thread), each
        removing its container (:meth:`ServiceRunner.cancel`)."""
        self.services.cancel()

    def _run(
        self,
        image: str,
        *,
        args: Sequence[str] | None,
        timeout: float,
        name: str,
        labels: Mapping[str, str],
        limits: RunLimits,
        argv: Sequence[str],
        doing: str,
    ) -> RunResult:
        started = time.monotonic()
        container = None
        output: _OutputPump | None = None

        def not_started(exc: docker.errors.APIError) -> RunResult:
            return RunResult(
                exit_code=-1,
                stdout="",
                stderr="",
                argv=tuple(argv),
                start_error=_start_error(exc),
                duration=time.monotonic() - started,
            )

        def remove() -> None:
            if container is not None:
                container.remove(force=True, v=True)

        with removed_after(self.watch, name, self.interrupted, remove):
            try:
                try:
                    container = self._testcontainers().create(
                        image,
                        command=list(args) if args is not None else None,
                        labels=dict(labels),
                        name=name,
                        network=None,  # no testcontainers network guessing: the sandbox decides
                        network_mode="bridge" if limits.network else "none",
                        cap_drop=["ALL"],
                        security_opt=["no-new-privileges"],
                        mem_limit=limits.memory,
                        memswap_limit=limits.memory,  # the limit is the memory it gets: no swap on top
                        pids_limit=limits.pids,
                        # the engine's own copy of the output: bounded on its disk (we read the attach stream)
                        log_config={"Type": "json-file", "Config": {"max-size": limits.log_limit, "max-file": "1"}},
                    )
                except docker.errors.APIError as exc:
                    if _NO_COMMAND.search(str(exc.explanation or exc)):  # the image has neither CMD nor ENTRYPOINT
                        return not_started(exc)
                    raise
                output = _OutputPump(
                    container.attach(stdout=True, stderr=True, stream=True, logs=False, demux=True), limits.output_cap
                )
                try:
                    container.start()
                except docker.errors.APIError as exc:
                    return not_started(exc)
                timed_out = False
                try:
                    status = container.wait(timeout=timeout)
                    exit_code = int(status.get("StatusCode", -1))
                except (requests.exceptions.RequestException, OSError) as exc:
                    how = transport_failure(exc)
                    if how is None:
                        raise
                    found = self.watch.answers()  # its time is up, or the engine died or froze: ask it
                    if found is not None:
                        if how == "no answer":
                            why = f"no answer within the run's timeout ({timeout:g} s), nor to a ping ({found})"
                            raise self.watch.gone(doing, why, silent=True) from None
                        raise self.watch.unanswered(doing, how, found) from None
                    timed_out = True
                    with contextlib.suppress(docker.errors.APIError):
                        container.kill()
                    exit_code = int(container.wait(timeout=_KILLED_WAIT).get("StatusCode", -1))
                if output.finish(timeout=_OUTPUT_WAIT):
                    stdout, stderr, truncated = output.result()
                else:
                    stdout, cut_out = _read_logs(container, limits.output_cap, stdout=True)
                    stderr, cut_err = _read_logs(container, limits.output_cap, stdout=False)
                    truncated = cut_out or cut_err
                oom_killed = False
                with contextlib.suppress(docker.errors.APIError):
                    container.reload()
                    oom_killed = bool((container.attrs.get("State") or {}).get("OOMKilled"))
                return RunResult(
                    exit_code=exit_code,
                    stdout=stdout,
                    stderr=stderr,
                    timed_out=timed_out,
                    argv=tuple(argv),
                    truncated=truncated,
                    duration=time.monotonic() - started,
                    oom_killed=oom_killed and not timed_out,
                    memory=limits.memory,
                )
            except docker.errors.DockerException as exc:
                if transport_failure(exc) is not None:
                    raise  # the watch says whether the engine is gone
                raise SlimImageError(f"the engine could not run {image}: {exc}") from None
            finally:
                if output is not None:
                    output.close()


class _OutputPump:
    """Drains a container's demultiplexed attach stream in a thread, keeping the first ``cap``
    bytes of stdout and of stderr; the rest is read and dropped, so the program never blocks."""

    def __init__(self, stream: Any, cap: int) -> None:
        self._stream = stream
        self._cap = cap
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._truncated = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name="slimimage-output", daemon=True)
        self._thread.start()

    def _keep(self, buffer: bytearray, chunk: bytes | None) -> None:
        if not chunk:
            return
        room = self._cap - len(buffer)
        if len(chunk) > room:
            self._truncated = True
        if room > 0:
            buffer += chunk[:room]

    def _pump(self) -> None:
        try:
            for out, err in self._stream:
                self._keep(self._stdout, out)
                self._keep(self._stderr, err)
        except Exception as exc:  # a broken stream (e.g. a read timeout): the caller reads the log instead
            self._error = exc

    def finish(self, timeout: float) -> bool:
        """Wait for the stream's end (the container has exited); False when it broke or hangs."""
        self._thread.join(timeout)
        return not self._thread.is_alive() and self._error is None

    def result(self) -> tuple[str, str, bool]:
        return self._stdout.decode("utf-8", "replace"), self._stderr.decode("utf-8", "replace"), self._truncated

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()


def _read_logs(container: Any, cap: int, *, stdout: bool) -> tuple[str, bool]:
    data = bytearray()
    truncated = False
    stream: Iterator[bytes] = container.logs(stdout=stdout, stderr=not stdout, stream=True, follow=False)
    for chunk in stream:
        room = cap - len(data)
        if room <= 0:
            truncated = True
            break
        data += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return data.decode("utf-8", "replace"), truncated


def _start_error(exc: docker.errors.APIError) -> str:
    text = str(exc.explanation or exc)
    # "OCI runtime create failed: ... exec: "./hello": stat ./hello: no such file or directory: unknown"
    match = re.search(r"(exec[: ].*?)(?:: unknown)?$", text)
    return match.group(1) if match else text
