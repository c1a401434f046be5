"""The layer index over ``docker save`` archives built in memory (both layouts, streamed), over
the engine's overlay2 store (tar-split records and ``diff`` directories made from the same
tars), executables probed, known layers skipped."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_slimimage.analysis.elfprobe import probe_elf
from pytest_slimimage.analysis.layers import (
    FINGERPRINT_BYTES,
    LayerIndex,
    LayerMismatch,
    SavedImage,
    StorageMismatch,
    chain_ids,
    index_layer,
    index_overlay_dir,
    index_saved_image,
    index_tar_split,
    keeps_content,
    merge_layers,
    stream_from_chunks,
)
from pytest_slimimage.analysis.toolchains import is_package_database
from pytest_slimimage.engine.layersource import layer_source
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import FileEntry

from .archives import (
    chunks,
    classic_archive,
    compile_c,
    directory,
    executable,
    file,
    hardlink,
    make_tar,
    oci_archive,
    sha256,
    symlink,
    tar_split,
    unpack_overlay,
)
from .steps import steps

if TYPE_CHECKING:
    pass

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


# ------------------------------------------------------------------------------ probing executables
@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    where = tmp_path_factory.mktemp("elf")
    return {"dynamic": compile_c(where, "dynamic"), "static": compile_c(where, "static", "-static")}


def probed_tar(programs: dict[str, bytes]) -> bytes:
    return make_tar(
        [
            directory("usr/"),
            directory("usr/bin/"),
            executable("usr/bin/app", programs["dynamic"]),
            hardlink("usr/bin/app-again", "usr/bin/app"),
            executable("usr/bin/tool", programs["static"]),
            file("usr/bin/not-executable", programs["dynamic"]),
            executable("usr/bin/run.sh", b"#!/bin/sh -e\nexec /usr/bin/app\n"),
            executable("usr/bin/empty", b""),
            symlink("usr/bin/app-link", "app"),
            directory("etc/"),
            file("etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"),
            directory("etc/ld.so.conf.d/"),
            file("etc/ld.so.conf.d/app.conf", b"/opt/app/lib\n"),
            executable("etc/ld.so.conf.d/odd.conf", b"#!/bin/false\n"),  # kept and probed alike
            file("etc/ld.so.conf.bak", b"not kept\n"),
        ]
    )


def test_executables_are_probed(programs: dict[str, bytes]) -> None:
    layer = index_layer(io.BytesIO(probed_tar(programs)), want_content=keeps_content)
    app = layer.entries["/usr/bin/app"]
    assert app.elf == probe_elf(programs["dynamic"])
    assert app.elf is not None and app.elf.interp is not None and "libc.so.6" in app.elf.needed
    tool = layer.entries["/usr/bin/tool"].elf
    assert tool is not None and tool.static
    assert layer.entries["/usr/bin/run.sh"].shebang == "/bin/sh -e"
    assert layer.entries["/usr/bin/run.sh"].elf is None
    assert layer.entries["/usr/bin/not-executable"].elf is None  # a library or data: not probed
    assert layer.entries["/usr/bin/empty"] == FileEntry("/usr/bin/empty", "file", 0, 0o755)
    assert layer.entries["/usr/bin/app-link"].elf is None  # symlinks are resolved by the reader of the facts
    assert layer.entries["/etc/ld.so.conf.d/odd.conf"].shebang == "/bin/false"


def test_a_hard_link_gets_the_facts_of_its_target_in_the_same_layer(programs: dict[str, bytes]) -> None:
    layer = index_layer(io.BytesIO(probed_tar(programs)))
    again = layer.entries["/usr/bin/app-again"]
    assert (again.kind, again.link, again.size) == ("hardlink", "/usr/bin/app", 0)
    assert again.elf == layer.entries["/usr/bin/app"].elf is not None
    other_layer = index_layer(io.BytesIO(make_tar([hardlink("usr/bin/x", "usr/bin/app")])))
    assert other_layer.entries["/usr/bin/x"].elf is None


def test_the_loaders_configuration_and_package_databases_are_kept(programs: dict[str, bytes]) -> None:
    layer = index_layer(io.BytesIO(probed_tar(programs)), want_content=keeps_content)
    assert layer.contents == {
        "/etc/ld.so.conf": b"include /etc/ld.so.conf.d/*.conf\n",
        "/etc/ld.so.conf.d/app.conf": b"/opt/app/lib\n",
        "/etc/ld.so.conf.d/odd.conf": b"#!/bin/false\n",
    }


@pytest.mark.parametrize(
    ("path", "kept"),
    [("/var/lib/dpkg/status", True), ("/var/lib/dpkg/status.d/libc6", True), ("/lib/apk/db/installed", True),
     ("/etc/ld.so.conf", True), ("/etc/ld.so.conf.d/x.conf", True), ("/etc/ld.so.conf.bak", False),
     ("/etc/ld.so.cache", False), ("/etc/os-release", False), ("/etc/passwd", True), ("/etc/group", True),
     ("/etc/passwd-", False), ("/etc/shadow", False)],
)  # fmt: skip
def test_keeps_content(path: str, kept: bool) -> None:
    assert keeps_content(path, 10) is kept


def test_merge_keeps_the_probe_facts(programs: dict[str, bytes]) -> None:
    lower = index_layer(io.BytesIO(probed_tar(programs)))
    upper = index_layer(io.BytesIO(make_tar([executable("usr/bin/run.sh", b"#!/bin/bash\n")])))
    fs = merge_layers([lower, upper])
    app = fs.entries["/usr/bin/app"]
    assert app.elf is not None and app.elf == lower.entries["/usr/bin/app"].elf
    assert app.layer == 0
    assert fs.entries["/usr/bin/app-again"].elf == app.elf
    assert (fs.entries["/usr/bin/run.sh"].shebang, fs.entries["/usr/bin/run.sh"].layer) == ("/bin/bash", 1)
    assert fs.entries["/usr/bin/app"] == dataclasses.replace(lower.entries["/usr/bin/app"], layer=0)


def test_probing_is_the_same_streamed_in_small_chunks(programs: dict[str, bytes]) -> None:
    archive = classic_archive([probed_tar(programs), UPPER])
    streamed = index_saved_image(stream_from_chunks(chunks(archive, 997)), want_content=keeps_content)
    whole = index(archive, want_content=keeps_content)
    assert streamed.layers == whole.layers
    assert streamed.layers[0].entries["/usr/bin/app"].elf is not None


# --------------------------------------------------------------------------- fingerprints, skipping
def test_index_layer_records_the_tars_length_and_first_bytes() -> None:
    layer = index_layer(io.BytesIO(BASE))
    assert layer.tar_size == len(BASE)
    assert layer.head_digest == "sha256:" + sha256(BASE[:FINGERPRINT_BYTES])


def marked(layer: LayerIndex) -> LayerIndex:
    """``layer`` with an entry no tar has: seen in a result, it proves the layer was not parsed."""
    fake = FileEntry("/known-not-parsed", "file")
    return dataclasses.replace(layer, entries={**layer.entries, fake.path: fake})


@pytest.mark.parametrize("layout", ["classic", "oci"])
def test_known_layers_are_drained_not_parsed(layout: str) -> None:
    archive = classic_archive([BASE, UPPER]) if layout == "classic" else oci_archive([BASE, UPPER])
    known = marked(index_layer(io.BytesIO(BASE)))
    saved = index(archive, known=[known])
    assert saved.layers[0] is known
    assert "/known-not-parsed" not in saved.layers[1].entries
    assert saved.layers[1] == index(archive).layers[1]


def test_known_layers_recognised_in_a_stream() -> None:
    archive = classic_archive([BASE, UPPER, BASE], link_repeats=True)
    known = marked(index_layer(io.BytesIO(UPPER)))
    saved = index_saved_image(stream_from_chunks(chunks(archive, 4096)), known=[known])
    assert [la.digest for la in saved.layers] == ["sha256:" + sha256(t) for t in (BASE, UPPER, BASE)]
    assert saved.layers[1] is known


def test_a_known_layer_without_a_fingerprint_is_parsed_in_the_classic_layout() -> None:
    known = dataclasses.replace(marked(index_layer(io.BytesIO(BASE))), tar_size=0, head_digest="")
    saved = index(classic_archive([BASE, UPPER]), known=[known])
    assert "/known-not-parsed" not in saved.layers[0].entries


def test_a_layer_that_only_looks_known_is_caught() -> None:
    """Same length, same first 64 KiB, another digest: the drained layer was not the known one."""
    padding = file("padding", b"p" * FINGERPRINT_BYTES)
    real = make_tar([padding, file("tail", b"real")])
    other = make_tar([padding, file("tail", b"fake")])
    assert len(real) == len(other) and real[:FINGERPRINT_BYTES] == other[:FINGERPRINT_BYTES] and real != other
    known = index_layer(io.BytesIO(other))
    with pytest.raises(
        LayerMismatch, match=r"has the length and first bytes of sha256:[0-9a-f]{64} but not its digest"
    ):
        index(classic_archive([real]), known=[known])
    assert index(classic_archive([real])).layers[0].entries["/tail"].size == 4


@pytest.mark.parametrize("archive", list(ARCHIVES.values()), ids=list(ARCHIVES))
def test_trusting_the_configs_diff_ids_gives_the_same_index(archive: bytes) -> None:
    trusted = index(archive, want_content=keeps_content, trust_config=True)
    assert trusted.layers == index(archive, want_content=keeps_content).layers


def test_trusting_the_config_a_recognised_layer_is_checked_against_it() -> None:
    padding = file("padding", b"p" * FINGERPRINT_BYTES)
    real = make_tar([padding, file("tail", b"real")])
    other = make_tar([padding, file("tail", b"fake")])
    known = index_layer(io.BytesIO(other))
    assert index(classic_archive([other]), known=[known], trust_config=True).layers[0] is known
    with pytest.raises(
        LayerMismatch, match=r"^a layer of the export was taken for sha256:\w+; the config says sha256:"
    ):
        index(classic_archive([real]), known=[known], trust_config=True)


def test_trusting_a_config_without_diff_ids() -> None:
    manifest = json.dumps([{"Config": "c.json", "Layers": ["abc/layer.tar"]}]).encode()
    archive = make_tar([file("abc/layer.tar", BASE), file("c.json", b"{}"), file("manifest.json", manifest)])
    with pytest.raises(SlimImageError) as info:
        index(archive, trust_config=True)
    assert str(info.value) == "the image export's config does not list the diff ids of its 1 layer(s)"
    assert index(archive).layers[0].digest == "sha256:" + sha256(BASE)


# ------------------------------------------------------------------------------ plumbing, streams
def test_chain_ids() -> None:
    # gcc:latest on the project's machines: debian's layer, then the compiler's
    diff_ids = ["sha256:6029a2159e96d694ac249d5d859adea51cc661382d80f5ac14d586b783253d71",
                "sha256:acb4c9b83752d0c77d0bfc4cff82c16e52bfd90cead1a1528155db12d5297ea6"]  # fmt: skip
    assert chain_ids(diff_ids) == [
        diff_ids[0],
        "sha256:e9aa2871182673cd4b9da23179c89875183382520f522a00f3970be8641c9ff5",
    ]
    assert chain_ids([]) == []


@pytest.mark.parametrize(
    ("value", "source"), [(None, "auto"), ("", "auto"), ("export", "export"), (" Storage ", "storage")]
)
def test_layer_source(value: str | None, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIMIMAGE_LAYER_SOURCE", raising=False)
    assert layer_source(value) == source


def test_layer_source_from_the_environment_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIMIMAGE_LAYER_SOURCE", "export")
    assert layer_source() == "export"
    assert layer_source("auto") == "auto"  # an explicit value wins
    monkeypatch.setenv("SLIMIMAGE_LAYER_SOURCE", "disk")
    with pytest.raises(SlimImageError) as info:
        layer_source()
    assert str(info.value) == "SLIMIMAGE_LAYER_SOURCE must be one of auto, export, storage (got 'disk')"


# ------------------------------------------------------------------------ the engine's overlay2 store
WALKED = make_tar(  # in the order the engine's differ walks a layer directory: names sorted per directory
    [
        directory("etc/"),
        file("etc/.wh.hostname"),
        file("etc/ld.so.conf", b"/opt/lib\n"),
        directory("opt/"),
        directory("opt/cache/"),
        file("opt/cache/.wh..wh..opq"),
        file("opt/cache/fresh", b"new"),
        file("opt/.wh.gone"),
        directory("usr/"),
        directory("usr/bin/"),
        executable("usr/bin/a-script", b"#!/bin/sh\n"),
        symlink("usr/bin/link", "a-script"),
        executable("usr/bin/z-first", b"\x7fELF-not-really"),
        hardlink("usr/bin/z-second", "usr/bin/z-first"),
    ]
)


@pytest.mark.parametrize("tar", [BASE, UPPER, TOP, WALKED], ids=["base", "upper", "top", "walked"])
def test_tar_split_and_diff_dir_give_the_exports_index(tar: bytes, tmp_path: Path) -> None:
    (tmp_path / "tar-split.json.gz").write_bytes(tar_split(tar))
    unpack_overlay(tar, tmp_path / "diff", devices=False)
    digest = "sha256:" + sha256(tar)
    stored = index_tar_split(
        tmp_path / "tar-split.json.gz", tmp_path / "diff", digest=digest, want_content=keeps_content
    )
    assert stored == index_layer(io.BytesIO(tar), want_content=keeps_content)  # fingerprint included


def test_tar_split_with_real_programs(programs: dict[str, bytes], tmp_path: Path) -> None:
    tar = probed_tar(programs)
    (tmp_path / "split.gz").write_bytes(tar_split(tar))
    unpack_overlay(tar, tmp_path / "diff", devices=False)
    stored = index_tar_split(tmp_path / "split.gz", tmp_path / "diff", digest="sha256:" + sha256(tar))
    assert stored == index_layer(io.BytesIO(tar))
    assert stored.entries["/usr/bin/app-again"].elf is not None


@pytest.mark.parametrize(
    ("damage", "message"),
    [("missing", r"^the layer's file /etc/hostname is missing from "),
     ("resized", r"^the layer's file /etc/hostname in .* is not the 4-byte file it records$"),
     ("escape", r"^the layer's file /usr/bin/gcc-12 leads out of ")],
)  # fmt: skip
def test_tar_split_and_a_directory_that_disagree(damage: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "split.gz").write_bytes(tar_split(BASE))
    diff = tmp_path / "diff"
    unpack_overlay(BASE, diff, devices=False)
    if damage == "missing":
        (diff / "etc" / "hostname").unlink()
    elif damage == "resized":
        (diff / "etc" / "hostname").write_bytes(b"a longer name\n")
    else:  # a directory on the way to an executable leads out of the layer
        outside = tmp_path / "outside"
        (outside / "bin").mkdir(parents=True)
        (outside / "bin" / "gcc-12").write_bytes((diff / "usr" / "bin" / "gcc-12").read_bytes())
        shutil.rmtree(diff / "usr")
        (diff / "usr").symlink_to(outside)
    with pytest.raises(StorageMismatch, match=message):
        index_tar_split(tmp_path / "split.gz", diff, digest="sha256:" + sha256(BASE))


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="overlay whiteouts are character devices and trusted.* xattrs: making them needs root"
)


@needs_root
def test_walking_a_diff_dir_translates_overlay_whiteouts(tmp_path: Path) -> None:
    unpack_overlay(WALKED, tmp_path, devices=True)
    assert os.getxattr(tmp_path / "opt" / "cache", "trusted.overlay.opaque") == b"y"
    walked = index_overlay_dir(tmp_path, digest="sha256:" + sha256(WALKED), want_content=keeps_content)
    exported = index_layer(io.BytesIO(WALKED), want_content=keeps_content)
    assert walked.whiteouts == exported.whiteouts == ["/etc/hostname", "/opt/gone"]
    assert walked.opaque_dirs == exported.opaque_dirs == ["/opt/cache"]
    assert walked.entries == exported.entries
    assert walked.contents == exported.contents
    assert (walked.digest, walked.size) == (exported.digest, exported.size)
    assert (walked.tar_size, walked.head_digest) == (0, "")  # no tar was read


@needs_root
def test_a_device_that_is_not_a_whiteout_stays_an_entry(tmp_path: Path) -> None:
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    walked = index_overlay_dir(tmp_path, digest="sha256:x")
    assert walked.whiteouts == []
    assert walked.entries["/null"].kind == "other"


def _layer(
    *paths: str, dirs: tuple[str, ...] = (), whiteouts: tuple[str, ...] = (), opaque: tuple[str, ...] = ()
) -> LayerIndex:
    entries = {p: FileEntry(p, "file", 10) for p in paths}
    entries.update({d: FileEntry(d, "dir") for d in dirs})
    return LayerIndex(digest="sha256:" + "0" * 64, entries=entries, whiteouts=list(whiteouts), opaque_dirs=list(opaque))


def test_merge_a_file_replacing_a_directory_removes_what_it_held() -> None:
    below = _layer("/opt/tool/bin/x", "/opt/tool/lib/y", "/opt/toolbox", dirs=("/opt", "/opt/tool"))
    above = _layer("/opt/tool")  # a file where the directory stood
    merged = merge_layers([below, above])
    assert sorted(merged.entries) == ["/opt", "/opt/tool", "/opt/toolbox"]
    assert merged.entries["/opt/tool"].kind == "file"


def test_merge_an_opaque_root_hides_every_lower_path() -> None:
    below = _layer("/a", "/b/c", dirs=("/b",))
    above = _layer("/d", opaque=("/",))
    assert sorted(merge_layers([below, above]).entries) == ["/d"]


def test_merge_many_whiteouts_remove_exactly_their_subtrees() -> None:
    below = _layer(*(f"/data/{n // 100}/{n}" for n in range(100_000)))
    above = _layer(whiteouts=tuple(f"/data/{n}" for n in range(0, 1000, 2)))
    merged = merge_layers([below, above])
    assert len(merged) == 50_000
    assert "/data/1/100" in merged and "/data/0/0" not in merged and "/data/10/1000" not in merged


class CountedPath(str):
    """A path whose ``<`` is Python code, so that sorting and bisecting paths count as steps too."""

    __slots__ = ()

    def __lt__(self, other: str) -> bool:
        return str.__lt__(self, other)


def test_merge_twice_the_paths_and_whiteouts_take_about_twice_the_steps_not_four_times() -> None:
    """A layer's whiteouts look their subtrees up in the sorted paths: O(n log n), not O(n x whiteouts)."""

    def merge(files: int) -> None:
        below = _layer(*(CountedPath(f"/data/{n // 10}/{n}") for n in range(files)))
        merge_layers([below, _layer(whiteouts=tuple(f"/data/{g}" for g in range(0, files // 10, 2)))])

    small, large = steps(lambda: merge(4000)), steps(lambda: merge(8000))
    assert large < 2.5 * small, f"{small} steps for 4000 paths, {large} for 8000: {large / small:.2f}x"


# ------------------------------------------------------------------------- owners and secrets
def _owned_tar(members: list[tuple[str, bytes | None, int, int, int]]) -> bytes:
    """A layer tar of (name, content or None for a directory, mode, uid, gid)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, uid, gid in members:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, 1_700_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


KEY_TEXT = ("-----BEGIN OPENSSH " + "PRIVATE KEY-----\n" + "QUJD" * 20 + "\n").encode()
OWNED = _owned_tar(
    [
        ("etc/", None, 0o755, 0, 0),
        ("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n", 0o644, 0, 0),
        ("app/", None, 0o755, 1000, 1000),
        ("app/run", b"#!/bin/sh\necho hi\n", 0o4755, 0, 50),
        ("app/id_ed25519", KEY_TEXT, 0o600, 1000, 1000),
        ("app/blob.bin", b"\0\0" + KEY_TEXT, 0o644, 1000, 1000),  # binary: not read for secrets
        ("app/lib.so.1", KEY_TEXT, 0o644, 1000, 1000),  # a shared library by name: not read
    ]
)


def test_the_index_records_owners_keeps_passwd_and_finds_secrets_masked() -> None:
    layer = index_layer(io.BytesIO(OWNED), want_content=keeps_content)
    run = layer.entries["/app/run"]
    assert (run.mode, run.uid, run.gid) == (0o4755, 0, 50)
    assert (layer.entries["/app"].uid, layer.entries["/app"].gid) == (1000, 1000)
    assert layer.contents == {"/etc/passwd": b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"}
    assert layer.entries["/app/run"].shebang == "/bin/sh"  # still probed, though read whole for secrets
    assert [(f.rule, f.path, f.line, f.preview) for f in layer.secrets] == [
        ("ssh-private-key", "/app/id_ed25519", 1, "-----BEGIN OPENSSH PRIVATE KEY----- ...")
    ]


def test_owners_and_secrets_are_the_same_from_the_engines_storage(tmp_path: Path) -> None:
    """The tar-split record and the ``diff`` directory walked as the engine's differ walks it give
    the export's owners and findings (the directory's files chowned as the engine stores them)."""
    exported = index_layer(io.BytesIO(OWNED), want_content=keeps_content)
    (tmp_path / "split.gz").write_bytes(tar_split(OWNED))
    diff = tmp_path / "diff"
    unpack_overlay(OWNED, diff, devices=False)
    with tarfile.open(fileobj=io.BytesIO(OWNED)) as tar:
        for member in tar:
            os.chown(diff / member.name.rstrip("/"), member.uid, member.gid)
            os.chmod(diff / member.name.rstrip("/"), member.mode)
    digest = "sha256:" + sha256(OWNED)
    stored = index_tar_split(tmp_path / "split.gz", diff, digest=digest, want_content=keeps_content)
    assert stored == exported
    walked = index_overlay_dir(diff, digest=digest, want_content=keeps_content)
    assert walked.entries == exported.entries
    assert walked.secrets == exported.secrets
