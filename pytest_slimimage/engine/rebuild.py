"""A second build of a fixture's image for ``reproducible``: the same request built again
without the build cache, its filesystem read (layer indexes and file scans, cached by digest
like any image's), and its tag removed at once -- it is never the fixture's image, never kept
as the build cache, and its untagged parents (other builds' cache) are left alone.

No docker import: the build goes through the session's :class:`~pytest_slimimage.engine.builder.Builder`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_slimimage.analysis.reproducibility import file_states
from pytest_slimimage.engine.builder import BuildJob
from pytest_slimimage.engine.image import slug
from pytest_slimimage.errors import ImageBuildError
from pytest_slimimage.facts import Rebuild

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache
    from pytest_slimimage.dockerfile.model import Dockerfile
    from pytest_slimimage.engine.builder import Builder, BuildProgress
    from pytest_slimimage.engine.builds import BuildRequest
    from pytest_slimimage.engine.client import Engine
    from pytest_slimimage.engine.layerread import LayerReader

__all__ = ["REBUILD_REPOSITORY", "Rebuilder", "rebuild_tag"]

REBUILD_REPOSITORY = "pytest-slimimage-rebuild"
"""The repository a rebuild is tagged in while it is read (the tag is removed right after)."""


def rebuild_tag(name: str, worker: str) -> str:
    """A tag of its own for one rebuild of the image ``name`` (unique: two runs may rebuild at once)."""
    return f"{REBUILD_REPOSITORY}/{slug(name)}:{slug(worker)[:60]}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Rebuilder:
    """Builds ``request`` again with ``no_cache`` and describes the result (:meth:`__call__`)."""

    request: BuildRequest
    dockerfile: Dockerfile
    name: str
    """The image's name in messages (the fixture's)."""
    builder: Builder
    engine: Engine
    layers: LayerReader
    worker: str
    cache: LayerCache | None = None
    timeout: float | None = None
    progress: Callable[[str, str], Callable[[BuildProgress], None]] | None = field(default=None, compare=False)

    def __call__(self) -> Rebuild:
        request = self.request
        tag = rebuild_tag(self.name, self.worker)
        shown = f"{self.name} (rebuilt without cache for reproducible)"
        job = BuildJob(
            context=request.context,
            dockerfile=request.dockerfile_arg(),
            display=request.display,
            tag=tag,
            target=request.target,
            build_args=dict(request.build_args),
            secrets=dict(request.secrets),
            platform=request.platform,
            no_cache=True,
            builder=request.builder,
            note=request.builder_note,
            labels={},
            timeout=self.timeout,
            progress=self.progress(shown, request.display) if self.progress is not None else None,
            parsed=self.dockerfile,
        )
        with self.engine.watch.guard(f"building {shown} ({request.display})", build=True):
            try:
                outcome = self.builder.build(job)
            except ImageBuildError as exc:
                raise ImageBuildError(
                    f"{self.name}: reproducible builds the image a second time, without cache, and that build"
                    f" failed: {exc}",
                    log=exc.log,
                    step=exc.step,
                ) from None
        try:
            indexes = self.layers.index_layers(outcome.image_id, cache=self.cache, name=shown)
            scans = self.layers.scan_layers(outcome.image_id, cache=self.cache, files=True, name=shown)
            with self.engine.watch.guard(f"reading the history of {shown}"):
                history = self.engine.history(outcome.image_id)
        finally:
            with self.engine.watch.guard(f"removing the tag of {shown}"):
                self.engine.remove_tag(tag)  # no prune: the untagged parents are other builds' cache
        return Rebuild(id=outcome.image_id, files=file_states(indexes, scans), layers=tuple(history))
