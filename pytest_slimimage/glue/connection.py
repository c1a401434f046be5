"""The session's engine: connected on first need, the builders, the archived images loaded for
runs, whether the engine still answers (:class:`~pytest_slimimage.engine.health.EngineWatch`),
the reaper run once on first use, and what the end of the session removes there.

The engine side (docker-py) is imported when a test first needs an image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.errors import EngineLost, EngineUnavailable
from pytest_slimimage.glue.settings import Settings
from pytest_slimimage.glue.summary import Summary
from pytest_slimimage.labels import LABEL_SESSION
from pytest_slimimage.owner import Owner, claim_session_dir

if TYPE_CHECKING:
    from pytest_slimimage.engine.archive import ArchiveImages
    from pytest_slimimage.engine.builderchoice import BuilderChoice
    from pytest_slimimage.engine.builderset import BuilderSet
    from pytest_slimimage.engine.builds import ImageBuilder
    from pytest_slimimage.engine.client import Engine
    from pytest_slimimage.engine.health import EngineWatch
    from pytest_slimimage.engine.image import BuiltImage
    from pytest_slimimage.glue.progress import BuildDisplay

__all__ = ["ARCHIVE_LOAD_TIMEOUT", "EngineConnection"]

ARCHIVE_LOAD_TIMEOUT = 600
"""Seconds the engine may stay silent while it loads an archived image (its own connection)."""


class EngineConnection:
    """One process's use of the engine ``DOCKER_HOST`` names.

    ``token`` and ``worker`` label what it creates; ``shared_dir`` (owned by ``shared_owner``:
    the process that removes it, an xdist controller for its workers) holds the run's shared build
    records; ``observer`` and ``baseline`` are handed to the images.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        token: str,
        worker: str,
        shared_dir: Path,
        shared_owner: Owner,
        cache_dir: Path | None,
        observer: Callable[[BuiltImage, CheckResult], None],
        baseline: Callable[[str], tuple[BaselineEntry | None, bool]],
    ) -> None:
        self.settings = settings
        self.token = token
        self.worker = worker
        self.shared_dir = shared_dir
        self.shared_owner = shared_owner
        self.cache_dir = cache_dir
        self._observer = observer
        self._baseline = baseline
        self._engine: Engine | EngineUnavailable | None = None
        self._watch: EngineWatch | None = None
        self._builder: ImageBuilder | None = None
        self._builders: BuilderSet | None = None
        self._archives: ArchiveImages | None = None
        self._reaped = False
        self.reaped: list[tuple[str, list[str]]] = []
        """What the reaper removed, by kind (``containers``, ``images``, ``folders``, ``tags``)."""
        self.reaper_problems: list[str] = []

    # ------------------------------------------------------------------------------------ engine
    def watch(self) -> EngineWatch:
        """Whether the engine still answers: one per process, shared by its builds, runs and loads."""
        if self._watch is None:
            from pytest_slimimage.engine.health import EngineWatch

            self._watch = EngineWatch()
        return self._watch

    def engine(self) -> Engine:
        """The engine connection, made on first need (then the reaper runs, once);
        :class:`EngineUnavailable` is remembered."""
        from pytest_slimimage.engine.client import Engine

        if self._engine is None:
            try:
                self._engine = Engine.connect(watch=self.watch())
            except EngineUnavailable as exc:
                self._engine = exc
            else:
                self.reap(self._engine)
        if isinstance(self._engine, EngineUnavailable):
            raise self._engine
        return self._engine

    def reap(self, engine: Engine) -> None:
        """Remove what ended sessions left on ``engine`` and in the temporary folder (once per process)."""
        if self._reaped:
            return
        self._reaped = True
        from pytest_slimimage.engine.reaper import Reaper

        reaped = Reaper(engine, token=self.token).run()
        self.reaped = [
            ("containers", reaped.containers),
            ("images", reaped.images),
            ("folders", reaped.folders),
            ("tags", reaped.pruned),
        ]
        self.reaper_problems = reaped.problems

    def builder(self, progress: BuildDisplay | None = None) -> ImageBuilder:
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
                shared_owner=self.shared_owner,
                run_limits=self.settings.run_limits,
                default_timeout=self.settings.run_timeout,
                build_timeout=self.settings.build_timeout,
                observer=self._observer,
                layer_cache=layer_cache,
                baseline=self._baseline,
                progress=progress.started if progress is not None else None,
                builder=self._builders,
            )
        return self._builder

    @property
    def built(self) -> ImageBuilder | None:
        """The session's builder, if it has made one."""
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

    # ---------------------------------------------------------------------------------- archives
    def archives(self) -> ArchiveImages:
        """The session's archived images (no engine needed; one is connected for a run)."""
        if self._archives is None:
            from pytest_slimimage.analysis.layercache import LayerCache
            from pytest_slimimage.engine.archive import ArchiveImages

            self._archives = ArchiveImages(
                session=self.token,
                worker=self.worker,
                run_limits=self.settings.run_limits,
                default_timeout=self.settings.run_timeout,
                observer=self._observer,
                baseline=self._baseline,
                layer_cache=LayerCache(self.cache_dir) if self.cache_dir is not None else None,
                connect=self._archive_engine,
                watch=self.watch(),
                claim=lambda: claim_session_dir(self.shared_dir, self.shared_owner),
            )
        return self._archives

    def _archive_engine(self) -> Engine:
        """The connection archive loads use (a long timeout of its own); the reaper runs first."""
        from pytest_slimimage.engine.client import Engine

        engine = Engine.connect(timeout=ARCHIVE_LOAD_TIMEOUT, watch=self.watch())
        self.reap(engine)
        return engine

    # ---------------------------------------------------------------------------------------- end
    def end(
        self, own: Summary, *, role: str, workers_used: bool, worker_repositories: Iterable[str], interrupted: bool
    ) -> None:
        """The session's end on the engine, its figures into ``own``: this process's leftover
        containers removed (a controller's: the whole run's); unless on a worker (``role``), the
        run's fixtures' build cache pruned (``worker_repositories``: the workers' fixtures too);
        the images loaded from archives for runs removed; the connections closed. An engine that
        is gone is said so: what the session left there is a later session's reaper's.
        ``interrupted``: what an interrupt stopped is said too (``own.stopped``)."""
        builder = self._builder
        if builder is not None:
            own.used = True
            own.builds, own.reused = builder.builds, builder.reused
            own.cached, own.repositories = sorted(builder.tags), sorted(builder.repositories)
        if interrupted:
            runners = [builder.runner] if builder is not None else []
            runners += [self._archives.runner] if self._archives is not None else []
            for runner in runners:
                runner.cancel_services()  # awaited in a check's thread, which the interrupt did not reach
            own.stopped.extend(f"removed the running container {name}" for r in runners for name in r.interrupted)
            if builder is not None:
                own.stopped.extend(f"stopped the build of {shown}" for shown in builder.interrupted)
        try:
            if builder is not None or (role != "worker" and workers_used):
                engine = builder.engine if builder is not None else self.engine()
                with engine.watch.guard(f"removing what the session made (labelled {LABEL_SESSION}={self.token})"):
                    self._end_on_engine(engine, own, role=role, worker_repositories=worker_repositories)
        except EngineLost:
            watch = self.watch()
            if builder is not None and builder.lost_builds:  # their step containers: a later session's
                from pytest_slimimage.engine.leftovers import write_will

                claim_session_dir(self.shared_dir, self.shared_owner)
                write_will(self.shared_dir, self.worker, builder.lost_builds)
            own.lost.append(
                f"the Docker engine at {watch.address} is gone (it {watch.what}): what this session left there"
                f" ({LABEL_SESSION}={self.token}) is removed by a later session once it answers"
            )
        except Exception as exc:  # a dead engine must not turn the session's end into an INTERNALERROR
            own.errors.append(f"{type(exc).__name__}: {exc} (containers are labelled {LABEL_SESSION}={self.token})")
        finally:
            if self._archives is not None:
                own.errors.extend(self._archives.close())
                if interrupted:
                    own.stopped.extend(f"removed the loaded archive image {tag}" for tag in self._archives.removed)
            if self._engine is not None and not isinstance(self._engine, EngineUnavailable):
                self._engine.close()
        for kind, names in self.reaped:
            getattr(own, f"reaped_{kind}").extend(names)
        own.errors.extend(f"removing what ended sessions left: {problem}" for problem in self.reaper_problems)
        own.used = own.used or self._reaped

    def _end_on_engine(self, engine: Engine, own: Summary, *, role: str, worker_repositories: Iterable[str]) -> None:
        if self._builder is not None:
            own.removed_containers = self._builder.remove_containers()
            if self._builder.lost_builds:  # the engine came back: the lost builds' step containers go now
                from pytest_slimimage.engine.reaper import remove_step_containers

                own.removed_containers += len(remove_step_containers(engine, self._builder.lost_builds))
        if role == "worker":
            return
        own.used = True
        if not self.settings.keep_images:
            from pytest_slimimage.engine.buildcache import BuildCache

            repositories = {*own.repositories, *worker_repositories}
            own.pruned = len(BuildCache(engine).prune(repositories))
        if role == "controller":
            own.removed_containers += engine.remove_containers(self.token, label=LABEL_SESSION)
