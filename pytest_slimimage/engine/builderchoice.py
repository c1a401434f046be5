"""Which builder builds, decided from what the machine's docker clients said about themselves.

Pure (no docker, no subprocess): :mod:`.builderset` asks each candidate client (every ``docker``
on ``PATH``, then ``/usr/bin/docker``) ``docker buildx version`` and ``docker --version`` and
hands the answers here as :class:`ClientProbe` s, lazily, in order; :func:`choose` takes the
first client that can build with BuildKit:

- one with the buildx plugin builds with ``docker buildx build --load`` (and ``--builder NAME``
  when a buildx builder is configured, which then needs buildx);
- one older than 23.0 (and not older than 18.09) runs BuildKit itself with ``DOCKER_BUILDKIT=1``
  (Debian's docker.io 20.10 does); from 23.0 on a client without buildx refuses BuildKit.

``auto`` without such a client falls back to the legacy builder with a note saying why;
``buildkit`` without one is a :class:`BuilderUnavailable` naming every client tried and what it said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_slimimage.buildinputs import BUILDER_KINDS
from pytest_slimimage.errors import SlimImageError

__all__ = [
    "LEGACY",
    "BuilderChoice",
    "BuilderUnavailable",
    "ClientProbe",
    "choose",
    "client_verdict",
    "parse_client_version",
]

BUILDKIT_IN_CLIENT_FROM = (18, 9)
"""The first client version that runs BuildKit with ``DOCKER_BUILDKIT=1``."""
BUILDX_ONLY_FROM = (23, 0)
"""From this client version on, BuildKit goes through the buildx plugin only."""


class BuilderUnavailable(SlimImageError):
    """``buildkit`` was asked for and no docker client here can build with it."""


@dataclass(frozen=True)
class ClientProbe:
    """What one docker client said about itself (neither question contacts the engine)."""

    path: str
    """The client's executable, as found (``/usr/bin/docker``)."""
    version: str | None
    """``docker --version``'s version (``20.10.24+dfsg1``); None when it did not answer."""
    buildx: str | None = None
    """``docker buildx version``'s answer (``github.com/docker/buildx v0.12.1 ...``); None: no plugin."""
    said: str = ""
    """What the client answered when a question failed (its last line), for the error text."""


@dataclass(frozen=True)
class BuilderChoice:
    """The builder a build asking for one kind gets."""

    kind: str
    """``buildkit`` or ``legacy``."""
    client: str | None = None
    """The docker client that runs a BuildKit build."""
    buildx: bool = False
    """Build with ``docker buildx build --load`` (else ``DOCKER_BUILDKIT=1 docker build``)."""
    buildx_builder: str | None = None
    """``--builder NAME`` for buildx."""
    note: str = ""
    """Why ``auto`` fell back to the legacy builder: the build log's first line."""

    @property
    def name(self) -> str:
        """As reports and the cache key name it: ``legacy``, ``buildkit``, ``buildkit:<buildx builder>``."""
        if self.kind == "buildkit" and self.buildx_builder:
            return f"buildkit:{self.buildx_builder}"
        return self.kind

    def describe(self) -> str:
        """How the build is run, for messages (``/usr/bin/docker build with DOCKER_BUILDKIT=1``)."""
        if self.kind == "legacy":
            return "the engine's legacy builder (docker-py)"
        if self.buildx:
            builder = f" --builder {self.buildx_builder}" if self.buildx_builder else ""
            return f"{self.client} buildx build --load{builder}"
        return f"{self.client} build with DOCKER_BUILDKIT=1"


LEGACY = BuilderChoice("legacy")


def parse_client_version(text: str) -> tuple[int, ...] | None:
    """``Docker version 20.10.24+dfsg1, build 297e128`` or ``20.10.24+dfsg1`` -> ``(20, 10, 24)``."""
    match = re.search(r"(?<![\w.])v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def client_verdict(probe: ClientProbe) -> tuple[str | None, str]:
    """How ``probe``'s client can build with BuildKit (``buildx``, ``in-client`` or None) and
    why, in words for the error text and the fallback note."""
    if probe.buildx:
        return "buildx", f"has the buildx plugin ({probe.buildx.strip()})"
    if probe.version is None:
        return None, f"did not answer docker --version ({probe.said or 'no output'})"
    version = parse_client_version(probe.version)
    if version is None:
        return None, f"reported a version that is not one: {probe.version!r}"
    no_buildx = f"no buildx plugin ({probe.said})" if probe.said else "no buildx plugin"
    if version >= BUILDX_ONLY_FROM:
        return None, f"version {probe.version} has {no_buildx}, and from 23.0 on a client runs BuildKit only through it"
    if version < BUILDKIT_IN_CLIENT_FROM:
        return None, f"version {probe.version} predates BuildKit (18.09)"
    return "in-client", f"version {probe.version} runs BuildKit itself (DOCKER_BUILDKIT=1)"


def choose(requested: str, probes: Iterable[ClientProbe], *, buildx_builder: str | None = None) -> BuilderChoice:
    """The builder for ``requested`` (``auto``, ``buildkit``, ``legacy``): the first client in
    ``probes`` (read lazily, and only as far as needed) that can build with BuildKit.

    With ``buildx_builder`` only a client with buildx will do. ``legacy`` reads no probe.
    """
    if requested not in BUILDER_KINDS:
        raise ValueError(f"builder: expected one of {', '.join(BUILDER_KINDS)}, got {requested!r}")
    if requested == "legacy":
        return LEGACY
    tried: list[str] = []
    for probe in probes:
        how, why = client_verdict(probe)
        if how == "buildx":
            return BuilderChoice("buildkit", probe.path, buildx=True, buildx_builder=buildx_builder)
        if how == "in-client" and not buildx_builder:
            return BuilderChoice("buildkit", probe.path)
        if how == "in-client":
            why += f", but the buildx builder {buildx_builder!r} needs buildx"
        tried.append(f"{probe.path}: {why}")
    found = "; ".join(tried) if tried else "no docker client found (on PATH, nor /usr/bin/docker)"
    if requested == "buildkit":
        need = f"buildx (for the buildx builder {buildx_builder!r})" if buildx_builder else "BuildKit"
        raise BuilderUnavailable(
            f"builder='buildkit': no docker client here can build with {need}. Tried: {found}."
            " hint: install the buildx plugin, or a docker client before 23.0 (Debian 12's docker.io runs"
            " BuildKit itself), or build with builder='legacy'"
        )
    if buildx_builder:
        raise BuilderUnavailable(
            f"the buildx builder {buildx_builder!r} (--slimimage-buildx-builder) needs a docker client with the"
            f" buildx plugin, and none was found. Tried: {found}."
            " hint: install the buildx plugin, or drop the setting to build with the engine's own BuildKit"
        )
    note = f"slimimage: built with the legacy builder (builder=auto): no docker client here runs BuildKit: {found}"
    return BuilderChoice("legacy", note=note)
