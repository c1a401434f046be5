"""What the session did with the engine, for the terminal summary: :class:`Summary`, JSON-safe
(an xdist worker sends its own; the controller merges them), and its ``slimimage:`` lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary"]

_COUNTS = ("builds", "reused", "checks", "failed", "pruned", "removed_containers")
_LISTS = (
    "cached",
    "repositories",
    "errors",
    "written",
    "reaped_containers",
    "reaped_images",
    "reaped_folders",
    "reaped_tags",
    "stopped",
    "lost",
)


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
    reaped_containers: list[str] = field(default_factory=list)
    """Containers of ended sessions the reaper removed (names)."""
    reaped_images: list[str] = field(default_factory=list)
    """Images ended sessions had loaded from archives or rebuilt, untagged by the reaper."""
    reaped_folders: list[str] = field(default_factory=list)
    """Temporary folders of ended sessions the reaper removed."""
    reaped_tags: list[str] = field(default_factory=list)
    """Build-cache tags beyond the bound, of the fixtures ended sessions had built."""
    stopped: list[str] = field(default_factory=list)
    """What a signal's orderly end stopped or removed (``the running container X``, ...)."""
    signal: str = ""
    """The signal that ended the session (``SIGTERM``), if one did."""
    exit_status: int | None = None
    """The exit status the signal gives the process."""
    lost: list[str] = field(default_factory=list)
    """The engine's loss, when it went away or froze during the session."""

    def merge(self, data: Mapping[str, Any]) -> None:
        self.used = self.used or bool(data.get("used"))
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + int(data.get(name) or 0))
        for name in _LISTS:
            getattr(self, name).extend(str(x) for x in data.get(name) or ())
        if data.get("signal") and not self.signal:
            self.signal = str(data["signal"])
            status = data.get("exit_status")
            self.exit_status = int(status) if status is not None else None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        data.update({name: list(getattr(self, name)) for name in _LISTS})
        data.update(used=self.used, signal=self.signal, exit_status=self.exit_status)
        return data

    def lines(self, *, keep_images: bool) -> list[str]:
        if not self.used:  # nothing done with the engine: only a signal's end is worth a line
            return self._signal_lines()
        line = (
            f"slimimage: {self.builds} image build(s), {self.reused} reused,"
            f" {self.checks} check(s) ({self.failed} failed); {len(set(self.cached))} image tag(s) cached, "
        )
        line += "older builds kept (--slimimage-keep-images)" if keep_images else f"{self.pruned} older pruned"
        line += f", {self.removed_containers} leftover container(s) removed"
        return [
            line,
            *self._reaped_lines(),
            *self._signal_lines(),
            *(f"slimimage: {lost}" for lost in dict.fromkeys(self.lost)),
            *(f"slimimage: wrote {path}" for path in self.written),
            *(f"slimimage: cleanup failed: {error}" for error in self.errors),
        ]

    def _reaped_lines(self) -> list[str]:
        kinds = [
            (len(set(self.reaped_containers)), "container", "containers"),
            (len(set(self.reaped_folders)), "temporary folder", "temporary folders"),
            (len(set(self.reaped_images)), "loaded or rebuilt image", "loaded or rebuilt images"),
            (len(set(self.reaped_tags)), "build-cache tag beyond the bound", "build-cache tags beyond the bound"),
        ]
        parts = [f"{n} {one if n == 1 else many}" for n, one, many in kinds if n]
        if not parts:
            return []
        return [f"slimimage: removed {_and(parts)} left by ended sessions"]

    def _signal_lines(self) -> list[str]:
        if not self.signal:
            return []
        by_verb: dict[str, list[str]] = {}
        for entry in dict.fromkeys(self.stopped):  # "removed the running container X", "stopped the build of Y"
            verb, _, what = entry.partition(" ")
            by_verb.setdefault(verb, []).append(what)
        said = "; ".join(f"{verb} {_and(things)}" for verb, things in sorted(by_verb.items(), reverse=True))
        return [f"slimimage: stopped by {self.signal} (exit status {self.exit_status}): {said or 'nothing to remove'}"]


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
