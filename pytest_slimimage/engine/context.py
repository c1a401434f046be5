"""A build's context as a builder receives it: the files ``.dockerignore`` lets through (docker-py's
own matcher; the Dockerfile and ``.dockerignore`` are always sent, as the docker CLI sends them),
their size (a large context is named with its largest files), and the context as a tar made while
it is sent (:class:`ContextStream`): nothing is written to disk, whatever the context's size.

Each member's header is what the docker CLI writes (Go's ``archive/tar`` through moby's
``pkg/archive``): the file type in the mode (``0o100644``, not ``0o644``), uid and gid 0, the
owner's names, whole-second times. The legacy builder's COPY cache hashes these headers, so an
image built here has the id ``docker build`` gives it.

File names are taken as the file system has them: a name that is not UTF-8 (``b"caf\\xe9.txt"``,
legal on Linux) is a ``str`` with surrogate escapes here, and is sent as its original bytes.
"""

from __future__ import annotations

import grp
import hashlib
import heapq
import os
import pwd
import stat
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import exclude_paths

from pytest_slimimage.errors import ImageBuildError
from pytest_slimimage.sizes import format_size

__all__ = [
    "LARGE_CONTEXT",
    "BuildContext",
    "ContextEntry",
    "ContextStream",
    "StreamCancelled",
    "ignore_patterns",
    "large_context_warning",
]

LARGE_CONTEXT = 100_000_000
"""Bytes (100 MB) over which a context is worth a warning: every build sends it, every key reads it."""
LARGEST_SHOWN = 3
CHUNK = 1 << 20
"""Bytes the stream hands over at a time (a file is read this much at a time, never whole)."""
BLOCK = tarfile.BLOCKSIZE
DOCKERIGNORE = ".dockerignore"


class StreamCancelled(Exception):
    """The stream was cancelled (the build's time was up): the request sending it is abandoned."""


@dataclass(frozen=True)
class ContextEntry:
    """One file, directory, link or special file of the context."""

    name: str
    """Relative to the context, ``/``-separated, as the file system spells it (see the module)."""
    size: int
    """Bytes of a regular file; 0 for anything else."""


def ignore_patterns(root: Path) -> list[str]:
    """The patterns of ``root/.dockerignore`` (blank lines and ``#`` comments dropped), as docker-py
    and the docker CLI read them; none without the file."""
    path = root / DOCKERIGNORE
    if not path.is_file():
        return []
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _walk_order(name: str) -> list[bytes]:
    """The order Go's ``filepath.Walk`` (the docker CLI) visits names in: per directory, by bytes."""
    return [os.fsencode(part) for part in name.split("/")]


@dataclass(frozen=True)
class BuildContext:
    """What a build sends: ``root``'s files after ``.dockerignore``, and the Dockerfile as the engine
    is told its name (its path in the context; a Dockerfile outside the context is sent under a
    name of its own, ``.dockerfile.<digest>``, and ``.dockerignore`` then names it, as the docker
    CLI does, so that the engine drops both before a ``COPY .``)."""

    root: Path
    dockerfile: str
    """The ``dockerfile`` parameter of the engine's build: a path inside the context."""
    entries: tuple[ContextEntry, ...]
    """In the order they are sent (the CLI's)."""
    extra: tuple[tuple[str, bytes], ...] = ()
    """Members made here rather than read from ``root`` (a Dockerfile from outside, ``.dockerignore``)."""

    @classmethod
    def scan(cls, root: Path, dockerfile: str | os.PathLike[str] = "Dockerfile") -> BuildContext:
        """The context at ``root`` for ``dockerfile`` (relative to ``root`` unless absolute): a walk
        of the directory that reads no file but ``.dockerignore`` (and a Dockerfile from outside)."""
        root = Path(root)
        path = Path(dockerfile)
        path = path if path.is_absolute() else root / path
        patterns = ignore_patterns(root)
        extra: tuple[tuple[str, bytes], ...] = ()
        inside = os.path.relpath(path, root)
        if inside == os.pardir or inside.startswith(os.pardir + os.sep):
            content = path.read_bytes()
            name = f".dockerfile.{hashlib.sha256(content).hexdigest()[:20]}"
            ignore = (root / DOCKERIGNORE).read_bytes() if (root / DOCKERIGNORE).is_file() else b""
            extra = ((name, content), (DOCKERIGNORE, ignore + f"\n{DOCKERIGNORE}\n{name}\n".encode()))
            sent_as = name
        else:
            sent_as = inside.replace(os.sep, "/")
        names = exclude_paths(str(root), list(patterns), dockerfile=sent_as)
        replaced = {name for name, _ in extra}
        entries = []
        for name in sorted(names, key=_walk_order):
            if name in replaced:
                continue
            try:
                info = os.lstat(root / name)
            except FileNotFoundError:  # gone since the walk listed it
                continue
            entries.append(ContextEntry(name, info.st_size if stat.S_ISREG(info.st_mode) else 0))
        return cls(root, sent_as, tuple(entries), extra)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the files read from ``root`` (not the members made here)."""
        return tuple(entry.name for entry in self.entries)

    @property
    def size(self) -> int:
        """Bytes of file content sent (a hard link's second name sends none, but is counted: the
        walk does not look for links)."""
        return sum(entry.size for entry in self.entries) + sum(len(data) for _, data in self.extra)

    def largest(self, count: int = LARGEST_SHOWN) -> list[ContextEntry]:
        """The ``count`` largest files, largest first."""
        return heapq.nlargest(count, (e for e in self.entries if e.size), key=lambda e: (e.size, e.name))


def large_context_warning(context: BuildContext, shown: str, *, limit: int = LARGE_CONTEXT) -> str | None:
    """The warning for a context over ``limit`` bytes (None when it is not), naming its size, its
    largest files and ``.dockerignore``; ``shown`` is the context's directory as messages show it."""
    size = context.size
    if size <= limit:
        return None
    files = ", ".join(f"{_shown_name(e.name)} ({format_size(e.size)})" for e in context.largest())
    has_ignore = (context.root / DOCKERIGNORE).is_file()
    ignore = f"{shown.rstrip('/')}/{DOCKERIGNORE}"
    return "\n".join(
        [
            f"build context {shown} is {format_size(size)} after .dockerignore (over {format_size(limit)}): every"
            " build sends all of it to the engine, and every session reads all of it for the image's key",
            f"  largest files: {files}",
            f"  hint: list what the image does not need in {ignore}" + ("" if has_ignore else " (there is none yet)"),
        ]
    )


def _shown_name(name: str) -> str:
    """A name for a message: bytes that are not UTF-8 shown as ``\\xe9``."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


# ------------------------------------------------------------------------------------ the stream
class _Owners:
    """User and group names by id, looked up once each (as Go's ``archive/tar`` does)."""

    def __init__(self) -> None:
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    def user(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = ""
        return self._users[uid]

    def group(self, gid: int) -> str:
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = ""
        return self._groups[gid]


def header(info: tarfile.TarInfo, mode: int) -> bytes:
    """``info``'s header blocks (PAX where a field needs it: a long or non-UTF-8 name), with ``mode``
    written whole: Python's ``tarfile`` keeps only the permission bits (``0o644``), the docker CLI
    writes the file type too (``0o100644``)."""
    buf = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    block = bytearray(buf[-BLOCK:])  # the member's own header comes last, after any PAX header
    block[100:108] = b"%07o\0" % mode
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return buf[:-BLOCK] + bytes(block)


_TYPES = {
    stat.S_IFDIR: tarfile.DIRTYPE,
    stat.S_IFLNK: tarfile.SYMTYPE,
    stat.S_IFIFO: tarfile.FIFOTYPE,
    stat.S_IFCHR: tarfile.CHRTYPE,
    stat.S_IFBLK: tarfile.BLKTYPE,
    stat.S_IFREG: tarfile.REGTYPE,
}


class ContextStream:
    """The context as a tar, made while it is read: iterate it for its bytes (chunks of at most
    about :data:`CHUNK`), e.g. as the body of the engine's build request. Nothing is written to
    disk, and no file is held in memory whole.

    :meth:`cancel` (from any thread) makes the next chunk raise :class:`StreamCancelled`; a file
    that cannot be read, or shrinks while it is sent, raises :class:`ImageBuildError` naming it,
    also kept as :attr:`error` (an HTTP client may wrap what a request body raises)."""

    def __init__(self, context: BuildContext, *, display: str = "", chunk: int = CHUNK) -> None:
        self.context = context
        self.display = display or str(context.root / context.dockerfile)
        self.chunk = chunk
        self.sent = 0
        """Bytes handed over so far."""
        self.error: ImageBuildError | None = None
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __iter__(self) -> Iterator[bytes]:
        pending = bytearray()
        for data in self._blocks():
            pending += data
            if len(pending) >= self.chunk:
                yield self._hand_over(pending)
                pending = bytearray()
        pending += b"\0" * (2 * BLOCK)  # the end of the archive
        yield self._hand_over(pending)

    def _hand_over(self, data: bytearray) -> bytes:
        if self._cancelled.is_set():
            raise StreamCancelled()
        self.sent += len(data)
        return bytes(data)

    def _blocks(self) -> Iterator[bytes]:
        owners = _Owners()
        seen: dict[tuple[int, int], str] = {}
        root = self.context.root
        for entry in self.context.entries:
            path = root / entry.name
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue  # removed since the scan: not sent, as if it had not been there
            member = self._member(entry.name, path, info, owners, seen)
            if member is None:
                continue  # a socket: the docker CLI skips them too
            yield header(member, info.st_mode)
            if member.type == tarfile.REGTYPE:
                yield from self._content(entry.name, path, member.size)
        for name, data in self.context.extra:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mode = 0o600
            member.uname = member.gname = ""
            yield header(member, stat.S_IFREG | 0o600)
            yield data + _padding(len(data))

    def _member(
        self,
        name: str,
        path: Path,
        info: os.stat_result,
        owners: _Owners,
        seen: dict[tuple[int, int], str],
    ) -> tarfile.TarInfo | None:
        kind = _TYPES.get(stat.S_IFMT(info.st_mode))
        if kind is None:
            return None
        member = tarfile.TarInfo(name)
        member.type = kind
        member.mode = stat.S_IMODE(info.st_mode)
        member.uid = member.gid = 0  # the CLI sends its context as root's (its ChownOpts)
        member.uname = owners.user(info.st_uid)
        member.gname = owners.group(info.st_gid)
        member.mtime = int(info.st_mtime)
        if kind == tarfile.REGTYPE:
            inode = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and inode in seen:
                member.type = tarfile.LNKTYPE
                member.linkname = seen[inode]
            else:
                member.size = info.st_size
                if info.st_nlink > 1:
                    seen[inode] = name
        elif kind == tarfile.SYMTYPE:
            member.linkname = os.readlink(path)
        elif kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            member.devmajor = os.major(info.st_rdev)
            member.devminor = os.minor(info.st_rdev)
        return member

    def _content(self, name: str, path: Path, size: int) -> Iterator[bytes]:
        """``size`` bytes of the file (as its header says), a chunk at a time, then the padding."""
        left = size
        try:
            with path.open("rb") as fh:
                while left:
                    data = fh.read(min(self.chunk, left))
                    if not data:
                        raise self._failed(name, f"it shrank while it was sent ({size - left} of {size} bytes)")
                    left -= len(data)
                    yield data
        except OSError as exc:
            raise self._failed(name, exc.strerror or str(exc)) from None
        yield _padding(size)

    def _failed(self, name: str, why: str) -> ImageBuildError:
        self.error = ImageBuildError(
            f"building {self.display} failed: cannot send {_shown_name(name)} of the build context"
            f" {self.context.root}: {why}"
        )
        return self.error


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)
