"""The on-disk cache of layer indexes: round trip, corrupt entries, format changes, atomic writes."""

from __future__ import annotations

import gzip
import json
import os
import threading
from pathlib import Path

import pytest

from pytest_slimimage.analysis import elfprobe, layercache
from pytest_slimimage.analysis.layercache import CACHE_FORMAT, LayerCache
from pytest_slimimage.analysis.layers import INDEX_FORMAT, LayerIndex, index_format
from pytest_slimimage.facts import ElfInfo, FileEntry, SecretFinding

DIGEST = "sha256:" + "ab" * 32
ELF = ElfInfo(
    "amd64", 64, "dyn", "/lib64/ld-linux-x86-64.so.2", ("libc.so.6",), ("/opt/lib", "$ORIGIN"), ("gcc-driver",)
)


def sample(digest: str = DIGEST, files: int = 3) -> LayerIndex:
    entries = [
        FileEntry("/usr/bin/gcc-12", "file", 1_301_496, 0o755, elf=ELF),
        FileEntry("/usr/bin/cc", "hardlink", 0, 0o755, "/usr/bin/gcc-12", elf=ELF),
        FileEntry("/usr/bin/run", "file", 20, 0o4755, shebang="/bin/sh -e", uid=0, gid=50),
        FileEntry("/home/app", "dir", 0, 0o700, uid=1000, gid=1000),
        FileEntry("/usr/bin/static", "file", 9, 0o755, elf=ElfInfo("arm64", 64, "exec")),
        FileEntry("/usr/lib/x", "symlink", 0, 0o777, "../x.so"),
        FileEntry("/odd/na\udcefme", "file", 1),  # a name that is not UTF-8 (tarfile's surrogateescape)
        FileEntry("/dev/null", "other", 0, 0o666),
        FileEntry("/etc", "dir", 0, 0o755),
        *(FileEntry(f"/data/{n}", "file", n) for n in range(files)),
    ]
    return LayerIndex(
        digest=digest,
        entries={e.path: e for e in entries},
        whiteouts=["/etc/hostname", "/opt/gone"],
        opaque_dirs=["/opt/cache"],
        contents={"/var/lib/dpkg/status": b"Package: gcc\n", "/etc/ld.so.conf": b"\x00\xff binary\n"},
        size=1_301_526,
        tar_size=1_400_320,
        head_digest="sha256:" + "cd" * 32,
        secrets=[SecretFinding("aws-access-key-id", "AWS access key id", "/app/.env", 3, "AKIA*************XYZ")],
    )


def test_round_trip(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    assert cache.get(DIGEST) is None
    cache.put(sample())
    assert cache.get(DIGEST) == sample()
    assert LayerCache(tmp_path).get(DIGEST) == sample()  # another session, same folder
    assert cache.path(DIGEST) == tmp_path / CACHE_FORMAT / f"{'ab' * 32}.json.gz"
    assert CACHE_FORMAT.endswith(INDEX_FORMAT)


def test_stored_as_gzipped_json(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put(sample())
    record = json.loads(gzip.decompress(cache.path(DIGEST).read_bytes()))
    assert (record["format"], record["digest"]) == (CACHE_FORMAT, DIGEST)
    assert len(record["entries"]) == len(sample().entries)


def test_entries_are_keyed_by_digest(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    other = "sha256:" + "01" * 32
    cache.put(sample())
    cache.put(sample(other, files=0))
    assert cache.get(other) == sample(other, files=0)
    assert cache.get(DIGEST) == sample()


@pytest.mark.parametrize(
    "damage",
    [b"", b"not gzip at all", gzip.compress(b"not json", mtime=0), gzip.compress(b"[1, 2]", mtime=0),
     gzip.compress(b'{"format": 1}', mtime=0),
     "truncated", "no entries", "bad entry", "bad base64"],
)  # fmt: skip
def test_a_corrupt_entry_is_a_miss_and_is_rewritten(damage: bytes | str, tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put(sample())
    path = cache.path(DIGEST)
    good = path.read_bytes()
    record = json.loads(gzip.decompress(good))
    if damage == "truncated":
        data = good[: len(good) // 2]
    elif damage == "no entries":
        del record["entries"]
        data = gzip.compress(json.dumps(record).encode())
    elif damage == "bad entry":
        record["entries"][0] = ["/x", "file"]
        data = gzip.compress(json.dumps(record).encode())
    elif damage == "bad base64":
        record["contents"]["/etc/ld.so.conf"] = "***"
        data = gzip.compress(json.dumps(record).encode())
    else:
        assert isinstance(damage, bytes)
        data = damage
    path.write_bytes(data)
    assert cache.get(DIGEST) is None
    cache.put(sample())
    assert cache.get(DIGEST) == sample()


def test_an_entry_for_another_digest_is_a_miss(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    other = "sha256:" + "01" * 32
    cache.put(sample(other))
    cache.path(DIGEST).write_bytes(cache.path(other).read_bytes())  # a file in the wrong place
    assert cache.get(DIGEST) is None


def test_another_format_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    LayerCache(tmp_path).put(sample())
    monkeypatch.setattr(layercache, "CACHE_FORMAT", "v999-future")
    newer = LayerCache(tmp_path)
    assert newer.get(DIGEST) is None  # another folder
    (tmp_path / "v999-future").mkdir()
    old = tmp_path / (CACHE_FORMAT) / f"{'ab' * 32}.json.gz"
    newer.path(DIGEST).write_bytes(old.read_bytes())  # an old entry copied under the new name
    assert newer.get(DIGEST) is None  # its recorded format is checked too
    newer.put(sample())
    assert newer.get(DIGEST) == sample()


def test_the_format_names_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing what the index keeps or how it probes changes the format (old entries unused)."""
    assert index_format() == INDEX_FORMAT
    monkeypatch.setattr(elfprobe, "SCAN_CAP", elfprobe.SCAN_CAP + 1)
    assert index_format() != INDEX_FORMAT
    monkeypatch.undo()
    monkeypatch.setattr(elfprobe, "MARKERS", elfprobe.MARKERS[:-1])
    assert index_format() != INDEX_FORMAT


def test_not_a_digest(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    with pytest.raises(ValueError, match=r"^not a layer digest: '\.\./\.\./etc/passwd'$"):
        cache.path("../../etc/passwd")
    assert cache.get("../../etc/passwd") is None
    cache.put(sample("sha256:../../x"))  # ignored
    assert not any(tmp_path.rglob("*.json.gz"))


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path) -> None:
    """Readers racing a writer see a whole entry or none, never a partial one."""
    cache = LayerCache(tmp_path)
    big = sample(files=20_000)
    seen: list[str] = []
    stop = threading.Event()

    def read() -> None:  # the raw file: a torn write would show as a truncated gzip stream
        path = cache.path(DIGEST)
        while not stop.is_set():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                seen.append("none")
                continue
            try:
                json.loads(gzip.decompress(data))
                seen.append("whole")
            except (OSError, EOFError, ValueError):
                seen.append("PARTIAL")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        for _ in range(8):
            cache.put(big)
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert "PARTIAL" not in seen
    assert "whole" in seen
    assert cache.get(DIGEST) == big
    assert sorted(p.name for p in (tmp_path / CACHE_FORMAT).iterdir()) == [f"{'ab' * 32}.json.gz"]


def test_a_failed_write_leaves_the_old_entry_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = LayerCache(tmp_path)
    cache.put(sample())

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    cache.put(sample(files=50))  # no error: the cache is an optimisation
    monkeypatch.undo()
    assert cache.get(DIGEST) == sample()
    assert sorted(p.name for p in (tmp_path / CACHE_FORMAT).iterdir()) == [f"{'ab' * 32}.json.gz"]


def test_an_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    # A regular file where the cache folder should be: no one, root included, can create inside it.
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    LayerCache(blocked).put(sample())
    assert LayerCache(blocked).get(DIGEST) is None
    assert blocked.read_text() == "not a folder"
