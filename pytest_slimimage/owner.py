"""Who made something the plugin leaves on an engine or on disk, and whether that process is gone.

Every container the plugin creates carries its owner (:data:`~pytest_slimimage.labels.LABEL_OWNER`:
``<hostname>:<pid>:<boot id>.<start>``, the process's start time in clock ticks since boot, so a
reused pid is not mistaken for it) and a lease (:data:`~pytest_slimimage.labels.LABEL_EXPIRES`:
when it may be presumed abandoned); each session's temporary folder
(``$TMPDIR/pytest-slimimage-<token>``) holds its owner in a file. A later session removes what
an owner left once the owner is provably gone (:meth:`Owner.alive` is False: same host and boot,
and the process no longer exists), or, for an owner it cannot see (another host, another boot),
once the lease expired. Pure: imports neither pytest nor docker.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "OWNER_FILE",
    "SESSION_DIR_PREFIX",
    "Owner",
    "claim_session_dir",
    "read_dir_owner",
    "session_dir",
]

SESSION_DIR_PREFIX = "pytest-slimimage-"
"""A session's temporary folder is ``$TMPDIR/pytest-slimimage-<token>``."""
OWNER_FILE = "owner"
"""The file in a session's temporary folder naming its owner (:class:`Owner` as text)."""
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _boot_id() -> str:
    return (_read(_BOOT_ID) or "").replace("-", "")[:16]


def _start_ticks(pid: int) -> str | None:
    """The process's start time (``/proc/<pid>/stat`` field 22, clock ticks since boot); None when
    there is no such process (or no /proc); ``"Z"`` for a zombie (it has exited)."""
    stat = _read(Path(f"/proc/{pid}/stat"))
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name (field 2) may hold spaces and parens
    if len(fields) < 20:
        return None
    return "Z" if fields[0] in ("Z", "X") else fields[19]


@dataclass(frozen=True)
class Owner:
    """A process: the host it runs on, its pid, and ``start`` (``<boot id>.<start ticks>``; empty
    where the system does not say, then only the pid's existence is checked)."""

    host: str
    pid: int
    start: str = ""

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner written as ``str(owner)``; None for anything else."""
        host, _, rest = text.strip().partition(":")
        pid, _, start = rest.partition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), start)

    @classmethod
    def current(cls) -> Owner:
        """This process (computed once per process: a forked child asks again)."""
        return _current(os.getpid())

    @classmethod
    def of(cls, pid: int) -> Owner:
        """The process ``pid`` of this host, as it is now."""
        ticks = _start_ticks(pid)
        boot = _boot_id()
        start = f"{boot}.{ticks}" if boot and ticks and ticks != "Z" else ""
        return cls(socket.gethostname(), pid, start)

    @property
    def boot(self) -> str:
        return self.start.partition(".")[0]

    def alive(self) -> bool | None:
        """True: this process still runs here. False: provably gone (this host and boot, and no
        such process, or another one under its pid). None: it cannot be told from here (another
        host, or another boot of this one): a lease decides."""
        if self.host != socket.gethostname():
            return None
        if self.start:
            if self.boot != _boot_id():
                return None
            ticks = _start_ticks(self.pid)
            return ticks is not None and ticks == self.start.partition(".")[2]
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # it exists, as another user's
            return True
        except OSError:
            return None
        return True


@cache
def _current(pid: int) -> Owner:
    return Owner.of(pid)


def session_dir(token: str, tmp: str | os.PathLike[str] | None = None) -> Path:
    """The temporary folder of the session ``token``: ``$TMPDIR/pytest-slimimage-<token>``."""
    return Path(tmp if tmp is not None else tempfile.gettempdir()) / f"{SESSION_DIR_PREFIX}{token}"


def claim_session_dir(path: Path, owner: Owner) -> None:
    """Make the session folder ``path`` (if needed) and write its owner in it (once)."""
    path.mkdir(parents=True, exist_ok=True)
    marker = path / OWNER_FILE
    if marker.is_file():
        return
    temporary = path / f".{OWNER_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        temporary.write_text(f"{owner}\n", encoding="utf-8")
        os.replace(temporary, marker)


def read_dir_owner(path: Path) -> Owner | None:
    """The owner a session folder names; None when it names none (or cannot be read)."""
    text = _read(path / OWNER_FILE)
    return Owner.parse(text) if text else None
