"""A built image: :class:`BuiltImage`, its facts (read lazily, once) and a way to run it as
shipped. No docker import: the engine side it needs (layers, runs, the engine's architecture)
is handed in by :class:`~pytest_slimimage.engine.builds.ImageBuilder`."""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from pytest_slimimage.analysis.layers import LayerIndex, merge_layers
from pytest_slimimage.analysis.layerscan import LayerScan
from pytest_slimimage.analysis.reproducibility import file_states
from pytest_slimimage.analysis.secrets import collect_secrets
from pytest_slimimage.analysis.waste import WasteReport, compute_waste
from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.dockerfile.model import Dockerfile
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import (
    DEFAULT_RUN_TIMEOUT,
    FileState,
    FileSystem,
    Healthcheck,
    ImageConfig,
    ImageFacts,
    Layer,
    PulledLayer,
    Rebuild,
    RunLimits,
    RunResult,
    SecretFinding,
    ServicePlan,
    ServiceResult,
)
from pytest_slimimage.labels import container_labels

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache

__all__ = ["BuiltImage", "EngineFacts", "LayerIndexer", "Runner", "slug"]

_T = TypeVar("_T")


class EngineFacts(Protocol):
    """What a BuiltImage asks about the engine itself (:class:`~pytest_slimimage.engine.client.Engine`)."""

    @property
    def arch(self) -> str | None: ...

    @property
    def emulates(self) -> Mapping[str, str] | None:
        """The foreign architectures the engine runs through emulation, each with how (None: unknown)."""
        ...


class LayerIndexer(Protocol):
    """Reads an image's layers (:class:`~pytest_slimimage.engine.layerread.LayerReader`)."""

    def index_layers(
        self, image: str, *, cache: LayerCache | None = None, name: str | None = None
    ) -> list[LayerIndex]: ...

    def scan_layers(
        self,
        image: str,
        *,
        cache: LayerCache | None = None,
        pull: bool = False,
        files: bool = False,
        name: str | None = None,
    ) -> list[LayerScan]:
        """A second look at each layer, bottom to top: ``pull``, its compressed size; ``files``,
        its files' owners and content digests."""
        ...


class Runner(Protocol):
    """Runs an image as shipped (:class:`~pytest_slimimage.engine.runner.ContainerRunner`)."""

    def run(
        self,
        image: str,
        *,
        args: Sequence[str] | None,
        timeout: float,
        name: str,
        labels: Mapping[str, str],
        limits: RunLimits,
        argv: Sequence[str],
        display: str | None = None,
    ) -> RunResult: ...

    def serve(
        self,
        image: str,
        *,
        plan: ServicePlan,
        name: str,
        labels: Mapping[str, str],
        limits: RunLimits,
        argv: Sequence[str],
        healthcheck: Healthcheck | None = None,
        display: str | None = None,
    ) -> ServiceResult:
        """Runs an image as shipped until it serves (:class:`~pytest_slimimage.engine.services.ServiceRunner`)."""
        ...


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
        engine: EngineFacts,
        layers: LayerIndexer,
        runner: Runner,
        session: str,
        base_size: int | None,
        build_log: str = "",
        tag: str | None = None,
        builder: str = "",
        run_limits: RunLimits | None = None,
        default_timeout: float = DEFAULT_RUN_TIMEOUT,
        worker: str | None = None,
        observer: Callable[[BuiltImage, CheckResult], None] | None = None,
        layer_cache: LayerCache | None = None,
        baseline: Callable[[str], tuple[BaselineEntry | None, bool]] | None = None,
    ) -> None:
        self.name = name
        self.id: str = str(attrs["Id"])
        self.tags: tuple[str, ...] = tuple(attrs.get("RepoTags") or ())
        self.size: int = int(attrs["Size"])
        self.config = ImageConfig.from_inspect(attrs)
        self.platform: str = self.config.platform
        """The image's platform (``linux/arm64``) as its config says; "" when it does not say."""
        self.layers: tuple[Layer, ...] = tuple(history)
        self._dockerfile = dockerfile
        self.base_size = base_size
        self.build_log = build_log
        self.builder = builder
        """The builder that built it (``buildkit``, ``legacy``, ``buildkit:<buildx builder>``); ``""``
        for an image the plugin did not build."""
        self._tag = tag
        self.default_timeout = default_timeout
        self._engine = engine
        self._layers = layers
        self._runner = runner
        self._session = session
        self._worker = worker or session
        self._limits = run_limits or RunLimits()
        self._observer = observer
        self._layer_cache = layer_cache
        self._baseline = baseline
        self._shared = _Lazy()

    def growth_baseline(self) -> tuple[BaselineEntry | None, bool]:
        """This image's entry in the session's size baseline (None: no entry yet), and whether the
        session rewrites the baseline; :class:`SlimImageError` when no baseline is configured."""
        if self._baseline is None:
            raise SlimImageError(f"{self.name}: max_growth needs a size baseline, and this image has no session")
        return self._baseline(self.name)

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
        """The tag the plugin gave it (``pytest-slimimage/<name>:<key>``, its build-cache tag);
        for an image it did not build, its first tag, else its id."""
        return self._tag or (self.tags[0] if self.tags else self.id)

    @property
    def session(self) -> str:
        """The token of the session using it: its containers carry it in the session label."""
        return self._session

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
        return self._once(
            "layers", lambda: tuple(self._layers.index_layers(self.id, cache=self._layer_cache, name=self.name))
        )

    def waste(self) -> WasteReport:
        """Bytes written by one layer and overwritten or deleted by a later one (and efficiency)."""
        return self._once("waste", lambda: compute_waste(self.layer_indexes))

    def secrets(self) -> tuple[SecretFinding, ...]:
        """The secrets the layer index found in every layer (masked), each with what later layers did
        to its file: deleted, overwritten or hidden files still ship."""
        return self._once("secrets", lambda: collect_secrets(self.layer_indexes))

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
    def emulation(self) -> str:
        """How a run of this image is emulated: ``linux/arm64 under QEMU (binfmt_misc ...)`` when
        its architecture is foreign to the engine and the engine emulates it; "" otherwise (a
        native image, or a foreign one that will not start: the runnable check says why)."""
        ours, engine = self.config.architecture, self._engine.arch
        if not ours or not engine or ours == engine or (engine, ours) == ("amd64", "386"):
            return ""
        how = (self._engine.emulates or {}).get(ours)
        return f"{self.platform} under {how}" if how else ""

    @property
    def filesystem(self) -> FileSystem:
        """The merged filesystem (paths, modes, package databases; whiteouts applied)."""
        return self._once("filesystem", lambda: merge_layers(self.layer_indexes))

    def pulled_layers(self) -> tuple[PulledLayer, ...]:
        """Each filesystem layer, bottom to top, with its compressed size (what a push sends and a
        pull fetches): computed once, and cached by layer digest across sessions."""
        return self._once("pull", self._read_pull)

    def _read_pull(self) -> tuple[PulledLayer, ...]:
        scans = self._layers.scan_layers(self.id, cache=self._layer_cache, pull=True, name=self.name)
        return tuple(PulledLayer(s.digest, s.tar_size, s.compressed or 0, s.source) for s in scans)

    def file_states(self) -> Mapping[str, FileState]:
        """Every path of the final filesystem with its mode, owner, mtime and content digest (the
        layers read a second time for it, once; cached by layer digest)."""

        def read() -> Mapping[str, FileState]:
            scans = self._layers.scan_layers(self.id, cache=self._layer_cache, files=True, name=self.name)
            return file_states(self.layer_indexes, scans)

        return self._once("file_states", read)

    rebuilder: Callable[[], Rebuild] | None = None
    """Builds the image again without cache (set by the session's builder; None for an image the
    plugin did not build)."""

    def rebuilt(self) -> Rebuild:
        """The image built again from the same Dockerfile and context without cache (once)."""
        rebuilder = self.rebuilder
        if rebuilder is None:
            raise SlimImageError(
                f"{self.name}: reproducible builds the image a second time from its Dockerfile and context, and"
                f" {self.name} was not built by pytest-slimimage (an existing image or an archive): there is"
                " nothing to build it again from"
            )
        return self._once("rebuild", rebuilder)

    def facts(self, *, filesystem: bool = False, pull: bool = False, rebuild: bool = False) -> ImageFacts:
        """The facts the checks read; ``filesystem=True`` includes the (lazily indexed) filesystem,
        ``pull=True`` each layer's compressed size, ``rebuild=True`` a second build without cache
        and both builds' files (each read once)."""
        rebuilt = self.rebuilt() if rebuild else self._shared.rebuild
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
            secrets=self.secrets() if filesystem else self._shared.secrets,
            base_size=self.base_size,
            engine_arch=self.engine_arch,
            engine_emulates=self._engine.emulates,
            pull=self.pulled_layers() if pull else self._shared.pull,
            file_states=self.file_states() if rebuild else self._shared.file_states,
            rebuild=rebuilt,
        )

    def run(
        self, args: Sequence[str] | None = None, timeout: float | None = None, *, memory: str | None = None
    ) -> RunResult:
        """Run the image as shipped (its ENTRYPOINT and CMD; ``args`` replaces CMD only) in the
        sandbox, wait for it to exit (killed after ``timeout`` seconds), and remove it.
        ``memory`` (``"1g"``) replaces the sandbox's memory limit for this run."""
        if args is not None and not args:
            args = None  # the engine reads an empty command as "the image's CMD"; say what it runs
        argv = (self.config.entrypoint or ()) + (tuple(args) if args is not None else (self.config.cmd or ()))
        self._shared.runs += 1
        name = f"slimimage-{self._session}-{slug(self.name)}-{uuid.uuid4().hex[:8]}"
        seconds = self.default_timeout if timeout is None else timeout
        result = self._runner.run(
            self.id,
            args=args,
            timeout=seconds,
            name=name,
            labels=container_labels(self._session, self._worker, seconds),
            limits=self._limits if memory is None else replace(self._limits, memory=memory),
            argv=argv,
            display=self.name,
        )
        emulation = self.emulation
        return replace(result, emulation=emulation) if emulation else result

    def serve(self, plan: ServicePlan) -> ServiceResult:
        """Run the image as shipped (its ENTRYPOINT and CMD) in the run's sandbox but on a bridge
        network, ``plan.port`` published on 127.0.0.1 only, until it is ready as ``plan`` says (or
        cannot be, or its time is up), and remove it."""
        self._shared.runs += 1
        name = f"slimimage-{self._session}-{slug(self.name)}-{uuid.uuid4().hex[:8]}"
        healthcheck = self.config.healthcheck
        result = self._runner.serve(
            self.id,
            plan=plan,
            name=name,
            labels=container_labels(self._session, self._worker, plan.deadline(healthcheck)),
            limits=self._limits,
            argv=self.config.argv,
            healthcheck=healthcheck,
            display=self.name,
        )
        emulation = self.emulation
        return replace(result, emulation=emulation) if emulation else result


@dataclass
class _Lazy:
    """What a BuiltImage learns on demand, shared by its named twins."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    layers: tuple[LayerIndex, ...] | None = None
    filesystem: FileSystem | None = None
    waste: WasteReport | None = None
    secrets: tuple[SecretFinding, ...] | None = None
    runs: int = 0
    pull: tuple[PulledLayer, ...] | None = None
    file_states: Mapping[str, FileState] | None = None
    rebuild: Rebuild | None = None


_SEPARATOR = re.compile(r"[._]|__|-+")
"""The separators Docker allows between alphanumerics in a repository path component."""


def slug(text: str) -> str:
    """``text`` as a repository path component (also fine in a container name): lowercase
    alphanumerics joined by ``.``, ``_``, ``__`` or dashes, starting and ending alphanumeric;
    any other run of characters becomes one dash (``_hello`` -> ``hello``, ``a___b`` -> ``a-b``)."""

    def separator(match: re.Match[str]) -> str:
        return match.group() if _SEPARATOR.fullmatch(match.group()) else "-"

    slug = re.sub(r"[^a-z0-9]+", separator, text.lower()[:100])
    return slug.strip("._-") or "image"
