"""Reading an image's filesystem layers from one engine: from the layer cache first, then from
the engine's overlay2 storage or the image's export, as :mod:`.layersource` decides.

No docker import: the engine is asked through :class:`~pytest_slimimage.engine.client.Engine`
(inspect data, ``docker info``, the export stream); the storage is read from this machine's disk.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_slimimage.analysis.layers import (
    LayerIndex,
    LayerMismatch,
    StorageMismatch,
    chain_ids,
    index_overlay_dir,
    index_saved_image,
    index_tar_split,
    keeps_content,
    stream_from_chunks,
)
from pytest_slimimage.analysis.layerscan import LayerScan
from pytest_slimimage.engine.layerscans import scan_layers
from pytest_slimimage.engine.layersource import layer_source, overlay2_layer, storage_root
from pytest_slimimage.errors import SlimImageError

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache
    from pytest_slimimage.engine.client import Engine

__all__ = ["LayerReader"]


def _readable(path: Path) -> bool:
    return os.access(path, os.R_OK | os.X_OK)


class LayerReader:
    """Indexes the layers of images on ``engine``; what the engine says about its storage is
    asked once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._info: dict[str, Any] | None = None
        self._info_asked = False

    def __repr__(self) -> str:
        return f"<LayerReader {self.engine.base_url}>"

    def index_layers(
        self, image: str, *, cache: LayerCache | None = None, source: str | None = None, name: str | None = None
    ) -> list[LayerIndex]:
        """One index per filesystem layer of ``image`` (``name``: as messages name it), bottom to top.

        Layers found in ``cache`` are taken from it; when all are, nothing else is read. The
        others come from the engine's overlay2 storage when this process can read it, else from
        one streaming pass over the image's export (in which the cached layers are drained, not
        parsed); new indexes are stored in ``cache``. ``source`` (default: the
        ``SLIMIMAGE_LAYER_SOURCE`` environment variable, else ``auto``) forces ``export`` or
        ``storage``; ``auto`` falls back from the storage to the export silently. An engine that
        goes away meanwhile is one :class:`~pytest_slimimage.errors.EngineLost`.
        """
        with self.engine.watch.guard(f"reading the layers of {name or image}"):
            return self._index_layers(image, cache=cache, source=source)

    def _index_layers(self, image: str, *, cache: LayerCache | None, source: str | None) -> list[LayerIndex]:
        chosen = layer_source(source)
        diff_ids = self._diff_ids(image)
        if not diff_ids:  # no RootFS in the inspect data: nothing to key a cache or the storage by
            return self._export_layers(image, known=[])
        found: dict[str, LayerIndex] = {}
        if cache is not None:
            for digest in dict.fromkeys(diff_ids):
                hit = cache.get(digest)
                if hit is not None:
                    found[digest] = hit
        missing = [d for d in dict.fromkeys(diff_ids) if d not in found]
        if not missing:
            return [found[d] for d in diff_ids]
        new: dict[str, LayerIndex] = {}
        if chosen != "export":
            try:
                root = self.storage_root(chosen)
                new = self._storage_layers(root, diff_ids, missing) if root is not None else {}
            except Exception as exc:  # unreadable, moved, mismatched: the export always works
                if chosen == "storage":
                    raise SlimImageError(
                        f"cannot read the layers of {image} from the engine's storage (layer source 'storage'): {exc}"
                    ) from None
                new = {}
        if any(d not in new for d in missing):
            exported = self._export_layers(image, known=list(found.values()))
            if [la.digest for la in exported] != diff_ids:  # pragma: no cover - the engine's diff ids are these hashes
                return exported
            new = {la.digest: la for la in exported if la.digest in missing}
        if cache is not None:
            for digest in missing:
                cache.put(new[digest])
        found.update(new)
        return [found[d] for d in diff_ids]

    def scan_layers(
        self,
        image: str,
        *,
        cache: LayerCache | None = None,
        pull: bool = False,
        files: bool = False,
        source: str | None = None,
        name: str | None = None,
    ) -> list[LayerScan]:
        """A second look at each layer of ``image``, bottom to top, only for the checks that need
        it: ``pull``, its gzip-compressed size; ``files``, its files' owners and content digests
        (:func:`~pytest_slimimage.engine.layerscans.scan_layers`)."""
        with self.engine.watch.guard(f"reading the layers of {name or image}"):
            return scan_layers(self, image, cache=cache, pull=pull, files=files, source=source)

    def storage_root(self, source: str | None = "auto") -> Path | None:
        """The engine's data root when layers are read from its overlay2 storage under the layer
        ``source`` (default ``auto``: when this process can read it); see
        :func:`~pytest_slimimage.engine.layersource.storage_root`."""
        if not self._info_asked:
            self._info = self.engine.info()
            self._info_asked = True
        return storage_root(source, base_url=self.engine.base_url, info=self._info, accessible=_readable)

    def _diff_ids(self, image: str) -> list[str]:
        rootfs = self.engine.inspect(image).get("RootFS")
        layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
        return [str(d) for d in layers] if isinstance(layers, list) else []

    # --------------------------------------------------------------------------------- export
    def _export_layers(self, image: str, *, known: list[LayerIndex]) -> list[LayerIndex]:
        """The layers read in one streaming pass over ``docker save``, ``known`` ones drained unparsed."""
        try:
            return self._export(image, known)
        except LayerMismatch:  # a layer only looked like a known one: read everything again
            return self._export(image, [])

    def _export(self, image: str, known: list[LayerIndex]) -> list[LayerIndex]:
        with contextlib.closing(stream_from_chunks(self.engine.export(image))) as stream:
            return index_saved_image(stream, want_content=keeps_content, known=known, trust_config=True).layers

    # -------------------------------------------------------------------------------- storage
    def _storage_layers(self, root: Path, diff_ids: list[str], missing: list[str]) -> dict[str, LayerIndex]:
        """Index the ``missing`` layers from the overlay2 store under ``root``:
        ``layerdb/sha256/<chain id>`` names the layer (``diff``: its diff id, ``cache-id``: its
        directory under ``overlay2``)."""
        out: dict[str, LayerIndex] = {}
        for digest, chain in zip(diff_ids, chain_ids(diff_ids), strict=True):
            if digest not in missing or digest in out:
                continue
            record, diff_dir = overlay2_layer(root, digest, chain)
            if not diff_dir.is_dir():
                raise StorageMismatch(f"layer {digest} has no directory {diff_dir}")
            tar_split = record / "tar-split.json.gz"
            if tar_split.is_file():
                out[digest] = index_tar_split(tar_split, diff_dir, digest=digest, want_content=keeps_content)
            else:
                out[digest] = index_overlay_dir(diff_dir, digest=digest, want_content=keeps_content)
        return out
