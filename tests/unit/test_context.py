"""A build's context without an engine: which files are sent (``.dockerignore`` applied, the
Dockerfile and ``.dockerignore`` always), the tar stream the legacy builder receives (headers as
the docker CLI writes them: the file type in the mode, uid/gid 0; symlinks, hard links, names that
are not UTF-8), made while it is read with nothing written to disk, the content key over such
names, and the warning for a large context."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest

from pytest_slimimage.engine.builds import BuildRequest
from pytest_slimimage.engine.context import (
    LARGE_CONTEXT,
    BuildContext,
    ContextEntry,
    ContextStream,
    StreamCancelled,
    large_context_warning,
)
from pytest_slimimage.errors import ImageBuildError

LATIN1 = b"caf\xe9.txt"
"""A legal Linux file name that is not UTF-8."""


def weird(directory: Path, name: bytes = LATIN1) -> Path:
    """``directory/name`` for a name given as bytes (as Python spells it: surrogate escapes)."""
    return Path(os.fsdecode(os.fsencode(directory) + b"/" + name))


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /ctx\n")
    (ctx / "sub").mkdir()
    (ctx / "sub" / "data.txt").write_text("data\n")
    (ctx / "run.sh").write_text("#!/bin/sh\n")
    (ctx / "run.sh").chmod(0o755)
    (ctx / "link").symlink_to("sub/data.txt")
    os.link(ctx / "sub" / "data.txt", ctx / "hard.txt")
    weird(ctx).write_bytes(b"latin-1\n")
    (ctx / "notes.txt").write_text("ignored\n")
    (ctx / "build").mkdir()
    (ctx / "build" / "out.o").write_text("ignored with its folder\n")
    (ctx / ".dockerignore").write_text("# comment\nnotes.txt\nbuild\n\n")
    return ctx


def members(data: bytes) -> dict[bytes, tarfile.TarInfo]:
    """The archive's members by their names' bytes."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="surrogateescape") as tar:
        return {os.fsencode(m.name): m for m in tar.getmembers()}


def raw_modes(data: bytes) -> dict[bytes, int]:
    """Each member's mode field as written (Python's reader would accept either form)."""
    out: dict[bytes, int] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="surrogateescape") as tar:
        for member in tar.getmembers():
            block = data[member.offset_data - tarfile.BLOCKSIZE : member.offset_data]  # its own header, last
            out[os.fsencode(member.name)] = int(block[100:107], 8)
    return out


def test_the_files_sent_are_those_dockerignore_lets_through(context: Path) -> None:
    scanned = BuildContext.scan(context, "Dockerfile")
    assert scanned.dockerfile == "Dockerfile"
    assert set(scanned.names) == {
        ".dockerignore",
        "Dockerfile",
        "hard.txt",
        "link",
        "run.sh",
        "sub",
        "sub/data.txt",
        os.fsdecode(LATIN1),
    }
    assert scanned.extra == ()


def test_the_dockerfile_and_dockerignore_are_sent_even_when_ignored(context: Path) -> None:
    (context / "Dockerfile.app").write_text("FROM busybox:latest\n")
    (context / ".dockerignore").write_text("Dockerfile*\n.dockerignore\n")
    names = BuildContext.scan(context, "Dockerfile.app").names
    assert {"Dockerfile.app", ".dockerignore"} <= set(names)
    assert "Dockerfile" not in names


def test_the_stream_is_the_clis_tar(context: Path) -> None:
    data = b"".join(ContextStream(BuildContext.scan(context)))
    found = members(data)
    assert set(found) == {
        b".dockerignore",
        b"Dockerfile",
        b"hard.txt",
        b"link",
        b"run.sh",
        b"sub",
        b"sub/data.txt",
        LATIN1,
    }
    modes = raw_modes(data)
    assert modes[b"Dockerfile"] == stat.S_IFREG | 0o644  # the file type too, as the docker CLI writes it
    assert modes[b"run.sh"] == stat.S_IFREG | 0o755
    assert modes[b"sub"] == stat.S_IFDIR | (context / "sub").stat().st_mode & 0o7777
    assert modes[b"link"] == stat.S_IFLNK | 0o777
    assert found[b"link"].issym() and found[b"link"].linkname == "sub/data.txt"
    # a hard link: the first name (in the CLI's walk order) carries the content, the next links to it
    assert found[b"hard.txt"].isfile() and found[b"hard.txt"].size == len("data\n")
    assert found[b"sub/data.txt"].islnk() and found[b"sub/data.txt"].linkname == "hard.txt"
    assert modes[b"sub/data.txt"] == stat.S_IFREG | 0o644
    assert all(m.uid == 0 and m.gid == 0 for m in found.values())  # the CLI sends its context as root's
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="surrogateescape") as tar:
        latin1 = tar.extractfile(os.fsdecode(LATIN1))
        assert latin1 is not None and latin1.read() == b"latin-1\n"
        dockerfile = tar.extractfile("Dockerfile")
        assert dockerfile is not None and dockerfile.read() == (context / "Dockerfile").read_bytes()


def test_the_order_is_the_clis_walk(tmp_path: Path) -> None:
    """Per folder, by bytes (Go's filepath.Walk): ``dir``'s files before ``dir-x``."""
    for name in ("dir-x", "dir/a", "Dockerfile"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    assert BuildContext.scan(tmp_path).names == ("Dockerfile", "dir", "dir/a", "dir-x")


def test_a_dockerfile_outside_the_context_is_sent_under_a_name_of_its_own(tmp_path: Path, context: Path) -> None:
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM busybox:latest\n")
    scanned = BuildContext.scan(context, outside)
    assert scanned.dockerfile.startswith(".dockerfile.")
    assert ".dockerignore" not in scanned.names  # replaced by one that also names the Dockerfile's copy
    found = members(b"".join(ContextStream(scanned)))
    with tarfile.open(fileobj=io.BytesIO(b"".join(ContextStream(scanned))), mode="r:") as tar:
        sent = tar.extractfile(scanned.dockerfile)
        ignore = tar.extractfile(".dockerignore")
        assert sent is not None and sent.read() == outside.read_bytes()
        assert ignore is not None
        names_it = f"\n.dockerignore\n{scanned.dockerfile}\n".encode()
        assert ignore.read() == (context / ".dockerignore").read_bytes() + names_it
    assert scanned.dockerfile.encode() in found
    assert BuildContext.scan(context, outside).dockerfile == scanned.dockerfile  # the same name every time


def test_nothing_is_written_to_disk_and_no_file_is_held_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream reads a file a chunk at a time, between the chunks it hands over, and writes no
    temporary file (docker-py's own context is a temporary file as large as the context)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\n")
    with (ctx / "big.bin").open("wb") as fh:
        fh.truncate(5 << 20)  # sparse: 5 MiB that cost no disk
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    chunk = 64 * 1024
    sizes = []
    for data in ContextStream(BuildContext.scan(ctx), chunk=chunk):
        sizes.append(len(data))
        assert list(tmp.iterdir()) == []
    assert sum(sizes) >= 5 << 20
    assert max(sizes) < 2 * chunk
    assert list(tmp.iterdir()) == []


def test_a_cancelled_stream_stops(context: Path) -> None:
    stream = ContextStream(BuildContext.scan(context), chunk=1)
    chunks = iter(stream)
    next(chunks)
    stream.cancel()
    with pytest.raises(StreamCancelled):
        next(chunks)
    assert stream.cancelled


def test_a_file_gone_since_the_scan_is_not_sent(context: Path) -> None:
    scanned = BuildContext.scan(context)
    (context / "run.sh").unlink()
    assert b"run.sh" not in members(b"".join(ContextStream(scanned)))


def test_a_file_that_shrinks_while_it_is_sent_is_named(tmp_path: Path) -> None:
    """Its header promised more bytes than it now has: the archive cannot be finished honestly."""
    (tmp_path / "Dockerfile").write_text("FROM busybox:latest\n")
    (tmp_path / "data.bin").write_bytes(b"x" * 10_240)
    stream = ContextStream(BuildContext.scan(tmp_path), display="app/Dockerfile", chunk=1)
    with pytest.raises(ImageBuildError) as raised:
        for data in stream:
            if b"data.bin" in data:  # its header is out; its content is read next
                (tmp_path / "data.bin").write_bytes(b"x" * 100)
    message = (
        f"building app/Dockerfile failed: cannot send data.bin of the build context {tmp_path}: it shrank while it"
        " was sent (100 of 10240 bytes)"
    )
    assert str(raised.value) == message
    assert stream.error is raised.value  # kept: the HTTP client sending the stream may wrap what it raises


# ------------------------------------------------------------------------------------------- the key
def test_a_name_that_is_not_utf8_keys_deterministically(context: Path) -> None:
    request = BuildRequest.resolve(context, ".")
    key = request.key()
    assert request.key() == key
    assert BuildRequest.resolve(context, ".").key(BuildContext.scan(context, "Dockerfile")) == key
    weird(context).rename(weird(context, b"caf\xe8.txt"))
    assert BuildRequest.resolve(context, ".").key() != key


def test_a_link_target_that_is_not_utf8_keys_too(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    os.symlink(os.fsdecode(LATIN1), tmp_path / "link")
    key = BuildRequest.resolve(tmp_path, ".").key()
    assert BuildRequest.resolve(tmp_path, ".").key() == key


# ------------------------------------------------------------------------------------- a large context
def test_a_large_context_is_named_with_its_largest_files(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox:latest\n")
    for name, size in (("big.bin", 90_000_000), ("mid.bin", 20_000_000), ("small.bin", 1_000), ("tiny", 10)):
        with (tmp_path / name).open("wb") as fh:
            fh.truncate(size)
    scanned = BuildContext.scan(tmp_path)
    assert scanned.size == 110_001_010 + len("FROM busybox:latest\n")
    assert [e.name for e in scanned.largest()] == ["big.bin", "mid.bin", "small.bin"]
    text = large_context_warning(scanned, "app")
    assert text is not None
    assert text.splitlines() == [
        "build context app is 110MB after .dockerignore (over 100MB): every build sends all of it to the"
        " engine, and every session reads all of it for the image's key",
        "  largest files: big.bin (90MB), mid.bin (20MB), small.bin (1kB)",
        "  hint: list what the image does not need in app/.dockerignore (there is none yet)",
    ]
    (tmp_path / ".dockerignore").write_text("mid.bin\n")
    assert large_context_warning(BuildContext.scan(tmp_path), "app") is None


def test_the_threshold_and_names_that_are_not_utf8() -> None:
    scanned = BuildContext(Path("/ctx"), "Dockerfile", (ContextEntry(os.fsdecode(LATIN1), LARGE_CONTEXT + 1),))
    text = large_context_warning(scanned, "/ctx")
    assert text is not None
    assert "  largest files: caf\\xe9.txt (100MB)" in text.splitlines()
    at_limit = BuildContext(Path("/ctx"), "Dockerfile", (ContextEntry("a", LARGE_CONTEXT),))
    assert large_context_warning(at_limit, "/ctx") is None
