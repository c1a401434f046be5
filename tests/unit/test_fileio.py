"""``write_atomic``: text as UTF-8 or bytes as given, written beside the target under a name no
other writer uses and renamed over it; a failure leaves the old file and no temporary file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pytest_slimimage import fileio
from pytest_slimimage.fileio import write_atomic


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_text_is_written_as_utf8_and_bytes_as_given(tmp_path: Path) -> None:
    text = tmp_path / "baseline.json"
    write_atomic(text, '{"name": "größe"}\n')
    assert text.read_bytes() == '{"name": "größe"}\n'.encode()
    blob = tmp_path / "entry.gz"
    write_atomic(str(blob), b"\x1f\x8b\x00\xff")  # a str path too
    assert blob.read_bytes() == b"\x1f\x8b\x00\xff"
    assert names(tmp_path) == ["baseline.json", "entry.gz"]


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text("a much longer old content than the new one\n")
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert names(tmp_path) == ["record.json"]


def test_the_temporary_file_is_beside_the_target_and_unique(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renamed: list[tuple[Path, Path]] = []
    real = os.replace

    def recording(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renamed.append((Path(src), Path(dst)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", recording)
    path = tmp_path / "record.json"
    write_atomic(path, "1")
    write_atomic(path, "2")
    (first, target), (second, _) = renamed
    assert target == path
    assert first.parent == second.parent == tmp_path  # same folder: the rename cannot cross filesystems
    assert first != second
    assert first.name.startswith(".record.json.") and first.name.endswith(".tmp")


def test_concurrent_writers_never_share_a_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    payloads = [f"{n:02d}" * 50_000 for n in range(8)]
    errors: list[BaseException] = []

    def write(data: str) -> None:
        try:
            for _ in range(5):
                write_atomic(path, data)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert path.read_text() in payloads  # one writer's whole content, not a mix
    assert names(tmp_path) == ["shared.json"]


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("old\n")

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        write_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert names(tmp_path) == ["baseline.json"]


def test_a_failed_write_removes_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    path = tmp_path / "entry"
    with pytest.raises(OSError, match="Input/output error"):
        write_atomic(path, b"data", fsync=True)
    assert names(tmp_path) == []


def test_fsync_is_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    write_atomic(tmp_path / "fast", "x")
    assert synced == []
    write_atomic(tmp_path / "durable", "x", fsync=True)
    assert len(synced) == 1
    assert (tmp_path / "durable").read_text() == "x"


def test_a_missing_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "file", "x")
    assert names(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_the_mode_is_a_plain_writes_mode(tmp_path: Path) -> None:
    """A baseline is a file the user commits: not made private by the atomic write."""
    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic = tmp_path / "atomic"
    write_atomic(atomic, "x")
    assert atomic.stat().st_mode == plain.stat().st_mode


def test_only_write_atomic_is_public() -> None:
    assert fileio.__all__ == ["write_atomic"]
