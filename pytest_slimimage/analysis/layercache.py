"""An on-disk cache of layer indexes, keyed by layer digest (the diff id).

A layer's content never changes under its digest, so its index is computed once per machine
and reused by every later session and every xdist worker. One gzip'd JSON file per layer
(no pickle: a cache file is data, never code), under a folder named for the index format
(:data:`CACHE_FORMAT`): when the format changes, old entries are simply not found. Files are
written to a temporary name and renamed into place, so a concurrent reader sees a whole entry
or none; an unreadable entry is treated as missing (and rewritten by the next ``put``).
Pure: imports neither pytest nor docker.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import re
from pathlib import Path
from typing import Any

from pytest_slimimage.analysis.layers import INDEX_FORMAT, LayerIndex
from pytest_slimimage.analysis.layerscan import PULL_METHOD, LayerScan
from pytest_slimimage.facts import ElfInfo, FileEntry, FileState, SecretFinding
from pytest_slimimage.fileio import write_atomic

CACHE_SCHEMA = 2
"""The JSON layout below (2: entries' owners, the layer's secret findings); the index's own format
(``INDEX_FORMAT``) is part of the name."""
CACHE_FORMAT = f"v{CACHE_SCHEMA}-{INDEX_FORMAT}"
SCAN_SCHEMA = 1
"""The JSON layout of the records of a layer's second look (:mod:`~pytest_slimimage.analysis.layerscan`),
kept apart from the index's, so that a new index format keeps them and they cost the index nothing."""
PULL_FORMAT = f"pull-v{SCAN_SCHEMA}-{PULL_METHOD}"
"""The folder of compressed sizes: named for how they are computed."""
FILES_FORMAT = f"files-v{SCAN_SCHEMA}"
"""The folder of per-file owners, modes and content digests."""
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


class LayerCache:
    """Layer indexes stored under ``root`` (e.g. ``config.cache.mkdir("slimimage-layers")``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folder = self.root / CACHE_FORMAT

    def __repr__(self) -> str:
        return f"<LayerCache {self.folder}>"

    def path(self, digest: str) -> Path:
        match = _DIGEST.match(digest)
        if match is None:
            raise ValueError(f"not a layer digest: {digest!r}")
        return self.folder / f"{match.group(1)}.json.gz"

    def get(self, digest: str) -> LayerIndex | None:
        """The stored index of layer ``digest``; None when absent, unreadable or of another format."""
        try:
            path = self.path(digest)
            with gzip.open(path, "rb") as fh:
                record = json.loads(fh.read())
            if record.get("format") != CACHE_FORMAT or record.get("digest") != digest:
                return None
            return _from_json(record)
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing, truncated, not gzip, not JSON, not our shape: recomputed

    def put(self, index: LayerIndex) -> None:
        """Store ``index`` (atomically: a temporary file renamed into place). A cache that cannot
        be written (read-only, full) is not an error: the index is just computed again next time."""
        try:
            target = self.path(index.digest)
        except ValueError:
            return
        data = gzip.compress(json.dumps(_to_json(index), separators=(",", ":")).encode("ascii"), compresslevel=5)
        with contextlib.suppress(OSError):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, data)

    # --------------------------------------------------------------------- a layer's second look
    def get_scan(self, digest: str, *, pull: bool = False, files: bool = False) -> LayerScan | None:
        """What a scan of layer ``digest`` found, when the cache holds everything asked for
        (``pull``: its compressed size; ``files``: its files' states); None otherwise."""
        match = _DIGEST.match(digest)
        if match is None:
            return None
        scan = LayerScan(digest=digest)
        if pull:
            record = self._read(self.root / PULL_FORMAT / f"{match.group(1)}.json", PULL_FORMAT, digest)
            if record is None:
                return None
            scan.tar_size, scan.compressed = int(record["tar_size"]), int(record["compressed"])
        if files:
            record = self._read(self.root / FILES_FORMAT / f"{match.group(1)}.json.gz", FILES_FORMAT, digest)
            if record is None:
                return None
            try:
                scan.files = {str(row[0]): _state(row) for row in record["files"]}
            except (KeyError, TypeError, ValueError):
                return None
            scan.tar_size = scan.tar_size or int(record.get("tar_size") or 0)
        return scan

    def put_scan(self, scan: LayerScan) -> None:
        """Store what ``scan`` holds (a compressed size read from a manifest is not stored: reading
        it again costs nothing). Never an error, like :meth:`put`."""
        match = _DIGEST.match(scan.digest)
        if match is None:
            return
        head = {"digest": scan.digest, "tar_size": scan.tar_size}
        writes: list[tuple[Path, bytes]] = []
        if scan.compressed is not None and scan.source == "gzip":
            record = {"format": PULL_FORMAT, **head, "compressed": scan.compressed}
            writes.append((self.root / PULL_FORMAT / f"{match.group(1)}.json", json.dumps(record).encode("ascii")))
        if scan.files is not None:
            rows = [
                [path, s.kind, s.mode, s.uid, s.gid, s.size, s.digest, s.link, s.mtime]
                for path, s in scan.files.items()
            ]
            record = {"format": FILES_FORMAT, **head, "files": rows}
            data = gzip.compress(json.dumps(record, separators=(",", ":")).encode("ascii"), compresslevel=5)
            writes.append((self.root / FILES_FORMAT / f"{match.group(1)}.json.gz", data))
        for target, data in writes:
            with contextlib.suppress(OSError):
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, data)

    @staticmethod
    def _read(path: Path, form: str, digest: str) -> dict[str, Any] | None:
        try:
            raw = path.read_bytes()
            record = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
            if not isinstance(record, dict) or record.get("format") != form or record.get("digest") != digest:
                return None
            return record
        except (OSError, EOFError, ValueError):
            return None  # missing, truncated, not gzip, not JSON: computed again


# --------------------------------------------------------------------------------------- the JSON
def _to_json(index: LayerIndex) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "digest": index.digest,
        "size": index.size,
        "tar_size": index.tar_size,
        "head_digest": index.head_digest,
        "entries": [_entry(e) for e in index.entries.values()],
        "whiteouts": index.whiteouts,
        "opaque_dirs": index.opaque_dirs,
        "contents": {path: base64.b64encode(data).decode("ascii") for path, data in index.contents.items()},
        "secrets": [[f.rule, f.kind, f.path, f.line, f.preview] for f in index.secrets],  # masked: never the secret
    }


def _entry(entry: FileEntry) -> list[Any]:
    elf = entry.elf
    return [
        entry.path,
        entry.kind,
        entry.size,
        entry.mode,
        entry.link,
        entry.shebang,
        None
        if elf is None
        else [elf.machine, elf.bits, elf.kind, elf.interp, list(elf.needed), list(elf.runpath), list(elf.markers)],
        entry.uid,
        entry.gid,
    ]


def _from_json(record: dict[str, Any]) -> LayerIndex:
    entries: dict[str, FileEntry] = {}
    for path, kind, size, mode, link, shebang, elf, uid, gid in record["entries"]:
        info = None
        if elf is not None:
            machine, bits, elf_kind, interp, needed, runpath, markers = elf
            info = ElfInfo(
                machine=str(machine),
                bits=int(bits),
                kind=str(elf_kind),
                interp=None if interp is None else str(interp),
                needed=tuple(str(x) for x in needed),
                runpath=tuple(str(x) for x in runpath),
                markers=tuple(str(x) for x in markers),
            )
        entries[str(path)] = FileEntry(
            path=str(path),
            kind=str(kind),
            size=int(size),
            mode=int(mode),
            link=str(link),
            elf=info,
            shebang=None if shebang is None else str(shebang),
            uid=int(uid),
            gid=int(gid),
        )
    return LayerIndex(
        digest=str(record["digest"]),
        entries=entries,
        whiteouts=[str(x) for x in record["whiteouts"]],
        opaque_dirs=[str(x) for x in record["opaque_dirs"]],
        contents={str(k): base64.b64decode(v, validate=True) for k, v in record["contents"].items()},
        size=int(record["size"]),
        tar_size=int(record["tar_size"]),
        head_digest=str(record["head_digest"]),
        secrets=[
            SecretFinding(str(rule), str(kind), str(path), int(line), str(preview))
            for rule, kind, path, line, preview in record["secrets"]
        ],
    )


def _state(row: list[Any]) -> FileState:
    _, kind, mode, uid, gid, size, digest, link, mtime = row
    return FileState(
        kind=str(kind),
        mode=int(mode),
        uid=int(uid),
        gid=int(gid),
        size=int(size),
        digest=str(digest),
        link=str(link),
        mtime=int(mtime),
    )
