"""Service runs: an image run as shipped until it is ready (``serves``, ``healthy``), through
testcontainers: its :class:`~testcontainers.core.container.DockerContainer` for the container's
lifecycle and ports, a :class:`~testcontainers.core.waiting_utils.WaitStrategy` for the waiting.

The sandbox is the one of a run (:mod:`.runner`: all capabilities dropped, no-new-privileges,
memory, swap and pids capped, the engine's log bounded), except the network: a bridge network,
with the port published on 127.0.0.1 only, on a random host port. The container is named and
labelled as a run's (the session's reaper and its signal handling find it), never goes through
Ryuk (its image cannot be pulled here, and the session cleans up anyway), and is removed whatever
happens.

Waiting (:class:`Readiness`, every :data:`POLL` seconds until the deadline): the container is
inspected first, so one that exited stops the wait at once with its exit code; then

- ``port``: a TCP connection to the published port that the engine's port proxy does not close at
  once (the proxy accepts every connection, and closes it when nothing listens in the container);
- ``http``: a ``GET`` of the path, at most :data:`HTTP_TRY` seconds a try, answering ``status``
  with ``body``;
- ``log``: the text in the container's output (stdout and stderr);
- ``healthy``: the engine's own health status (``State.Health``): ``healthy`` is ready,
  ``unhealthy`` fails at once, anything else waits.

testcontainers' own strategies (``HttpWaitStrategy``, ``PortWaitStrategy``, ...) raise prose on
failure and keep waiting on a container that died, so the one used here records what it saw.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker.errors
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from pytest_slimimage.engine.health import EngineWatch, removed_after, transport_failure
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import Healthcheck, HealthProbe, RunLimits, ServicePlan, ServiceResult

__all__ = ["POLL", "Readiness", "ServiceCancelled", "ServiceRunner"]

POLL = 0.25
"""Seconds between two looks at a service that is not ready yet."""
CONNECT_TRY = 1.0
"""Seconds one connection attempt to the published port may take."""
PROXY_CLOSE = 0.25
"""Seconds a new connection is watched for the engine's port proxy closing it (nothing listens)."""
HTTP_TRY = 2.0
"""Seconds one HTTP request may take."""
BODY_CAP = 1024 * 1024
"""Bytes of an HTTP body read (and matched); the rest is not read."""
BODY_HEAD = 4096
"""Characters of the last HTTP body kept for the failure text."""
LOG_TAIL = 200
"""Lines of the container's output kept in the result (a failure shows the last few)."""
_NO_COMMAND = re.compile(r"no command specified", re.I)
_REFUSED = "connection refused"
CANCEL_WAIT = 30.0
"""Seconds :meth:`ServiceRunner.cancel` waits for the services being awaited to remove their containers."""


class ServiceCancelled(BaseException):
    """The session stops (a signal, Ctrl-C) while a service is awaited in another thread: like the
    interrupt itself, not an error of the service's."""


LOOPBACK = "127.0.0.1"
"""Where the port is published (on the engine's machine, which is this one), and reached."""


class ServiceRunner:
    """Runs images until they serve, on the engine ``DOCKER_HOST`` names; ``watch`` (the session's)
    tells a dead or frozen engine from a service's own failure; ``interrupted`` (shared with the
    session's :class:`~pytest_slimimage.engine.runner.ContainerRunner`) gets the name of a
    container removed because a signal or Ctrl-C interrupted its wait."""

    def __init__(self, watch: EngineWatch | None = None, interrupted: list[str] | None = None) -> None:
        self.watch = watch or EngineWatch()
        self.interrupted: list[str] = interrupted if interrupted is not None else []
        self._cancelled = threading.Event()
        self._idle = threading.Condition()
        self._active = 0

    def cancel(self, wait: float = CANCEL_WAIT) -> None:
        """Stop every wait in progress (the session is interrupted, and the thread awaiting a
        service is not the one the interrupt reached): each removes its container and records
        it in :attr:`interrupted`; wait up to ``wait`` seconds for that. Later serves run again."""
        self._cancelled.set()
        try:
            with self._idle:
                self._idle.wait_for(lambda: self._active == 0, timeout=wait)
        finally:
            self._cancelled.clear()

    def serve(
        self,
        image: str,
        *,
        plan: ServicePlan,
        name: str,
        labels: Mapping[str, str],
        limits: RunLimits,
        argv: Sequence[str],
        healthcheck: Healthcheck | None = None,
        display: str | None = None,
    ) -> ServiceResult:
        """Start ``image`` as shipped, wait until ``plan`` is met, cannot be (the container exited,
        its HEALTHCHECK said unhealthy) or its deadline passes (:meth:`ServicePlan.deadline`), and
        remove the container. ``display`` names the image in messages."""
        doing = f"serving {display or image} (container {name})"
        with self._idle:
            self._active += 1
        try:
            with self.watch.guard(doing):
                return self._serve(
                    image,
                    plan=plan,
                    name=name,
                    labels=labels,
                    limits=limits,
                    argv=argv,
                    healthcheck=healthcheck,
                    display=display or image,
                )
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _serve(
        self,
        image: str,
        *,
        plan: ServicePlan,
        name: str,
        labels: Mapping[str, str],
        limits: RunLimits,
        argv: Sequence[str],
        healthcheck: Healthcheck | None,
        display: str,
    ) -> ServiceResult:
        deadline = plan.deadline(healthcheck)
        started = time.monotonic()
        container = _Container(image, name=name, labels=labels, limits=limits, port=plan.port)

        def not_started(exc: docker.errors.APIError) -> ServiceResult:
            return ServiceResult(
                ready=False,
                unmet="start",
                seen=_start_error(exc),
                start_error=_start_error(exc),
                argv=tuple(argv),
                container=name,
                duration=time.monotonic() - started,
                waited=deadline,
                port=plan.port,
            )

        def remove() -> None:
            if container.created:
                container.stop(force=True, delete_volume=True)

        try:
            with removed_after(self.watch, name, self.interrupted, remove):
                try:
                    if plan.port is not None:
                        _local_engine(container.get_docker_client().host(), display)
                    try:
                        container.start()
                    except docker.errors.APIError as exc:
                        if container.created or _NO_COMMAND.search(str(exc.explanation or exc)):
                            return not_started(exc)
                        raise
                    started = time.monotonic()
                    readiness = Readiness(plan, deadline, cancelled=self._cancelled)
                    readiness.wait_until_ready(container)
                    seen = readiness.seen
                    return ServiceResult(
                        ready=seen.ready,
                        unmet="" if seen.ready else seen.unmet,
                        seen="" if seen.ready else seen.text,
                        exited=seen.exited,
                        exit_code=seen.exit_code,
                        oom_killed=seen.oom_killed,
                        timed_out=seen.timed_out,
                        status=seen.status,
                        body=seen.body,
                        logs=_last_output(container, limits.output_cap),
                        health=seen.health,
                        health_log=seen.health_log,
                        argv=tuple(argv),
                        container=name,
                        duration=seen.duration,
                        waited=deadline,
                        port=plan.port,
                        host_port=seen.host_port,
                        host=seen.host,
                    )
                except docker.errors.DockerException as exc:
                    if transport_failure(exc) is not None:
                        raise  # the watch says whether the engine is gone
                    raise SlimImageError(f"the engine could not serve {display}: {exc}") from None
        finally:  # after the removal, which needs it
            with contextlib.suppress(Exception):
                container.get_docker_client().client.close()


class _Container(DockerContainer):
    """testcontainers' container with the run sandbox, named and labelled for the session, started
    without Ryuk (:class:`DockerContainer`'s ``start`` would ask for it), its image used as it is
    (an image id or a local tag: no hub prefix)."""

    def __init__(
        self, image: str, *, name: str, labels: Mapping[str, str], limits: RunLimits, port: int | None
    ) -> None:
        super().__init__(
            image,
            name=name,
            labels=dict(labels),
            network=None,
            network_mode="bridge",  # a published port needs a network; the rest of the sandbox stays
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=limits.memory,
            memswap_limit=limits.memory,
            pids_limit=limits.pids,
            log_config={"Type": "json-file", "Config": {"max-size": limits.log_limit, "max-file": "1"}},
        )
        self.image = image
        if port is not None:  # 127.0.0.1 only, a random host port
            self.ports[f"{port}/tcp"] = (LOOPBACK, None)  # type: ignore[assignment]
        self.created = False

    def start(self) -> _Container:
        client = self.get_docker_client()
        self._container = client.create(
            self.image, command=None, ports=self.ports or None, name=self._name, **self._kwargs
        )
        self.created = True
        client.start(self._container)
        return self


@dataclass
class Seen:
    """What a :class:`Readiness` saw last."""

    ready: bool = False
    unmet: str = ""
    text: str = ""
    exited: bool = False
    exit_code: int | None = None
    oom_killed: bool = False
    timed_out: bool = False
    status: int | None = None
    body: str = ""
    health: str = ""
    health_log: tuple[HealthProbe, ...] = ()
    host: str = ""
    host_port: int | None = None
    duration: float = 0.0


class Readiness(WaitStrategy):
    """Waits until ``plan`` is met, the container exited, its HEALTHCHECK said unhealthy, or
    ``deadline`` seconds passed; never raises for the service's sake: what it saw is :attr:`seen`.
    ``cancelled`` set (the session stops) ends the wait with :class:`ServiceCancelled`."""

    def __init__(self, plan: ServicePlan, deadline: float, *, cancelled: threading.Event | None = None) -> None:
        super().__init__()
        self._cancelled = cancelled or threading.Event()
        self._startup_timeout = deadline
        self._poll_interval = POLL
        self.plan = plan
        self.seen = Seen(unmet=_first(plan))

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        wrapped = container.get_wrapped_container()
        started = time.monotonic()
        host = LOOPBACK
        while True:
            if self._cancelled.is_set():
                raise ServiceCancelled("the session stops")
            wrapped.reload()
            attrs: Mapping[str, Any] = wrapped.attrs
            state: Mapping[str, Any] = attrs.get("State") or {}
            self._health(state)
            self.seen.duration = time.monotonic() - started
            if str(state.get("Status")) in ("exited", "dead"):
                self.seen.exited = True
                self.seen.exit_code = int(state.get("ExitCode", -1))
                self.seen.oom_killed = bool(state.get("OOMKilled"))
                self.seen.text = f"exited with code {self.seen.exit_code}"
                return
            if str(state.get("Status")) == "running":
                verdict = self._look(container, attrs, host, self._startup_timeout - self.seen.duration)
                self.seen.duration = time.monotonic() - started
                if verdict is not None:
                    self.seen.ready = verdict
                    return
            left = self._startup_timeout - (time.monotonic() - started)
            if left <= 0:
                self.seen.timed_out = True
                return
            self._cancelled.wait(min(self._poll_interval, left))

    def _health(self, state: Mapping[str, Any]) -> None:
        health: Mapping[str, Any] = state.get("Health") or {}
        if not health:
            return
        self.seen.health = str(health.get("Status") or "")
        self.seen.health_log = tuple(
            HealthProbe(int(entry.get("ExitCode", -1)), str(entry.get("Output") or ""))
            for entry in health.get("Log") or ()
        )

    def _look(self, container: WaitStrategyTarget, attrs: Mapping[str, Any], host: str, left: float) -> bool | None:
        """True: ready; False: cannot become ready (unhealthy); None: not yet (:attr:`seen` says why)."""
        plan = self.plan
        if plan.healthy:
            self._unmet("healthy", f"health: {self.seen.health or 'none'}")
            if self.seen.health == "healthy":
                return True
            return False if self.seen.health == "unhealthy" else None
        if plan.port is not None:
            host_port = _host_port(attrs, plan.port)
            self.seen.host, self.seen.host_port = host, host_port
            unmet = "port" if plan.http is None else "http"
            if host_port is None:
                self._unmet(unmet, "the port is not published (yet)")
                return None
            refused = _refused(host, host_port)
            if refused:
                self.seen.status, self.seen.body = None, ""
                self._unmet(unmet, refused)
                return None
            if plan.http is not None and not self._get(host, host_port, plan.http, max(0.5, min(HTTP_TRY, left))):
                return None
        if plan.log is not None:
            output = container.get_wrapped_container().logs(stdout=True, stderr=True, tail=LOG_TAIL * 50)
            text = output.decode("utf-8", "replace")
            if not plan.log_matches(text):
                lines = text.count("\n")
                self._unmet("log", f"not in its output ({lines} line{'s' if lines != 1 else ''})")
                return None
        return True

    def _get(self, host: str, port: int, path: str, timeout: float) -> bool:
        """GET ``path``: whether it answered the planned status and body (:attr:`seen` has what it did)."""
        plan = self.plan
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"Connection": "close", "User-Agent": "pytest-slimimage"})
            response = connection.getresponse()
            raw = response.read(BODY_CAP)
        except TimeoutError:
            return self._http_unseen(f"no answer within {timeout:g}s")
        except http.client.RemoteDisconnected:
            return self._http_unseen("the connection was closed without an answer")
        except ConnectionRefusedError:
            return self._http_unseen(_REFUSED)
        except http.client.HTTPException as exc:
            return self._http_unseen(f"not an HTTP answer ({type(exc).__name__}: {exc})")
        except OSError as exc:
            return self._http_unseen(exc.strerror or str(exc))
        finally:
            connection.close()
        body = raw.decode("utf-8", "replace")
        self.seen.status, self.seen.body = response.status, body[:BODY_HEAD]
        if response.status != plan.status:
            self._unmet("http", f"status {response.status}")
            return False
        if not plan.body_matches(body):
            self._unmet("http", f"status {response.status} with another body")
            return False
        return True

    def _http_unseen(self, text: str) -> bool:
        self.seen.status, self.seen.body = None, ""
        self._unmet("http", text)
        return False

    def _unmet(self, unmet: str, text: str) -> None:
        """Record what is not met yet; the look returns None (not yet)."""
        self.seen.unmet, self.seen.text = unmet, text


def _first(plan: ServicePlan) -> str:
    """The condition a container that dies before the first look did not meet: the first one."""
    if plan.healthy:
        return "healthy"
    if plan.port is None:
        return "log"
    return "port" if plan.http is None else "http"


def _local_engine(host: str, image: str) -> None:
    """The port is published on the engine's 127.0.0.1, which only its own machine reaches:
    an engine elsewhere (``DOCKER_HOST=tcp://build-host:2376``) is a :class:`SlimImageError`."""
    if host not in ("localhost", "127.0.0.1", "::1", ""):
        raise SlimImageError(
            f"serving {image} publishes its port on the engine's 127.0.0.1 only, and the engine is on {host},"
            " not on this machine: run the session on the engine's machine (or forward its socket there)"
        )


def _host_port(attrs: Mapping[str, Any], port: int) -> int | None:
    ports: Mapping[str, Any] = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in ports.get(f"{port}/tcp") or ():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return int(binding["HostPort"])
    return None


def _refused(host: str, port: int) -> str:
    """Why nothing accepts a connection on ``host:port`` ("" when something does). The engine's
    port proxy accepts every connection and closes it at once when nothing listens behind it:
    that is a refusal too."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TRY) as sock:
            sock.settimeout(PROXY_CLOSE)
            try:
                data = sock.recv(1)
            except TimeoutError:
                return ""  # open, and waiting for the client to speak: it listens
            except ConnectionResetError:
                return _REFUSED
            return "" if data else _REFUSED
    except ConnectionRefusedError:
        return _REFUSED
    except TimeoutError:
        return f"no connection within {CONNECT_TRY:g}s"
    except OSError as exc:
        return exc.strerror or str(exc)


def _last_output(container: _Container, cap: int) -> str:
    """The container's last :data:`LOG_TAIL` lines of output (stdout and stderr as they came), at
    most ``cap`` bytes of them."""
    with contextlib.suppress(docker.errors.APIError):
        data: bytes = container.get_wrapped_container().logs(stdout=True, stderr=True, tail=LOG_TAIL)
        return data[-cap:].decode("utf-8", "replace")
    return ""


def _start_error(exc: docker.errors.APIError) -> str:
    text = str(exc.explanation or exc)
    match = re.search(r"(exec[: ].*?)(?:: unknown)?$", text)
    return match.group(1) if match else text
