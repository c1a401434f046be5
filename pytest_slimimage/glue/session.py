"""Per-session state: settings, the engine connection, the builder, what the checks said about
each image, and the end-of-session work (cleanup, baseline, report files).

Three roles: a plain session does everything; under xdist each worker builds, checks and
removes its own containers, then sends a JSON-safe payload (``config.workeroutput``) that the
controller merges before it prunes the run's fixtures' build cache (the images stay, each
fixture's few most recently used) and writes the baseline and reports.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_slimimage.baseline import Baseline, BaselineEntry, BaselineLayer, load_baseline, write_baseline
from pytest_slimimage.checks.registry import REGISTRY
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.errors import EngineUnavailable, SlimImageError
from pytest_slimimage.glue.settings import Settings
from pytest_slimimage.labels import LABEL_SESSION
from pytest_slimimage.report import ImageRecord, json_report, markdown_report, merge_records, svg_chart

if TYPE_CHECKING:  # the engine side (docker-py) is imported when a test first needs an image
    from pytest_slimimage.engine.builderchoice import BuilderChoice
    from pytest_slimimage.engine.builderset import BuilderSet
    from pytest_slimimage.engine.builds import ImageBuilder
    from pytest_slimimage.engine.client import Engine
    from pytest_slimimage.engine.image import BuiltImage
    from pytest_slimimage.glue.progress import BuildDisplay


@dataclass
class Summary:
    """What the session did with the engine, for the terminal summary; JSON-safe for xdist."""

    builds: int = 0
    """Build calls made."""
    reused: int = 0
    """Images found in the engine's build cache: no build call."""
    checks: int = 0
    failed: int = 0
    pruned: int = 0
    """Older cache tags of the run's fixtures removed (beyond each one's most recently used)."""
    removed_containers: int = 0
    cached: list[str] = field(default_factory=list)
    """The build-cache tags of the images the run built or reused (they stay on the engine)."""
    repositories: list[str] = field(default_factory=list)
    """The cache repositories (one per fixture name) the run used: the ones pruned at its end."""
    errors: list[str] = field(default_factory=list)
    """Cleanup failures."""
    written: list[str] = field(default_factory=list)
    """Files written at the end (baseline, reports)."""
    used: bool = False
    """An engine was connected: there is something to report."""

    def merge(self, data: Mapping[str, Any]) -> None:
        self.used = self.used or bool(data.get("used"))
        for name in ("builds", "reused", "checks", "failed", "pruned", "removed_containers"):
            setattr(self, name, getattr(self, name) + int(data.get(name) or 0))
        for name in ("cached", "repositories", "errors", "written"):
            getattr(self, name).extend(str(x) for x in data.get(name) or ())

    def to_json(self) -> dict[str, Any]:
        return {
            "builds": self.builds,
            "reused": self.reused,
            "checks": self.checks,
            "failed": self.failed,
            "pruned": self.pruned,
            "removed_containers": self.removed_containers,
            "cached": list(self.cached),
            "repositories": list(self.repositories),
            "errors": list(self.errors),
            "written": list(self.written),
            "used": self.used,
        }

    def lines(self, *, keep_images: bool) -> list[str]:
        if not self.used:
            return []
        line = (
            f"slimimage: {self.builds} image build(s), {self.reused} reused,"
            f" {self.checks} check(s) ({self.failed} failed); {len(set(self.cached))} image tag(s) cached, "
        )
        line += "older builds kept (--slimimage-keep-images)" if keep_images else f"{self.pruned} older pruned"
        line += f", {self.removed_containers} leftover container(s) removed"
        return [
            line,
            *(f"slimimage: wrote {path}" for path in self.written),
            *(f"slimimage: cleanup failed: {error}" for error in self.errors),
        ]


class SlimImageSession:
    """State of one pytest process; ``role`` is ``single``, ``controller`` or ``worker``."""

    def __init__(
        self,
        settings: Settings,
        rootdir: Path,
        *,
        role: str = "single",
        token: str | None = None,
        worker: str | None = None,
        shared_dir: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.rootdir = rootdir
        self.role = role
        self.token = token or uuid.uuid4().hex[:10]
        self.worker = worker or self.token
        self.shared_dir = shared_dir or Path(tempfile.gettempdir()) / f"pytest-slimimage-{self.token}"
        self.cache_dir = cache_dir
        self.started = time.time()
        self.exitstatus: int | None = None
        self.records: dict[str, ImageRecord] = {}
        self.worker_records: list[ImageRecord] = []
        self.checks = 0
        self.failed = 0
        self.summary = Summary()
        """This process's figures once the session ends, plus (on an xdist controller) its workers'."""
        self._engine: Engine | EngineUnavailable | None = None
        self._builder: ImageBuilder | None = None
        self._builders: BuilderSet | None = None
        self.progress: BuildDisplay | None = None
        """Where builds show their progress (set at session start; None on an xdist worker)."""
        self._baseline: Baseline | SlimImageError | None = None

    # ------------------------------------------------------------------------------------ engine
    def engine(self) -> Engine:
        """The engine connection, made on first need; :class:`EngineUnavailable` is remembered."""
        from pytest_slimimage.engine.client import Engine

        if self._engine is None:
            try:
                self._engine = Engine.connect()
            except EngineUnavailable as exc:
                self._engine = exc
        if isinstance(self._engine, EngineUnavailable):
            raise self._engine
        return self._engine

    def builder(self) -> ImageBuilder:
        """The session's builder; raises :class:`EngineUnavailable` (once tried, remembered)."""
        from pytest_slimimage.engine.builderset import BuilderSet
        from pytest_slimimage.engine.builds import ImageBuilder

        engine = self.engine()
        if self._builder is None:
            self._builders = BuilderSet(
                engine, default=self.settings.builder, buildx_builder=self.settings.buildx_builder
            )
            layer_cache = None
            if self.cache_dir is not None:
                from pytest_slimimage.analysis.layercache import LayerCache

                layer_cache = LayerCache(self.cache_dir)
            self._builder = ImageBuilder(
                engine,
                session=self.token,
                worker=self.worker,
                shared_dir=self.shared_dir,
                run_limits=self.settings.run_limits,
                default_timeout=self.settings.run_timeout,
                build_timeout=self.settings.build_timeout,
                observer=self.observe,
                layer_cache=layer_cache,
                baseline=self.growth_for,
                progress=self.progress.started if self.progress is not None else None,
                builder=self._builders,
            )
        return self._builder

    def resolve_builder(self, requested: str | None) -> BuilderChoice:
        """The builder a build asking for ``requested`` gets (None: the session's
        ``--slimimage-builder``), chosen once per session; ``buildkit`` that cannot be had raises
        :class:`~pytest_slimimage.engine.builderchoice.BuilderUnavailable` saying why."""
        self.builder()
        if self._builders is None:  # a builder made without one (a test's): the session's default set
            from pytest_slimimage.engine.builderset import BuilderSet

            self._builders = BuilderSet(
                self.engine(), default=self.settings.builder, buildx_builder=self.settings.buildx_builder
            )
        return self._builders.resolve(requested)

    # ---------------------------------------------------------------------------------- baseline
    def baseline(self) -> Baseline | None:
        """The size baseline, read once; None when none is configured. A bad file raises (each time)."""
        if self.settings.baseline is None:
            return None
        if self._baseline is None:
            try:
                self._baseline = load_baseline(self.settings.baseline)
            except SlimImageError as exc:
                self._baseline = exc
        if isinstance(self._baseline, SlimImageError):
            raise self._baseline
        return self._baseline

    def growth_baseline(self, name: str) -> BaselineEntry | None:
        """The baseline entry a ``max_growth`` check compares with; no baseline configured is an
        error (the check could never fail), a missing entry is None (the check fails)."""
        if self.settings.baseline is None:
            raise SlimImageError(
                "max_growth needs a size baseline: --slimimage-baseline PATH or the ini key slimimage_baseline"
                " (record it with --slimimage-update-baseline)"
            )
        return self.baseline_entry(name)

    def growth_for(self, name: str) -> tuple[BaselineEntry | None, bool]:
        """What a ``max_growth`` check on the image ``name`` compares with: its baseline entry
        (see :meth:`growth_baseline`) and whether this session rewrites the baseline."""
        return self.growth_baseline(name), self.settings.update_baseline

    def baseline_entry(self, name: str) -> BaselineEntry | None:
        """The image's baseline entry. A malformed file raises, except when this run rewrites
        it (``--slimimage-update-baseline``, which the error message recommends)."""
        try:
            baseline = self.baseline()
        except SlimImageError:
            if self.settings.update_baseline:
                return None
            raise
        return baseline.get(name) if baseline is not None else None

    # ---------------------------------------------------------------------------------- records
    def _record(self, image: BuiltImage) -> ImageRecord:
        record = self.records.get(image.name)
        if record is None or record.id != image.id:
            record = ImageRecord(
                name=image.name,
                id=image.id,
                size=image.size,
                final_base=image.dockerfile.final_base if image.has_dockerfile else "",
                dockerfile=image.dockerfile.path if image.has_dockerfile else "",
                builder=image.builder,
                layers=[
                    {"instruction": la.instruction, "size": la.size, "from_base": la.from_base}
                    for la in image.layers
                    if la.size
                ],
            )
            self.records[image.name] = record
        if record.baseline_size is None and self.settings.baseline is not None:
            try:
                entry = self.baseline_entry(image.name)
            except SlimImageError:
                entry = None
            record.baseline_size = entry.size if entry is not None else None
        return record

    def observe(self, image: BuiltImage, result: CheckResult) -> None:
        """Every check verdict on a built image comes here (marker, declarative item, assert_*)."""
        record = self._record(image)
        self.checks += 1
        if not result.passed:
            self.failed += 1
            record.failures.setdefault(result.check, result.headline)
        if record.checks.get(result.check) != "failed":
            record.checks[result.check] = "passed" if result.passed else "failed"
        check = REGISTRY.get(result.check) if result.check in REGISTRY else None
        if check is not None:
            record.set_columns(check.record(result))

    def all_records(self) -> list[ImageRecord]:
        """This process's records (images built but never checked included) plus its workers'."""
        own = list(self.records.values())
        if self._builder is not None:
            for image in self._builder.images.values():
                if image.name not in self.records:
                    own.append(self._record(image))
        return merge_records([*own, *self.worker_records])

    # ------------------------------------------------------------------------------------- xdist
    def worker_payload(self) -> dict[str, Any]:
        return {"summary": self.summary.to_json(), "records": [r.to_json() for r in self.all_records()]}

    def merge_worker(self, payload: Mapping[str, Any]) -> None:
        self.summary.merge(payload.get("summary") or {})
        self.worker_records.extend(ImageRecord.from_json(r) for r in payload.get("records") or ())

    # -------------------------------------------------------------------------------------- end
    def finish(self, exitstatus: int | None = None) -> None:
        """The session's end: remove what this process should, then (not on a worker) write files."""
        self.exitstatus = exitstatus
        own = Summary(checks=self.checks, failed=self.failed)
        builder = self._builder
        try:
            if builder is not None:
                own.used = True
                own.builds, own.reused = builder.builds, builder.reused
                own.cached, own.repositories = sorted(builder.tags), sorted(builder.repositories)
                own.removed_containers = builder.remove_containers()
            if self.role != "worker" and (builder is not None or self.summary.used):
                from pytest_slimimage.engine.buildcache import BuildCache

                engine = builder.engine if builder is not None else self.engine()
                own.used = True
                if not self.settings.keep_images:
                    repositories = {*own.repositories, *self.summary.repositories}  # the workers' are merged
                    own.pruned = len(BuildCache(engine).prune(repositories))
                if self.role == "controller":
                    own.removed_containers += engine.remove_containers(self.token, label=LABEL_SESSION)
        except Exception as exc:  # a dead engine must not turn the session's end into an INTERNALERROR
            own.errors.append(f"{type(exc).__name__}: {exc} (containers are labelled {LABEL_SESSION}={self.token})")
        finally:
            if self._engine is not None and not isinstance(self._engine, EngineUnavailable):
                self._engine.close()
        self.summary.merge(own.to_json())
        if self.role != "worker":
            self.write_files()
            # the folder of shared build records is this run's (handed to the workers, who are done)
            shutil.rmtree(self.shared_dir, ignore_errors=True)

    def write_files(self) -> None:
        """The baseline (when updating) and the report files; each one's failure is reported on
        its own, so a bad baseline does not cost the reports."""
        records = self.all_records()
        settings = self.settings
        if settings.update_baseline and settings.baseline is not None and records:
            try:
                try:
                    old = load_baseline(settings.baseline)
                except SlimImageError:  # malformed: this run's entries replace it
                    old = Baseline()
                entries = {
                    r.name: BaselineEntry(
                        r.size,
                        r.final_base,
                        tuple(BaselineLayer(str(la["instruction"]), int(la["size"])) for la in r.layers),
                    )
                    for r in records
                }
                write_baseline(settings.baseline, old.updated(entries))
                self.summary.written.append(f"{settings.baseline} (size baseline, {len(entries)} image(s))")
            except (OSError, SlimImageError) as exc:
                self.summary.errors.append(f"writing the size baseline: {exc}")
        meta: dict[str, Any] = {
            "duration": round(time.time() - self.started, 3),
            "session": self.token,
            "exitstatus": self.exitstatus,
        }
        outputs: list[tuple[Path | None, Callable[[], str]]] = [
            (settings.report, lambda: json_report(records, meta=meta)),
            (settings.markdown, lambda: markdown_report(records)),
            (settings.chart, lambda: svg_chart(records)),
        ]
        for target, render in outputs:
            if target is None:
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                # GitHub's step summary is shared by every step of a job: add to it, never replace it
                append = str(target) == os.environ.get("GITHUB_STEP_SUMMARY") and target.exists()
                with target.open("a" if append else "w", encoding="utf-8") as out:
                    out.write(("\n" if append else "") + render())
                self.summary.written.append(str(target))
            except OSError as exc:
                self.summary.errors.append(f"writing reports: {exc}")
