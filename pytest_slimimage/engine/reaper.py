"""The plugin's own reaper: what earlier sessions left behind, removed once they are provably gone.

testcontainers' Ryuk (a container that removes a session's containers when its connection
drops) needs its image pulled, which an offline machine cannot do, and a session killed with its
engine, or by ``SIGKILL``, removes nothing. So every session, on its first use of the engine,
removes what *ended* sessions left:

- containers labelled :data:`~pytest_slimimage.labels.LABEL_SESSION` (one list call), whose
  owner (:data:`~pytest_slimimage.labels.LABEL_OWNER`) is provably gone — same host and boot,
  and that process no longer runs — or, for an owner on another host, whose lease
  (:data:`~pytest_slimimage.labels.LABEL_EXPIRES`) has expired;
- images a session tags only while it runs -- loaded from archives for runs
  (``pytest-slimimage-archive/...:<token>-<id>``), or built again by ``reproducible``
  (``pytest-slimimage-rebuild/...:<token>-<random>``) -- of a session whose temporary folder names
  a gone owner (or, with no folder here, tagged more than :data:`~pytest_slimimage.labels.MAX_AGE` ago);
- temporary folders ``$TMPDIR/pytest-slimimage-<token>`` of gone owners; the build cache of the
  fixtures such a session had built (its records in that folder) is pruned to its bound first,
  and the step containers of the legacy builds its engine's death interrupted (its will,
  :mod:`.leftovers`) are removed, when this is that engine (a will for another engine keeps its
  folder until a session on that engine, or :data:`~pytest_slimimage.labels.MAX_AGE`).

Never anything of a live session, nor of this one: an owner that cannot be told (another host
without an expired lease) keeps what it owns.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
import requests.exceptions

from pytest_slimimage.engine.archive import ARCHIVE_REPOSITORY
from pytest_slimimage.engine.buildcache import BuildCache, recency
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.leftovers import SLACK, LostBuild, read_will
from pytest_slimimage.engine.rebuild import REBUILD_REPOSITORY
from pytest_slimimage.labels import LABEL_EXPIRES, LABEL_OWNER, LABEL_SESSION, MAX_AGE
from pytest_slimimage.owner import SESSION_DIR_PREFIX, Owner, read_dir_owner, session_dir

__all__ = ["Reaped", "Reaper", "gone", "remove_step_containers"]

_SESSION_TAG = re.compile(r"^(?P<token>[0-9a-f]{10})(?:-gw\d+)?-[0-9a-f]{12}$")
"""The tag part of an image a session tags while it runs: ``<token>[-gw<n>]-<id or random>``."""
SESSION_REPOSITORIES = (ARCHIVE_REPOSITORY, REBUILD_REPOSITORY)
"""The repositories of the images a session tags only while it runs."""


@dataclass
class Reaped:
    """What one reaping removed (names), and what it could not (one line each)."""

    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def gone(owner: Owner | None, *, expires: float | None, made: float | None, now: float) -> bool:
    """Whether what ``owner`` made may be removed: the owner is provably gone; or it cannot be
    told (another host or boot, or no owner recorded) and the lease ``expires`` (Unix time) has
    passed, or, without a lease, it was ``made`` more than :data:`MAX_AGE` ago."""
    alive = owner.alive() if owner is not None else None
    if alive is not None:
        return not alive
    if expires is not None:
        return expires < now
    return made is not None and made + MAX_AGE < now


def _number(text: object) -> float | None:
    try:
        return float(str(text))
    except (TypeError, ValueError):
        return None


class Reaper:
    """Removes what ended sessions left on ``engine`` (None: the temporary folders only) and in
    ``tmp`` (default: the system's temporary folder); ``token`` is this session's, whose things
    are never touched."""

    def __init__(
        self,
        engine: Engine | None,
        *,
        token: str,
        tmp: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.token = token
        self.tmp = session_dir(token, tmp).parent
        self._clock = clock

    def run(self) -> Reaped:
        """Containers, then loaded archive images (their owners are read from the folders), then
        the folders. A failure costs only what it concerns: it is one of the problems returned."""
        reaped = Reaped()
        if self.engine is not None:
            for step in (self._containers, self._session_images):
                try:
                    step(reaped)
                except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                    reaped.problems.append(f"{type(exc).__name__}: {exc}")
        try:
            self._folders(reaped)
        except OSError as exc:
            reaped.problems.append(f"{type(exc).__name__}: {exc}")
        return reaped

    # ------------------------------------------------------------------------------ containers
    def _containers(self, reaped: Reaped) -> None:
        assert self.engine is not None
        now = self._clock()
        for container in self.engine.containers_labelled(LABEL_SESSION):
            labels = container.get("Labels") or {}
            if labels.get(LABEL_SESSION) == self.token:
                continue
            owner = Owner.parse(str(labels.get(LABEL_OWNER) or ""))
            expires = _number(labels.get(LABEL_EXPIRES)) if LABEL_EXPIRES in labels else None
            if not gone(owner, expires=expires, made=_number(container.get("Created")), now=now):
                continue
            names = container.get("Names") or [str(container.get("Id", ""))[:12]]
            if self.engine.remove_container(str(container["Id"])):
                reaped.containers.append(str(names[0]).lstrip("/"))

    # -------------------------------------------------------------------------- session images
    def _session_images(self, reaped: Reaped) -> None:
        assert self.engine is not None
        now = self._clock()
        tags = [tag for repository in SESSION_REPOSITORIES for tag in self.engine.tags_matching(f"{repository}/*")]
        for tag in sorted(tags):
            match = _SESSION_TAG.match(tag.rpartition(":")[2])
            if match is None or match["token"] == self.token:
                continue
            folder = session_dir(match["token"], self.tmp)
            owner = read_dir_owner(folder) if folder.is_dir() else None
            made = None
            if owner is None or owner.alive() is None:
                attrs = self.engine.local_image(tag) or {}
                made = _stamp(recency(attrs))
            if not gone(owner, expires=None, made=made, now=now):
                continue
            if self._untag(tag):
                reaped.images.append(tag)

    def _untag(self, tag: str) -> bool:
        assert self.engine is not None
        try:
            self.engine.client.api.remove_image(tag, force=False, noprune=True)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # a container uses it (its owner's containers go first)
                return False
            raise
        return True

    # ---------------------------------------------------------------------------------- folders
    def _folders(self, reaped: Reaped) -> None:
        now = self._clock()
        mine = session_dir(self.token, self.tmp)
        for folder in sorted(self.tmp.glob(f"{SESSION_DIR_PREFIX}*")):
            if folder == mine or not folder.is_dir() or folder.is_symlink():
                continue
            owner = read_dir_owner(folder)
            try:
                made = folder.stat().st_mtime
            except OSError:
                continue
            if not gone(owner, expires=None, made=made, now=now):
                continue
            will = read_will(folder)
            engine = self.engine.watch.address if self.engine is not None else None
            if any(build.engine != engine for build in will) and made + MAX_AGE >= now:
                continue  # for another engine: its sessions reap it
            claimed = self.tmp / f".slimimage-reaped-{uuid.uuid4().hex[:12]}"
            try:
                os.rename(folder, claimed)  # one reaper wins a folder: no other counts it too
            except OSError:
                continue
            if self.engine is not None:
                with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                    reaped.containers.extend(remove_step_containers(self.engine, will))
                reaped.pruned.extend(self._prune(_repositories(claimed)))
            shutil.rmtree(claimed, ignore_errors=True)
            reaped.folders.append(str(folder))

    def _prune(self, repositories: Iterable[str]) -> list[str]:
        """Keep the bound of the build cache of the fixtures a gone session used (it could not)."""
        assert self.engine is not None
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            return BuildCache(self.engine).prune(repositories)
        return []


def remove_step_containers(engine: Engine, builds: Iterable[LostBuild]) -> list[str]:
    """Remove the step containers the lost legacy ``builds`` left on ``engine`` (when they are
    this engine's); their names. One list call, then an inspect per stopped container made while
    one of them ran."""
    mine = [build for build in builds if build.engine == engine.watch.address]
    if not mine:
        return []
    earliest = min(build.started for build in mine) - SLACK
    removed: list[str] = []
    for listed in engine.client.api.containers(all=True):
        created = _number(listed.get("Created"))
        if created is None or created < earliest or listed.get("State") == "running":
            continue
        try:
            attrs = engine.client.api.inspect_container(listed["Id"])
        except docker.errors.NotFound:
            continue
        if any(build.made(attrs, created) for build in mine) and engine.remove_container(str(listed["Id"])):
            removed.append(str(attrs.get("Name") or listed["Id"]).lstrip("/"))
    return removed


def _repositories(folder: Path) -> set[str]:
    """The cache repositories named by the build records in a session's folder."""
    found: set[str] = set()
    for record in folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            tag = str(json.loads(record.read_text(encoding="utf-8")).get("tag") or "")
            if tag:
                found.add(tag.rpartition(":")[0])
    return found


def _stamp(text: str) -> float | None:
    """:func:`~pytest_slimimage.engine.buildcache.recency`'s text as Unix time (UTC)."""
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return float(calendar.timegm(time.strptime(text.split(".")[0], "%Y-%m-%dT%H:%M:%S")))
    return None
