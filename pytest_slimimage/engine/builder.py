"""Builders: what turns a Dockerfile and its context into an image on the engine.

:class:`Builder` is the interface the session's build cache
(:class:`~pytest_slimimage.engine.builds.ImageBuilder`) uses; :class:`LegacyBuilder` is the
engine's legacy builder through docker-py (no BuildKit: ``RUN --mount`` and heredocs fail there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Protocol

import docker.errors
import requests.exceptions

from pytest_slimimage.engine.client import Engine
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError

__all__ = ["Builder", "LegacyBuilder"]

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Builder(Protocol):
    """Builds one image; the session's build cache decides when."""

    @property
    def name(self) -> str:
        """What the builder is called in messages (``legacy``)."""
        ...

    def build(
        self,
        *,
        context: str,
        dockerfile: str,
        tag: str,
        labels: Mapping[str, str],
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        timeout: float | None = None,
        display: str | None = None,
    ) -> tuple[str, str]:
        """Build ``dockerfile`` (relative to ``context`` when inside it) as ``tag`` with ``labels``;
        return (image id, build log). A failed build raises :class:`ImageBuildError`, an engine
        that stops answering :class:`EngineUnavailable`; messages name the Dockerfile as
        ``display`` (default: ``dockerfile``)."""
        ...


class LegacyBuilder:
    """The engine's legacy builder (docker-py's ``build``), the only one docker-py speaks."""

    name = "legacy"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return f"<LegacyBuilder {self.engine.base_url}>"

    def build(
        self,
        *,
        context: str,
        dockerfile: str,
        tag: str,
        labels: Mapping[str, str],
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        timeout: float | None = None,
        display: str | None = None,
    ) -> tuple[str, str]:
        """Build with the engine's legacy builder; return (image id, build log).

        A failed step raises :class:`ImageBuildError` with the step and the log's tail; messages
        name the Dockerfile as ``display`` (default: ``dockerfile``).
        """
        client = self.engine.client
        shown = display or dockerfile
        log: list[str] = []
        image_id = ""
        try:
            stream = client.api.build(
                path=context,
                dockerfile=dockerfile,
                tag=tag,
                labels=dict(labels),
                target=target,
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
        return str(client.images.get(image_id).id), "".join(log)


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
