"""Two builds of one Dockerfile compared file by file (``reproducible``): what differs, and the
usual reasons why.

An image's files are its merged filesystem (:func:`~pytest_slimimage.analysis.layers.merge_layers`,
whiteouts applied) with each path's owner, modification time and content digest taken from a scan
of the layer that last wrote it (:mod:`.layerscan`). Pure.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pytest_slimimage.analysis.layers import LayerIndex, merge_layers
from pytest_slimimage.analysis.layerscan import LayerScan
from pytest_slimimage.facts import FileState

__all__ = ["ADDED", "MISSING", "Difference", "compare", "file_states", "likely_causes"]

ADDED = "only in the rebuild"
MISSING = "not in the rebuild"


def file_states(indexes: Sequence[LayerIndex], scans: Sequence[LayerScan]) -> dict[str, FileState]:
    """Every path of the image's final filesystem (``indexes`` merged) with its state as the
    layer that last wrote it holds it (``scans``, parallel to ``indexes``)."""
    merged = merge_layers(indexes)
    out: dict[str, FileState] = {}
    for path, entry in merged.entries.items():
        scan = scans[entry.layer] if 0 <= entry.layer < len(scans) else None
        state = scan.files.get(path) if scan is not None and scan.files is not None else None
        if state is None:  # the scan should have it: fall back to what the index knows
            state = FileState(entry.kind, entry.mode, -1, -1, entry.size, link=entry.link)
        out[path] = replace(state, layer=entry.layer)
    return out


@dataclass(frozen=True)
class Difference:
    """One path the two builds disagree on."""

    path: str
    aspects: tuple[str, ...]
    """What differs: ``content``, ``mode``, ``owner``, ``type``, ``link``, ``mtime``, or :data:`ADDED`
    / :data:`MISSING` for a path only one build has."""
    first: FileState | None
    second: FileState | None

    @property
    def layer(self) -> int:
        """The layer of the first build that wrote the path (of the rebuild, when only it has it)."""
        state = self.first or self.second
        return state.layer if state is not None else -1

    def describe(self) -> str:
        """``content differs (12 B -> 12 B)``, ``mode 0644 -> 0755``, ``owner 0:0 -> 1000:1000``, ..."""
        a, b = self.first, self.second
        if a is None:
            return ADDED
        if b is None:
            return MISSING
        parts = []
        for aspect in self.aspects:
            if aspect == "content":
                parts.append(f"content differs ({a.size} B -> {b.size} B)" if a.size != b.size else "content differs")
            elif aspect == "mode":
                parts.append(f"mode {a.mode:04o} -> {b.mode:04o}")
            elif aspect == "owner":
                parts.append(f"owner {a.uid}:{a.gid} -> {b.uid}:{b.gid}")
            elif aspect == "type":
                parts.append(f"{a.kind} -> {b.kind}")
            elif aspect == "link":
                parts.append(f"link {a.link} -> {b.link}")
            elif aspect == "mtime":
                parts.append(f"mtime {_when(a.mtime)} -> {_when(b.mtime)} UTC")
        return ", ".join(parts)


def _when(seconds: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def _aspects(a: FileState, b: FileState, strict: bool) -> tuple[str, ...]:
    out = []
    if a.kind != b.kind:
        out.append("type")
    elif a.kind in ("file", "hardlink") and (a.digest != b.digest or a.size != b.size):
        out.append("content")
    if a.link != b.link and a.kind == b.kind and a.kind in ("symlink", "hardlink"):
        out.append("link")
    if a.mode != b.mode:
        out.append("mode")
    if (a.uid, a.gid) != (b.uid, b.gid):
        out.append("owner")
    if strict and a.mtime != b.mtime:
        out.append("mtime")
    return tuple(out)


def compare(
    first: Mapping[str, FileState], second: Mapping[str, FileState], *, strict: bool = False
) -> list[Difference]:
    """The paths whose state differs between two builds, sorted by path: type, content digest,
    link target, mode and owner always; modification time too when ``strict``."""
    out = []
    for path in sorted(set(first) | set(second)):
        a, b = first.get(path), second.get(path)
        if a is None or b is None:
            out.append(Difference(path, (ADDED if a is None else MISSING,), a, b))
            continue
        aspects = _aspects(a, b, strict)
        if aspects:
            out.append(Difference(path, aspects, a, b))
    return out


# ------------------------------------------------------------------------------------ the causes
@dataclass(frozen=True)
class _Cause:
    patterns: tuple[str, ...]
    text: str


_CAUSES = (
    _Cause(
        ("*.pyc", "*/__pycache__/*"),
        "Python bytecode (.pyc) records its source's mtime: compile with"
        " `python -m compileall --invalidation-mode unchecked-hash` (or set SOURCE_DATE_EPOCH), or do not ship .pyc",
    ),
    _Cause(
        (
            "/var/lib/apt/lists/*",
            "/var/cache/apt/*",
            "/var/cache/debconf/*",
            "/var/log/*",
            "/var/lib/dpkg/*-old",
            "/etc/ld.so.cache",
            "/var/cache/ldconfig/*",
        ),
        "package manager state (apt lists, caches, logs, ld.so.cache) changes with every install:"
        " `rm -rf /var/lib/apt/lists/* /var/cache/* /var/log/*` in the same RUN that installs",
    ),
    _Cause(
        ("*.so", "*.so.*", "*.a", "*.o", "/usr/bin/*", "/usr/local/bin/*", "/bin/*", "/app/*", "/hello", "/*/bin/*"),
        "compiled files embed build ids, paths or dates (__DATE__, __TIME__, a random build id):"
        " build with SOURCE_DATE_EPOCH set, -ffile-prefix-map=$PWD=. and -Wl,--build-id=none (Go: -trimpath"
        " -buildvcs=false)",
    ),
)
_TIMESTAMPS = (
    "a RUN step writes the time or something random into a file (`date > /built-at`, a version stamp, a"
    " generated id): derive it from SOURCE_DATE_EPOCH or a build ARG instead of the clock"
)
_MTIMES = (
    "modification times differ (strict): fix them with SOURCE_DATE_EPOCH and `touch -d @$SOURCE_DATE_EPOCH`"
    ' on what a RUN writes, or compare without reproducible="strict"'
)
_OWNERS = "owners or modes differ: set them explicitly (COPY --chown/--chmod, chmod in the RUN that writes)"


def likely_causes(differences: Iterable[Difference]) -> list[str]:
    """The usual reasons behind ``differences``, most frequent first, each once."""
    counts: dict[str, int] = {}
    order: list[str] = []
    for difference in differences:
        text = _cause(difference)
        if text not in counts:
            order.append(text)
        counts[text] = counts.get(text, 0) + 1
    return sorted(order, key=lambda text: (-counts[text], order.index(text)))


def _cause(difference: Difference) -> str:
    aspects = set(difference.aspects)
    for cause in _CAUSES:
        if any(fnmatch.fnmatchcase(difference.path, pattern) for pattern in cause.patterns):
            return cause.text
    if aspects == {"mtime"}:
        return _MTIMES
    if aspects and aspects <= {"mode", "owner", "mtime"}:
        return _OWNERS
    return _TIMESTAMPS
