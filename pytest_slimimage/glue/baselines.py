"""The session's size baseline, as ``max_growth`` and the reports read it: :class:`BaselineReader`
reads the file once (a malformed one is an error each time it is asked, except in a run that
rewrites it)."""

from __future__ import annotations

from pathlib import Path

from pytest_slimimage.baseline import Baseline, BaselineEntry, load_baseline
from pytest_slimimage.errors import SlimImageError

__all__ = ["BaselineReader"]


class BaselineReader:
    """The baseline at ``path`` (None: none configured); ``update``: this run rewrites it."""

    def __init__(self, path: Path | None, *, update: bool) -> None:
        self.path = path
        self.update = update
        self._baseline: Baseline | SlimImageError | None = None

    def baseline(self) -> Baseline | None:
        """The size baseline, read once; None when none is configured. A bad file raises (each time)."""
        if self.path is None:
            return None
        if self._baseline is None:
            try:
                self._baseline = load_baseline(self.path)
            except SlimImageError as exc:
                self._baseline = exc
        if isinstance(self._baseline, SlimImageError):
            raise self._baseline
        return self._baseline

    def growth_baseline(self, name: str) -> BaselineEntry | None:
        """The baseline entry a ``max_growth`` check compares with; no baseline configured is an
        error (the check could never fail), a missing entry is None (the check fails)."""
        if self.path is None:
            raise SlimImageError(
                "max_growth needs a size baseline: --slimimage-baseline PATH or the ini key slimimage_baseline"
                " (record it with --slimimage-update-baseline)"
            )
        return self.entry(name)

    def growth_for(self, name: str) -> tuple[BaselineEntry | None, bool]:
        """What a ``max_growth`` check on the image ``name`` compares with: its baseline entry
        (see :meth:`growth_baseline`) and whether this session rewrites the baseline."""
        return self.growth_baseline(name), self.update

    def entry(self, name: str) -> BaselineEntry | None:
        """The image's baseline entry. A malformed file raises, except when this run rewrites
        it (``--slimimage-update-baseline``, which the error message recommends)."""
        try:
            baseline = self.baseline()
        except SlimImageError:
            if self.update:
                return None
            raise
        return baseline.get(name) if baseline is not None else None
