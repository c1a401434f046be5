"""Writing a file so that a concurrent reader sees the old content or the new, never a part.

One helper for every file the plugin writes in place (the size baseline, the layer cache's
entries, the build records xdist workers share). Pure: imports neither pytest nor docker.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

__all__ = ["write_atomic"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, fsync: bool = False) -> None:
    """Replace ``path``'s content with ``data`` (text is written as UTF-8) in one step.

    ``data`` goes to a temporary file of a name no other writer uses, in ``path``'s folder (so
    the rename stays on one filesystem), which :func:`os.replace` then renames over ``path``.
    ``fsync=True`` flushes the data to disk before the rename (a crash then leaves the old file
    or the new one). The new file's mode follows the umask, as a plain write's does. On any
    failure the temporary file is removed, ``path`` is left as it was and the error is raised.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temporary, _FLAGS, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
