"""The layer index over ``docker save`` archives built in memory: both layouts, streamed."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import FileEntry
from pytest_slimimage.layers import (
    LayerIndex,
    SavedImage,
    index_layer,
    index_saved_image,
    merge_layers,
    stream_from_chunks,
)
from pytest_slimimage.toolchains import is_package_database

from .archives import (
    chunks,
    classic_archive,
    directory,
    executable,
    file,
    hardlink,
    make_tar,
    oci_archive,
    sha256,
    symlink,
)

BASE = make_tar(
    [
        directory("etc/"),
        file("etc/os-release", b"ID=debian\n"),
        file("etc/hostname", b"box\n"),
        directory("usr/"),
        directory("usr/bin/"),
        executable("usr/bin/gcc-12", b"\x7fELF" + b"\0" * 96),
        symlink("usr/bin/gcc", "gcc-12"),
        hardlink("usr/bin/x86_64-linux-gnu-gcc-12", "usr/bin/gcc-12"),
        directory("usr/share/"),
        directory("usr/share/doc/"),
        directory("usr/share/doc/gcc/"),
        file("usr/share/doc/gcc/copyright", b"GPL"),
        directory("usr/share/doc/gcc/examples/"),
        file("usr/share/doc/gcc/examples/a.c", b"int main(){}"),
        directory("usr/share/docs-other/"),
        directory("var/lib/dpkg/"),
        file("var/lib/dpkg/status", b"Package: gcc-12\nStatus: install ok installed\n"),
        directory("opt/cache/"),
        file("opt/cache/one", b"1"),
        directory("opt/cache/sub/"),
        file("opt/cache/sub/two", b"22"),
        directory("opt/cached/"),
        file("opt/cached/keep", b"k"),
    ]
)
UPPER = make_tar(
    [
        file("etc/.wh.hostname"),  # deletes one file
        file("usr/share/doc/.wh.gcc"),  # deletes a whole directory subtree
        directory("opt/cache/"),
        file("opt/cache/.wh..wh..opq"),  # hides what lower layers had in /opt/cache
        file("opt/cache/fresh", b"new"),  # ... but not this layer's own entries
        file("var/lib/dpkg/status", b"Package: musl\nStatus: install ok installed\n"),
        executable("app/hello", b"\x7fELF" + b"\1" * 200),
    ]
)
TOP = make_tar([file(".wh.opt"), file("etc/motd", b"hi\n")])


def index(archive: bytes, **kwargs: object) -> SavedImage:
    return index_saved_image(io.BytesIO(archive), **kwargs)  # type: ignore[arg-type]


ARCHIVES = {
    "classic": classic_archive([BASE, UPPER]),
    "classic, members out of order": classic_archive([BASE, UPPER], member_order=[1, 0]),
    "oci with manifest.json": oci_archive([BASE, UPPER]),
    "oci without manifest.json": oci_archive([BASE, UPPER], compat_manifest=False),
    "oci nested index, big config": oci_archive([BASE, UPPER], compat_manifest=False, nested_index=True,
                                                config_padding=4000),
}  # fmt: skip


@pytest.fixture(params=list(ARCHIVES), ids=list(ARCHIVES))
def archive(request: pytest.FixtureRequest) -> bytes:
    data: bytes = ARCHIVES[request.param]
    return data


# ------------------------------------------------------------------------------------------ layouts
def test_layer_order_and_digests_follow_the_manifest(archive: bytes) -> None:
    saved = index(archive)
    assert [layer.digest for layer in saved.layers] == ["sha256:" + sha256(BASE), "sha256:" + sha256(UPPER)]
    assert saved.config["architecture"] == "amd64"
    rootfs = saved.config["rootfs"]
    assert isinstance(rootfs, dict)
    assert rootfs["diff_ids"] == [layer.digest for layer in saved.layers]


def test_streamed_in_small_chunks(archive: bytes) -> None:
    streamed = index_saved_image(stream_from_chunks(chunks(archive, 7)), want_content=is_package_database)
    whole = index(archive, want_content=is_package_database)
    assert [la.digest for la in streamed.layers] == [la.digest for la in whole.layers]
    assert [la.entries for la in streamed.layers] == [la.entries for la in whole.layers]
    assert merge_layers(streamed.layers) == merge_layers(whole.layers)
    assert streamed.config == whole.config


def test_stream_from_chunks_reads_across_chunk_boundaries() -> None:
    stream = stream_from_chunks(iter([b"ab", b"", b"cde", b"f"]))
    assert stream.read(4) == b"abcd"
    assert stream.read() == b"ef"
    assert stream.read() == b""


def test_manifest_order_wins_over_archive_order() -> None:
    saved = index(classic_archive([UPPER, BASE], member_order=[1, 0]))
    assert [la.digest for la in saved.layers] == ["sha256:" + sha256(UPPER), "sha256:" + sha256(BASE)]


def test_repeated_layer_stored_as_symlink() -> None:
    archive = classic_archive([BASE, UPPER, BASE], link_repeats=True)
    assert archive.count(BASE) == 1  # the third layer really is a link to the first
    saved = index(archive)
    digests = [la.digest for la in saved.layers]
    assert digests == ["sha256:" + sha256(BASE), "sha256:" + sha256(UPPER), "sha256:" + sha256(BASE)]
    fs = merge_layers(saved.layers)
    assert "/etc/hostname" in fs  # the third layer brings back what the second deleted
    assert "/opt/cache/one" in fs


# --------------------------------------------------------------------------------- one layer tar
def test_index_layer_entries_kinds_and_size() -> None:
    layer = index_layer(io.BytesIO(BASE))
    assert layer.digest == "sha256:" + hashlib.sha256(BASE).hexdigest()
    gcc = layer.entries["/usr/bin/gcc-12"]
    assert (gcc.kind, gcc.mode, gcc.size) == ("file", 0o755, 100)
    assert layer.entries["/usr/bin/gcc"] == FileEntry("/usr/bin/gcc", "symlink", 0, 0o777, "gcc-12")
    hard = layer.entries["/usr/bin/x86_64-linux-gnu-gcc-12"]
    assert (hard.kind, hard.link) == ("hardlink", "/usr/bin/gcc-12")
    assert layer.entries["/usr/share/doc/gcc"].kind == "dir"
    files = [b"ID=debian\n", b"box\n", b"\x7fELF" + b"\0" * 96, b"GPL", b"int main(){}", b"Package: gcc-12\n"
             b"Status: install ok installed\n", b"1", b"22", b"k"]  # fmt: skip
    assert layer.size == sum(len(x) for x in files)
    assert layer.whiteouts == []
    assert layer.opaque_dirs == []


def test_index_layer_records_whiteouts_and_opaque_dirs() -> None:
    layer = index_layer(io.BytesIO(UPPER))
    assert layer.whiteouts == ["/etc/hostname", "/usr/share/doc/gcc"]
    assert layer.opaque_dirs == ["/opt/cache"]
    assert not any(".wh." in path for path in layer.entries)


def test_want_content_captures_chosen_files_only() -> None:
    asked: list[tuple[str, int]] = []

    def want(path: str, size: int) -> bool:
        asked.append((path, size))
        return path in ("/etc/os-release", "/opt/cache/sub/two")

    layer = index_layer(io.BytesIO(BASE), want_content=want)
    assert layer.contents == {"/etc/os-release": b"ID=debian\n", "/opt/cache/sub/two": b"22"}
    assert ("/etc/os-release", 10) in asked
    assert all(path.startswith("/") for path, _ in asked)
    assert not any(path == "/usr/share/doc/gcc" for path, _ in asked)  # only regular files are offered


def test_no_content_captured_without_want_content(archive: bytes) -> None:
    assert merge_layers(index(archive).layers).contents == {}


# ------------------------------------------------------------------------------------------- merge
def test_merge_applies_whiteouts_and_opaque_dirs(archive: bytes) -> None:
    fs = merge_layers(index(archive, want_content=is_package_database).layers)
    paths = set(fs.entries)
    assert "/etc/os-release" in paths
    assert "/etc/hostname" not in paths  # .wh.hostname
    for gone in ("/usr/share/doc/gcc", "/usr/share/doc/gcc/copyright", "/usr/share/doc/gcc/examples/a.c"):
        assert gone not in paths  # .wh.gcc removes the directory and everything under it
    assert "/usr/share/doc" in paths
    assert "/usr/share/docs-other" in paths  # a sibling sharing the prefix stays
    assert "/opt/cache" in paths  # the opaque directory itself stays
    assert "/opt/cache/fresh" in paths  # with the opaque layer's own entries
    assert "/opt/cache/one" not in paths
    assert "/opt/cache/sub" not in paths
    assert "/opt/cache/sub/two" not in paths
    assert "/opt/cached/keep" in paths  # a sibling sharing the prefix stays
    assert not any(".wh." in path for path in paths)


def test_merge_sets_the_layer_that_last_wrote_each_path(archive: bytes) -> None:
    fs = merge_layers(index(archive).layers)
    layer_of = {path: entry.layer for path, entry in fs.entries.items()}
    assert layer_of["/etc/os-release"] == 0
    assert layer_of["/usr/bin/gcc-12"] == 0
    assert layer_of["/app/hello"] == 1
    assert layer_of["/opt/cache"] == 1  # rewritten by the upper layer
    assert layer_of["/var/lib/dpkg/status"] == 1


def test_merge_keeps_the_topmost_content(archive: bytes) -> None:
    fs = merge_layers(index(archive, want_content=is_package_database).layers)
    assert fs.contents == {"/var/lib/dpkg/status": b"Package: musl\nStatus: install ok installed\n"}


def test_whiteout_drops_captured_content_and_whole_tree() -> None:
    layers = [index_layer(io.BytesIO(t), want_content=lambda p, n: p.startswith("/opt/")) for t in (BASE, TOP)]
    assert layers[0].contents == {"/opt/cache/one": b"1", "/opt/cache/sub/two": b"22", "/opt/cached/keep": b"k"}
    fs = merge_layers(layers)
    assert not any(path == "/opt" or path.startswith("/opt/") for path in fs.entries)
    assert fs.contents == {}
    assert "/etc/motd" in fs


def test_upper_layer_rewrites_a_whited_out_path_in_the_same_layer() -> None:
    lower = LayerIndex("sha256:a", entries={"/x": FileEntry("/x", "file", 1), "/x/old": FileEntry("/x/old", "file")})
    upper = LayerIndex("sha256:b", entries={"/x": FileEntry("/x", "file", 5, 0o755)}, whiteouts=["/x"])
    fs = merge_layers([lower, upper])
    assert set(fs.entries) == {"/x"}
    assert (fs.entries["/x"].size, fs.entries["/x"].layer) == (5, 1)


def test_opaque_root_hides_everything_below() -> None:
    lower = LayerIndex("sha256:a", entries={"/a": FileEntry("/a", "file"), "/b/c": FileEntry("/b/c", "file")})
    upper = LayerIndex("sha256:b", entries={"/d": FileEntry("/d", "file")}, opaque_dirs=["/"])
    assert set(merge_layers([lower, upper]).entries) == {"/d"}


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "data",
    [b"", b"not a tar at all" * 100, classic_archive([BASE])[:15_000]],
    ids=["empty", "garbage", "truncated"],
)
def test_corrupt_archive(data: bytes) -> None:
    with pytest.raises(SlimImageError, match=r"^the engine's image export is not a readable archive: "):
        index(data)


def test_corrupt_layer_inside_a_good_archive() -> None:
    archive = make_tar(
        [file("abc/layer.tar", b"\x01" * 4096), file("manifest.json", b'[{"Layers": ["abc/layer.tar"]}]')]
    )
    with pytest.raises(SlimImageError, match="not a readable archive"):
        index(archive)


def test_manifest_naming_a_missing_layer() -> None:
    manifest = json.dumps([{"Config": "c.json", "Layers": ["abc/layer.tar", "def/layer.tar"]}]).encode()
    archive = make_tar([file("abc/layer.tar", BASE), file("c.json", b"{}"), file("manifest.json", manifest)])
    with pytest.raises(SlimImageError) as info:
        index(archive)
    assert str(info.value) == "the image export lacks layer(s) named in its manifest: def/layer.tar"


def test_archive_without_manifest_or_index() -> None:
    with pytest.raises(SlimImageError, match=r"^the image export has neither manifest\.json nor index\.json$"):
        index(make_tar([file("abc/layer.tar", BASE)]))


def test_oci_index_pointing_at_nothing() -> None:
    index_json = json.dumps({"manifests": [{"digest": "sha256:" + "0" * 64}]}).encode()
    with pytest.raises(SlimImageError, match=r"^the image export's OCI index points at no manifest$"):
        index(make_tar([file("oci-layout", b"{}"), file("index.json", index_json)]))
