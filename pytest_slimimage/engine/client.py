"""The connection to one Docker engine (docker-py): connect, what the engine says about an image
(inspect data, history, the export stream) and about itself (architecture, storage), the tags
of the build cache, and the cleanup of what a session made. Thin: engine answers become facts, engine failures
:class:`SlimImageError` s; builds (:mod:`.builder`), container runs (:mod:`.runner`) and layer
reads (:mod:`.layerread`) use this connection.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests.exceptions

from pytest_slimimage.engine.health import API_TIMEOUT, EngineWatch, engine_address
from pytest_slimimage.errors import EngineUnavailable
from pytest_slimimage.facts import Layer
from pytest_slimimage.labels import LABEL_SESSION

__all__ = ["Engine"]


class Engine:
    """A connection to one Docker engine (``DOCKER_HOST`` honoured); ``watch`` knows whether it
    still answers (shared by everything of the session that talks to it)."""

    def __init__(self, client: docker.DockerClient, watch: EngineWatch | None = None) -> None:
        self.client = client
        self.watch = watch or EngineWatch()
        self._arch: str | None = None

    @classmethod
    def connect(cls, timeout: float = API_TIMEOUT, *, watch: EngineWatch | None = None) -> Engine:
        """Connect and ping; :class:`EngineUnavailable` says where it looked and why it failed.
        ``timeout``: seconds any API call may wait for an answer (builds and runs set their own)."""
        try:
            client = docker.from_env(timeout=int(timeout))
            client.ping()
        except docker.errors.DockerException as exc:
            reason = str(exc).split(" (Caused by", 1)[0]
            raise EngineUnavailable(
                f"no Docker engine answers at {engine_address()}: {reason}."
                " Start one (bash scripts/engine-up.sh does it on Debian) or set DOCKER_HOST."
            ) from None
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"no Docker engine answers at {engine_address()}: {exc}") from None
        return cls(client, watch)

    @property
    def arch(self) -> str | None:
        """The engine's architecture as images name it (``amd64``, ``arm64``); None if unknown."""
        if self._arch is None:
            try:
                self._arch = str(self.client.version().get("Arch") or "")
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                self._arch = ""
        return self._arch or None

    @functools.cached_property
    def emulates(self) -> dict[str, str] | None:
        """The foreign architectures this engine runs through emulation (QEMU via binfmt_misc),
        each with how; None when that cannot be told (an engine on another machine)."""
        from pytest_slimimage.engine.emulation import engine_emulates

        return engine_emulates(self.base_url, self.arch)

    @property
    def base_url(self) -> str:
        """docker-py's address of the engine (``http+docker://localhost`` for a unix socket)."""
        return str(self.client.api.base_url)

    def info(self) -> dict[str, Any] | None:
        """The engine's ``docker info`` (``Driver``, ``DockerRootDir``, ...); None when it does not answer."""
        try:
            return dict(self.client.info())
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    # ---------------------------------------------------------------------------------- inspect
    def inspect(self, image: str) -> dict[str, Any]:
        return dict(self.client.api.inspect_image(image))  # type: ignore[no-untyped-call]

    def history(self, image: str) -> list[Layer]:
        """History entries bottom to top (the engine lists them top first)."""
        entries = self.client.api.history(image)  # type: ignore[no-untyped-call]
        return [
            Layer(
                created_by=str(e.get("CreatedBy") or ""),
                size=int(e.get("Size") or 0),
                empty=not e.get("Size"),
            )
            for e in reversed(entries)
        ]

    def local_image(self, reference: str) -> dict[str, Any] | None:
        """Inspect data of a local image, or None (scratch and missing images alike)."""
        if reference == "scratch":
            return None
        try:
            return self.inspect(reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError:
            return None

    def export(self, image: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The image's ``docker save`` archive, streamed in chunks."""
        chunks: Iterator[bytes] = self.client.api.get_image(image, chunk_size=chunk_size)
        return chunks

    # ---------------------------------------------------------------------------------- cleanup
    def remove_containers(self, value: str, *, label: str = LABEL_SESSION) -> int:
        """Remove every container (running, exited or never started) with ``label=value``."""
        removed = 0
        for c in self.client.containers.list(all=True, filters={"label": f"{label}={value}"}):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
                removed += 1
        return removed

    def containers_labelled(self, label: str) -> list[dict[str, Any]]:
        """Every container (any state) carrying ``label``, as the engine lists them (``Id``,
        ``Names``, ``Labels``, ``Created``, ``State``): one call."""
        found = self.client.api.containers(all=True, filters={"label": label})
        return [dict(c) for c in found]

    def remove_container(self, container: str) -> bool:
        """Remove a container (running or not) and its anonymous volumes; False when it is gone already."""
        try:
            self.client.api.remove_container(container, v=True, force=True)
        except docker.errors.NotFound:
            return False
        return True

    # ------------------------------------------------------------------------------------- tags
    def tag_image(self, image: str, tag: str) -> bool:
        """Tag ``image`` as ``tag`` (``repository:tag``), moving the tag if it named another image;
        the engine records the time (``Metadata.LastTagTime``). False when the image is gone."""
        repository, _, name = tag.rpartition(":")
        try:
            self.client.api.tag(image, repository, name, force=True)
        except docker.errors.NotFound:
            return False
        return True

    def tags_matching(self, pattern: str) -> dict[str, str]:
        """The tags matching a reference pattern (``pytest-slimimage/*``, ``repo/*:abc``), each
        with the id of its image; one listing, whatever the number of images."""
        found: dict[str, str] = {}
        for image in self.client.api.images(name=pattern):
            for tag in image.get("RepoTags") or ():
                if tag != "<none>:<none>":
                    found[str(tag)] = str(image["Id"])
        return found

    def remove_tag(self, tag: str) -> bool:
        """Untag ``tag`` without pruning its untagged parents (other builds' cache): the image goes
        too when this was its last tag and nothing else needs it. False when there is no such tag,
        or a container uses the image (the engine then keeps the tag)."""
        try:
            self.client.api.remove_image(tag, force=False, noprune=True)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # conflict: a container (running or not) uses the image
                return False
            raise
        return True
