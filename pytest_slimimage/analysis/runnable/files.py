"""What the kernel and the ELF loader read off one file of the image, shared by the command lookup
(:mod:`.commands`) and the library search (:mod:`.libraries`): architecture names, the facts of a
hard link, and where else in the image a name is."""

from __future__ import annotations

import difflib
import posixpath

from pytest_slimimage.facts import FileEntry, FileSystem

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "armhf": "arm",
    "armel": "arm",
    "armv7l": "arm",
    "armv6l": "arm",
}


def arch(name: str) -> str:
    """The engine's name for an architecture: ``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``."""
    lowered = name.lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def is_regular(entry: FileEntry | None) -> bool:
    """A file the kernel can read (a hard link is one), not a directory or a device."""
    return entry is not None and entry.kind in ("file", "hardlink")


def content(fs: FileSystem, entry: FileEntry) -> FileEntry:
    """The entry carrying a hard link's ELF/#! facts (the link's target, when the link has none)."""
    if entry.kind == "hardlink" and entry.elf is None and entry.shebang is None:
        target = fs.get(entry.link)
        if target is not None:
            return target
    return entry


def is_musl(interp: str) -> bool:
    """Whether a PT_INTERP names musl's loader (``/lib/ld-musl-x86_64.so.1``)."""
    return posixpath.basename(interp).startswith("ld-musl-")


def elsewhere(fs: FileSystem, name: str, *, exclude: str, executable_only: bool = True) -> tuple[list[str], list[str]]:
    """Up to three paths in the image with ``name``'s basename (runnable ones first, then the
    shallowest), else up to three executables with a similar name (none when not ``executable_only``)."""
    base = posixpath.basename(name.rstrip("/"))
    same: list[tuple[bool, int, str]] = []
    executables: dict[str, list[str]] = {}
    for entry in fs:
        if entry.kind == "dir" or entry.path == exclude:
            continue
        entry_base = posixpath.basename(entry.path)
        if entry_base == base:
            reached = fs.resolve(entry.path)
            runnable = reached is not None and reached.executable
            same.append((not runnable, entry.path.count("/"), entry.path))
        elif entry.executable and executable_only:
            executables.setdefault(entry_base, []).append(entry.path)
    if same:
        return [path for _, _, path in sorted(same)[:3]], []
    close = difflib.get_close_matches(base, list(executables), n=3, cutoff=0.6) if base else []
    return [], [path for b in close for path in sorted(executables[b])][:3]
