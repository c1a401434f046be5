"""Index an image's layers from its ``docker save`` stream, and merge them into one filesystem.

One streaming pass: the outer archive is read with ``tarfile`` in stream mode (``r|``), and
each layer tar inside it is read, again in stream mode, as it passes; no layer is ever held
in memory or written to disk. Both layouts the engine may emit are handled: the classic
docker-archive (``<id>/layer.tar`` + ``manifest.json``) and the OCI layout of newer engines
(``blobs/sha256/<digest>`` + ``index.json``/``manifest.json``). Pure: reads a byte stream,
imports neither pytest nor docker.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import FileEntry, FileSystem, normalise

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
CONTENT_LIMIT = 8 * 1024 * 1024

WantContent = Callable[[str, int], bool]


@dataclass
class LayerIndex:
    """What one layer tar holds: its entries, its whiteouts, and the captured small files."""

    digest: str
    """``sha256:<hex>`` of the uncompressed layer tar (the image's ``RootFS.Layers`` diff id)."""
    entries: dict[str, FileEntry] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque_dirs: list[str] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    size: int = 0
    """Bytes of regular-file content in the layer."""


@dataclass
class SavedImage:
    layers: list[LayerIndex]
    """Bottom to top, as the image's manifest orders them."""
    config: dict[str, object]


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (docker-py's streamed responses)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def stream_from_chunks(chunks: Iterable[bytes]) -> BinaryIO:
    return io.BufferedReader(_ChunkReader(chunks), buffer_size=1024 * 1024)


class _HashingReader(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(target))
        if not data:
            return 0
        self.sha.update(data)
        target[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self._raw.read(1024 * 1024):
            pass  # pragma: no cover - tarfile normally reads to the end itself


def _kind(member: tarfile.TarInfo) -> str:
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "other"


def index_layer(stream: BinaryIO, *, want_content: WantContent | None = None) -> LayerIndex:
    """Index one uncompressed layer tar read from ``stream`` (consumed to its end)."""
    hashing = _HashingReader(stream)
    buffered = io.BufferedReader(hashing, buffer_size=1024 * 1024)
    index = LayerIndex(digest="")
    with tarfile.open(fileobj=buffered, mode="r|") as tar:
        for member in tar:
            path = normalise(member.name)
            parent, _, base = path.rpartition("/")
            parent = parent or "/"
            if base == OPAQUE_MARKER:
                index.opaque_dirs.append(parent)
                continue
            if base.startswith(WHITEOUT_PREFIX):
                index.whiteouts.append(normalise(parent + "/" + base[len(WHITEOUT_PREFIX) :]))
                continue
            kind = _kind(member)
            link = normalise(member.linkname) if kind == "hardlink" else member.linkname if kind == "symlink" else ""
            index.entries[path] = FileEntry(
                path=path, kind=kind, size=member.size, mode=member.mode & 0o7777, link=link
            )
            if kind == "file":
                index.size += member.size
                if want_content is not None and member.size <= CONTENT_LIMIT and want_content(path, member.size):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        index.contents[path] = extracted.read()
    while buffered.read(1024 * 1024):
        pass
    index.digest = "sha256:" + hashing.sha.hexdigest()
    return index


def _looks_like_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def index_saved_image(stream: BinaryIO, *, want_content: WantContent | None = None) -> SavedImage:
    """Index every layer of a ``docker save`` archive read from ``stream``, in one pass."""
    by_member: dict[str, LayerIndex] = {}
    jsons: dict[str, object] = {}
    aliases: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as outer:
            for member in outer:
                if member.issym():  # docker-archive links a repeated layer to its first copy
                    name = member.name.lstrip("./")
                    aliases[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                    continue
                if not member.isreg():
                    continue
                extracted = outer.extractfile(member)
                if extracted is None:  # pragma: no cover - regular members always extract
                    continue
                name = member.name.lstrip("./")
                if name.endswith(".json") or name in ("repositories", "oci-layout") or member.size < 1024:
                    data = extracted.read()
                    if name.endswith(".json") or name.startswith("blobs/"):
                        with contextlib.suppress(ValueError):
                            jsons[name] = json.loads(data)
                    continue
                peek = io.BufferedReader(extracted, buffer_size=1024 * 1024)  # type: ignore[type-var]
                if name.endswith("/layer.tar") or _looks_like_tar(peek.peek(512)):
                    by_member[name] = index_layer(peek, want_content=want_content)
                else:
                    data = peek.read()
                    with contextlib.suppress(ValueError):
                        jsons[name] = json.loads(data)
    except tarfile.TarError as exc:
        raise SlimImageError(f"the engine's image export is not a readable archive: {exc}") from exc
    for name, target in aliases.items():
        if target in by_member:
            by_member[name] = by_member[target]
    return _assemble(by_member, jsons)


def _assemble(by_member: dict[str, LayerIndex], jsons: dict[str, object]) -> SavedImage:
    manifest = jsons.get("manifest.json")
    if isinstance(manifest, list) and manifest and isinstance(manifest[0], dict):
        entry = manifest[0]
        layer_names = [str(x).lstrip("./") for x in entry.get("Layers", [])]
        config = jsons.get(str(entry.get("Config", "")).lstrip("./"))
    else:  # OCI layout without the compatibility manifest.json
        index = jsons.get("index.json")
        layer_names, config = _oci_layers(index, jsons)
    missing = [n for n in layer_names if n not in by_member]
    if missing:
        raise SlimImageError(f"the image export lacks layer(s) named in its manifest: {', '.join(missing)}")
    return SavedImage(
        layers=[by_member[n] for n in layer_names],
        config=config if isinstance(config, dict) else {},
    )


def _oci_layers(index: object, jsons: dict[str, object]) -> tuple[list[str], object]:
    def blob(digest: object) -> str:
        return "blobs/" + str(digest).replace(":", "/", 1)

    if not isinstance(index, dict):
        raise SlimImageError("the image export has neither manifest.json nor index.json")
    descriptor = index.get("manifests", [{}])[0]
    manifest = jsons.get(blob(descriptor.get("digest")))
    while isinstance(manifest, dict) and "manifests" in manifest:  # nested index
        manifest = jsons.get(blob(manifest["manifests"][0].get("digest")))
    if not isinstance(manifest, dict):
        raise SlimImageError("the image export's OCI index points at no manifest")
    layers = [blob(layer.get("digest")) for layer in manifest.get("layers", [])]
    return layers, jsons.get(blob(manifest.get("config", {}).get("digest")))


def merge_layers(layers: Iterable[LayerIndex]) -> FileSystem:
    """Apply layers bottom to top (opaque dirs, then whiteouts, then entries) into one view."""
    entries: dict[str, FileEntry] = {}
    contents: dict[str, bytes] = {}
    for number, layer in enumerate(layers):
        removed = [d for d in layer.opaque_dirs]
        if removed or layer.whiteouts:
            opaque = tuple(d.rstrip("/") + "/" for d in removed)
            gone = set(layer.whiteouts)
            prefixes = tuple(w + "/" for w in layer.whiteouts)
            for path in [p for p in entries if p in gone or p.startswith(prefixes) or p.startswith(opaque)]:
                del entries[path]
                contents.pop(path, None)
        for path, entry in layer.entries.items():
            entries[path] = FileEntry(entry.path, entry.kind, entry.size, entry.mode, entry.link, number)
            if path in layer.contents:
                contents[path] = layer.contents[path]
            else:
                contents.pop(path, None)
    return FileSystem(entries=entries, contents=contents)
