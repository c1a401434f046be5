"""Builds for one session: :class:`BuildRequest` (what to build, and its content key) and
:class:`ImageBuilder`, the per-session build cache keyed by Dockerfile, context, target and build
args, which builds each image once (across xdist workers too) and describes it as a
:class:`~pytest_slimimage.engine.image.BuiltImage`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors
from docker.utils.build import exclude_paths
from filelock import FileLock

from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.dockerfile.model import Dockerfile, parse_dockerfile
from pytest_slimimage.engine.builder import Builder, BuildJob, LegacyBuilder
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.image import BuiltImage, slug
from pytest_slimimage.engine.layerread import LayerReader
from pytest_slimimage.engine.runner import ContainerRunner
from pytest_slimimage.errors import ImageBuildError, SlimImageError
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT, Layer, RunLimits
from pytest_slimimage.fileio import write_atomic
from pytest_slimimage.labels import LABEL_SESSION, LABEL_WORKER

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache

__all__ = ["BuildRequest", "ImageBuilder"]


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    target: str | None
    build_args: tuple[tuple[str, str], ...]
    display: str
    """The Dockerfile's path as messages show it: relative to the rootdir when inside it."""

    @classmethod
    def resolve(
        cls,
        rootdir: Path,
        context: str | os.PathLike[str],
        dockerfile: str | os.PathLike[str] = "Dockerfile",
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
    ) -> BuildRequest:
        """Relative paths resolve against ``rootdir``; ``dockerfile`` against the context unless absolute."""
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
        return cls(ctx, df, target, args, display)

    def key(self) -> str:
        """Content hash: Dockerfile, every file the build would send (.dockerignore applied), target, args."""
        digest = hashlib.sha256()
        digest.update(self.dockerfile.read_bytes())
        digest.update(f"\0{self.target}\0{self.build_args!r}\0".encode())
        ignore = self.context / ".dockerignore"
        patterns: list[str] = []
        if ignore.is_file():
            patterns = [
                line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")
            ]
        for rel in sorted(exclude_paths(str(self.context), patterns)):
            path = self.context / rel
            digest.update(rel.encode() + b"\0")
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
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
    """Builds images for one session, once per unique request, and remembers failures too.

    With ``shared_dir`` (xdist: one folder for all workers of a run), a build is also done once
    across processes: a file lock per build key, and a record of the built tag (or the build
    error) that the other workers read instead of building again.

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
    ) -> None:
        self.engine = engine
        self.builder: Builder = builder or LegacyBuilder(engine)
        self.layers = LayerReader(engine)
        self.runner = ContainerRunner()
        self.session = session
        self.worker = worker or session
        self.shared_dir = shared_dir
        self.run_limits = run_limits or RunLimits()
        self.default_timeout = default_timeout
        self.build_timeout = build_timeout
        self.observer = observer
        self.baseline = baseline
        self.layer_cache = layer_cache
        self._cache: dict[str, BuiltImage | SlimImageError] = {}
        self._lock = threading.Lock()
        self.images: dict[str, BuiltImage] = {}
        """Every image handed out, by name (the last one asked for under a name wins)."""
        self.builds = 0
        """Builds this process ran on the engine (not the ones another worker ran)."""

    def build(self, request: BuildRequest, *, name: str | None = None) -> BuiltImage:
        dockerfile = parse_dockerfile(
            request.dockerfile, build_args=dict(request.build_args), target=request.target, label=request.display
        )
        key = request.key()
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                try:
                    cached = self._shared_build(request, dockerfile, key, name or request.context.name)
                except ImageBuildError as exc:
                    cached = exc
                self._cache[key] = cached
            if isinstance(cached, SlimImageError):
                raise cached
            image = cached.named(name) if name else cached
            self.images[image.name] = image
        return image

    def _shared_build(self, request: BuildRequest, dockerfile: Dockerfile, key: str, name: str) -> BuiltImage:
        if self.shared_dir is None:
            return self._build(request, dockerfile, key, name)
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        record = self.shared_dir / f"{key}.json"
        with FileLock(self.shared_dir / f"{key}.lock"):
            if record.is_file():
                data = json.loads(record.read_text(encoding="utf-8"))
                if data.get("error"):
                    raise ImageBuildError(str(data["error"]), log=str(data.get("log", "")), step=data.get("step"))
                with contextlib.suppress(SlimImageError, docker.errors.NotFound):
                    return self._describe(str(data["id"]), dockerfile, name, str(data.get("log", "")))
            try:
                image = self._build(request, dockerfile, key, name)
            except ImageBuildError as exc:
                data = {"error": str(exc), "log": exc.log, "step": exc.step}
                write_atomic(record, json.dumps(data))
                raise
            write_atomic(record, json.dumps({"id": image.id, "tag": image.tag, "log": image.build_log}))
            return image

    def _build(self, request: BuildRequest, dockerfile: Dockerfile, key: str, name: str) -> BuiltImage:
        tag = f"pytest-slimimage/{slug(name)}:{self.session}-{key[:12]}"
        self.builds += 1
        outcome = self.builder.build(
            BuildJob(
                context=request.context,
                dockerfile=request.dockerfile_arg(),
                display=request.display,
                tag=tag,
                target=request.target,
                build_args=dict(request.build_args),
                labels={LABEL_SESSION: self.session},
                timeout=self.build_timeout,
            )
        )
        image_id, log = outcome.image_id, outcome.log
        return self._describe(image_id, dockerfile, name, log)

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

    def _describe(self, image_id: str, dockerfile: Dockerfile | None, name: str, log: str) -> BuiltImage:
        """A BuiltImage for an image on the engine: its inspect data, history and base."""
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
            run_limits=self.run_limits,
            default_timeout=self.default_timeout,
            observer=self.observer,
            baseline=self.baseline,
            layer_cache=self.layer_cache,
        )

    def remove_containers(self) -> int:
        """Remove this process's leftover containers (a safety net: runs remove their own)."""
        return self.engine.remove_containers(self.worker, label=LABEL_WORKER)
