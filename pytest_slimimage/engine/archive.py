"""Images checked from their archives (``docker save``, OCI image layouts) with no engine:
:class:`ArchiveImage`, a :class:`~pytest_slimimage.engine.image.BuiltImage` whose facts come from
the archive (:mod:`pytest_slimimage.analysis.archive`), and :class:`ArchiveImages`, a session's
opened archives.

The engine is used for one thing only: a run (``runs``, ``assert_runs``) loads the image into the
engine ``DOCKER_HOST`` names, once, under a tag of its own
(``pytest-slimimage-archive/<name>:<session>-<id>``, so that a tag the user owns is never moved),
runs it there as any image is run, and :meth:`ArchiveImages.close` removes that tag (and so the
image, unless something else holds it) at the end of the session. An image the engine already has
is run as it is, and neither loaded nor removed. Without an engine a run is one clear error; every
other check still reads the archive.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import docker.errors
import requests.exceptions

from pytest_slimimage.analysis.archive import Archive, ArchivedImage, layer_disk_size, read_archive
from pytest_slimimage.analysis.layers import LayerIndex, keeps_content
from pytest_slimimage.analysis.layerscan import LayerScan
from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.dockerfile.model import Dockerfile, parse_dockerfile
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.health import EngineWatch, transport_failure
from pytest_slimimage.engine.image import BuiltImage, slug
from pytest_slimimage.engine.layerscans import workers
from pytest_slimimage.engine.runner import ContainerRunner
from pytest_slimimage.errors import EngineUnavailable, SlimImageError
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT, Layer, RunLimits, RunResult, ServicePlan, ServiceResult

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache

__all__ = ["ARCHIVE_REPOSITORY", "ArchiveImage", "ArchiveImages"]

ARCHIVE_REPOSITORY = "pytest-slimimage-archive"
"""The repository of the tags a run loads archived images under (removed at the session's end)."""
_LOAD_TIMEOUT = 600
"""Seconds the engine may stay silent while it loads an image."""


@dataclass
class _Notes:
    """What happened to an archived image in the session (shared by its named twins): shown as
    its "build log" on a failing test."""

    lines: list[str] = field(default_factory=list)


class ArchiveImage(BuiltImage):
    """An image checked from its archive, not built by the session: ``archive`` (the path as
    given), ``layout`` (``docker-archive`` or ``oci-layout``), ``platform`` (``linux/amd64``). Its
    ``id`` is the one an engine gives it once loaded (its config's digest), its ``size`` the one
    ``docker images`` would show, its ``layers`` the history its config records."""

    def __init__(
        self,
        *,
        archive: str,
        layout: str,
        platform: str,
        notes: _Notes,
        name: str,
        attrs: Mapping[str, Any],
        history: list[Layer],
        dockerfile: Dockerfile | None,
        layers: _ArchiveLayers,
        loader: Callable[[str], str],
        runner: ContainerRunner,
        session: str,
        worker: str | None,
        run_limits: RunLimits | None,
        default_timeout: float,
        observer: Callable[[BuiltImage, CheckResult], None] | None,
        baseline: Callable[[str], tuple[BaselineEntry | None, bool]] | None,
    ) -> None:
        self.archive = archive
        self.layout = layout
        self.platform = platform
        self._notes = notes
        self._load = loader
        super().__init__(
            name=name,
            attrs=attrs,
            history=history,
            dockerfile=dockerfile,
            engine=_NoEngine(),
            layers=layers,
            runner=runner,
            session=session,
            worker=worker,
            base_size=0 if dockerfile is not None and dockerfile.final_base == "scratch" else None,
            run_limits=run_limits,
            default_timeout=default_timeout,
            observer=observer,
            baseline=baseline,
        )

    @property
    def build_log(self) -> str:
        """What the session did with the image: read from its archive, loaded for a run."""
        return "\n".join(self._notes.lines)

    @build_log.setter
    def build_log(self, value: str) -> None:
        if value:
            self._notes.lines.append(value)

    def run(self, args: Sequence[str] | None = None, timeout: float | None = None, **options: Any) -> RunResult:
        """Run the image as shipped on the engine ``DOCKER_HOST`` names, loading it there first
        (once; removed at the end of the session); without an engine, :class:`EngineUnavailable`."""
        self._load(self.name)
        return super().run(args, timeout, **options)

    def serve(self, plan: ServicePlan) -> ServiceResult:
        """Run the image as shipped until it serves (``serves``, ``healthy``), on the engine
        ``DOCKER_HOST`` names, loading it there first as :meth:`run` does."""
        self._load(self.name)
        return super().serve(plan)

    def named(self, name: str) -> ArchiveImage:
        """The same image under another name (its facts, read once, shared)."""
        return cast(ArchiveImage, super().named(name))

    def __repr__(self) -> str:
        return f"<ArchiveImage {self.name} {self.archive} {self.platform} {self.id[:19]} {self.size} bytes>"


class _NoEngine:
    """An archive is checked without an engine: ``runnable`` compares with the image's own platform."""

    arch: str | None = None
    emulates: dict[str, str] | None = None


class _ArchiveLayers:
    """An archived image's layer indexes, read when the image was opened (its size needs them),
    and its layers' second look (compressed sizes, files' states), read from the archive when a
    check asks (:meth:`~pytest_slimimage.analysis.archive.Archive.scan_layers`)."""

    def __init__(
        self,
        indexes: Sequence[LayerIndex],
        archive: Archive | None = None,
        image: ArchivedImage | None = None,
        cache: LayerCache | None = None,
    ) -> None:
        self._indexes = list(indexes)
        self._archive = archive
        self._image = image
        self._cache = cache

    def index_layers(self, image: str, *, cache: LayerCache | None = None, name: str | None = None) -> list[LayerIndex]:
        return list(self._indexes)

    def scan_layers(
        self,
        image: str,
        *,
        cache: LayerCache | None = None,
        pull: bool = False,
        files: bool = False,
        name: str | None = None,
    ) -> list[LayerScan]:
        if self._archive is None or self._image is None:  # pragma: no cover - always given when opened
            raise SlimImageError(f"{name or image}: its archive is not known")
        with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="slimimage-scan") as pool:
            scans = self._archive.scan_layers(
                self._image, pull=pull, files=files, cache=cache or self._cache, pool=pool, workers=workers()
            )
        # a layer whose size the manifest gave was not read: its tar's length is the index's
        pairs = zip(scans, self._indexes, strict=True)
        return [replace(scan, tar_size=scan.tar_size or index.tar_size) for scan, index in pairs]


class _Loader:
    """Puts one archived image on the engine for its runs (through :meth:`ArchiveImages.load`)."""

    def __init__(self, images: ArchiveImages, archive: Archive, image: ArchivedImage, notes: _Notes) -> None:
        self._images = images
        self._archive = archive
        self._image = image
        self._notes = notes

    def __call__(self, name: str) -> str:
        return self._images.load(self._archive, self._image, name, self._notes)


class ArchiveImages:
    """A session's archived images: each archive read once (per path, size and modification
    time), each image's layers indexed once (through ``layer_cache``, by diff id), each image
    loaded into the engine at most once, for its runs, and removed by :meth:`close`.

    ``connect`` makes the engine connection a run needs (default: :meth:`Engine.connect`, which
    honours ``DOCKER_HOST``); it is called on the first run only.
    """

    def __init__(
        self,
        *,
        session: str,
        worker: str | None = None,
        run_limits: RunLimits | None = None,
        default_timeout: float = DEFAULT_RUN_TIMEOUT,
        observer: Callable[[BuiltImage, CheckResult], None] | None = None,
        baseline: Callable[[str], tuple[BaselineEntry | None, bool]] | None = None,
        layer_cache: LayerCache | None = None,
        connect: Callable[[], Engine] | None = None,
        watch: EngineWatch | None = None,
        claim: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.worker = worker or session
        self.run_limits = run_limits or RunLimits()
        self.default_timeout = default_timeout
        self.observer = observer
        self.baseline = baseline
        self.layer_cache = layer_cache
        self.watch = watch or EngineWatch()
        self.runner = ContainerRunner(self.watch)
        self._connect = connect or (lambda: Engine.connect(timeout=_LOAD_TIMEOUT, watch=self.watch))
        self._claim = claim
        """Called before an image is loaded: marks the session's temporary folder as its owner's, which
        tells a later session's reaper whose the loaded image is."""
        self.removed: list[str] = []
        """The tags :meth:`close` removed."""
        self._engine: Engine | EngineUnavailable | None = None
        self._archives: dict[tuple[str, int, int], Archive] = {}
        self._images: dict[tuple[Any, ...], ArchiveImage] = {}
        self._loaded: dict[str, str] = {}
        """Image id -> the reference runs use (our tag, or the id of an image the engine had)."""
        self._ours: list[str] = []
        """The tags this session loaded images under: :meth:`close` removes them."""
        self._lock = threading.RLock()
        self.images: dict[str, ArchiveImage] = {}
        """Every image handed out, by name."""

    def __repr__(self) -> str:
        return f"<ArchiveImages session={self.session} archives={len(self._archives)} loaded={len(self._ours)}>"

    # ------------------------------------------------------------------------------------ open
    def open(
        self,
        path: Path,
        *,
        display: str | None = None,
        name: str,
        platform: str | None = None,
        dockerfile: Path | None = None,
        dockerfile_display: str | None = None,
    ) -> list[ArchiveImage]:
        """The images of the archive at ``path`` (one per platform of an OCI index), or the one
        ``platform`` picks; named ``name``, or ``name[linux/arm64]`` when there are several.
        ``dockerfile`` (the one the image was built from) is parsed for each image's platform, for
        the checks that read a Dockerfile (``final_base``, ``lint``)."""
        shown = display or str(path)
        with self._lock:
            archive = self._archive(path, shown)
            chosen = archive.select(platform)
            out = []
            for archived in chosen:
                label = f"{name}[{archived.platform}]" if len(chosen) > 1 else name
                key = (str(path.resolve()), archived.id, str(dockerfile), dockerfile_display)
                image = self._images.get(key)
                if image is None:
                    parsed = None
                    if dockerfile is not None:
                        parsed = parse_dockerfile(
                            dockerfile, label=dockerfile_display or str(dockerfile), platform=archived.platform
                        )
                    image = self._describe(archive, archived, parsed, label)
                    self._images[key] = image
                image = image.named(label)
                self.images[label] = image
                out.append(image)
            return out

    def platforms(self, path: Path, *, display: str | None = None) -> tuple[str, ...]:
        """The platforms of the archive at ``path`` (its metadata read, not its layers)."""
        with self._lock:
            return self._archive(path, display or str(path)).platforms

    def _archive(self, path: Path, shown: str) -> Archive:
        try:
            st = path.stat()
            key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        except OSError:
            return read_archive(path, display=shown)  # says what is wrong with the path
        archive = self._archives.get(key)
        if archive is None:
            archive = self._archives[key] = read_archive(path, display=shown)
        return archive

    def _describe(
        self, archive: Archive, archived: ArchivedImage, dockerfile: Dockerfile | None, name: str
    ) -> ArchiveImage:
        indexes = archive.index_layers(archived, want_content=keeps_content, cache=self.layer_cache)
        sizes = [layer_disk_size(index) for index in indexes]
        notes = _Notes([f"read from {archive.display} ({archive.layout}, {archived.platform}), no engine involved"])
        return ArchiveImage(
            archive=archive.display,
            layout=archive.layout,
            platform=archived.platform,
            notes=notes,
            name=name,
            attrs=archived.inspect(sum(sizes)),
            history=archived.history(sizes),
            dockerfile=dockerfile,
            layers=_ArchiveLayers(indexes, archive, archived, self.layer_cache),
            loader=_Loader(self, archive, archived, notes),
            runner=self.runner,
            session=self.session,
            worker=self.worker,
            run_limits=self.run_limits,
            default_timeout=self.default_timeout,
            observer=self.observer,
            baseline=self.baseline,
        )

    # ------------------------------------------------------------------------------------ load
    def engine(self) -> Engine:
        """The engine runs load into, connected on the first run; EngineUnavailable is remembered."""
        if self._engine is None:
            try:
                self._engine = self._connect()
            except EngineUnavailable as exc:
                self._engine = exc
        if isinstance(self._engine, EngineUnavailable):
            raise self._engine
        return self._engine

    def load(self, archive: Archive, image: ArchivedImage, name: str, notes: _Notes) -> str:
        """Put ``image`` on the engine for a run (once) and return the reference to run. An image
        the engine already has (under a tag that is not one of ours, or none) is used as it is."""
        with self._lock:
            if image.id in self._loaded:
                return self._loaded[image.id]
            try:
                engine = self.engine()
            except EngineUnavailable as exc:
                raise EngineUnavailable(
                    f"{name}: a run needs a Docker engine to load {archive.display} into (every other check reads"
                    f" the archive without one), and {exc}"
                ) from None
            where = self.watch.address
            with self.watch.guard(f"loading {archive.display} for {name}"):
                return self._put(engine, archive, image, name, notes, where)

    def _put(self, engine: Engine, archive: Archive, image: ArchivedImage, name: str, notes: _Notes, where: str) -> str:
        """:meth:`load`'s work, under the engine watch's guard."""
        try:
            present = self._inspect(engine, image.id)
            tags = [t for t in (present or {}).get("RepoTags") or () if not t.startswith(ARCHIVE_REPOSITORY + "/")]
            if present is not None and (tags or not present.get("RepoTags")):
                notes.lines.append(f"already on the engine at {where} as {image.id[:19]}: run as it is, not loaded")
                self._loaded[image.id] = image.id
                return image.id
            tag = f"{ARCHIVE_REPOSITORY}/{slug(name)}:{slug(self.worker)}-{image.id.split(':')[-1][:12]}"
            if self._claim is not None:
                self._claim()
            self._ours.append(tag)
            self._load(engine, archive, image, tag)
            loaded = self._inspect(engine, tag)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if transport_failure(exc) is not None:
                raise  # the watch tells whether the engine is gone
            raise SlimImageError(
                f"{name}: could not load {archive.display} into the engine at {where}: {exc}"
            ) from None
        if loaded is None or loaded.get("Id") != image.id:
            raise SlimImageError(
                f"{name}: loading {archive.display} into the engine at {where} gave"
                f" {loaded.get('Id') if loaded else 'no image'}, not {image.id}"
            )
        notes.lines.append(
            f"loaded {archive.display} ({image.platform}) into the engine at {where} as {tag} for its runs;"
            " removed at the end of the session"
        )
        self._loaded[image.id] = image.id
        return image.id

    @staticmethod
    def _inspect(engine: Engine, reference: str) -> dict[str, Any] | None:
        try:
            return dict(engine.client.api.inspect_image(reference))  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            return None

    @staticmethod
    def _load(engine: Engine, archive: Archive, image: ArchivedImage, tag: str) -> None:
        """``docker load`` of the image, streamed from the archive (converted to the classic
        docker-archive on the way when it is an OCI layout)."""
        messages = engine.client.api.load_image(archive.loadable(image, tag))  # type: ignore[no-untyped-call]
        for message in messages:
            if isinstance(message, dict) and (message.get("error") or message.get("errorDetail")):
                detail = message.get("error") or (message.get("errorDetail") or {}).get("message")
                raise SlimImageError(f"the engine refused to load {archive.display}: {detail}")

    # ----------------------------------------------------------------------------------- close
    def close(self) -> list[str]:
        """Remove the tags this session loaded images under (and so the images, when nothing else
        holds them; their untagged parents are left alone), then close the engine connection.
        Returns what it could not remove, one line each."""
        problems: list[str] = []
        with self._lock:
            engine = self._engine if isinstance(self._engine, Engine) else None
            if engine is not None and self.watch.lost is not None and self._ours:
                problems.append(
                    f"could not remove {', '.join(self._ours)}: {self.watch.lost}"
                    " (a later session removes it once the engine answers)"
                )
            elif engine is not None:
                for tag in self._ours:
                    try:
                        engine.client.api.remove_image(tag, force=False, noprune=True)
                        self.removed.append(tag)
                    except docker.errors.ImageNotFound:
                        pass
                    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                        problems.append(f"could not remove {tag}: {exc}")
                with contextlib.suppress(Exception):
                    engine.close()
            self._ours.clear()
            self._loaded.clear()
            self._engine = None
        return problems
