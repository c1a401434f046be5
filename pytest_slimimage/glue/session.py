"""Per-session state: one :class:`SlimImageSession` per pytest process, which ties together the
parts that each do one job -- the engine and its builds (:mod:`.connection`), what the checks
said (:mod:`.records`), the size baseline (:mod:`.baselines`), the files written at the end
(:mod:`.outputs`), the figures shown (:mod:`.summary`) and the signals that end a session in
order (:mod:`.signals`) -- and runs its end.

Three roles: a plain session does everything; under xdist each worker builds, checks and
removes its own containers, then sends a JSON-safe payload (``config.workeroutput``) that the
controller merges before it prunes the run's fixtures' build cache (the images stay, each
fixture's few most recently used) and writes the baseline and reports.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_slimimage.baseline import Baseline, BaselineEntry
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.glue.baselines import BaselineReader
from pytest_slimimage.glue.connection import EngineConnection
from pytest_slimimage.glue.outputs import write_outputs
from pytest_slimimage.glue.records import ImageRecords
from pytest_slimimage.glue.settings import Settings
from pytest_slimimage.glue.signals import SignalGuard
from pytest_slimimage.glue.summary import Summary
from pytest_slimimage.owner import Owner, session_dir
from pytest_slimimage.report import ImageRecord

if TYPE_CHECKING:  # the engine side (docker-py) is imported when a test first needs an image
    from pytest_slimimage.engine.archive import ArchiveImages
    from pytest_slimimage.engine.builderchoice import BuilderChoice
    from pytest_slimimage.engine.builds import ImageBuilder
    from pytest_slimimage.engine.client import Engine
    from pytest_slimimage.engine.image import BuiltImage
    from pytest_slimimage.glue.progress import BuildDisplay

__all__ = ["SlimImageSession", "Summary"]


class SlimImageSession:
    """State of one pytest process; ``role`` is ``single``, ``controller`` or ``worker``.

    ``shared_dir`` is the run's temporary folder (``$TMPDIR/pytest-slimimage-<token>``, made by the
    first build that needs it), ``owner`` the process that removes it at the end (an xdist
    controller, for its workers)."""

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
        owner: Owner | None = None,
    ) -> None:
        self.settings = settings
        self.rootdir = rootdir
        self.role = role
        self.token = token or uuid.uuid4().hex[:10]
        self.worker = worker or self.token
        self.shared_dir = shared_dir or session_dir(self.token)
        self.owner = owner or Owner.current()
        self.cache_dir = cache_dir
        self.started = time.time()
        self.exitstatus: int | None = None
        self.summary = Summary()
        """This process's figures once the session ends, plus (on an xdist controller) its workers'."""
        self.progress: BuildDisplay | None = None
        """Where builds show their progress (set at session start; None on an xdist worker)."""
        self.signals = SignalGuard()
        self.baselines = BaselineReader(settings.baseline, update=settings.update_baseline)
        self.records = ImageRecords(self.baselines.entry, has_baseline=settings.baseline is not None)
        self.connection = EngineConnection(
            settings,
            token=self.token,
            worker=self.worker,
            shared_dir=self.shared_dir,
            shared_owner=self.owner,
            cache_dir=cache_dir,
            observer=self.observe,
            baseline=self.baselines.growth_for,
        )

    # ------------------------------------------------------------------------------------ engine
    def engine(self) -> Engine:
        """The engine connection, made on first need; :class:`EngineUnavailable` is remembered."""
        return self.connection.engine()

    def builder(self) -> ImageBuilder:
        """The session's builder; raises :class:`EngineUnavailable` (once tried, remembered)."""
        return self.connection.builder(self.progress)

    def resolve_builder(self, requested: str | None) -> BuilderChoice:
        """The builder a build asking for ``requested`` gets (see :meth:`EngineConnection.resolve_builder`)."""
        self.builder()
        return self.connection.resolve_builder(requested)

    def archives(self) -> ArchiveImages:
        """The session's archived images (images built elsewhere, loaded for runs only)."""
        return self.connection.archives()

    # ---------------------------------------------------------------------------------- baseline
    def baseline(self) -> Baseline | None:
        return self.baselines.baseline()

    def growth_for(self, name: str) -> tuple[BaselineEntry | None, bool]:
        return self.baselines.growth_for(name)

    def baseline_entry(self, name: str) -> BaselineEntry | None:
        return self.baselines.entry(name)

    # ----------------------------------------------------------------------------------- records
    def observe(self, image: BuiltImage, result: CheckResult) -> None:
        """Every check verdict on a built image comes here (marker, declarative item, assert_*)."""
        self.records.observe(image, result)

    def all_records(self) -> list[ImageRecord]:
        """This process's records (images built but never checked included) plus its workers'."""
        built = self.connection.built
        return self.records.all(built.images.values() if built is not None else ())

    # ------------------------------------------------------------------------------------- xdist
    def worker_payload(self) -> dict[str, Any]:
        return {"summary": self.summary.to_json(), "records": [r.to_json() for r in self.all_records()]}

    def merge_worker(self, payload: Mapping[str, Any]) -> None:
        self.summary.merge(payload.get("summary") or {})
        self.records.merge_worker(payload.get("records") or ())

    # -------------------------------------------------------------------------------------- end
    def finish(self, exitstatus: int | None = None) -> None:
        """The session's end: remove what this process should, then (not on a worker) write files.
        Signals no longer interrupt from here on (the cleanup runs to its end)."""
        self.signals.disarm()
        self.exitstatus = self.signals.exit_status or exitstatus  # the process's: 128 + a signal's number
        # a signal, or pytest's own KeyboardInterrupt (Ctrl-C): say what was stopped
        interrupted = self.signals.received is not None or exitstatus == pytest.ExitCode.INTERRUPTED
        own = Summary(checks=self.records.checks, failed=self.records.failed)
        self.connection.end(
            own,
            role=self.role,
            workers_used=self.summary.used,
            worker_repositories=self.summary.repositories,  # the workers' are merged
            interrupted=interrupted,
        )
        # the folder of shared build records is this run's (handed to the workers, who are done);
        # one that holds a will (what a lost engine kept) is a later session's reaper's
        if self.role != "worker" and self.shared_dir.exists() and not _has_will(self.shared_dir):
            shutil.rmtree(self.shared_dir, ignore_errors=True)
            if interrupted:
                own.stopped.append(f"removed the temporary folder {self.shared_dir}")
        if self.signals.received is not None or own.stopped:  # (not a collection error's "Interrupted")
            own.signal = self.signals.name or "an interrupt"
            own.exit_status = self.signals.exit_status or exitstatus
        self.summary.merge(own.to_json())
        if self.role != "worker":
            self.write_files()

    def write_files(self) -> None:
        """The baseline (when updating) and the report files; each one's failure is reported on
        its own, so a bad baseline does not cost the reports."""
        meta = {"duration": round(time.time() - self.started, 3), "session": self.token, "exitstatus": self.exitstatus}
        written, errors = write_outputs(self.settings, self.all_records(), meta)
        self.summary.written.extend(written)
        self.summary.errors.extend(errors)


def _has_will(folder: Path) -> bool:
    from pytest_slimimage.engine.leftovers import has_will

    return has_will(folder)
