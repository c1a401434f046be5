"""Index an image's layers -- from its ``docker save`` stream, or from the engine's own
storage -- and merge them into one filesystem.

The export is read in one streaming pass: the outer archive with ``tarfile``, over a stream
that only ever moves forward, and each layer tar inside it the same way, as it passes; no
layer is ever held in memory or written to disk. Both layouts the engine may emit are
handled: the classic docker-archive (``<id>/layer.tar`` + ``manifest.json``) and the OCI
layout of newer engines (``blobs/sha256/<digest>`` + ``index.json``/``manifest.json``). Layers
the caller already knows (a cache) are recognised as they pass and drained without being
parsed.

From an overlay2 store, a layer is read from its ``tar-split`` record (the engine's copy of the
layer tar's headers, which ``docker save`` replays) and its ``diff`` directory (the contents),
or, without that record, by walking the ``diff`` directory as the engine's own differ does,
overlay whiteouts (0/0 character devices) and opaque directories (the ``overlay.opaque``
xattr) translated back to ``.wh.`` entries. Either gives the :class:`LayerIndex` the export
gives.

Every regular file with an execute bit is probed as it passes (:mod:`pytest_slimimage.analysis.elfprobe`):
ELF facts, or a script's ``#!`` line; every text file up to 1 MiB is read for secrets
(:mod:`pytest_slimimage.analysis.secrets`), whose findings (never the secrets) the index keeps. Pure:
reads bytes and files, imports neither pytest nor docker.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import dataclasses
import functools
import gzip
import hashlib
import io
import json
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from pytest_slimimage.analysis import elfprobe, secrets
from pytest_slimimage.analysis.toolchains import APK_INSTALLED, DPKG_STATUS, DPKG_STATUS_DIR, is_package_database
from pytest_slimimage.analysis.users import GROUP, PASSWD
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem, SecretFinding, normalise

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
CONTENT_LIMIT = 8 * 1024 * 1024
FINGERPRINT_BYTES = 64 * 1024
"""A layer tar's fingerprint is its length and the digest of this many first bytes."""
_BLOCK = 1024 * 1024

WantContent = Callable[[str, int], bool]

LD_SO_CONF = "/etc/ld.so.conf"
LD_SO_CONF_DIR = "/etc/ld.so.conf.d/"
KEPT_CONTENT = (DPKG_STATUS, DPKG_STATUS_DIR, APK_INSTALLED, LD_SO_CONF, LD_SO_CONF_DIR, PASSWD, GROUP)
"""The files whose contents the engine's layer index keeps (a trailing ``/``: everything below)."""


def keeps_content(path: str, size: int = 0) -> bool:
    """The files whose contents the layer index keeps: the package databases
    (:func:`~pytest_slimimage.analysis.toolchains.find_toolchains`), the dynamic loader's search path
    configuration, ``/etc/ld.so.conf`` and ``/etc/ld.so.conf.d/*`` (the runnable diagnosis), and the
    user and group databases, ``/etc/passwd`` and ``/etc/group`` (``non_root``, ``no_setuid``)."""
    return is_package_database(path, size) or path in (LD_SO_CONF, PASSWD, GROUP) or path.startswith(LD_SO_CONF_DIR)


INDEX_SCHEMA = 3
"""Bumped whenever what an index holds, or how it is probed, changes."""


def index_format() -> str:
    """Names this version of the index (schema, kept files, probe markers and caps): a stored
    index of another format is not reused."""
    probe = (
        KEPT_CONTENT,
        CONTENT_LIMIT,
        FINGERPRINT_BYTES,
        [(m.name, m.needles) for m in elfprobe.MARKERS],
        (secrets.SCAN_LIMIT, secrets.BINARY_PROBE, secrets.RULES_VERSION),
        (elfprobe.HEAD_CAP, elfprobe.DYNAMIC_CAP, elfprobe.SCAN_CAP, elfprobe.SHEBANG_CAP, elfprobe.MAX_TAGS),
    )
    return f"{INDEX_SCHEMA}-{hashlib.sha256(repr(probe).encode()).hexdigest()[:12]}"


INDEX_FORMAT = index_format()


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
    tar_size: int = 0
    """Bytes of the layer tar (0: unknown). With ``head_digest``, how an export recognises the
    layer before it has read it all."""
    head_digest: str = ""
    """``sha256:<hex>`` of the layer tar's first :data:`FINGERPRINT_BYTES` bytes ("": unknown)."""
    secrets: list[SecretFinding] = field(default_factory=list)
    """Private keys, credentials and tokens in this layer's files, masked (:mod:`.secrets`)."""


@dataclass
class SavedImage:
    layers: list[LayerIndex]
    """Bottom to top, as the image's manifest orders them."""
    config: dict[str, object]


class LayerMismatch(SlimImageError):
    """A layer of an export taken for a known one (same length and first bytes) turned out to
    be another: index the export again without skipping."""


class StorageMismatch(SlimImageError):
    """The engine's storage does not hold what its records say (a file missing or of another
    size): read the layer from the export instead."""


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
    return io.BufferedReader(_ChunkReader(chunks), buffer_size=_BLOCK)


class _HashingReader(io.RawIOBase):
    """Reads through ``raw``, hashing the first :data:`FINGERPRINT_BYTES` bytes and (unless told
    not to) everything."""

    def __init__(self, raw: BinaryIO, *, whole: bool = True) -> None:
        self._raw = raw
        self.sha = hashlib.sha256() if whole else None
        self.head = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(target))
        if not data:
            return 0
        if self.sha is not None:
            self.sha.update(data)
        if self.count < FINGERPRINT_BYTES:
            self.head.update(data[: FINGERPRINT_BYTES - self.count])
        self.count += len(data)
        target[: len(data)] = data
        return len(data)


class _Forward:
    """A stream that ``tarfile`` may treat as seekable because it only ever seeks forward when
    reading members in order: a forward seek reads through (into one scratch buffer). Cheaper
    than tarfile's own stream mode (``r|``), which copies its read buffer on every header."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._pos = 0
        self._scratch = memoryview(bytearray(_BLOCK))

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = offset + (self._pos if whence == os.SEEK_CUR else 0)
        if whence not in (os.SEEK_SET, os.SEEK_CUR) or target < self._pos:
            raise tarfile.StreamError(f"cannot seek back in a stream (from {self._pos} to {target})")
        while self._pos < target:
            got = self._raw.readinto(self._scratch[: min(_BLOCK, target - self._pos)])  # type: ignore[attr-defined]
            if not got:  # past the end: the next read finds nothing, and tarfile says so
                break
            self._pos += got
        return self._pos


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


class _Builder:
    """Turns tar headers, in archive order, into a :class:`LayerIndex`, probing executables."""

    def __init__(self, want_content: WantContent | None) -> None:
        self.index = LayerIndex(digest="")
        self._want = want_content

    def add(self, member: tarfile.TarInfo, open_content: Callable[[], IO[bytes] | None], *, seekable: bool) -> None:
        """``open_content`` opens the member's bytes (called at most once, for regular files)."""
        index = self.index
        path = normalise(member.name)
        parent, _, base = path.rpartition("/")
        parent = parent or "/"
        if base == OPAQUE_MARKER:
            index.opaque_dirs.append(parent)
            return
        if base.startswith(WHITEOUT_PREFIX):
            index.whiteouts.append(normalise(parent + "/" + base[len(WHITEOUT_PREFIX) :]))
            return
        kind = _kind(member)
        link = normalise(member.linkname) if kind == "hardlink" else member.linkname if kind == "symlink" else ""
        mode = member.mode & 0o7777
        elf: ElfInfo | None = None
        shebang: str | None = None
        if kind == "file":
            index.size += member.size
            wanted = self._want is not None and member.size <= CONTENT_LIMIT and self._want(path, member.size)
            probe = bool(mode & 0o111) and member.size > 0
            scan = secrets.wants_content(path, member.size)
            data: bytes | None = None
            if wanted or probe or scan:
                content = open_content()
                if content is not None:
                    with contextlib.closing(content):
                        if wanted or (scan and not secrets.is_binary(_peek(content))):
                            data = content.read()
                            content = io.BytesIO(data)
                        if wanted and data is not None:
                            index.contents[path] = data
                        if probe:
                            elf, shebang = elfprobe.probe_executable(
                                content, member.size, seekable=seekable or data is not None
                            )
            index.secrets.extend(secrets.scan_file(path, data, member.size))
        elif kind == "hardlink":
            target = index.entries.get(link)
            if target is not None and target.kind == "file":  # same layer: the same bytes
                elf, shebang = target.elf, target.shebang
        index.entries[path] = FileEntry(
            path=path,
            kind=kind,
            size=member.size,
            mode=mode,
            link=link,
            elf=elf,
            shebang=shebang,
            uid=member.uid,
            gid=member.gid,
        )

    def finish(self, digest: str, tar_size: int = 0, head_digest: str = "") -> LayerIndex:
        index = self.index
        index.digest, index.tar_size, index.head_digest = digest, tar_size, head_digest
        return index


def _peek(content: IO[bytes]) -> bytes:
    """The first bytes of ``content`` without consuming them (a buffered reader's peek), to tell a
    binary file before reading it; nothing where it cannot peek (the file is then read whole: it is
    at most :data:`~pytest_slimimage.analysis.secrets.SCAN_LIMIT` bytes)."""
    peek = getattr(content, "peek", None)
    if peek is None:
        return b""
    head = peek(secrets.BINARY_PROBE)
    return head if isinstance(head, bytes) else b""


def index_layer(stream: BinaryIO, *, want_content: WantContent | None = None, digest: bool = True) -> LayerIndex:
    """Index one uncompressed layer tar read from ``stream`` (consumed to its end). Without
    ``digest``, the tar is not hashed (the index's digest is left empty for the caller to set)."""
    hashing = _HashingReader(stream, whole=digest)
    buffered = io.BufferedReader(hashing, buffer_size=_BLOCK)
    builder = _Builder(want_content)
    with tarfile.open(fileobj=_Forward(buffered), mode="r:") as tar:  # type: ignore[call-overload]
        for member in tar:
            builder.add(member, functools.partial(tar.extractfile, member), seekable=False)
    while buffered.read(_BLOCK):
        pass
    sha = "sha256:" + hashing.sha.hexdigest() if hashing.sha is not None else ""
    return builder.finish(sha, hashing.count, "sha256:" + hashing.head.hexdigest())


def _looks_like_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def index_saved_image(
    stream: BinaryIO,
    *,
    want_content: WantContent | None = None,
    known: Iterable[LayerIndex] = (),
    trust_config: bool = False,
) -> SavedImage:
    """Index every layer of a ``docker save`` archive read from ``stream``, in one pass.

    A layer in ``known`` is not parsed again: it is recognised by its name (an OCI blob is named
    by its digest) or, in the classic layout, by its fingerprint (length and the digest of its
    first bytes), then drained; a fingerprinted layer is verified (:class:`LayerMismatch` if it
    was not the known one after all).

    Layers are hashed for their digests, unless ``trust_config``: then the digests are the diff
    ids the archive's image config lists (an engine's own export, which it verified as it wrote
    it: hashing it again costs ~15% of the indexing time), and recognised layers are verified
    against them rather than hashed.
    """
    by_digest = {layer.digest: layer for layer in known}
    by_print = {(la.tar_size, la.head_digest): la for la in by_digest.values() if la.tar_size and la.head_digest}
    by_member: dict[str, LayerIndex] = {}
    jsons: dict[str, object] = {}
    aliases: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=_Forward(stream), mode="r:") as outer:  # type: ignore[call-overload]
            for member in outer:
                if member.issym():  # docker-archive links a repeated layer to its first copy
                    name = member.name.lstrip("./")
                    aliases[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                    continue
                if not member.isreg():
                    continue
                name = member.name.lstrip("./")
                named = "sha256:" + name[len("blobs/sha256/") :] if name.startswith("blobs/sha256/") else ""
                if named in by_digest:  # a known layer, named by its digest: not even read
                    by_member[name] = by_digest[named]
                    continue
                extracted = outer.extractfile(member)
                if extracted is None:  # pragma: no cover - regular members always extract
                    continue
                if name.endswith(".json") or name in ("repositories", "oci-layout") or member.size < 1024:
                    data = extracted.read()
                    if name.endswith(".json") or name.startswith("blobs/"):
                        with contextlib.suppress(ValueError):
                            jsons[name] = json.loads(data)
                    continue
                peek = io.BufferedReader(extracted, buffer_size=_BLOCK)
                if name.endswith("/layer.tar") or _looks_like_tar(peek.peek(512)):
                    same = _recognise(peek, member.size, by_print, verify=not trust_config)
                    if same is None:
                        same = index_layer(peek, want_content=want_content, digest=not trust_config)
                    by_member[name] = same
                else:
                    data = peek.read()
                    with contextlib.suppress(ValueError):
                        jsons[name] = json.loads(data)
    except tarfile.TarError as exc:
        raise SlimImageError(f"the engine's image export is not a readable archive: {exc}") from exc
    for name, target in aliases.items():
        if target in by_member:
            by_member[name] = by_member[target]
    saved = _assemble(by_member, jsons)
    if trust_config:
        _digests_from_config(saved, set(map(id, by_digest.values())))
    return saved


class _Peekable(Protocol):
    def peek(self, size: int = ..., /) -> bytes: ...
    def read(self, size: int | None = ..., /) -> bytes: ...


def _recognise(
    peek: _Peekable, size: int, by_print: dict[tuple[int, str], LayerIndex], *, verify: bool
) -> LayerIndex | None:
    """The known layer ``peek`` (a whole layer tar, unread) has the fingerprint of, drained --
    through a hash when ``verify`` -- or None (nothing read) when it has no known fingerprint."""
    if not by_print:
        return None
    head = peek.peek(FINGERPRINT_BYTES)[:FINGERPRINT_BYTES]
    if len(head) < min(size, FINGERPRINT_BYTES):  # pragma: no cover - the buffer holds 1 MiB
        return None
    known = by_print.get((size, "sha256:" + hashlib.sha256(head).hexdigest()))
    if known is None or not verify:
        return known  # unverified: left for the archive's reader to skip, checked against the config
    sha = hashlib.sha256()
    while block := peek.read(_BLOCK):
        sha.update(block)
    if "sha256:" + sha.hexdigest() != known.digest:
        raise LayerMismatch(
            f"a layer of the export has the length and first bytes of {known.digest} but not its digest"
        )
    return known


def _digests_from_config(saved: SavedImage, known: set[int]) -> None:
    """Give each parsed layer its diff id from the image config; check the recognised ones."""
    rootfs = saved.config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(saved.layers):
        raise SlimImageError(
            f"the image export's config does not list the diff ids of its {len(saved.layers)} layer(s)"
        )
    for layer, diff_id in zip(saved.layers, diff_ids, strict=True):
        if id(layer) in known:
            if layer.digest != diff_id:
                raise LayerMismatch(f"a layer of the export was taken for {layer.digest}; the config says {diff_id}")
        elif not layer.digest:
            layer.digest = str(diff_id)


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


# --------------------------------------------------------------------------- the engine's storage
def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """The chain id of each layer (OCI image spec): the first layer's is its diff id, the n-th's
    is ``sha256(chain(n-1) + " " + diff(n))``. The engine's layer store is keyed by these."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def index_tar_split(
    tar_split: Path, diff_dir: Path, *, digest: str, want_content: WantContent | None = None
) -> LayerIndex:
    """Index a layer of an overlay2 store: its tar headers, in order, from ``tar_split`` (the
    engine's ``tar-split.json.gz``, the layer tar with the contents left out -- what ``docker
    save`` reassembles the tar from), the contents of executables and kept files from
    ``diff_dir``. :class:`StorageMismatch` when a regular file is missing or of another size."""
    tar = _VirtualTar(tar_split, diff_dir)
    builder = _Builder(want_content)
    root = os.path.realpath(diff_dir)
    with tarfile.open(fileobj=tar, mode="r:") as archive:  # type: ignore[call-overload]
        for member in archive:
            if member.isreg() and not posixpath.basename(normalise(member.name)).startswith(WHITEOUT_PREFIX):
                _check_file(root, member.name, member.size)  # (whiteouts are 0/0 devices on disk)
            builder.add(member, functools.partial(_open_inside, root, member.name), seekable=True)
    head = tar.read_at(0, FINGERPRINT_BYTES, contents=True)
    return builder.finish(digest, tar.size, "sha256:" + hashlib.sha256(head).hexdigest())


def index_overlay_dir(diff_dir: Path, *, digest: str, want_content: WantContent | None = None) -> LayerIndex:
    """Index a layer of an overlay2 store from its ``diff`` directory alone, walked as the
    engine's differ walks it (names sorted in each directory; a later name of a hard-linked
    inode becomes a hard link to the first), with overlay whiteouts and opaque directories
    translated back to ``.wh.`` entries. Same index as the layer's tar when the engine made that
    tar (a build step); an imported tar may order its entries differently (so which name of a
    hard-linked file is the link can differ). Fingerprint unknown."""
    builder = _Builder(want_content)
    for member, path in _walk_overlay(os.fsencode(diff_dir), ""):
        builder.add(member, functools.partial(_open_file, path), seekable=True)
    return builder.finish(digest)


def _walk_overlay(
    directory: bytes, prefix: str, seen: dict[tuple[int, int], str] | None = None
) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    seen = {} if seen is None else seen
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        st = os.lstat(path)
        rel = prefix + os.fsdecode(name)
        info = tarfile.TarInfo(rel)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # an overlay whiteout
            info.name = prefix + WHITEOUT_PREFIX + os.fsdecode(name)
            yield info, path
            continue
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            first = seen.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                info.type, info.linkname = tarfile.LNKTYPE, first
                yield info, path
                continue
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            yield info, path
            if _opaque(path):
                yield tarfile.TarInfo(f"{rel}/{OPAQUE_MARKER}"), path
            yield from _walk_overlay(path, rel + "/", seen)
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.fsdecode(os.readlink(path))
            yield info, path
        elif stat.S_ISREG(st.st_mode):
            info.size = st.st_size
            yield info, path
        else:
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.FIFOTYPE
            yield info, path


def _opaque(path: bytes) -> bool:
    """overlayfs marks a directory that hides the lower layers' one with ``overlay.opaque=y``
    (``trusted.``, or ``user.`` when the engine runs rootless)."""
    getxattr = getattr(os, "getxattr", None)  # Linux only, as overlay2 is
    for attribute in ("trusted.overlay.opaque", "user.overlay.opaque"):
        with contextlib.suppress(OSError):
            if getxattr is not None and getxattr(path, attribute, follow_symlinks=False) == b"y":
                return True
    return False


def _open_file(path: bytes) -> IO[bytes]:
    return open(path, "rb")


def _inside(root: str, name: str) -> str:
    return os.path.join(root, normalise(name).lstrip("/"))


def _check_file(root: str, name: str, size: int) -> None:
    try:
        st = os.lstat(_inside(root, name))
    except OSError as exc:
        raise StorageMismatch(f"the layer's file {normalise(name)} is missing from {root}: {exc}") from exc
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        raise StorageMismatch(f"the layer's file {normalise(name)} in {root} is not the {size}-byte file it records")


def _open_inside(root: str, name: str) -> IO[bytes]:
    real = os.path.realpath(_inside(root, name))
    if not real.startswith(root + os.sep):
        raise StorageMismatch(f"the layer's file {normalise(name)} leads out of {root}")
    return open(real, "rb")


class _VirtualTar:
    """A layer tar reassembled from its tar-split record: the headers (and padding) as
    recorded; the contents, which tar-split leaves out, read from the layer's directory only
    when asked for (``read_at(..., contents=True)``), zeros otherwise -- ``tarfile`` in seekable
    mode never reads them."""

    def __init__(self, tar_split: Path, diff_dir: Path) -> None:
        self._root = os.path.realpath(diff_dir)
        self._offsets: list[int] = []
        self._pieces: list[bytes | tuple[str, int]] = []
        size = 0
        with gzip.open(tar_split, "rt", encoding="utf-8") as records:
            for line in records:
                if not line.strip():
                    continue
                record = json.loads(line)
                if record.get("type") == 2:  # a segment: raw header and padding bytes
                    payload = base64.b64decode(record.get("payload") or "")
                    piece: bytes | tuple[str, int] = payload
                    length = len(payload)
                elif record.get("type") == 1:  # a file: its name and content length, no content
                    raw = record.get("name_raw")
                    name = os.fsdecode(base64.b64decode(raw)) if raw else str(record.get("name", ""))
                    length = int(record.get("size") or 0)
                    piece = (name, length)
                else:
                    raise StorageMismatch(f"unknown tar-split record in {tar_split}: {line[:80]!r}")
                if length:
                    self._offsets.append(size)
                    self._pieces.append(piece)
                    size += length
        self.size = size
        self._pos = 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = self._pos if whence == os.SEEK_CUR else self.size if whence == os.SEEK_END else 0
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        data = self.read_at(self._pos, self.size - self._pos if n < 0 else n, contents=False)
        self._pos += len(data)
        return data

    def read_at(self, offset: int, n: int, *, contents: bool) -> bytes:
        out = []
        end = min(self.size, offset + n)
        number = max(0, bisect.bisect_right(self._offsets, offset) - 1)
        while offset < end and number < len(self._pieces):
            start, piece = self._offsets[number], self._pieces[number]
            if isinstance(piece, bytes):
                part = piece[offset - start : end - start]
            else:
                name, length = piece
                want = min(end, start + length) - offset
                part = self._content(name, offset - start, want) if contents else bytes(want)
            out.append(part)
            offset += len(part)
            number += 1
        return b"".join(out)

    def _content(self, name: str, at: int, n: int) -> bytes:
        with _open_inside(self._root, name) as fh:
            fh.seek(at)
            data = fh.read(n)
        if len(data) != n:
            raise StorageMismatch(f"the layer's file {normalise(name)} in {self._root} is shorter than recorded")
        return data

    def chunks(self) -> Iterator[bytes]:
        """The whole tar, contents included, front to back (each file opened once)."""
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            name, length = piece
            with _open_inside(self._root, name) as fh:
                left = length
                while left > 0:
                    data = fh.read(min(_BLOCK, left))
                    if not data:
                        raise StorageMismatch(
                            f"the layer's file {normalise(name)} in {self._root} is shorter than recorded"
                        )
                    left -= len(data)
                    yield data


def open_layer_tar(tar_split: Path, diff_dir: Path) -> BinaryIO:
    """A layer of an overlay2 store as its tar, byte for byte what the engine's export and a push
    send: the headers from its ``tar-split`` record, the contents from its ``diff`` directory."""
    return stream_from_chunks(_VirtualTar(tar_split, diff_dir).chunks())


def merge_layers(layers: Iterable[LayerIndex]) -> FileSystem:
    """Apply layers bottom to top (opaque dirs, then whiteouts, then entries) into one view.

    A layer that writes a file where a directory stood also removes what the directory held.
    Removals look subtrees up in the sorted paths (bisect), so a layer with many whiteouts costs
    O(n log n), not O(n x whiteouts)."""
    entries: dict[str, FileEntry] = {}
    contents: dict[str, bytes] = {}
    for number, layer in enumerate(layers):
        replaced_dirs = [
            path
            for path, entry in layer.entries.items()
            if entry.kind != "dir" and (old := entries.get(path)) is not None and old.kind == "dir"
        ]
        if layer.opaque_dirs or layer.whiteouts or replaced_dirs:
            doomed = [w for w in layer.whiteouts if w in entries]
            keys = sorted(entries)
            for root in (*layer.whiteouts, *layer.opaque_dirs, *replaced_dirs):
                prefix = root.rstrip("/") + "/"
                # every path under root: from "root/" up to (not including) "root0" ('0' follows '/')
                doomed.extend(keys[bisect.bisect_left(keys, prefix) : bisect.bisect_left(keys, prefix[:-1] + "0")])
            for path in doomed:
                entries.pop(path, None)
                contents.pop(path, None)
        for path, entry in layer.entries.items():
            entries[path] = dataclasses.replace(entry, layer=number)
            if path in layer.contents:
                contents[path] = layer.contents[path]
            else:
                contents.pop(path, None)
    return FileSystem(entries=entries, contents=contents)
