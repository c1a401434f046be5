"""The build cache on the engine: the images the plugin builds stay there, exactly as their
Dockerfiles build them (no label added), tagged ``pytest-slimimage/<fixture>:<key>``, so that a
later session finds an unchanged image by its key and makes no build call at all.

The key is the request's content key (Dockerfile, context, target, build args, ...), the builder
and the ids of the external images the build reads (each contributing stage's ``FROM`` and
``COPY --from`` images, as found on the engine): a base image rebuilt or re-tagged under an
unchanged Dockerfile changes the key, so the image is built again on the new base.

The cache is tracked by tag only, in the plugin's own ``pytest-slimimage/`` namespace: each
fixture (one repository per fixture name) keeps its :data:`KEEP_BUILDS` most recently used
tags; older ones are untagged without pruning parents (:meth:`BuildCache.prune`), which removes
an image only when that was its last tag. Images the plugin did not tag are never touched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_slimimage.dockerfile.model import Dockerfile
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.image import slug
from pytest_slimimage.labels import KEEP_BUILDS, TAG_REPOSITORY

__all__ = [
    "KEEP_BUILDS",
    "REPOSITORY",
    "BuildCache",
    "cache_key",
    "cache_tag",
    "external_images",
    "recency",
    "repository_for",
    "to_prune",
]

REPOSITORY = TAG_REPOSITORY
KEY_LENGTH = 12
"""Hex digits of the key in a tag."""


def repository_for(name: str) -> str:
    """The repository of a fixture's builds: ``pytest-slimimage/<slug(name)>``."""
    return f"{REPOSITORY}/{slug(name)}"


def cache_tag(name: str, key: str) -> str:
    """The tag of the build of ``key`` under the fixture ``name``."""
    return f"{repository_for(name)}:{key[:KEY_LENGTH]}"


def external_images(dockerfile: Dockerfile) -> tuple[str, ...]:
    """The images (not stages) the build of the final stage reads, sorted: the ``FROM`` at the
    root of each contributing stage's chain and the images named by ``COPY --from`` or
    ``RUN --mount=...,from=``; ``scratch`` is not an image."""
    refs: set[str] = set()
    for stage in dockerfile.contributing_stages():
        if dockerfile.parent(stage) is None:
            refs.add(stage.base)
        for instruction in stage.instructions:
            refs.update(ref for ref in instruction.from_refs if dockerfile.stage_from(ref) is None)
    refs.discard("scratch")
    return tuple(sorted(refs))


def cache_key(content_key: str, builder: str, bases: Mapping[str, str]) -> str:
    """The build cache's key: the content key, the builder, and each external image's id
    (``absent`` when it is not on the engine: the build pulls it)."""
    digest = hashlib.sha256(f"{content_key}\0{builder}\0".encode())
    for ref in sorted(bases):
        digest.update(f"{ref}\0{bases[ref]}\0".encode())
    return digest.hexdigest()


_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?")


def recency(attrs: Mapping[str, Any]) -> str:
    """When an image was last tagged (the engine's ``Metadata.LastTagTime``; its ``Created`` when
    it never was), as text that sorts in time order. Every use of a cached image tags it again."""
    stamp = str((attrs.get("Metadata") or {}).get("LastTagTime") or "")
    if not stamp or stamp.startswith("0001-"):
        stamp = str(attrs.get("Created") or "")
    match = _STAMP.match(stamp)
    if match is None:
        return ""
    return f"{match.group(1)}.{(match.group(2) or '').ljust(9, '0')[:9]}"


def to_prune(recencies: Mapping[str, str], keep: int) -> list[str]:
    """The tags beyond the ``keep`` most recently used (see :func:`recency`), sorted."""
    newest_first = sorted(recencies, key=lambda tag: (recencies[tag], tag), reverse=True)
    return sorted(newest_first[keep:])


class BuildCache:
    """The plugin's tags on one engine: find a build by its key, mark a build as used, prune."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def key(self, content_key: str, builder: str, dockerfile: Dockerfile) -> str:
        """:func:`cache_key` with the external images' ids as the engine has them now (one
        inspect per image)."""
        bases: dict[str, str] = {}
        for ref in external_images(dockerfile):
            attrs = self.engine.local_image(ref)
            bases[ref] = str(attrs["Id"]) if attrs is not None else "absent"
        return cache_key(content_key, builder, bases)

    def reuse(self, tag: str) -> str | None:
        """The id of the image cached as ``tag``, or under another fixture's name with the same
        key (then tagged ``tag`` too), marked as used; None when there is none (build it)."""
        attrs = self.engine.local_image(tag)
        image_id = str(attrs["Id"]) if attrs is not None else None
        tags: list[str] | None = list(attrs.get("RepoTags") or ()) if attrs is not None else None
        if image_id is None:
            same_key = f"{REPOSITORY}/*:{tag.rpartition(':')[2]}"
            image_id = next(iter(self.engine.tags_matching(same_key).values()), None)
        if image_id is None:
            return None
        if self.keep(image_id, tag, tags) is None:  # pruned by a concurrent session in between: build it
            return None
        return image_id

    def keep(self, image_id: str, tag: str, tags: Iterable[str] | None = None) -> list[str] | None:
        """Tag ``image_id`` as ``tag`` (again): the engine records the time, which makes it the
        fixture's most recently used build. The image's other tags of this fixture (older keys of
        the same image: a context file the build does not use changed, say) are untagged, so a
        fixture's builds are distinct images, which the time (one per image) orders. ``tags``:
        the image's tags, when known. Returns the tags untagged; None when the image is gone."""
        if not self.engine.tag_image(image_id, tag):
            return None
        if tags is None:
            attrs = self.engine.local_image(image_id)
            tags = attrs.get("RepoTags") or () if attrs is not None else ()
        repository = tag.rpartition(":")[0]
        older = [other for other in tags if other != tag and other.rpartition(":")[0] == repository]
        return [other for other in older if self.engine.remove_tag(other)]

    def prune(self, repositories: Iterable[str], keep: int = KEEP_BUILDS) -> list[str]:
        """Untag, in each of ``repositories`` (this run's fixtures), the tags beyond the ``keep``
        most recently used; returns the tags removed. An image goes with its last tag, its
        parents stay (other builds' cache); an image a container uses keeps its tag."""
        wanted = set(repositories)
        if not wanted:
            return []
        by_repository: dict[str, list[str]] = {}
        for tag in self.engine.tags_matching(f"{REPOSITORY}/*"):
            repository = tag.rpartition(":")[0]
            if repository in wanted:
                by_repository.setdefault(repository, []).append(tag)
        removed: list[str] = []
        for repository in sorted(by_repository):
            tags = by_repository[repository]
            if len(tags) <= keep:
                continue
            recencies = {tag: recency(self.engine.local_image(tag) or {}) for tag in tags}
            removed.extend(tag for tag in to_prune(recencies, keep) if self.engine.remove_tag(tag))
        return removed
