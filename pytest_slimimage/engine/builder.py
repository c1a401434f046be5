"""Builders: what turns a Dockerfile and its context into an image on the engine.

:class:`Builder` is the interface the session's build cache
(:class:`~pytest_slimimage.engine.builds.ImageBuilder`) uses; :class:`LegacyBuilder` is the
engine's legacy builder through docker-py (no BuildKit: ``RUN --mount`` and heredocs fail there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import docker.errors
import requests.exceptions

from pytest_slimimage.engine.client import Engine
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError

__all__ = ["BuildJob", "BuildOutcome", "BuildProgress", "Builder", "LegacyBuilder"]

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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
        with the step and the log's tail. BuildKit-only inputs (secrets, a platform) are refused."""
        if job.secrets or job.platform:
            what = "secrets" if job.secrets else f"platform={job.platform!r}"
            raise ImageBuildError(
                f"building {job.display} with {what} needs BuildKit; the legacy builder has no such input"
            )
        context, dockerfile, tag, target, timeout = str(job.context), job.dockerfile, job.tag, job.target, job.timeout
        build_args = job.build_args
        display = job.display
        client = self.engine.client
        shown = display or dockerfile
        log: list[str] = []
        image_id = ""
        try:
            stream = client.api.build(
                path=context,
                dockerfile=dockerfile,
                tag=tag,
                labels=dict(job.labels),
                target=target,
                nocache=job.no_cache,
                buildargs=dict(build_args or {}),
                rm=True,
                forcerm=True,
                decode=True,
                timeout=math.ceil(timeout) if timeout else None,
            )
            for chunk in stream:
                if "stream" in chunk:
                    line = _ANSI_ESCAPE.sub("", str(chunk["stream"]))  # the builder colours RUN's stderr
                    log.append(line)
                    match = re.match(r"Successfully built ([0-9a-f]+)", line)
                    if match:
                        image_id = match.group(1)
                if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
                if "error" in chunk:
                    text = "".join(log)
                    error = str(chunk["error"]).strip()
                    log.append(error + "\n")
                    raise ImageBuildError(
                        _build_failure(shown, error, text),
                        log="".join(log),
                        step=_last_step(text),
                    )
        except docker.errors.APIError as exc:
            text = "".join(log)
            raise ImageBuildError(
                _build_failure(shown, exc.explanation or str(exc), text), log=text, step=_last_step(text)
            ) from None
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise EngineUnavailable(f"the engine stopped answering during the build of {shown}: {exc}") from None
        if not image_id:
            text = "".join(log)
            raise ImageBuildError(_build_failure(shown, "the engine reported no image", text), log=text)
        return BuildOutcome(str(client.images.get(image_id).id), "".join(log), self.name)


def _last_step(log: str) -> str | None:
    steps = re.findall(r"^Step \d+/\d+ : .*$", log, re.M)
    return steps[-1] if steps else None


def _build_failure(dockerfile: str, error: str, log: str) -> str:
    step = _last_step(log)
    lines = [f"building {dockerfile} failed: {error}"]
    if step:
        lines.append(f"  failing step: {step}")
    tail_lines = [line for line in log.rstrip().splitlines() if line.strip()][-15:]
    if tail_lines:
        lines.append("  build log (last lines):")
        lines += [f"    | {line}" for line in tail_lines]
    return "\n".join(lines)
