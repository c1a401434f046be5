"""A layer's second look (no engine): the gzip size a push sends, each file's owner, mtime and
content digest, the export read in one pass, the storage's tar rebuilt byte for byte, and the
cache of both kept apart from the layer index."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_slimimage.analysis.layercache import FILES_FORMAT, PULL_FORMAT, LayerCache
from pytest_slimimage.analysis.layers import index_layer, open_layer_tar
from pytest_slimimage.analysis.layerscan import (
    BLOCK,
    GzipSize,
    LayerScan,
    gzip_size,
    pull_total,
    scan_layer_tar,
    scan_saved_image,
)
from pytest_slimimage.analysis.reproducibility import file_states
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import FileState

from .archives import classic_archive, directory, file, hardlink, make_tar, sha256, symlink, tar_split, unpack_overlay

DIGEST = "sha256:" + "cd" * 32


def serial_gzip(data: bytes) -> int:
    """One zlib stream at level 6 with a gzip header and trailer, what ``gzip -6 -n`` writes."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return len(compressor.compress(data)) + len(compressor.flush())


def text_like(size: int, seed: int = 7) -> bytes:
    """Compressible bytes (words from a small vocabulary), like most of a layer."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


# --------------------------------------------------------------------------------- the gzip size
@pytest.mark.parametrize("size", [0, 1, 1000, 200_000])
def test_below_one_block_the_size_is_exactly_one_gzip_stream(size: int) -> None:
    data = text_like(size)
    assert gzip_size([data]) == serial_gzip(data) == len(gzip.compress(data, compresslevel=6, mtime=0))


def test_over_many_blocks_it_stays_within_a_thousandth_of_one_stream() -> None:
    data = text_like(3 * BLOCK + 12345) + os.urandom(BLOCK // 2)  # compressible, then not at all
    ours, real = gzip_size([data]), serial_gzip(data)
    assert abs(ours - real) / real < 0.001, (ours, real)


def test_the_figure_does_not_depend_on_threads_or_chunking() -> None:
    data = text_like(2 * BLOCK + 777)
    serial = gzip_size([data])
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = gzip_size((data[i : i + 65_536] for i in range(0, len(data), 65_536)), pool, workers=3)
    assert threaded == serial
    counter = GzipSize()
    for i in range(0, len(data), 999_983):
        counter.feed(data[i : i + 999_983])
    assert counter.fed == len(data) and counter.finish() == serial


def test_a_repeated_layer_is_pulled_once() -> None:
    assert pull_total([("sha256:a", 10), ("sha256:b", 5), ("sha256:a", 10)]) == 15


# ------------------------------------------------------------------------------------- one layer
LAYER = make_tar(
    [
        directory("etc/"),
        file("etc/hostname", b"box\n"),
        file("app/run", b"#!/bin/sh\necho hi\n", mode=0o755),
        hardlink("app/again", "app/run"),
        symlink("bin/sh", "busybox"),
        file("var/.wh.gone"),
        file("opt/.wh..wh..opq"),
    ]
)


def test_a_layer_scan_reads_size_owner_mtime_and_content() -> None:
    scan = scan_layer_tar(io.BytesIO(LAYER), DIGEST, pull=True, files=True)
    assert (scan.digest, scan.tar_size, scan.compressed) == (DIGEST, len(LAYER), serial_gzip(LAYER))
    assert scan.files is not None
    assert sorted(scan.files) == ["/app/again", "/app/run", "/bin/sh", "/etc", "/etc/hostname"]  # no whiteouts
    run = scan.files["/app/run"]
    assert run == FileState("file", 0o755, 0, 0, 18, "sha256:" + sha256(b"#!/bin/sh\necho hi\n"), "", 1_700_000_000, -1)
    assert scan.files["/app/again"].kind == "hardlink" and scan.files["/app/again"].digest == run.digest
    assert scan.files["/app/again"].link == "/app/run"
    assert scan.files["/bin/sh"].link == "busybox" and scan.files["/bin/sh"].digest == ""


def test_a_scan_reads_only_what_is_asked() -> None:
    only_pull = scan_layer_tar(io.BytesIO(LAYER), DIGEST, pull=True)
    only_files = scan_layer_tar(io.BytesIO(LAYER), DIGEST, files=True)
    assert only_pull.files is None and only_pull.compressed is not None
    assert only_files.compressed is None and only_files.files is not None
    assert only_pull.has(pull=True) and not only_pull.has(files=True)
    both = only_pull.merged(only_files)
    assert both.has(pull=True, files=True) and both.compressed == only_pull.compressed


def test_owners_are_read_from_the_headers() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("home/app/.profile")
        info.uid, info.gid, info.size, info.mtime = 1000, 1001, 3, 42
        tar.addfile(info, io.BytesIO(b"x=1"))
    scan = scan_layer_tar(io.BytesIO(out.getvalue()), DIGEST, files=True)
    assert scan.files is not None
    state = scan.files["/home/app/.profile"]
    assert (state.uid, state.gid, state.mtime) == (1000, 1001, 42)


def test_the_export_is_scanned_in_one_pass_and_named_by_diff_id() -> None:
    other = make_tar([file("data", text_like(50_000))])
    saved = classic_archive([LAYER, other, LAYER], link_repeats=True)
    scans = scan_saved_image(io.BytesIO(saved), pull=True, files=True)
    assert sorted(scans) == sorted({"sha256:" + sha256(LAYER), "sha256:" + sha256(other)})
    assert scans["sha256:" + sha256(other)].compressed == serial_gzip(other)
    assert scans["sha256:" + sha256(LAYER)].tar_size == len(LAYER)


def test_an_export_without_its_manifest_is_an_error() -> None:
    with pytest.raises(SlimImageError, match=r"no readable manifest\.json"):
        scan_saved_image(io.BytesIO(make_tar([file("abc/layer.tar", LAYER)])), pull=True)


def test_the_storage_gives_back_the_layer_tar_byte_for_byte(tmp_path: Path) -> None:
    layer = make_tar([directory("usr/"), file("usr/big", text_like(3_000_000)), file("usr/empty"), file("z", b"z")])
    (tmp_path / "tar-split.json.gz").write_bytes(tar_split(layer))
    unpack_overlay(layer, tmp_path / "diff", devices=False)
    with open_layer_tar(tmp_path / "tar-split.json.gz", tmp_path / "diff") as stream:
        assert stream.read() == layer


def test_file_states_follow_the_merged_filesystem() -> None:
    bottom = make_tar([file("a", b"1"), file("b", b"2")])
    top = make_tar([file("a", b"3"), file(".wh.b")])
    indexes = [index_layer(io.BytesIO(bottom)), index_layer(io.BytesIO(top))]
    scans = [scan_layer_tar(io.BytesIO(t), i.digest, files=True) for t, i in zip((bottom, top), indexes, strict=True)]
    states = file_states(indexes, scans)
    assert sorted(states) == ["/a"]
    assert states["/a"].layer == 1 and states["/a"].digest == "sha256:" + sha256(b"3")


# ------------------------------------------------------------------------------------- the cache
def test_scans_are_cached_by_digest_apart_from_the_index(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    scan = scan_layer_tar(io.BytesIO(LAYER), DIGEST, pull=True, files=True)
    assert cache.get_scan(DIGEST, pull=True) is None
    cache.put_scan(scan)
    hex_ = DIGEST.removeprefix("sha256:")
    assert (tmp_path / PULL_FORMAT / f"{hex_}.json").is_file()
    assert (tmp_path / FILES_FORMAT / f"{hex_}.json.gz").is_file()
    assert cache.get(DIGEST) is None  # the layer index is not touched
    back = cache.get_scan(DIGEST, pull=True, files=True)
    assert back is not None
    assert (back.compressed, back.tar_size, back.files) == (scan.compressed, scan.tar_size, scan.files)
    only = cache.get_scan(DIGEST, pull=True)
    assert only is not None and only.files is None


def test_a_cache_holding_part_of_what_is_asked_is_a_miss(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put_scan(LayerScan(DIGEST, tar_size=10, compressed=7))
    assert cache.get_scan(DIGEST, pull=True) is not None
    assert cache.get_scan(DIGEST, pull=True, files=True) is None


def test_sizes_read_from_a_manifest_are_not_stored(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put_scan(LayerScan(DIGEST, compressed=7, source="manifest"))
    assert cache.get_scan(DIGEST, pull=True) is None


@pytest.mark.parametrize("damage", [b"", b"not json", json.dumps({"format": "other"}).encode()])
def test_a_damaged_record_is_a_miss(tmp_path: Path, damage: bytes) -> None:
    cache = LayerCache(tmp_path)
    cache.put_scan(LayerScan(DIGEST, tar_size=10, compressed=7))
    (tmp_path / PULL_FORMAT / f"{DIGEST.removeprefix('sha256:')}.json").write_bytes(damage)
    assert cache.get_scan(DIGEST, pull=True) is None
