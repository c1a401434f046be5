"""A second look at an image's layers on one engine, only when a check asks for it: each layer's
compressed size (``max_pull_size``) and its files' owners and content digests (``reproducible``).

From the layer cache first (by diff id), then from the engine's overlay2 storage (the layer tar
reassembled from its ``tar-split`` record, byte for byte what a push sends) or, failing that,
from one streaming pass over the image's export. Compression runs on a thread per core.
No docker import.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_slimimage.analysis.layers import chain_ids, open_layer_tar, stream_from_chunks
from pytest_slimimage.analysis.layerscan import LayerScan, scan_layer_tar, scan_saved_image
from pytest_slimimage.engine.layersource import layer_source, overlay2_layer
from pytest_slimimage.errors import SlimImageError

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache
    from pytest_slimimage.engine.layerread import LayerReader

__all__ = ["scan_layers", "workers"]


def workers() -> int:
    """Threads that compress at once: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def scan_layers(
    reader: LayerReader,
    image: str,
    *,
    cache: LayerCache | None = None,
    pull: bool = False,
    files: bool = False,
    source: str | None = None,
) -> list[LayerScan]:
    """One scan per filesystem layer of ``image``, bottom to top, holding what is asked for:
    ``pull``, the layer's gzip-compressed size; ``files``, its files' states. Scans in ``cache``
    are taken from it; the others are read (from the storage when the layer ``source`` allows,
    else from the export) and stored there."""
    chosen = layer_source(source)
    rootfs = reader.engine.inspect(image).get("RootFS")
    listed = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    diff_ids = [str(d) for d in listed] if isinstance(listed, list) else []
    found: dict[str, LayerScan] = {}
    if cache is not None:
        for digest in dict.fromkeys(diff_ids):
            hit = cache.get_scan(digest, pull=pull, files=files)
            if hit is not None:
                found[digest] = hit
    missing = [d for d in dict.fromkeys(diff_ids) if d not in found]
    if not missing:
        return [found[d] for d in diff_ids]
    threads = workers()
    new: dict[str, LayerScan] = {}
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="slimimage-scan") as pool:
        if chosen != "export":
            try:
                root = reader.storage_root(chosen)
                if root is not None:
                    new = _from_storage(root, diff_ids, missing, pull=pull, files=files, pool=pool, threads=threads)
            except Exception as exc:  # unreadable, moved, mismatched: the export always works
                if chosen == "storage":
                    raise SlimImageError(
                        f"cannot read the layers of {image} from the engine's storage (layer source 'storage'): {exc}"
                    ) from None
                new = {}
        if any(d not in new for d in missing):
            with contextlib.closing(stream_from_chunks(reader.engine.export(image))) as stream:
                exported = scan_saved_image(stream, pull=pull, files=files, pool=pool, workers=threads)
            for digest in missing:
                if digest not in new:
                    if digest not in exported:
                        raise SlimImageError(f"the export of {image} lacks its layer {digest}")
                    new[digest] = exported[digest]
    if cache is not None:
        for digest in missing:
            cache.put_scan(new[digest])
    found.update(new)
    return [found[d] for d in diff_ids]


def _from_storage(
    root: Path,
    diff_ids: list[str],
    missing: list[str],
    *,
    pull: bool,
    files: bool,
    pool: Executor,
    threads: int,
) -> dict[str, LayerScan]:
    """The ``missing`` layers that have a ``tar-split`` record, scanned from the overlay2 store
    under ``root`` (the others are left for the export: without the record, the tar a push sends
    cannot be rebuilt byte for byte)."""
    out: dict[str, LayerScan] = {}
    for digest, chain in zip(diff_ids, chain_ids(diff_ids), strict=True):
        if digest not in missing or digest in out:
            continue
        record, diff_dir = overlay2_layer(root, digest, chain)
        tar_split = record / "tar-split.json.gz"
        if not diff_dir.is_dir() or not tar_split.is_file():
            continue
        with contextlib.closing(open_layer_tar(tar_split, diff_dir)) as stream:
            out[digest] = scan_layer_tar(stream, digest, pull=pull, files=files, pool=pool, workers=threads)
    return out
