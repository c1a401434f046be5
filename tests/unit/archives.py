"""Build ``docker save`` archives in memory, with the stdlib only, for the layer-index tests.

Layer tars hold entries as the engine writes them (relative names, ``.wh.`` whiteouts);
the outer archives follow the two layouts the engine emits: the classic docker-archive
(``<id>/layer.tar`` + ``manifest.json``) and the OCI image layout (``blobs/sha256/<hex>``).
The engine's overlay2 storage of a layer is made from the same tars (:func:`tar_split`,
:func:`unpack_overlay`), and real ELF programs by the host's C compiler (:func:`compile_c`).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_slimimage.facts import normalise


@dataclass(frozen=True)
class Entry:
    """One member of a tar: a file with ``data``, a ``dir``, a ``symlink`` or a ``hardlink`` to ``link``."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    link: str = ""


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Entry:
    return Entry(name, "file", data, mode)


def executable(name: str, data: bytes = b"\x7fELF") -> Entry:
    return Entry(name, "file", data, 0o755)


def directory(name: str) -> Entry:
    return Entry(name, "dir", mode=0o755)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", mode=0o777, link=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", mode=0o755, link=target)


def make_tar(entries: Iterable[Entry]) -> bytes:
    """An uncompressed tar holding ``entries`` in the order given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mode = entry.mode
            info.mtime = 1_700_000_000
            if entry.kind == "file":
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[entry.kind]
            info.linkname = entry.link
            tar.addfile(info)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _config(layers: Sequence[bytes], padding: int = 0) -> bytes:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256(layer) for layer in layers]},
        "history": [{"created_by": "x" * padding}] if padding else [],
    }
    return json.dumps(config).encode()


def classic_archive(
    layers: Sequence[bytes],
    *,
    member_order: Sequence[int] | None = None,
    link_repeats: bool = False,
) -> bytes:
    """A classic docker-archive. ``member_order`` permutes where the layer members sit in the
    archive (the manifest keeps ``layers``' order); ``link_repeats`` stores a repeated layer as a
    symlink to its first copy, as the engine does."""
    members: list[Entry] = []
    names: list[str] = []
    first_copy: dict[bytes, str] = {}
    layer_members: list[list[Entry]] = []
    for number, layer in enumerate(layers):
        layer_id = sha256(layer + str(number).encode())  # distinct per position, as the engine's v1 ids are
        names.append(f"{layer_id}/layer.tar")
        group = [directory(f"{layer_id}/"), file(f"{layer_id}/VERSION", b"1.0"), file(f"{layer_id}/json", b"{}")]
        if link_repeats and layer in first_copy:
            group.append(symlink(f"{layer_id}/layer.tar", f"../{first_copy[layer]}/layer.tar"))
        else:
            first_copy.setdefault(layer, layer_id)
            group.append(file(f"{layer_id}/layer.tar", layer))
        layer_members.append(group)
    for number in member_order if member_order is not None else range(len(layers)):
        members += layer_members[number]
    config = _config(layers)
    config_name = sha256(config) + ".json"
    manifest = [{"Config": config_name, "RepoTags": ["slim:test"], "Layers": names}]
    members.append(file(config_name, config))
    members.append(file("manifest.json", json.dumps(manifest).encode()))
    members.append(file("repositories", b'{"slim":{"test":"x"}}'))
    return make_tar(members)


def oci_archive(
    layers: Sequence[bytes],
    *,
    compat_manifest: bool = True,
    nested_index: bool = False,
    config_padding: int = 0,
) -> bytes:
    """An OCI image layout as newer engines save it: ``blobs/sha256/<hex>`` for the layers, the
    config and the manifest, ``index.json`` pointing at the manifest (through a second index when
    ``nested_index``), and optionally the compatibility ``manifest.json``."""
    config = _config(layers, config_padding)
    blobs: dict[str, bytes] = {}
    layer_descriptors = []
    for layer in layers:
        blobs[sha256(layer)] = layer
        layer_descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + sha256(layer),
                "size": len(layer),
            }
        )
    blobs[sha256(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha256(config)},
            "layers": layer_descriptors,
        }
    ).encode()
    blobs[sha256(manifest)] = manifest
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha256(manifest)}
    if nested_index:
        inner = json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()
        blobs[sha256(inner)] = inner
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + sha256(inner)}
    members = [directory("blobs/"), directory("blobs/sha256/")]
    members += [file(f"blobs/sha256/{digest}", data) for digest, data in blobs.items()]
    members.append(file("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'))
    members.append(file("index.json", json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()))
    if compat_manifest:
        compat = [
            {
                "Config": "blobs/sha256/" + sha256(config),
                "RepoTags": ["slim:test"],
                "Layers": ["blobs/sha256/" + sha256(layer) for layer in layers],
            }
        ]
        members.append(file("manifest.json", json.dumps(compat).encode()))
    return make_tar(members)


def chunks(data: bytes, size: int) -> Iterable[bytes]:
    """``data`` cut in pieces of ``size`` bytes, with empty chunks between (as a socket may yield)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
        yield b""


# ------------------------------------------------------------------------------ real executables
HELLO_C = b'#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


def compile_c(directory: Path, name: str, *flags: str, source: bytes = HELLO_C) -> bytes:
    """A real ELF program built by the host's C compiler (skips the test where there is none)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:  # pragma: no cover - the project's machines have gcc
        pytest.skip("needs a C compiler on the host (gcc or cc) to build real ELF test files")
    src = directory / f"{name}.c"
    src.write_bytes(source)
    out = directory / name
    subprocess.run([compiler, "-Os", "-o", str(out), str(src), *flags], check=True, capture_output=True)
    return out.read_bytes()


# ------------------------------------------------------------------ the engine's overlay2 storage
def tar_split(layer: bytes) -> bytes:
    """The layer's ``tar-split.json.gz`` as the engine stores it: gzip'd JSON lines, the raw
    bytes between contents as segments (type 2, base64 payload), each member as a file entry
    (type 1: its name and content size, no content)."""
    records: list[dict[str, object]] = []
    pos = 0

    def segment(data: bytes) -> None:
        records.append({"type": 2, "payload": base64.b64encode(data).decode(), "position": len(records)})

    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:") as tar:
        for member in tar:
            size = member.size if member.isreg() else 0
            segment(layer[pos : member.offset_data])
            record: dict[str, object] = {"type": 1, "name": member.name, "payload": None, "position": len(records)}
            if size:
                record["size"] = size
            records.append(record)
            pos = member.offset_data + size
    segment(layer[pos:])
    return gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode())


def unpack_overlay(layer: bytes, root: Path, *, devices: bool) -> None:
    """Apply ``layer`` to ``root`` as the engine fills an overlay2 ``diff`` directory: with
    ``devices``, a ``.wh.`` whiteout becomes a 0/0 character device and ``.wh..wh..opq`` the
    ``trusted.overlay.opaque=y`` xattr of its directory (both need root); without, they are left out."""
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:") as tar:
        for member in tar:
            path = root / normalise(member.name).lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.name == ".wh..wh..opq":
                if devices:
                    os.setxattr(path.parent, "trusted.overlay.opaque", b"y")
            elif path.name.startswith(".wh."):
                if devices:
                    os.mknod(path.parent / path.name[4:], stat.S_IFCHR | 0o600, os.makedev(0, 0))
            elif member.isdir():
                path.mkdir(exist_ok=True)
                path.chmod(member.mode)
            elif member.issym():
                os.symlink(member.linkname, path)
            elif member.islnk():
                os.link(root / normalise(member.linkname).lstrip("/"), path)
            elif member.isreg():
                extracted = tar.extractfile(member)
                assert extracted is not None
                path.write_bytes(extracted.read())
                path.chmod(member.mode)
