"""Images built elsewhere, read from their archives without an engine: ``docker save``'s tarball
(a docker-archive) and the OCI image layout, as a directory or a tar of one (``buildx --output
type=oci``, buildah, kaniko, skopeo), one image per platform of an OCI index.

What an engine would say about an image after loading it is computed here: its id (the digest of
its config), its config and history, and its size -- ``docker images``' figure, the sum over the
layers of what the engine's overlay2 driver counts in the unpacked layer
(:func:`layer_disk_size`). Layers are indexed as the engine's own export is
(:func:`~pytest_slimimage.analysis.layers.index_layer`), gzip, zstd, bzip2 or xz compressed or
not, each checked against its diff id and cached by it. :meth:`Archive.loadable` streams one
image as the tarball ``docker load`` takes, under a tag of the caller's choosing (so that loading
it never moves a tag the user owns).

Pure: reads files, imports neither pytest nor docker.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import importlib
import io
import json
import lzma
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

from pytest_slimimage.analysis.layers import LayerIndex, WantContent, index_layer
from pytest_slimimage.analysis.layerscan import LayerScan, scan_layer_tar
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import Layer

__all__ = [
    "DOCKER_ARCHIVE",
    "OCI_LAYOUT",
    "Archive",
    "ArchivedImage",
    "ArchivedLayer",
    "layer_disk_size",
    "normalise_platform",
    "read_archive",
]

DOCKER_ARCHIVE = "docker-archive"
"""``docker save``'s layout: ``manifest.json`` naming a config and layer tars (``<id>/layer.tar``)."""
OCI_LAYOUT = "oci-layout"
"""The OCI image layout: ``index.json`` (and ``oci-layout``) over content-addressed ``blobs/``."""

_SMALL = 4 * 1024 * 1024
"""The largest JSON document (index, manifest, config) read from an archive."""
_BLOCK = 1024 * 1024
_END_OF_ARCHIVE = 1024
"""The two zero blocks every tar writer (Go's, GNU's, Python's) ends an archive with."""
_DIGEST = re.compile(r"^(?P<algorithm>[a-z0-9]+(?:[+._-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)$")
_INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386"}


class _Cache(Protocol):
    """Where indexes are kept by diff id (:class:`~pytest_slimimage.analysis.layercache.LayerCache`)."""

    def get(self, digest: str) -> LayerIndex | None: ...

    def put(self, index: LayerIndex) -> None: ...


class _ScanCache(Protocol):
    """Where layer scans are kept by diff id (:class:`~pytest_slimimage.analysis.layercache.LayerCache`)."""

    def get_scan(self, digest: str, *, pull: bool = False, files: bool = False) -> LayerScan | None: ...

    def put_scan(self, scan: LayerScan) -> None: ...


# ----------------------------------------------------------------------------------- sizes
def layer_disk_size(index: LayerIndex) -> int:
    """The bytes the engine counts for one layer once unpacked (its ``DiffSize``; the image's
    ``Size`` is their sum over its layers): moby's ``directory.Size`` over the layer's overlay2
    ``diff`` directory, which adds the sizes of the non-directory entries of size > 0 -- regular
    files, and symlinks, whose size is their target's length -- counting a hard-linked inode once.
    Whiteouts (0/0 character devices), devices and FIFOs are 0."""
    total = 0
    for entry in index.entries.values():
        if entry.kind == "file":
            total += entry.size
        elif entry.kind == "symlink":
            total += len(os.fsencode(entry.link))
    return total


# -------------------------------------------------------------------------------- platforms
def normalise_platform(text: str) -> str:
    """``linux/amd64``, ``linux/arm/v7``: lowercase, ``linux/`` when only an architecture is
    given, the kernel's names for architectures read as the engine's (``aarch64`` -> ``arm64``),
    and ``arm64``'s default variant ``v8`` left out."""
    parts = [p for p in text.strip().lower().split("/") if p]
    if len(parts) == 1:
        parts.insert(0, "linux")
    if len(parts) >= 2:
        parts[1] = _ARCH_ALIASES.get(parts[1], parts[1])
    if parts[1:] == ["arm64", "v8"]:
        parts = parts[:2]
    return "/".join(parts)


def _platform(os_name: object, architecture: object, variant: object) -> str:
    text = "/".join(str(p) for p in (os_name or "linux", architecture or "unknown", variant) if p)
    return normalise_platform(text)


# ------------------------------------------------------------------------------ the images
@dataclass(frozen=True)
class ArchivedLayer:
    """One layer of an archived image: where its blob is, and the digest of its uncompressed tar."""

    blob: str
    """The blob's path inside the archive (``blobs/sha256/<hex>``, ``<id>/layer.tar``)."""
    diff_id: str
    """``sha256:<hex>`` of the uncompressed layer tar, as the image config lists it."""
    size: int = -1
    """The blob's bytes as the manifest lists them (an OCI layout's descriptor); -1: not listed."""
    media_type: str = ""
    """The blob's media type as the manifest lists it (``application/vnd.oci.image.layer.v1.tar+gzip``)."""

    @property
    def compressed(self) -> bool:
        """The manifest lists the blob as compressed (gzip or zstd): its size is what a registry stores."""
        return self.size >= 0 and self.media_type.endswith(("+gzip", ".gzip", "+zstd", ".zstd"))


@dataclass(frozen=True)
class ArchivedImage:
    """One image of an archive (one platform of an OCI index): what ``docker image inspect``
    and ``docker history`` would say of it once loaded, except the sizes, which need its layers."""

    platform: str
    """``linux/amd64``, ``linux/arm/v7``: the index's platform for the image, else its config's."""
    id: str
    """``sha256:<hex>`` of the config: the image's id on an engine that loads it."""
    config: Mapping[str, Any]
    config_blob: str
    layers: tuple[ArchivedLayer, ...]
    tags: tuple[str, ...] = ()
    """The names the archive gives the image (``RepoTags``, an OCI ``ref.name`` annotation)."""

    def inspect(self, size: int) -> dict[str, Any]:
        """The image's ``docker image inspect`` data as an engine that loaded it would give it."""
        config = self.config
        return {
            "Id": self.id,
            "RepoTags": list(self.tags),
            "Size": size,
            "Config": config.get("config") if isinstance(config.get("config"), Mapping) else {},
            "Architecture": str(config.get("architecture") or ""),
            "Variant": str(config.get("variant") or ""),
            "Os": str(config.get("os") or ""),
            "RootFS": {"Type": "layers", "Layers": [layer.diff_id for layer in self.layers]},
        }

    def history(self, layer_sizes: Sequence[int]) -> list[Layer]:
        """The image's history bottom to top, as the engine derives it from the config: each
        entry not marked ``empty_layer`` takes the next layer and its size. A config without
        history has none (``docker history`` shows nothing either)."""
        entries = self.config.get("history")
        out: list[Layer] = []
        number = 0
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping):
                continue
            size = 0
            if not entry.get("empty_layer"):
                if number >= len(layer_sizes):
                    raise SlimImageError(
                        f"the config of image {self.id[:19]} ({self.platform}) lists more non-empty history"
                        f" entries than its {len(layer_sizes)} layer(s)"
                    )
                size = layer_sizes[number]
                number += 1
            out.append(Layer(created_by=str(entry.get("created_by") or ""), size=size, empty=not size))
        return out


# ------------------------------------------------------------------------------ the sources
class _Source(Protocol):
    """The members of an archive, wherever they are (a directory, a tar, a compressed tar)."""

    def exists(self, name: str) -> bool: ...

    def real(self, name: str) -> str:
        """The member ``name`` stands for (a link in a tar followed), as :meth:`each` names it."""
        ...

    def read(self, name: str) -> bytes:
        """A small member's bytes (a JSON document); SlimImageError when absent or too large."""
        ...

    def each(self, names: Collection[str]) -> Iterator[tuple[str, int, BinaryIO]]:
        """Each of ``names`` once, in the order reading them costs least: name, size, bytes."""
        ...


def _clean(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./") if name not in ("", ".", "./") else "."


class _Directory:
    """An image layout unpacked in a directory (``skopeo copy ... oci:DIR``, ``buildx --output
    type=oci,tar=false``, or an unpacked ``docker save``)."""

    def __init__(self, root: Path, display: str) -> None:
        self.root = root.resolve()
        self.display = display

    def _path(self, name: str) -> Path:
        path = (self.root / _clean(name)).resolve()
        if path != self.root and self.root not in path.parents:
            raise SlimImageError(f"{self.display}: the member {name!r} leads out of the layout")
        return path

    def exists(self, name: str) -> bool:
        try:
            return self._path(name).is_file()
        except SlimImageError:
            return False

    def real(self, name: str) -> str:
        return _clean(name)

    def read(self, name: str) -> bytes:
        path = self._path(name)
        try:
            size = path.stat().st_size
            if size > _SMALL:
                raise SlimImageError(f"{self.display}: {name} is {size} bytes, too large for an image's metadata")
            return path.read_bytes()
        except OSError as exc:
            raise SlimImageError(f"{self.display}: cannot read {name}: {exc.strerror or exc}") from None

    def each(self, names: Collection[str]) -> Iterator[tuple[str, int, BinaryIO]]:
        for name in sorted({_clean(n) for n in names}):
            path = self._path(name)
            try:
                handle = path.open("rb")
            except OSError as exc:
                raise SlimImageError(f"{self.display}: cannot read {name}: {exc.strerror or exc}") from None
            with handle:
                yield name, os.fstat(handle.fileno()).st_size, handle


class _Slice(io.RawIOBase):
    """``size`` bytes of ``raw`` from where it stands (one member of an uncompressed tar)."""

    def __init__(self, raw: IO[bytes], size: int) -> None:
        self._raw = raw
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        data = self._raw.read(min(len(target), self._left))
        if not data:
            raise EOFError("unexpected end of data")
        target[: len(data)] = data
        self._left -= len(data)
        return len(data)


class _Tar:
    """A layout in a tar file, uncompressed (read where each member lies) or compressed (read
    front to back: once for the table of members and the JSON documents, once for the blobs)."""

    def __init__(self, path: Path, display: str, *, compressed: bool) -> None:
        self.path = path
        self.display = display
        self.compressed = compressed
        self.members: dict[str, tarfile.TarInfo] = {}
        self._aliases: dict[str, str] = {}
        self._kept: dict[str, bytes] = {}
        try:
            if compressed:
                self._scan_stream()
            else:
                self._scan()
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise SlimImageError(f"{display} is not a readable archive (corrupt or truncated): {exc}") from None

    def _note(self, member: tarfile.TarInfo) -> None:
        name = _clean(member.name)
        if member.issym():  # docker save links a repeated layer to its first copy
            self._aliases[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        elif member.islnk():
            self._aliases[name] = _clean(member.linkname)
        elif member.isreg():
            self.members[name] = member

    def _scan(self) -> None:
        size = self.path.stat().st_size
        with tarfile.open(self.path, mode="r:") as tar:
            for member in tar:
                self._note(member)
                if member.isreg() and member.offset_data + member.size > size:
                    raise EOFError(f"{member.name} needs {member.size} bytes, the file ends before")
            end = tar.offset
        if end + _END_OF_ARCHIVE > size:
            raise EOFError(f"it ends at byte {size} without the end-of-archive blocks")

    def _scan_stream(self) -> None:
        with tarfile.open(self.path, mode="r|*") as tar:
            for member in tar:
                self._note(member)
                if member.isreg() and member.size <= _SMALL:
                    extracted = tar.extractfile(member)
                    data = extracted.read() if extracted is not None else b""
                    if data[:1] in (b"{", b"[") or _clean(member.name) in ("oci-layout", "repositories"):
                        self._kept[_clean(member.name)] = data

    def real(self, name: str) -> str:
        return self._resolve(name)

    def _resolve(self, name: str) -> str:
        name = _clean(name)
        for _ in range(8):
            if name in self.members or name not in self._aliases:
                return name
            name = self._aliases[name]
        return name

    def exists(self, name: str) -> bool:
        return self._resolve(name) in self.members

    def read(self, name: str) -> bytes:
        real = self._resolve(name)
        member = self.members.get(real)
        if member is None:
            raise SlimImageError(f"{self.display}: the archive has no member {name}")
        if member.size > _SMALL:
            raise SlimImageError(f"{self.display}: {name} is {member.size} bytes, too large for an image's metadata")
        if self.compressed:
            return self._kept.get(real, b"")
        with self.path.open("rb") as fh:
            fh.seek(member.offset_data)
            data = fh.read(member.size)
        if len(data) != member.size:
            raise SlimImageError(f"{self.display} is truncated: {name} is cut short")
        return data

    def each(self, names: Collection[str]) -> Iterator[tuple[str, int, BinaryIO]]:
        wanted = {self._resolve(n) for n in names}
        missing = sorted(n for n in wanted if n not in self.members)
        if missing:
            raise SlimImageError(f"{self.display}: the archive has no member {missing[0]}")
        if not self.compressed:
            with self.path.open("rb") as fh:
                for name in sorted(wanted, key=lambda n: self.members[n].offset_data):
                    member = self.members[name]
                    fh.seek(member.offset_data)
                    yield name, member.size, io.BufferedReader(_Slice(fh, member.size), buffer_size=_BLOCK)
            return
        with tarfile.open(self.path, mode="r|*") as tar:
            for member in tar:
                name = _clean(member.name)
                if member.isreg() and name in wanted:
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        yield name, member.size, extracted  # type: ignore[misc]


def _open_source(path: Path, display: str) -> _Source:
    if path.is_dir():
        return _Directory(path, display)
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise SlimImageError(f"cannot read the archive {display}: {exc.strerror or exc}") from None
    if not head:
        raise SlimImageError(f"{display} is empty: neither a docker save tarball nor an OCI image layout")
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return _Tar(path, display, compressed=True)
    if len(head) == 512 and head[257:262] == b"ustar":
        return _Tar(path, display, compressed=False)
    raise SlimImageError(
        f"{display} is neither a docker save tarball nor an OCI image layout (a directory, or a tar of one):"
        " it is not a tar file"
    )


# ----------------------------------------------------------------------------- the archive
class Archive:
    """An image archive opened for checking: its layout, its images (one per platform), and a
    way to index an image's layers and to stream the image as ``docker load`` takes it."""

    def __init__(
        self, path: Path, display: str, layout: str, source: _Source, images: Sequence[ArchivedImage], left_out: str
    ) -> None:
        self.path = path
        self.display = display
        self.layout = layout
        self.images = tuple(images)
        self.left_out = left_out
        """What the index names but the layout does not hold ("" when nothing)."""
        self._source = source

    def __repr__(self) -> str:
        return f"<Archive {self.display} {self.layout} {', '.join(self.platforms)}>"

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(image.platform for image in self.images)

    def select(self, platform: str | None = None) -> tuple[ArchivedImage, ...]:
        """Every image (``platform`` None), or the one for ``platform`` (``linux/arm64``,
        ``arm64``); a platform the archive lacks is an error listing those it has."""
        if platform is None:
            return self.images
        wanted = normalise_platform(platform)
        found = tuple(image for image in self.images if image.platform == wanted)
        if not found:
            also = f"; {self.left_out}" if self.left_out else ""
            raise SlimImageError(
                f"{self.display} has no image for the platform {platform!r}: it holds {', '.join(self.platforms)}{also}"
            )
        return found

    def index_layers(
        self, image: ArchivedImage, *, want_content: WantContent | None = None, cache: _Cache | None = None
    ) -> list[LayerIndex]:
        """One index per layer of ``image``, bottom to top. A layer in ``cache`` (by diff id) is
        not read; the others are read once each, decompressed as they pass, checked against their
        diff id (a mismatch is a corrupt archive) and stored in ``cache``."""
        found: dict[str, LayerIndex] = {}
        if cache is not None:
            for digest in dict.fromkeys(layer.diff_id for layer in image.layers):
                hit = cache.get(digest)
                if hit is not None:
                    found[digest] = hit
        wanted: dict[str, list[str]] = {}
        for layer in image.layers:
            if layer.diff_id not in found:
                wanted.setdefault(self._source.real(layer.blob), []).append(layer.diff_id)
        try:
            for blob, _, stream in self._source.each(wanted):
                index = _index_blob(stream, want_content, f"{self.display}: layer {blob}")
                for diff_id in dict.fromkeys(wanted[blob]):
                    if index.digest != diff_id:
                        raise SlimImageError(
                            f"{self.display} is corrupt: its layer {blob} is not the layer its config names"
                            f" (diff id {diff_id}, the layer's content hashes to {index.digest})"
                        )
                    found[diff_id] = index
                if cache is not None:
                    cache.put(index)
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise SlimImageError(f"{self.display} is not a readable archive (corrupt or truncated): {exc}") from None
        lost = [layer.blob for layer in image.layers if layer.diff_id not in found]
        if lost:
            raise SlimImageError(f"{self.display}: layer {lost[0]} could not be read from the archive")
        return [found[layer.diff_id] for layer in image.layers]

    def scan_layers(
        self,
        image: ArchivedImage,
        *,
        pull: bool = False,
        files: bool = False,
        cache: _ScanCache | None = None,
        pool: Executor | None = None,
        workers: int = 1,
    ) -> list[LayerScan]:
        """A second look at each layer of ``image``, bottom to top (:mod:`.layerscan`): ``pull``,
        what a registry stores -- the blob's size from the manifest when the manifest lists it
        compressed, else the layer tar gzip-compressed (computed, and cached by diff id);
        ``files``, its files' states. Only the layers that need it are read."""
        out: dict[str, LayerScan] = {}
        for layer in image.layers:
            if layer.diff_id in out:
                continue
            scan = LayerScan(layer.diff_id)
            if pull and layer.compressed:
                scan.compressed, scan.source = layer.size, "manifest"
            if cache is not None and not scan.has(pull=pull, files=files):
                hit = cache.get_scan(layer.diff_id, pull=pull and scan.compressed is None, files=files)
                scan = scan.merged(hit)
            out[layer.diff_id] = scan
        wanted: dict[str, list[str]] = {}
        for layer in image.layers:
            if not out[layer.diff_id].has(pull=pull, files=files):
                wanted.setdefault(self._source.real(layer.blob), []).append(layer.diff_id)
        try:
            for blob, _, stream in self._source.each(wanted):
                digest = wanted[blob][0]
                buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(cast(Any, stream), _BLOCK)
                what = f"{self.display}: layer {blob}"
                with contextlib.closing(_decompressed(buffered, bytes(buffered.peek(6)[:6]), what)) as plain:
                    scan = out[digest]
                    new = scan_layer_tar(
                        plain,
                        digest,
                        pull=pull and scan.compressed is None,
                        files=files and scan.files is None,
                        pool=pool,
                        workers=workers,
                    )
                if cache is not None:
                    cache.put_scan(new)
                for diff_id in dict.fromkeys(wanted[blob]):
                    out[diff_id] = out[diff_id].merged(replace(new, digest=diff_id))
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise SlimImageError(f"{self.display} is not a readable archive (corrupt or truncated): {exc}") from None
        return [out[layer.diff_id] for layer in image.layers]

    def loadable(self, image: ArchivedImage, tag: str) -> Iterator[bytes]:
        """``image`` as a tarball ``docker load`` takes (the classic docker-archive), tagged
        ``tag`` only: the config, each layer blob once (compressed or not, as stored; the engine
        decompresses it) and a ``manifest.json``. Streamed: nothing is held in memory or on disk.
        The engine gives the loaded image the id :attr:`ArchivedImage.id`."""
        config = self._source.read(image.config_blob)
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        names: dict[str, str] = {}
        for layer in image.layers:
            real = self._source.real(layer.blob)
            names.setdefault(real, hashlib.sha256(real.encode()).hexdigest() + "/layer.tar")
        yield from _tar_member(config_name, len(config), [config])
        try:
            for blob, size, stream in self._source.each(names):
                folder = posixpath.dirname(names[blob])
                yield _tar_header(folder + "/", 0, directory=True)
                yield from _tar_member(names[blob], size, _chunks(stream, size, f"{self.display}: {blob}"))
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise SlimImageError(f"{self.display} is not a readable archive (corrupt or truncated): {exc}") from None
        manifest = json.dumps(
            [
                {
                    "Config": config_name,
                    "RepoTags": [tag],
                    "Layers": [names[self._source.real(la.blob)] for la in image.layers],
                }
            ]
        ).encode()
        yield from _tar_member("manifest.json", len(manifest), [manifest])
        yield b"\0" * _END_OF_ARCHIVE


def _chunks(stream: BinaryIO, size: int, what: str) -> Iterator[bytes]:
    left = size
    while left > 0:
        data = stream.read(min(_BLOCK, left))
        if not data:
            raise SlimImageError(f"{what} ends {left} bytes early")
        left -= len(data)
        yield data


def _tar_header(name: str, size: int, *, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o755 if directory else 0o644
    if directory:
        info.type = tarfile.DIRTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _tar_member(name: str, size: int, chunks: Iterator[bytes] | Sequence[bytes]) -> Iterator[bytes]:
    yield _tar_header(name, size)
    yield from chunks
    if size % 512:
        yield b"\0" * (512 - size % 512)


def _index_blob(stream: BinaryIO, want_content: WantContent | None, what: str) -> LayerIndex:
    """Index a layer blob, decompressed by its magic bytes (gzip, zstd, bzip2, xz, or none)."""
    buffered: Any = stream
    if not hasattr(stream, "peek"):
        buffered = io.BufferedReader(cast(io.RawIOBase, stream), buffer_size=_BLOCK)
    with contextlib.closing(_decompressed(buffered, bytes(buffered.peek(6)[:6]), what)) as plain:
        try:
            return index_layer(plain, want_content=want_content)
        except tarfile.TarError as exc:
            raise SlimImageError(f"{what} is not a layer tar: {exc}") from None


def _decompressed(buffered: Any, head: bytes, what: str) -> BinaryIO:
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return _zstd(buffered, what)
    if head[:3] == b"BZh":
        return bz2.BZ2File(buffered)  # type: ignore[return-value]
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(buffered)  # type: ignore[return-value]
    return buffered  # type: ignore[no-any-return]


def _zstd(stream: BinaryIO, what: str) -> BinaryIO:
    try:
        zstandard = importlib.import_module("zstandard")
    except ImportError:
        raise SlimImageError(
            f"{what} is zstd-compressed, and reading zstd needs the 'zstandard' package (pip install zstandard)"
        ) from None
    reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
    return reader


# ------------------------------------------------------------------------------ reading one
def read_archive(path: str | os.PathLike[str], *, display: str | None = None) -> Archive:
    """Open the image archive at ``path``: a ``docker save`` tarball (plain or compressed), an OCI
    image layout as a directory or a tar, or an unpacked ``docker save``. Reads the metadata only
    (index, manifests, configs): layers are read when :meth:`Archive.index_layers` asks.

    A missing path, a file that is neither layout, a corrupt or truncated tar, and an archive
    whose documents do not hold together are each one :class:`SlimImageError` naming the path.
    """
    target = Path(path)
    shown = display or str(target)
    if not target.exists():
        raise SlimImageError(f"archive not found: {shown} (no such file or directory: {target.resolve()})")
    if not (target.is_dir() or target.is_file()):
        raise SlimImageError(f"{shown} is neither a file nor a directory")
    source = _open_source(target, shown)
    if source.exists("index.json") and (source.exists("oci-layout") or not source.exists("manifest.json")):
        images, left_out = _oci_images(source, shown)
        layout = OCI_LAYOUT
    elif source.exists("manifest.json"):
        images, left_out = _docker_images(source, shown), ""
        layout = DOCKER_ARCHIVE
    else:
        raise SlimImageError(
            f"{shown} is neither a docker save tarball (manifest.json) nor an OCI image layout (index.json,"
            f" oci-layout){': it is a directory' if target.is_dir() else ''}"
        )
    seen: dict[str, ArchivedImage] = {}
    for image in images:
        other = seen.setdefault(image.platform, image)
        if other is not image and other.id != image.id:
            raise SlimImageError(
                f"{shown} holds several images for {image.platform} ({_names(other)}, {_names(image)}):"
                " pytest-slimimage checks one image per platform of an archive; save one image per archive"
            )
    return Archive(target, shown, layout, source, list(seen.values()), left_out)


def _names(image: ArchivedImage) -> str:
    return ", ".join(image.tags) if image.tags else image.id[:19]


def _json(source: _Source, name: str, display: str) -> Any:
    data = source.read(name)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SlimImageError(f"{display}: {name} is not valid JSON: {exc}") from None


def _config(source: _Source, name: str, display: str) -> tuple[str, dict[str, Any]]:
    data = source.read(name)
    try:
        config = json.loads(data)
    except ValueError as exc:
        raise SlimImageError(f"{display}: the image config {name} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise SlimImageError(f"{display}: the image config {name} is not a JSON object")
    return "sha256:" + hashlib.sha256(data).hexdigest(), config


def _diff_ids(config: Mapping[str, Any], count: int, display: str, name: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != count or not all(isinstance(d, str) for d in diff_ids):
        raise SlimImageError(
            f"{display}: the image config {name} does not list the diff ids of the {count} layer(s) its manifest names"
        )
    return [str(d) for d in diff_ids]


def _docker_images(source: _Source, display: str) -> list[ArchivedImage]:
    manifest = _json(source, "manifest.json", display)
    if not isinstance(manifest, list) or not manifest or not all(isinstance(e, Mapping) for e in manifest):
        raise SlimImageError(f"{display}: manifest.json does not list an image (a docker save archive lists each)")
    images = []
    for entry in manifest:
        config_name = _clean(str(entry.get("Config") or ""))
        layer_names = entry.get("Layers")
        if not config_name or not isinstance(layer_names, list):
            raise SlimImageError(f"{display}: manifest.json has an entry without Config or Layers")
        lost = [n for n in (config_name, *map(str, layer_names)) if not source.exists(n)]
        if lost:
            raise SlimImageError(f"{display}: manifest.json names {lost[0]}, which the archive lacks (truncated?)")
        digest, config = _config(source, config_name, display)
        diff_ids = _diff_ids(config, len(layer_names), display, config_name)
        images.append(
            ArchivedImage(
                platform=_platform(config.get("os"), config.get("architecture"), config.get("variant")),
                id=digest,
                config=config,
                config_blob=config_name,
                layers=tuple(ArchivedLayer(_clean(str(n)), d) for n, d in zip(layer_names, diff_ids, strict=True)),
                tags=tuple(str(t) for t in entry.get("RepoTags") or ()),
            )
        )
    return images


def _descriptor_size(descriptor: Mapping[str, Any]) -> int:
    size = descriptor.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else -1


def _blob(digest: object, display: str) -> str:
    match = _DIGEST.match(str(digest))
    if match is None:
        raise SlimImageError(f"{display}: {digest!r} is not a content digest")
    return f"blobs/{match.group('algorithm')}/{match.group('hex')}"


def _oci_images(source: _Source, display: str) -> tuple[list[ArchivedImage], str]:
    index = _json(source, "index.json", display)
    if not isinstance(index, Mapping) or not isinstance(index.get("manifests"), list):
        raise SlimImageError(f"{display}: index.json lists no manifests (not an OCI image layout)")
    images: list[ArchivedImage] = []
    lacking: list[str] = []

    def visit(descriptor: Mapping[str, Any], tags: tuple[str, ...], depth: int) -> None:
        annotations = descriptor.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            return  # buildx's provenance and SBOM, not an image
        platform = descriptor.get("platform") if isinstance(descriptor.get("platform"), Mapping) else None
        shown = _platform(platform.get("os"), platform.get("architecture"), platform.get("variant")) if platform else ""
        name = _blob(descriptor.get("digest"), display)
        if not source.exists(name):
            lacking.append(f"{shown or name} (its manifest is not in the layout)")
            return
        document = _json(source, name, display)
        if not isinstance(document, Mapping):
            raise SlimImageError(f"{display}: {name} is not a JSON object")
        if "manifests" in document or descriptor.get("mediaType") in _INDEX_TYPES:
            if depth > 4:
                raise SlimImageError(f"{display}: OCI indexes nested too deep at {name}")
            for inner in document.get("manifests") or ():
                if isinstance(inner, Mapping):
                    visit(inner, tags, depth + 1)
            return
        config_descriptor = document.get("config")
        layer_descriptors = document.get("layers")
        if not isinstance(config_descriptor, Mapping) or not isinstance(layer_descriptors, list):
            raise SlimImageError(f"{display}: {name} is neither an image manifest nor an index")
        config_name = _blob(config_descriptor.get("digest"), display)
        layer_names = [_blob(d.get("digest") if isinstance(d, Mapping) else d, display) for d in layer_descriptors]
        described = [d if isinstance(d, Mapping) else {} for d in layer_descriptors]
        lost = [n for n in (config_name, *layer_names) if not source.exists(n)]
        if lost:
            lacking.append(f"{shown or name} (blob {lost[0]} is not in the layout)")
            return
        digest, config = _config(source, config_name, display)
        if config.get("os") == "unknown" or (platform or {}).get("os") == "unknown":
            return  # attestations written without the annotation
        diff_ids = _diff_ids(config, len(layer_names), display, config_name)
        images.append(
            ArchivedImage(
                platform=shown or _platform(config.get("os"), config.get("architecture"), config.get("variant")),
                id=digest,
                config=config,
                config_blob=config_name,
                layers=tuple(
                    ArchivedLayer(n, d, _descriptor_size(described[i]), str(described[i].get("mediaType") or ""))
                    for i, (n, d) in enumerate(zip(layer_names, diff_ids, strict=True))
                ),
                tags=tags,
            )
        )

    for descriptor in index["manifests"]:
        if not isinstance(descriptor, Mapping):
            continue
        annotations = descriptor.get("annotations") or {}
        tags = tuple(
            dict.fromkeys(
                str(annotations[key])
                for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name")
                if annotations.get(key)
            )
        )
        visit(descriptor, tags, 0)
    left_out = "not in the layout: " + "; ".join(lacking) if lacking else ""
    if not images:
        raise SlimImageError(
            f"{display}: the OCI layout holds no complete image"
            + (f" ({left_out})" if left_out else " (index.json is empty)")
        )
    return images, left_out
