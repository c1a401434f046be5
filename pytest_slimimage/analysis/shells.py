"""Find shells in an image's filesystem (``no_shell``): by file name, by what an executable is (the
shell markers the layer index found in its bytes, whatever it is named: a renamed busybox), and by
the links that reach a program under a shell's name (``/bin/sh -> busybox``).

A multi-call binary (busybox, toybox) is one program with many names: its links run the applet
they are named for, so only the links named like a shell make it a shell (``/bin/ls -> busybox``
runs ``ls``); any link to a dedicated shell (``/usr/bin/x -> bash``) runs the shell.

Pure: reads a :class:`~pytest_slimimage.facts.FileSystem` (paths, modes, links and ELF markers).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pytest_slimimage.analysis.markers import MULTICALL_MARKERS, SHELL_MARKERS
from pytest_slimimage.facts import FileEntry, FileSystem

__all__ = ["MULTICALL_NAME", "SHELL_NAME", "Shell", "find_shells"]

SHELL_NAME = re.compile(
    r"^(?:sh|bash|rbash|dash|ash|hush|zsh[\d.]*|r?ksh(?:93)?|mksh|lksh|pdksh|oksh|loksh|yash|posh|csh|tcsh|fish)$"
)
"""Basenames of shells (``sh``, ``bash``, ``dash``, ``ash``, ``zsh``, ``ksh`` and their kin)."""
MULTICALL_NAME = re.compile(r"^(?:busybox|toybox)(?:[.-][\w.-]*)?$")
"""Basenames of multi-call binaries (``busybox``, ``busybox.static``, ``toybox``)."""


@dataclass(frozen=True)
class Shell:
    """One shell program of an image, with the links that run it as a shell."""

    path: str
    """The program file (links followed): ``/bin/busybox``."""
    name: str
    """What it is: ``bash``, ``dash``, ``busybox``; a file found by content alone is named by its basename."""
    by: str
    """How it was found: ``name`` (its own name is a shell's), ``content`` (its bytes are a shell's,
    whatever its name) or ``link`` (only a link named like a shell reaches it: ``sh -> toybox``)."""
    links: tuple[str, ...] = ()
    """Symlinks and hard links that run it as a shell, sorted."""
    layer: int = -1
    """The filesystem layer that wrote the program file."""
    multicall: bool = False
    """A multi-call binary (busybox, toybox): a shell through some of its names only."""

    def describe(self) -> str:
        """``/bin/busybox (busybox, a multi-call binary with a shell applet; as /bin/ash, /bin/sh)``."""
        if self.by == "content":
            what = f"{self.name}, a shell by its content"
        elif self.by == "link":
            what = f"{self.name}, run as a shell by its links"
        elif self.multicall:
            what = f"{self.name}, a multi-call binary with a shell applet"
        else:
            what = self.name
        if self.links:
            shown = ", ".join(self.links[:6])
            what += f"; as {shown}" + (f", ... ({len(self.links)} links)" if len(self.links) > 6 else "")
        return f"{self.path} ({what})"


@dataclass
class _Found:
    entry: FileEntry
    name: str
    by: str
    multicall: bool
    links: set[str] = field(default_factory=set)


def _markers(entry: FileEntry) -> tuple[str, ...]:
    return entry.elf.markers if entry.elf is not None else ()


def _program(fs: FileSystem, entry: FileEntry) -> FileEntry | None:
    """The executable file ``entry`` runs: itself, a hard link's target, a symlink's resolution."""
    if entry.kind == "symlink":
        target = fs.resolve(entry.path)
    elif entry.kind == "hardlink":
        target = fs.get(entry.link) or entry
        if target.kind not in ("file", "hardlink"):
            target = entry
    else:
        target = entry
    if target is None or not target.executable:
        return None
    return target


def _multicall(entry: FileEntry) -> bool:
    base = posixpath.basename(entry.path)
    return bool(MULTICALL_MARKERS.intersection(_markers(entry))) or MULTICALL_NAME.match(base) is not None


def _identity(entry: FileEntry) -> tuple[str, str, bool] | None:
    """(name, how found, multi-call) when ``entry``, a program file, is a shell itself."""
    base = posixpath.basename(entry.path)
    markers = _markers(entry)
    multicall = _multicall(entry)
    shell_bytes = bool(SHELL_MARKERS.intersection(markers))
    if shell_bytes:
        name = "busybox" if "busybox" in markers else base
        by = "name" if SHELL_NAME.match(base) or (multicall and MULTICALL_NAME.match(base)) else "content"
        return name, by, multicall
    if SHELL_NAME.match(base):
        return base, "name", multicall
    return None


def find_shells(fs: FileSystem, allow: Iterable[str] = ()) -> tuple[Shell, ...]:
    """Every shell program in ``fs``, sorted by path, with the links that run it as a shell.

    ``allow`` holds glob patterns; a shell is allowed when one matches its name, its path or its
    basename, or one of its links' paths or basenames (``"busybox"``, ``"/bin/sh"``, ``"sh"``)."""
    found: dict[str, _Found] = {}
    for entry in fs:
        if entry.kind not in ("file", "hardlink", "symlink"):
            continue
        program = _program(fs, entry)
        if program is None:
            continue
        identity = _identity(program)
        if program is entry:
            if identity is not None:
                _record(found, program, *identity)
            continue
        named_shell = SHELL_NAME.match(posixpath.basename(entry.path)) is not None
        if named_shell or (identity is not None and not identity[2]):
            if identity is None:  # only a link's name says it is a shell (toybox's sh)
                identity = (posixpath.basename(program.path), "link", _multicall(program))
            _record(found, program, *identity).links.add(entry.path)
    shells = [
        Shell(f.entry.path, f.name, f.by, tuple(sorted(f.links)), f.entry.layer, f.multicall) for f in found.values()
    ]
    allow = tuple(allow)
    return tuple(sorted((s for s in shells if not _allowed(s, allow)), key=lambda s: s.path))


def _record(found: dict[str, _Found], program: FileEntry, name: str, by: str, multicall: bool) -> _Found:
    known = found.get(program.path)
    if known is None:
        known = found[program.path] = _Found(program, name, by, multicall)
    return known


def _allowed(shell: Shell, allow: tuple[str, ...]) -> bool:
    names = {shell.name, shell.path, posixpath.basename(shell.path)}
    for link in shell.links:
        names.update((link, posixpath.basename(link)))
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in allow for name in names)
