"""Where an image's layers are read from: the engine's overlay2 storage (a fast path, when this
process can read the engine's disk) or the image's export (``docker save``, which always works).

A pure decision over what the engine said about itself: no docker import, no engine call, so
it is tested without an engine. :mod:`pytest_slimimage.engine.layerread` asks the engine and
reads the layers accordingly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_slimimage.analysis.layers import StorageMismatch
from pytest_slimimage.errors import SlimImageError

__all__ = [
    "LAYER_SOURCES",
    "LAYER_SOURCE_ENV",
    "LOCAL_ENGINE_URL",
    "STORAGE_UNREADABLE",
    "layer_source",
    "storage_root",
]

LAYER_SOURCE_ENV = "SLIMIMAGE_LAYER_SOURCE"
LAYER_SOURCES = ("auto", "export", "storage")
"""Where :meth:`~pytest_slimimage.engine.layerread.LayerReader.index_layers` reads layers it has
not cached: ``auto`` (the storage when readable, else the export), ``export`` (always ``docker
save``), ``storage`` (the overlay2 store, an error when unreadable)."""

LOCAL_ENGINE_URL = "http+docker://localhost"
"""docker-py's ``base_url`` for an engine on a unix socket; tcp, ssh and npipe engines have others
(and their storage is another machine's disk)."""

STORAGE_UNREADABLE = "the engine's overlay2 storage is not readable from this process"


def layer_source(value: str | None = None) -> str:
    """``value``, else ``$SLIMIMAGE_LAYER_SOURCE``, else ``auto``; anything else is an error."""
    chosen = (value if value is not None else os.environ.get(LAYER_SOURCE_ENV, "")).strip().lower() or "auto"
    if chosen not in LAYER_SOURCES:
        raise SlimImageError(f"{LAYER_SOURCE_ENV} must be one of {', '.join(LAYER_SOURCES)} (got {chosen!r})")
    return chosen


def storage_root(
    requested: str | None,
    *,
    base_url: str,
    info: Mapping[str, Any] | None,
    accessible: Callable[[Path], bool],
) -> Path | None:
    """The engine's data root when layers are to be read from its overlay2 storage; None when
    from the export.

    ``requested`` is a layer source (as :func:`layer_source` reads it: None is the environment
    variable's, else ``auto``); ``base_url`` is docker-py's address of the engine (only a unix
    socket's engine stores its layers on this machine); ``info`` is the engine's ``docker info``
    (``Driver``, ``DockerRootDir``), None when it could not be read; ``accessible(path)`` says
    whether this process may list and read the folder ``path``.

    ``export`` is None without looking; ``auto`` is the root when the storage is usable, else
    None; ``storage`` is the root, or a :class:`SlimImageError` when the storage is not usable.
    """
    chosen = layer_source(requested)
    if chosen == "export":
        return None
    root = _readable_overlay2_root(base_url, info, accessible)
    if root is None and chosen == "storage":
        raise SlimImageError(STORAGE_UNREADABLE)
    return root


def _readable_overlay2_root(
    base_url: str, info: Mapping[str, Any] | None, accessible: Callable[[Path], bool]
) -> Path | None:
    if base_url != LOCAL_ENGINE_URL or info is None:  # another machine's disk, or an engine that says nothing
        return None
    root = Path(str(info.get("DockerRootDir") or ""))
    if info.get("Driver") != "overlay2" or not root.is_absolute():
        return None
    needed = (root / "image" / "overlay2" / "layerdb" / "sha256", root / "overlay2")
    if not all(accessible(p) for p in needed):
        return None
    return root


_CACHE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def overlay2_layer(root: Path, digest: str, chain: str) -> tuple[Path, Path]:
    """Where layer ``digest`` (chain id ``chain``) lives in the overlay2 store under ``root``: its
    record (``image/overlay2/layerdb/sha256/<chain id>``: ``diff`` names the layer, ``cache-id``
    its directory, ``tar-split.json.gz`` its tar's headers) and its unpacked ``diff`` directory.
    A record that names another layer raises :class:`StorageMismatch`."""
    record = root / "image" / "overlay2" / "layerdb" / "sha256" / chain.removeprefix("sha256:")
    recorded = (record / "diff").read_text().strip()
    cache_id = (record / "cache-id").read_text().strip()
    if recorded != digest or not _CACHE_ID.fullmatch(cache_id):
        raise StorageMismatch(f"the layer store's record {record} is not layer {digest}")
    return record, root / "overlay2" / cache_id / "diff"
