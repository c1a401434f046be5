"""Builders: what turns a Dockerfile and its context into an image on the engine.

:class:`Builder` is the interface the session's build cache
(:class:`~pytest_slimimage.engine.builds.ImageBuilder`) uses; :class:`LegacyBuilder` is the
engine's legacy builder through docker-py (no BuildKit: ``RUN --mount`` and heredocs fail there).
"""

from __future__ import annotations

import contextlib
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

import docker
import docker.errors
import requests
import requests.exceptions
import urllib3.exceptions

from pytest_slimimage.dockerfile.model import Dockerfile, DockerfileError, parse_dockerfile
from pytest_slimimage.engine.buildlog import (
    ANSI_ESCAPE,
    diagnose,
    failure_text,
    last_legacy_step,
    legacy_step,
    running_container,
    timeout_text,
)
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.context import BuildContext, ContextStream
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError

__all__ = ["BuildJob", "BuildOutcome", "BuildProgress", "Builder", "LegacyBuilder"]


@dataclass(frozen=True)
class BuildProgress:
    """One step of a build, as a builder reports it while it runs (for a live progress line)."""

    display: str
    """The Dockerfile, as messages name it."""
    step: int | None = None
    """1-based, when the builder numbers its steps."""
    steps: int | None = None
    instruction: str = ""
    """The instruction being run (``RUN make``)."""
    done: bool = False
    """The build ended (successfully or not)."""


@dataclass(frozen=True)
class BuildJob:
    """What a builder is asked to build: one Dockerfile and context, tagged ``tag``."""

    context: Path
    dockerfile: str
    """The Dockerfile: relative to ``context`` when inside it, else absolute."""
    display: str
    """The Dockerfile's path as messages show it."""
    tag: str
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Path] = field(default_factory=dict)
    """``RUN --mount=type=secret,id=ID`` sources: id -> file (absolute). Never copied or logged."""
    platform: str | None = None
    """``linux/arm64``; None: the engine's own."""
    no_cache: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    """Seconds the whole build may take."""
    progress: Callable[[BuildProgress], None] | None = field(default=None, compare=False)
    builder: str | None = None
    """Which of the session's builders builds it, by name (``legacy``, ``buildkit``); None: the default."""
    note: str = field(default="", compare=False)
    """A line the build log starts with: why this builder (``auto`` falling back to legacy)."""
    parsed: Dockerfile | None = field(default=None, compare=False, repr=False)
    """The Dockerfile as the session parsed it before building (a failure's cause is read from it)."""

    def dockerfile_model(self) -> Dockerfile | None:
        """:attr:`parsed`; without it, the Dockerfile parsed now (None when it cannot be: a failure then
        names no cause that needs the Dockerfile)."""
        if self.parsed is not None:
            return self.parsed
        path = Path(self.dockerfile)
        try:
            return parse_dockerfile(
                path if path.is_absolute() else self.context / path,
                build_args=dict(self.build_args),
                label=self.display,
            )
        except DockerfileError:
            return None


@dataclass(frozen=True)
class BuildOutcome:
    image_id: str
    log: str
    builder: str
    """Which builder built it, as reports show it (``legacy``, ``buildkit``)."""


class Builder(Protocol):
    """Builds one image; the session's build cache decides when."""

    @property
    def name(self) -> str:
        """What the builder is called in messages and reports (``legacy``, ``buildkit``)."""
        ...

    def build(self, job: BuildJob) -> BuildOutcome:
        """Build ``job``; a failed build raises :class:`ImageBuildError` naming the Dockerfile, the
        failing step and the log's tail; an engine that stops answering :class:`EngineUnavailable`."""
        ...


class LegacyBuilder:
    """The engine's legacy builder (docker-py's ``build``), the only one docker-py speaks.

    The context is streamed to the engine as a tar made while it is sent
    (:class:`~pytest_slimimage.engine.context.ContextStream`: nothing written to disk), and the
    request runs in a thread of its own (:class:`_BuildRequest`), so a time limit bounds the whole
    build whatever the engine sends or does not send: at the limit the connection is closed, which
    makes the engine cancel the build, and the step's container is gone before the error is raised.
    """

    name = "legacy"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return f"<LegacyBuilder {self.engine.base_url}>"

    def build(self, job: BuildJob) -> BuildOutcome:
        """Build with the engine's legacy builder. A failed step raises :class:`ImageBuildError`
        with the step and the log's tail (and the cause, for BuildKit-only syntax); a build over
        ``job.timeout`` is cancelled on the engine and raises one saying so. BuildKit-only inputs
        (secrets, a platform) are refused."""
        if job.secrets or job.platform:
            what = "secrets" if job.secrets else f"platform={job.platform!r}"
            raise ImageBuildError(
                f"building {job.display} with {what} needs BuildKit; the legacy builder has no such input"
            )
        try:
            return self._build(job)
        finally:
            if job.progress is not None:
                job.progress(BuildProgress(job.display, done=True))

    def _build(self, job: BuildJob) -> BuildOutcome:
        shown = job.display or job.dockerfile
        try:
            context = BuildContext.scan(job.context, job.dockerfile)
        except OSError as exc:
            raise ImageBuildError(f"building {shown} failed: cannot read the context {job.context}: {exc}") from None
        body = ContextStream(context, display=shown)
        request = _BuildRequest(
            self.engine.client.api,
            body,
            dict(
                dockerfile=context.dockerfile,
                tag=job.tag,
                labels=dict(job.labels),
                target=job.target,
                nocache=job.no_cache,
                buildargs=dict(job.build_args),
                rm=True,
                forcerm=True,
            ),
            read_timeout=None if job.timeout is None else job.timeout + READ_GRACE,
        )
        log: list[str] = []
        image_id = ""
        deadline = None if job.timeout is None else time.monotonic() + job.timeout
        request.start()
        ended = False
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise self._timed_out(job, shown, request, log)
                try:
                    item = request.chunks.get(timeout=remaining)
                except queue.Empty:
                    continue
                if isinstance(item, _End):
                    ended = True
                    if item.error is not None:
                        raise self._broken(job, shown, body, item.error, log)
                    break
                image_id = self._read(job, shown, item, log) or image_id
        finally:
            if not ended:  # a failure, a timeout, or an interrupt: the engine cancels as the connection closes
                request.stop()
        if not image_id:
            text = "".join(log)
            raise ImageBuildError(failure_text(shown, "the engine reported no image", text), log=text)
        try:
            return BuildOutcome(str(self.engine.client.images.get(image_id).id), "".join(log), self.name)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise EngineUnavailable(f"the engine stopped answering after the build of {shown}: {exc}") from None

    def _read(self, job: BuildJob, shown: str, chunk: Mapping[str, Any], log: list[str]) -> str | None:
        """Take one chunk of the engine's answer into ``log``; the image id when it names one. An
        error chunk raises the build's failure."""
        image_id = None
        if "stream" in chunk:
            line = ANSI_ESCAPE.sub("", str(chunk["stream"]))  # the builder colours RUN's stderr
            log.append(line)
            match = re.match(r"Successfully built ([0-9a-f]+)", line)
            if match:
                image_id = match.group(1)
            started = legacy_step(line)
            if started is not None and job.progress is not None:
                job.progress(
                    BuildProgress(job.display, step=started.step, steps=started.steps, instruction=started.instruction)
                )
        if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
            image_id = str(chunk["aux"]["ID"])
        if "error" in chunk:
            text = "".join(log)
            error = str(chunk["error"]).strip()
            log.append(error + "\n")
            raise self._failure(job, shown, error, text, "".join(log))
        return image_id

    def _broken(
        self, job: BuildJob, shown: str, body: ContextStream, error: BaseException, log: list[str]
    ) -> BaseException:
        """What the request's own failure means: a context file that could not be sent, the
        engine refusing the build, or the engine gone."""
        text = "".join(log)
        if body.error is not None:
            return body.error
        if isinstance(error, docker.errors.APIError):
            return self._failure(job, shown, error.explanation or str(error), text, text)
        if isinstance(error, _ENGINE_GONE):
            return EngineUnavailable(f"the engine stopped answering during the build of {shown}: {error}")
        return error

    def _timed_out(self, job: BuildJob, shown: str, request: _BuildRequest, log: list[str]) -> ImageBuildError:
        """Stop the build (its connection closed, the step's container gone) and say so."""
        request.stop()
        while True:  # what arrived before the connection closed
            try:
                item = request.chunks.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _End) and "stream" in item:
                log.append(ANSI_ESCAPE.sub("", str(item["stream"])))
        text = "".join(log)
        container = running_container(text)
        if container is not None:
            self._remove_container(container)
        step = last_legacy_step(text)
        how = "its connection to the engine was closed, which cancels it there"
        return ImageBuildError(timeout_text(shown, job.timeout or 0, how, text, step=step), log=text, step=step)

    def _remove_container(self, container: str) -> None:
        """Make sure the stopped step's container is gone: the engine kills and removes it as the
        build is cancelled; this removes it if the engine has not (within :data:`STOP_WAIT`)."""
        api = self.engine.client.api
        until = time.monotonic() + STOP_WAIT
        while True:
            try:
                api.remove_container(container, v=True, force=True)
                return
            except docker.errors.NotFound:
                return
            except (docker.errors.APIError, requests.exceptions.RequestException):  # its removal is under way
                if time.monotonic() > until:
                    return
                time.sleep(0.2)

    @staticmethod
    def _failure(job: BuildJob, shown: str, error: str, text: str, log: str) -> ImageBuildError:
        """The failure of ``job``: ``text`` is the log before ``error``, ``log`` all of it."""
        step = last_legacy_step(text)
        cause = diagnose("legacy", error, text, job.dockerfile_model())
        return ImageBuildError(failure_text(shown, error, text, step=step, cause=cause), log=log, step=step)


READ_GRACE = 30.0
"""Seconds beyond a build's time limit that its connection may sit idle (a safety net: at the
limit the builder closes the connection itself)."""
STOP_WAIT = 15.0
"""Seconds a stopped build is given to end, and its step's container to go."""
_ENGINE_GONE = (
    requests.exceptions.RequestException,
    docker.errors.DockerException,
    urllib3.exceptions.HTTPError,
    OSError,
)
"""What docker-py, requests or urllib3 raise when the engine goes away mid-build."""


@dataclass(frozen=True)
class _End:
    """The request ended: on its own (``error`` None) or with ``error``."""

    error: BaseException | None = None


_capturing = threading.local()


def _capture_response(response: requests.Response, *args: object, **kwargs: object) -> None:
    """A requests response hook: hands the response to the build request running in this thread."""
    box: list[requests.Response] | None = getattr(_capturing, "box", None)
    if box is not None:
        box.append(response)


class _BuildRequest:
    """One request to the engine's legacy builder (docker-py's ``build``), sent and read in a
    daemon thread: its answer arrives in :attr:`chunks` (decoded JSON objects, then an
    :class:`_End`), and :meth:`stop` ends it from any thread, whatever it is doing. The body is
    the context stream (cancelled: the upload stops); once the engine answers, the connection's
    socket is shut down, which wakes the reader, and the thread closes the connection."""

    def __init__(
        self, api: docker.APIClient, body: ContextStream, params: dict[str, Any], *, read_timeout: float | None
    ) -> None:
        self.api = api
        self.body = body
        self.params = params
        self.read_timeout = read_timeout
        self.chunks: queue.Queue[dict[str, Any] | _End] = queue.Queue()
        self._responses: list[requests.Response] = []
        self._thread = threading.Thread(target=self._run, name="slimimage-legacy-build", daemon=True)
        hooks = api.hooks.setdefault("response", [])
        if _capture_response not in hooks:
            hooks.append(_capture_response)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the request and wait (up to :data:`STOP_WAIT`, once) for its thread to close the
        connection."""
        if self.body.cancelled:
            return
        self.body.cancel()
        for response in list(self._responses):
            _shut(response)
        self._thread.join(STOP_WAIT)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            _capturing.box = self._responses
            try:
                answer = self.api.build(
                    # docker-py hands a custom context to requests as the body, and requests sends an
                    # iterator chunked, as it comes: typed as a file by docker-py's stubs only
                    fileobj=cast("IO[bytes]", iter(self.body)),
                    custom_context=True,
                    encoding=None,
                    decode=True,
                    timeout=None if self.read_timeout is None else math.ceil(self.read_timeout),
                    **self.params,
                )
            finally:
                _capturing.box = None
            if not self.body.cancelled:  # else aborted while the engine's answer was on its way
                for chunk in answer:
                    self.chunks.put(chunk)
        except BaseException as exc:  # handed to the caller's thread
            error = exc
        finally:
            for response in self._responses:
                with contextlib.suppress(Exception):
                    response.close()  # a connection closed mid-build: the engine cancels the build
            self.chunks.put(_End(error))


def _shut(response: requests.Response) -> None:
    """Wake a thread blocked reading ``response`` (urllib3's ``shutdown``, 2.3 on; else its close)."""
    shutdown = getattr(response.raw, "shutdown", None)
    with contextlib.suppress(Exception):
        if callable(shutdown):
            shutdown()
        else:
            response.close()
