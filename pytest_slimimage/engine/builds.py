"""Builds for one session: :class:`BuildRequest` (what to build, and its content key) and
:class:`ImageBuilder`, which finds each image in the engine's build cache by its key
(:mod:`.buildcache`) or builds it, once per session (across xdist workers too), and describes it
as a :class:`~pytest_slimimage.engine.image.BuiltImage`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors
from filelock import FileLock

from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.dockerfile.model import Dockerfile, parse_dockerfile
from pytest_slimimage.engine.buildcache import BuildCache, cache_tag, repository_for
from pytest_slimimage.engine.builder import Builder, BuildJob, LegacyBuilder
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.context import BuildContext, large_context_warning
from pytest_slimimage.engine.image import BuiltImage
from pytest_slimimage.engine.layerread import LayerReader
from pytest_slimimage.engine.leftovers import LostBuild
from pytest_slimimage.engine.rebuild import Rebuilder
from pytest_slimimage.engine.runner import ContainerRunner
from pytest_slimimage.errors import EngineLost, ImageBuildError, SlimImageError, SlimImageWarning
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT, Layer, RunLimits
from pytest_slimimage.fileio import write_atomic
from pytest_slimimage.labels import LABEL_WORKER
from pytest_slimimage.owner import Owner, claim_session_dir

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache
    from pytest_slimimage.engine.builder import BuildProgress

__all__ = ["BuildRequest", "ImageBuilder"]


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    target: str | None
    build_args: tuple[tuple[str, str], ...]
    display: str
    """The Dockerfile's path as messages show it: relative to the rootdir when inside it."""
    builder: str = "legacy"
    """The builder that builds it, resolved (``legacy``, ``buildkit``, ``buildkit:<buildx builder>``)."""
    secrets: tuple[tuple[str, Path], ...] = ()
    """``RUN --mount=type=secret`` sources, id -> file (absolute); their contents are never read here."""
    platform: str | None = None
    """The target platform asked for (``linux/arm64``); None: the engine's own."""
    no_cache: bool = False
    builder_note: str = field(default="", compare=False)
    """Why this builder, when ``auto`` fell back (the build log's first line)."""

    @classmethod
    def resolve(
        cls,
        rootdir: Path,
        context: str | os.PathLike[str],
        dockerfile: str | os.PathLike[str] = "Dockerfile",
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        *,
        builder: str = "legacy",
        builder_note: str = "",
        secrets: Mapping[str, str | os.PathLike[str]] | None = None,
        platform: str | None = None,
        no_cache: bool = False,
    ) -> BuildRequest:
        """Relative paths resolve against ``rootdir``; ``dockerfile`` against the context unless
        absolute; ``secrets`` (id -> file) against ``rootdir`` too, and each must be a file."""
        ctx = Path(context)
        ctx = (ctx if ctx.is_absolute() else rootdir / ctx).resolve()
        if not ctx.is_dir():
            what = "is not a directory" if ctx.exists() else "does not exist"
            raise SlimImageError(f"build context {ctx} {what} (given as {os.fspath(context)!r})")
        df = Path(dockerfile)
        df = (df if df.is_absolute() else ctx / df).resolve()
        if not df.is_file():
            raise SlimImageError(f"Dockerfile not found: {df} (context {ctx})")
        args = tuple(sorted((str(k), str(v)) for k, v in (build_args or {}).items()))
        try:
            display = str(df.relative_to(rootdir.resolve()))
        except ValueError:
            display = str(df)
        files: list[tuple[str, Path]] = []
        for secret, given in sorted((secrets or {}).items()):
            path = Path(given)
            path = (path if path.is_absolute() else rootdir / path).resolve()
            if not path.is_file():
                what = "is not a file" if path.exists() else "does not exist"
                raise SlimImageError(f"secret {secret!r} for {display}: {path} {what} (given as {os.fspath(given)!r})")
            files.append((secret, path))
        return cls(ctx, df, target, args, display, builder, tuple(files), platform, no_cache, builder_note)

    def build_context(self) -> BuildContext:
        """What a build of this request sends: the context's files after ``.dockerignore``."""
        return BuildContext.scan(self.context, self.dockerfile)

    def key(self, context: BuildContext | None = None) -> str:
        """Content hash: Dockerfile, every file the build would send (.dockerignore applied), target,
        args, the builder, the secrets' ids and paths (never their contents), platform and no_cache.
        File names and link targets are hashed as their bytes on disk (a name need not be UTF-8).
        ``context``: the request's :meth:`build_context`, when the caller has it already."""
        if context is None:
            context = self.build_context()
        digest = hashlib.sha256()
        digest.update(self.dockerfile.read_bytes())
        digest.update(f"\0{self.target}\0{self.build_args!r}\0".encode())
        secrets = [(secret, str(path)) for secret, path in self.secrets]
        digest.update(f"{self.builder}\0{secrets!r}\0{self.platform}\0{self.no_cache}\0".encode())
        for rel in sorted(context.names):
            path = self.context / rel
            digest.update(os.fsencode(rel) + b"\0")
            if path.is_symlink():
                digest.update(os.fsencode(os.readlink(path)))
            elif path.is_file():
                digest.update(f"{path.stat().st_mode & 0o777}".encode())
                with path.open("rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
        return digest.hexdigest()

    def dockerfile_arg(self) -> str:
        """The dockerfile argument for the engine: relative to the context when inside it."""
        try:
            return str(self.dockerfile.relative_to(self.context))
        except ValueError:
            return str(self.dockerfile)


class ImageBuilder:
    """Images for one session, once per unique request, failures remembered too: an image whose
    key (content, builder, base images) is in the engine's build cache is reused as it is, with
    no build call; any other is built, exactly as the Dockerfile builds it (no label added), and
    tagged ``pytest-slimimage/<name>:<key>`` for the next session (:mod:`.buildcache`).

    With ``shared_dir`` (xdist: one folder for all workers of a run), an image is also found or
    built once across processes: a file lock per key, and a record of the image (or the build
    error) that the other workers read instead.

    ``builder`` runs the builds (default: the engine's legacy builder); the images it hands out
    read their layers through a :class:`LayerReader` and run through a :class:`ContainerRunner`
    on the same engine.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        session: str,
        worker: str | None = None,
        shared_dir: Path | None = None,
        run_limits: RunLimits | None = None,
        default_timeout: float = DEFAULT_RUN_TIMEOUT,
        build_timeout: float | None = None,
        observer: Callable[[BuiltImage, CheckResult], None] | None = None,
        baseline: Callable[[str], tuple[BaselineEntry | None, bool]] | None = None,
        layer_cache: LayerCache | None = None,
        builder: Builder | None = None,
        progress: Callable[[str, str], Callable[[BuildProgress], None]] | None = None,
        shared_owner: Owner | None = None,
    ) -> None:
        self.engine = engine
        self.builder: Builder = builder or LegacyBuilder(engine)
        self.progress = progress
        """Called as a build really starts (not for an image found in a cache), with the image's
        name and its Dockerfile as messages show it; the builder sends that build's progress
        events to the callable it returns."""
        self.layers = LayerReader(engine)
        self.runner = ContainerRunner(engine.watch)
        self.session = session
        self.worker = worker or session
        self.shared_dir = shared_dir
        self.shared_owner = shared_owner or Owner.current()
        """The process that removes ``shared_dir`` at the end of the run (named in it, for the reaper)."""
        self.interrupted: list[str] = []
        """Builds stopped by an interrupt (a signal, Ctrl-C): the image and its Dockerfile."""
        self.lost_builds: list[LostBuild] = []
        """Legacy builds running when the engine went away: their step containers stay there."""
        self.run_limits = run_limits or RunLimits()
        self.default_timeout = default_timeout
        self.build_timeout = build_timeout
        self.observer = observer
        self.baseline = baseline
        self.layer_cache = layer_cache
        self.cache = BuildCache(engine)
        self._cache: dict[str, BuiltImage | SlimImageError] = {}
        self._sized: set[Path] = set()
        """The contexts whose size was looked at (a large one is warned about once)."""
        self._lock = threading.Lock()
        self.images: dict[str, BuiltImage] = {}
        """Every image handed out, by name (the last one asked for under a name wins)."""
        self.builds = 0
        """Builds this process ran on the engine (not the ones another worker ran)."""
        self.reused = 0
        """Images this process found in the engine's build cache, with no build call."""
        self.tags: set[str] = set()
        """The cache tags of the images this process built or reused."""
        self.repositories: set[str] = set()
        """The cache repositories (one per fixture name) this process built or reused images for."""

    def build(self, request: BuildRequest, *, name: str | None = None) -> BuiltImage:
        engine_platform = f"linux/{self.engine.arch}" if self.engine.arch else None
        dockerfile = parse_dockerfile(
            request.dockerfile,
            build_args=dict(request.build_args),
            target=request.target,
            label=request.display,
            platform=request.platform or engine_platform,  # BuildKit's automatic platform ARGs
            build_platform=engine_platform,
        )
        context = request.build_context()
        self._warn_if_large(request, context)
        key = request.key(context)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                shown = name or request.context.name
                builds, started = self.builds, time.time()
                try:
                    with self.engine.watch.guard(f"building {shown} ({request.display})", build=True):
                        cached = self._shared_build(request, dockerfile, key, shown)
                except ImageBuildError as exc:
                    cached = exc
                except BaseException as exc:
                    if not isinstance(exc, Exception) and self.builds > builds:  # the builder stopped it
                        self.interrupted.append(f"{shown} ({request.display})")
                    if isinstance(exc, EngineLost) and self.builds > builds and request.builder == "legacy":
                        self.lost_builds.append(LostBuild.of(self.engine.watch.address, dockerfile, started))
                    raise
                if isinstance(cached, BuiltImage):  # reproducible builds it again, when asked
                    cached.rebuilder = self._rebuilder(request, dockerfile, shown)
                self._cache[key] = cached
            if isinstance(cached, SlimImageError):
                raise cached
            image = cached.named(name) if name else cached
            self.images[image.name] = image
            self.repositories.add(repository_for(image.name))
        return image

    def _rebuilder(self, request: BuildRequest, dockerfile: Dockerfile, name: str) -> Rebuilder:
        """What builds ``request`` again without cache for ``reproducible`` (not as the fixture's
        image: tagged apart, read, untagged)."""
        return Rebuilder(
            request=request,
            dockerfile=dockerfile,
            name=name,
            builder=self.builder,
            engine=self.engine,
            layers=self.layers,
            worker=self.worker,
            cache=self.layer_cache,
            timeout=self.build_timeout,
            progress=self.progress,
        )

    def _warn_if_large(self, request: BuildRequest, context: BuildContext) -> None:
        """A :class:`SlimImageWarning` for a large context, once per context in this process,
        located at the Dockerfile that uses it."""
        with self._lock:
            if request.context in self._sized:
                return
            self._sized.add(request.context)
        text = large_context_warning(context, _shown_context(request))
        if text is not None:
            warnings.warn_explicit(text, SlimImageWarning, str(request.dockerfile), 1)

    def _shared_build(self, request: BuildRequest, dockerfile: Dockerfile, content_key: str, name: str) -> BuiltImage:
        key = self.cache.key(content_key, request.builder, dockerfile)
        if self.shared_dir is None:
            return self._reuse_or_build(request, dockerfile, key, name)
        claim_session_dir(self.shared_dir, self.shared_owner)
        record = self.shared_dir / f"{key}.json"
        with FileLock(self.shared_dir / f"{key}.lock"):
            if record.is_file():
                data = json.loads(record.read_text(encoding="utf-8"))
                if data.get("error"):
                    raise ImageBuildError(str(data["error"]), log=str(data.get("log", "")), step=data.get("step"))
                with contextlib.suppress(SlimImageError, docker.errors.NotFound):
                    tag = str(data.get("tag") or "") or None
                    log = str(data.get("log", ""))
                    return self._describe(str(data["id"]), dockerfile, name, log, tag=tag, builder=request.builder)
            try:
                image = self._reuse_or_build(request, dockerfile, key, name)
            except ImageBuildError as exc:
                data = {"error": str(exc), "log": exc.log, "step": exc.step}
                write_atomic(record, json.dumps(data))
                raise
            write_atomic(record, json.dumps({"id": image.id, "tag": image.tag, "log": image.build_log}))
            return image

    def _reuse_or_build(self, request: BuildRequest, dockerfile: Dockerfile, key: str, name: str) -> BuiltImage:
        """The image of ``key`` from the engine's build cache, with no build call; else built
        (``no_cache`` requests always are). Either way tagged as this fixture's latest use."""
        tag = cache_tag(name, key)
        image_id = None if request.no_cache else self.cache.reuse(tag)
        if image_id is not None:
            self.reused += 1
            log = _reused_log(request, tag)
            image = self._describe(image_id, dockerfile, name, log, tag=tag, builder=request.builder)
        else:
            image = self._build(request, dockerfile, tag, name)
            # tagged again: a builder need not record when it tagged; older keys of this image go
            superseded = self.cache.keep(image.id, tag, image.tags) or []
            image.tags = tuple(other for other in image.tags if other not in superseded)
        self.tags.add(tag)
        return image

    def _build(self, request: BuildRequest, dockerfile: Dockerfile, tag: str, name: str) -> BuiltImage:
        self.builds += 1
        outcome = self.builder.build(
            BuildJob(
                context=request.context,
                dockerfile=request.dockerfile_arg(),
                display=request.display,
                tag=tag,
                target=request.target,
                build_args=dict(request.build_args),
                secrets=dict(request.secrets),
                platform=request.platform,
                no_cache=request.no_cache,
                builder=request.builder,
                note=request.builder_note,
                labels={},  # the image exactly as the Dockerfile builds it: the cache is tracked by tag
                timeout=self.build_timeout,
                progress=self.progress(name, request.display) if self.progress is not None else None,
                parsed=dockerfile,
            )
        )
        image_id, log = outcome.image_id, outcome.log
        return self._describe(image_id, dockerfile, name, log, tag=tag, builder=outcome.builder)

    def existing(
        self,
        reference: str,
        *,
        dockerfile: Path | None = None,
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        display: str | None = None,
        name: str | None = None,
    ) -> BuiltImage:
        """An image already on the engine (built by another tool, or pulled), checked as it is.

        ``dockerfile``, when given, is the one it was built from: the checks that read a
        Dockerfile (final_base, lint) need it. The plugin never removes such an image.
        """
        parsed = None
        if dockerfile is not None:
            parsed = parse_dockerfile(dockerfile, build_args=dict(build_args or {}), target=target, label=display)
        with self._lock:
            key = f"existing\0{reference}\0{dockerfile}\0{target}\0{sorted((build_args or {}).items())}"
            cached = self._cache.get(key)
            if cached is None:
                with self.engine.watch.guard(f"looking up the image {reference}"):
                    attrs = self.engine.local_image(reference)
                    if attrs is None:
                        cached = SlimImageError(
                            f"image {reference!r} is not on the engine: build or pull it before the tests"
                            " (pytest-slimimage never pulls)"
                        )
                    else:
                        cached = self._describe(str(attrs["Id"]), parsed, name or reference, "")
                self._cache[key] = cached
            if isinstance(cached, SlimImageError):
                raise cached
            image = cached.named(name) if name else cached
            self.images[image.name] = image
        return image

    def _describe(
        self,
        image_id: str,
        dockerfile: Dockerfile | None,
        name: str,
        log: str,
        *,
        tag: str | None = None,
        builder: str = "",
    ) -> BuiltImage:
        """A BuiltImage for an image on the engine: its inspect data, history and base; ``tag`` is
        its build-cache tag (its only tag the plugin made; the others are the engine's)."""
        attrs = self.engine.inspect(image_id)
        history = self.engine.history(image_id)
        final_base = dockerfile.final_base if dockerfile is not None else None
        base_attrs = self.engine.local_image(final_base) if final_base else None
        base_size: int | None = 0 if final_base == "scratch" else None
        if base_attrs is not None:
            base_size = int(base_attrs.get("Size") or 0)
            base_count = len(self.engine.history(str(base_attrs["Id"])))
            history = [
                Layer(la.created_by, la.size, la.empty, from_base=i < base_count) for i, la in enumerate(history)
            ]
        return BuiltImage(
            name=name,
            attrs=attrs,
            history=history,
            dockerfile=dockerfile,
            engine=self.engine,
            layers=self.layers,
            runner=self.runner,
            session=self.session,
            worker=self.worker,
            base_size=base_size,
            build_log=log,
            tag=tag,
            builder=builder,
            run_limits=self.run_limits,
            default_timeout=self.default_timeout,
            observer=self.observer,
            baseline=self.baseline,
            layer_cache=self.layer_cache,
        )

    def remove_containers(self) -> int:
        """Remove this process's leftover containers (a safety net: runs remove their own)."""
        return self.engine.remove_containers(self.worker, label=LABEL_WORKER)


def _shown_context(request: BuildRequest) -> str:
    """The context's directory as messages show it: relative to the rootdir when the Dockerfile's
    shown path is (``display`` ends with the Dockerfile's path in the context)."""
    inside = request.dockerfile_arg()
    if not os.path.isabs(request.display) and not os.path.isabs(inside) and request.display.endswith(inside):
        return request.display[: -len(inside)].rstrip("/") or "."
    return str(request.context)


def _reused_log(request: BuildRequest, tag: str) -> str:
    """The build log of an image found in the build cache: there was no build."""
    return (
        f"not built: {request.display}'s image with this content, builder and base images is on the engine"
        f" already ({tag}), so it was used as it is\n"
    )
