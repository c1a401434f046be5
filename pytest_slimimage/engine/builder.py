"""Builders: what turns a Dockerfile and its context into an image on the engine.

:class:`Builder` is the interface the session's build cache
(:class:`~pytest_slimimage.engine.builds.ImageBuilder`) uses; :class:`LegacyBuilder` is the
engine's legacy builder through docker-py (no BuildKit: ``RUN --mount`` and heredocs fail there).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import docker.errors
import requests.exceptions

from pytest_slimimage.dockerfile.model import Dockerfile, DockerfileError, parse_dockerfile
from pytest_slimimage.engine.buildlog import ANSI_ESCAPE, diagnose, failure_text, last_legacy_step, legacy_step
from pytest_slimimage.engine.client import Engine
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
    """The engine's legacy builder (docker-py's ``build``), the only one docker-py speaks."""

    name = "legacy"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return f"<LegacyBuilder {self.engine.base_url}>"

    def build(self, job: BuildJob) -> BuildOutcome:
        """Build with the engine's legacy builder. A failed step raises :class:`ImageBuildError`
        with the step and the log's tail (and the cause, for BuildKit-only syntax). BuildKit-only
        inputs (secrets, a platform) are refused."""
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
        client = self.engine.client
        shown = job.display or job.dockerfile
        log: list[str] = []
        image_id = ""
        deadline = None if job.timeout is None else time.monotonic() + job.timeout
        try:
            stream = client.api.build(
                path=str(job.context),
                dockerfile=job.dockerfile,
                tag=job.tag,
                labels=dict(job.labels),
                target=job.target,
                nocache=job.no_cache,
                buildargs=dict(job.build_args),
                rm=True,
                forcerm=True,
                decode=True,
                timeout=math.ceil(job.timeout) if job.timeout else None,
            )
            for chunk in stream:
                if deadline is not None and time.monotonic() > deadline:
                    with contextlib.suppress(Exception):
                        stream.close()  # the engine cancels a build whose connection closes
                    raise requests.exceptions.ReadTimeout()
                if "stream" in chunk:
                    line = ANSI_ESCAPE.sub("", str(chunk["stream"]))  # the builder colours RUN's stderr
                    log.append(line)
                    match = re.match(r"Successfully built ([0-9a-f]+)", line)
                    if match:
                        image_id = match.group(1)
                    started = legacy_step(line)
                    if started is not None and job.progress is not None:
                        job.progress(
                            BuildProgress(
                                job.display, step=started.step, steps=started.steps, instruction=started.instruction
                            )
                        )
                if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
                if "error" in chunk:
                    text = "".join(log)
                    error = str(chunk["error"]).strip()
                    log.append(error + "\n")
                    raise self._failure(job, shown, error, text, "".join(log))
        except docker.errors.APIError as exc:
            text = "".join(log)
            raise self._failure(job, shown, exc.explanation or str(exc), text, text) from None
        except requests.exceptions.ReadTimeout:
            text = "".join(log)
            step = last_legacy_step(text)
            error = f"the build exceeded {job.timeout:g} s" if job.timeout else "the engine stopped answering"
            raise ImageBuildError(failure_text(shown, error, text, step=step), log=text, step=step) from None
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise EngineUnavailable(f"the engine stopped answering during the build of {shown}: {exc}") from None
        if not image_id:
            text = "".join(log)
            raise ImageBuildError(failure_text(shown, "the engine reported no image", text), log=text)
        return BuildOutcome(str(client.images.get(image_id).id), "".join(log), self.name)

    @staticmethod
    def _failure(job: BuildJob, shown: str, error: str, text: str, log: str) -> ImageBuildError:
        """The failure of ``job``: ``text`` is the log before ``error``, ``log`` all of it."""
        step = last_legacy_step(text)
        cause = diagnose("legacy", error, text, job.dockerfile_model())
        return ImageBuildError(failure_text(shown, error, text, step=step, cause=cause), log=log, step=step)
