"""What the engine's kernel emulates: the binfmt_misc handlers of this machine, when the engine
runs on it (a unix socket); an engine reached over TCP or SSH runs on a kernel this process
cannot read, and the answer is "unknown". The handlers are read as data by
:func:`pytest_slimimage.emulation.emulated`.
"""

from __future__ import annotations

import os

from pytest_slimimage.emulation import emulated
from pytest_slimimage.engine.layersource import LOCAL_ENGINE_URL

__all__ = ["BINFMT_MISC", "engine_emulates"]

BINFMT_MISC = "/proc/sys/fs/binfmt_misc"


def engine_emulates(base_url: str, native: str | None, root: str = BINFMT_MISC) -> dict[str, str] | None:
    """The architectures an engine at ``base_url`` runs through emulation, each with how; ``{}``
    when it runs none (binfmt_misc not mounted, no handler), None when it cannot be told."""
    if base_url != LOCAL_ENGINE_URL:
        return None
    try:
        names = [n for n in os.listdir(root) if n not in ("register", "status")]
    except OSError:
        return {}  # not mounted: the kernel runs no foreign program
    handlers: dict[str, str] = {}
    for name in names:
        try:
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as handle:
                handlers[name] = handle.read()
        except OSError:
            continue
    return emulated(handlers, native)
