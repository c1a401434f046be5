"""Built images: :class:`BuiltImage` (facts plus ``run``) and :class:`ImageBuilder`, the
per-session build cache keyed by Dockerfile, context, target and build args."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import docker.errors
from docker.utils.build import exclude_paths

try:  # POSIX: builds shared across xdist workers take a file lock
    import fcntl
except ImportError:  # pragma: no cover - Windows: each worker builds for itself
    fcntl = None  # type: ignore[assignment]

from pytest_slimimage.analysis.layers import LayerIndex, merge_layers
from pytest_slimimage.analysis.waste import WasteReport, compute_waste
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.dockerfile.model import Dockerfile, parse_dockerfile
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.errors import ImageBuildError, SlimImageError
from pytest_slimimage.facts import FileSystem, ImageConfig, ImageFacts, Layer, RunLimits, RunResult
from pytest_slimimage.labels import LABEL_SESSION, LABEL_WORKER

_T = TypeVar("_T")


class BuiltImage:
    """An image the session built, with its facts and a way to run it as shipped.

    ``size`` is the engine's ``Size`` in bytes (what ``docker images`` shows); ``layers`` are
    the history entries bottom to top, each with its size and instruction; ``dockerfile`` is
    the parsed Dockerfile (``.stages``, ``.final_stage``, ``.final_base``); an existing image
    checked without one has ``has_dockerfile`` false.
    """

    def __init__(
        self,
        *,
        name: str,
        attrs: Mapping[str, Any],
        history: list[Layer],
        dockerfile: Dockerfile | None,
        engine: Engine,
        session: str,
        base_size: int | None,
        build_log: str = "",
        run_limits: RunLimits | None = None,
        default_timeout: float = 30.0,
        worker: str | None = None,
        observer: Callable[[BuiltImage, CheckResult], None] | None = None,
        layer_cache: Any = None,
    ) -> None:
        self.name = name
        self.id: str = str(attrs["Id"])
        self.tags: tuple[str, ...] = tuple(attrs.get("RepoTags") or ())
        self.size: int = int(attrs["Size"])
        self.config = ImageConfig.from_inspect(attrs)
        self.layers: tuple[Layer, ...] = tuple(history)
        self._dockerfile = dockerfile
        self.base_size = base_size
        self.build_log = build_log
        self.default_timeout = default_timeout
        self._engine = engine
        self._session = session
        self._worker = worker or session
        self._limits = run_limits or RunLimits()
        self._observer = observer
        self._layer_cache = layer_cache
        self._shared = _Lazy()

    def observe(self, result: CheckResult) -> CheckResult:
        """Tell the session about a check's verdict on this image (for its reports); returns it."""
        if self._observer is not None:
            self._observer(self, result)
        return result

    def named(self, name: str) -> BuiltImage:
        """The same image under another name (a second fixture on the same build); the lazily
        read facts are shared, so the layers are still read once."""
        if name == self.name:
            return self
        twin = copy.copy(self)
        twin.name = name
        return twin

    def __repr__(self) -> str:
        return f"<BuiltImage {self.name} {self.id[:19]} {self.size} bytes>"

    @property
    def tag(self) -> str:
        return self.tags[0] if self.tags else self.id

    def _once(self, attr: str, compute: Callable[[], _T]) -> _T:
        """``compute()`` the first time any named view asks for ``attr``; the stored value after."""
        with self._shared.lock:  # reentrant: waste and filesystem ask for the layers inside
            value = getattr(self._shared, attr)
            if value is None:
                value = compute()
                setattr(self._shared, attr, value)
            return cast(_T, value)

    @property
    def layer_indexes(self) -> tuple[LayerIndex, ...]:
        """One index per filesystem layer, bottom to top, read once through the engine."""
        return self._once("layers", lambda: tuple(self._engine.index_layers(self.id, cache=self._layer_cache)))

    def waste(self) -> WasteReport:
        """Bytes written by one layer and overwritten or deleted by a later one (and efficiency)."""
        return self._once("waste", lambda: compute_waste(self.layer_indexes))

    @property
    def dockerfile(self) -> Dockerfile:
        """The parsed Dockerfile the image was built from (``.stages``, ``.final_stage``, ``.final_base``)."""
        if self._dockerfile is None:
            raise SlimImageError(
                f"{self.name} has no Dockerfile known to pytest-slimimage: it is an existing image checked"
                " without one (pass the dockerfile= it was built from)"
            )
        return self._dockerfile

    @property
    def has_dockerfile(self) -> bool:
        return self._dockerfile is not None

    @property
    def runs_started(self) -> int:
        """How many containers this image has started in the session (all its named views)."""
        return self._shared.runs

    @property
    def engine_arch(self) -> str | None:
        """The engine's architecture (``amd64``, ``arm64``), which the runnable check compares with."""
        return self._engine.arch

    @property
    def filesystem(self) -> FileSystem:
        """The merged filesystem (paths, modes, package databases; whiteouts applied)."""
        return self._once("filesystem", lambda: merge_layers(self.layer_indexes))

    def facts(self, *, filesystem: bool = False) -> ImageFacts:
        """The facts the checks read; ``filesystem=True`` includes the (lazily indexed) filesystem."""
        return ImageFacts(
            name=self.name,
            id=self.id,
            size=self.size,
            config=self.config,
            layers=self.layers,
            dockerfile=self._dockerfile,
            tags=self.tags,
            filesystem=self.filesystem if filesystem else self._shared.filesystem,
            waste=self.waste() if filesystem else self._shared.waste,
            base_size=self.base_size,
            engine_arch=self.engine_arch,
        )

    def run(self, args: Sequence[str] | None = None, timeout: float | None = None) -> RunResult:
        """Run the image as shipped (its ENTRYPOINT and CMD; ``args`` replaces CMD only) in the
        sandbox, wait for it to exit (killed after ``timeout`` seconds), and remove it."""
        if args is not None and not args:
            args = None  # the engine reads an empty command as "the image's CMD"; say what it runs
        argv = (self.config.entrypoint or ()) + (tuple(args) if args is not None else (self.config.cmd or ()))
        self._shared.runs += 1
        name = f"slimimage-{self._session}-{_slug(self.name)}-{uuid.uuid4().hex[:8]}"
        return self._engine.run(
            self.id,
            args=args,
            timeout=self.default_timeout if timeout is None else timeout,
            name=name,
            labels={LABEL_SESSION: self._session, LABEL_WORKER: self._worker},
            limits=self._limits,
            argv=argv,
        )


@dataclass
class _Lazy:
    """What a BuiltImage learns on demand, shared by its named twins."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    layers: tuple[LayerIndex, ...] | None = None
    filesystem: FileSystem | None = None
    waste: WasteReport | None = None
    runs: int = 0


_SEPARATOR = re.compile(r"[._]|__|-+")
"""The separators Docker allows between alphanumerics in a repository path component."""


def _slug(text: str) -> str:
    """``text`` as a repository path component (also fine in a container name): lowercase
    alphanumerics joined by ``.``, ``_``, ``__`` or dashes, starting and ending alphanumeric;
    any other run of characters becomes one dash (``_hello`` -> ``hello``, ``a___b`` -> ``a-b``)."""

    def separator(match: re.Match[str]) -> str:
        return match.group() if _SEPARATOR.fullmatch(match.group()) else "-"

    slug = re.sub(r"[^a-z0-9]+", separator, text.lower()[:100])
    return slug.strip("._-") or "image"


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
    """

    def __init__(
        self,
        engine: Engine,
        *,
        session: str,
        worker: str | None = None,
        shared_dir: Path | None = None,
        run_limits: RunLimits | None = None,
        default_timeout: float = 30.0,
        build_timeout: float | None = None,
        observer: Callable[[BuiltImage, CheckResult], None] | None = None,
        layer_cache: Any = None,
    ) -> None:
        self.engine = engine
        self.session = session
        self.worker = worker or session
        self.shared_dir = shared_dir
        self.run_limits = run_limits or RunLimits()
        self.default_timeout = default_timeout
        self.build_timeout = build_timeout
        self.observer = observer
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
        if self.shared_dir is None or fcntl is None:
            return self._build(request, dockerfile, key, name)
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        record = self.shared_dir / f"{key}.json"
        with (self.shared_dir / f"{key}.lock").open("a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
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
                    _write_atomic(record, json.dumps(data))
                    raise
                _write_atomic(record, json.dumps({"id": image.id, "tag": image.tag, "log": image.build_log}))
                return image
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _build(self, request: BuildRequest, dockerfile: Dockerfile, key: str, name: str) -> BuiltImage:
        tag = f"pytest-slimimage/{_slug(name)}:{self.session}-{key[:12]}"
        self.builds += 1
        image_id, log = self.engine.build(
            context=str(request.context),
            dockerfile=request.dockerfile_arg(),
            tag=tag,
            labels={LABEL_SESSION: self.session},
            target=request.target,
            build_args=dict(request.build_args),
            timeout=self.build_timeout,
            display=request.display,
        )
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
            session=self.session,
            worker=self.worker,
            base_size=base_size,
            build_log=log,
            run_limits=self.run_limits,
            default_timeout=self.default_timeout,
            observer=self.observer,
            layer_cache=self.layer_cache,
        )

    def remove_containers(self) -> int:
        """Remove this process's leftover containers (a safety net: runs remove their own)."""
        return self.engine.remove_containers(self.worker, label=LABEL_WORKER)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
