"""The labels the plugin puts on what it creates (a leaf module: no docker-py import)."""

from __future__ import annotations

import time

from pytest_slimimage.owner import Owner

LABEL_PREFIX = "io.github.pytest-slimimage"
LABEL_SESSION = f"{LABEL_PREFIX}.session"
"""Every container the plugin creates carries this label, valued with its session token."""
LABEL_WORKER = f"{LABEL_PREFIX}.worker"
"""Containers also carry this one, valued with the creating process's token (xdist workers differ)."""
LABEL_OWNER = f"{LABEL_PREFIX}.owner"
"""And this one: the process that created it, ``<hostname>:<pid>:<boot id>.<start>``
(:class:`~pytest_slimimage.owner.Owner`); once that process is gone, a later session removes it."""
LABEL_EXPIRES = f"{LABEL_PREFIX}.expires"
"""And its lease: the Unix time after which a later session that cannot see the owner (another
host) may remove it. A container lives for one run: its run's timeout plus :data:`LEASE_MARGIN`."""
LABEL_BASE = f"{LABEL_PREFIX}.base"
"""Base images made by scripts/base-images.sh carry this one."""

LEASE_MARGIN = 3600.0
"""Seconds a container's lease outlasts its run's timeout (clocks of other hosts may differ)."""
MAX_AGE = 24 * 3600.0
"""Seconds after which something of the plugin's whose owner cannot be told (no owner label: an
older version; a loaded archive image of a session on another host) is presumed abandoned."""

TAG_REPOSITORY = "pytest-slimimage"
"""The namespace of the plugin's tags: each image it builds stays tagged ``pytest-slimimage/<fixture>:<key>``."""
KEEP_BUILDS = 3
"""How many builds (tags) each fixture keeps on the engine, the most recently used first."""


def container_labels(session: str, worker: str, timeout: float, *, now: float | None = None) -> dict[str, str]:
    """The labels of a container that runs for at most ``timeout`` seconds."""
    expires = (time.time() if now is None else now) + timeout + LEASE_MARGIN
    return {
        LABEL_SESSION: session,
        LABEL_WORKER: worker,
        LABEL_OWNER: str(Owner.current()),
        LABEL_EXPIRES: str(int(expires)),
    }
