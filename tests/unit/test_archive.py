"""Images checked from their archives, with no engine: ``docker save`` tarballs and OCI image
layouts (directory or tar, one platform or an index of several) made here with tarfile and json,
read by :mod:`pytest_slimimage.analysis.archive` and checked through
:class:`~pytest_slimimage.engine.archive.ArchiveImages` with no engine to connect to. The sizes
are compared with the real engine's in ``tests/integration/test_archives.py``."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_slimimage import SlimImageError, assert_check, assert_runs, check_max_size
from pytest_slimimage.analysis.archive import (
    DOCKER_ARCHIVE,
    OCI_LAYOUT,
    ArchivedImage,
    layer_disk_size,
    normalise_platform,
    read_archive,
)
from pytest_slimimage.analysis.layercache import LayerCache
from pytest_slimimage.analysis.layers import LayerIndex, index_layer, keeps_content
from pytest_slimimage.checks.declarative import load_declarations
from pytest_slimimage.checks.spec import SpecError
from pytest_slimimage.engine.archive import ArchiveImage, ArchiveImages
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.errors import EngineUnavailable, ImageCheckFailed
from tests.unit.archives import compile_c

# ------------------------------------------------------------------------------------- makers
Member = tuple[str, str, bytes, str]
"""(name, kind: file / dir / symlink / hardlink / fifo, data, link target)."""


def layer(*members: Member) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            info.mode = 0o755 if kind in ("dir", "exe") else 0o644
            if kind in ("file", "exe"):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            info.linkname = link
            tar.addfile(info)
    return out.getvalue()


def f(name: str, data: bytes = b"", kind: str = "file") -> Member:
    return (name, kind, data, "")


def d(name: str) -> Member:
    return (name, "dir", b"", "")


def ln(name: str, target: str, kind: str = "symlink") -> Member:
    return (name, kind, b"", target)


BASE = layer(
    d("bin/"),
    f("bin/hello", b"h" * 1000, "exe"),
    ln("bin/hi", "/bin/hello"),  # 10 bytes of target
    ln("bin/hello2", "bin/hello", "hardlink"),  # counted once
    f("etc/empty"),
    f("etc/data", b"d" * 300),
    ("run/fifo", "fifo", b"", ""),
)
BASE_SIZE = 1000 + 10 + 300
TOP = layer(
    d("etc/"),
    f("etc/.wh.data"),  # a whiteout: 0
    d("var/"),
    f("var/.wh..wh..opq"),
    f("var/new", b"yy"),
)
TOP_SIZE = 2


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config(
    layers: Sequence[bytes],
    *,
    arch: str = "amd64",
    variant: str | None = None,
    cmd: Sequence[str] | None = ("/bin/hello",),
    history: Sequence[Mapping[str, Any]] | None = None,
) -> bytes:
    if history is None:
        history = [{"created_by": f"/bin/sh -c make layer {n}"} for n in range(len(layers))]
        history = [*history, {"created_by": '/bin/sh -c #(nop)  CMD ["/bin/hello"]', "empty_layer": True}]
    document: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": list(cmd) if cmd else None, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(la) for la in layers]},
        "history": list(history),
    }
    if variant:
        document["variant"] = variant
    return json.dumps(document).encode()


def tar_of(files: Mapping[str, bytes], *, links: Mapping[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def docker_save(*images: tuple[bytes, Sequence[bytes]], tags: Sequence[str] = ("app:1",)) -> bytes:
    """A ``docker save`` tarball; a layer repeated in an image is a symlink to its first copy."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    manifest = []
    for number, (cfg, layers) in enumerate(images):
        names = []
        for position, data in enumerate(layers):
            folder = hashlib.sha256(data + bytes([number, position])).hexdigest()
            first = next((n for n, v in files.items() if v == data and n.endswith("/layer.tar")), None)
            if first is None:
                files[f"{folder}/layer.tar"] = data
            else:
                links[f"{folder}/layer.tar"] = f"../{first}"
            names.append(f"{folder}/layer.tar")
        files[hashlib.sha256(cfg).hexdigest() + ".json"] = cfg
        manifest.append(
            {"Config": hashlib.sha256(cfg).hexdigest() + ".json", "RepoTags": [tags[number]], "Layers": names}
        )
    files["manifest.json"] = json.dumps(manifest).encode()
    return tar_of(files, links=links)


def oci_layout(
    platforms: Mapping[str, tuple[bytes, Sequence[bytes]]],
    *,
    nested: bool = True,
    gzip_layers: bool = False,
    compat: bool = False,
    attestation: bool = False,
    ref: str = "v1",
) -> dict[str, bytes]:
    """An OCI image layout's files: one manifest per platform, under an image index (``nested``,
    as buildx writes it) or listed in ``index.json`` itself."""
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        blobs["blobs/sha256/" + hashlib.sha256(data).hexdigest()] = data
        return digest(data)

    descriptors = []
    for platform, (cfg, layers) in platforms.items():
        layer_descriptors = []
        for data in layers:
            stored = gzip.compress(data, mtime=0) if gzip_layers else data
            kind = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
            layer_descriptors.append({"mediaType": kind, "digest": put(stored), "size": len(stored)})
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg)},
                "layers": layer_descriptors,
            }
        ).encode()
        os_name, arch, *variant = platform.split("/")
        described: dict[str, Any] = {"os": os_name, "architecture": arch}
        if variant:
            described["variant"] = variant[0]
        descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": put(manifest),
                "size": len(manifest),
                "platform": described,
            }
        )
    if attestation:
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1"}).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "config": {"digest": put(b"{}")},
                "layers": [{"digest": put(statement)}],
            }
        ).encode()
        descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": put(manifest),
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            }
        )
    annotations = {"org.opencontainers.image.ref.name": ref}
    if nested:
        index = json.dumps({"schemaVersion": 2, "manifests": descriptors}).encode()
        top: list[dict[str, Any]] = [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(index), "annotations": annotations}
        ]
    else:
        top = [{**descriptor, "annotations": annotations} for descriptor in descriptors]
    files = {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": top}).encode(),
        **blobs,
    }
    if compat:
        first_cfg, _ = next(iter(platforms.values()))
        files["manifest.json"] = json.dumps(
            [{"Config": "blobs/sha256/" + hashlib.sha256(first_cfg).hexdigest(), "Layers": [], "RepoTags": ["x:1"]}]
        ).encode()
    return files


def on_disk(files: Mapping[str, bytes], root: Path) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def indexed(archive_path: Path, platform: str | None = None) -> tuple[ArchivedImage, list[LayerIndex]]:
    archive = read_archive(archive_path)
    image = archive.select(platform)[0]
    return image, archive.index_layers(image, want_content=keeps_content)


IMAGE = (config([BASE, TOP]), [BASE, TOP])


# -------------------------------------------------------------------------------- the size
def test_a_layers_size_is_what_the_engines_overlay2_driver_counts() -> None:
    """Files by their size, symlinks by their target's length, a hard link once; directories,
    whiteouts, opaque markers, empty files and FIFOs nothing."""
    assert layer_disk_size(index_layer(io.BytesIO(BASE))) == BASE_SIZE
    assert layer_disk_size(index_layer(io.BytesIO(TOP))) == TOP_SIZE


def test_a_file_written_twice_in_one_layer_counts_once() -> None:
    twice = layer(f("a", b"1" * 50), f("a", b"2" * 20))
    assert layer_disk_size(index_layer(io.BytesIO(twice))) == 20


def test_a_symlink_counts_its_targets_bytes_not_characters() -> None:
    assert layer_disk_size(index_layer(io.BytesIO(layer(ln("é", "ünïcode"))))) == len("ünïcode".encode())


# --------------------------------------------------------------------------- docker archives
def test_a_docker_save_tarball_gives_the_engines_id_size_config_and_history(tmp_path: Path) -> None:
    cfg, layers = IMAGE
    path = write(tmp_path / "app.tar", docker_save(IMAGE))
    archive = read_archive(path, display="dist/app.tar")
    assert (archive.layout, archive.platforms) == (DOCKER_ARCHIVE, ("linux/amd64",))
    image = archive.images[0]
    assert image.id == digest(cfg)
    assert image.tags == ("app:1",)
    indexes = archive.index_layers(image)
    sizes = [layer_disk_size(i) for i in indexes]
    assert sizes == [BASE_SIZE, TOP_SIZE]
    assert [i.digest for i in indexes] == [digest(la) for la in layers]
    attrs = image.inspect(sum(sizes))
    assert attrs["Size"] == BASE_SIZE + TOP_SIZE
    assert attrs["Config"]["Cmd"] == ["/bin/hello"]
    assert attrs["Architecture"] == "amd64"
    history = image.history(sizes)
    assert [(h.size, h.empty, h.instruction) for h in history] == [
        (BASE_SIZE, False, "RUN make layer 0"),
        (TOP_SIZE, False, "RUN make layer 1"),
        (0, True, 'CMD ["/bin/hello"]'),
    ]


def test_a_compressed_docker_save_reads_the_same(tmp_path: Path) -> None:
    plain = indexed(write(tmp_path / "app.tar", docker_save(IMAGE)))
    packed = indexed(write(tmp_path / "app.tar.gz", gzip.compress(docker_save(IMAGE))))
    assert packed[0] == plain[0]
    assert [i.entries for i in packed[1]] == [i.entries for i in plain[1]]


def test_a_repeated_layer_linked_to_its_first_copy_is_read(tmp_path: Path) -> None:
    same = (config([BASE, TOP, BASE]), [BASE, TOP, BASE])
    _, indexes = indexed(write(tmp_path / "app.tar", docker_save(same)))
    assert [layer_disk_size(i) for i in indexes] == [BASE_SIZE, TOP_SIZE, BASE_SIZE]


def test_an_unpacked_docker_save_directory_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "app.tar", docker_save(IMAGE))
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "unpacked", filter="tar")
    _, indexes = indexed(tmp_path / "unpacked")
    assert sum(layer_disk_size(i) for i in indexes) == BASE_SIZE + TOP_SIZE


def test_history_follows_the_engine(tmp_path: Path) -> None:
    """No history in the config: none (``docker history`` shows none); more non-empty entries
    than layers: an error (the engine refuses it too)."""
    bare = (config([BASE], history=[]), [BASE])
    image, _ = indexed(write(tmp_path / "bare.tar", docker_save(bare)))
    assert image.history([BASE_SIZE]) == []
    extra = (config([BASE], history=[{"created_by": "a"}, {"created_by": "b"}]), [BASE])
    image, _ = indexed(write(tmp_path / "extra.tar", docker_save(extra)))
    with pytest.raises(SlimImageError, match=r"more non-empty history entries than its 1 layer\(s\)"):
        image.history([BASE_SIZE])


# ------------------------------------------------------------------------------ OCI layouts
@pytest.mark.parametrize("form", ["directory", "tar"])
@pytest.mark.parametrize("gzip_layers", [False, True], ids=["plain", "gzip"])
def test_an_oci_layout_gives_the_same_image_as_docker_save(tmp_path: Path, form: str, gzip_layers: bool) -> None:
    files = oci_layout({"linux/amd64": IMAGE}, nested=False, gzip_layers=gzip_layers)
    path = on_disk(files, tmp_path / "oci") if form == "directory" else write(tmp_path / "oci.tar", tar_of(files))
    archive = read_archive(path)
    assert (archive.layout, archive.platforms) == (OCI_LAYOUT, ("linux/amd64",))
    image = archive.images[0]
    saved, saved_indexes = indexed(write(tmp_path / "app.tar", docker_save(IMAGE)))
    assert image.id == saved.id
    assert image.tags == ("v1",)
    indexes = archive.index_layers(image, want_content=keeps_content)
    assert [i.entries for i in indexes] == [i.entries for i in saved_indexes]
    assert sum(layer_disk_size(i) for i in indexes) == BASE_SIZE + TOP_SIZE


def test_a_layout_with_oci_layout_and_a_compat_manifest_is_read_as_oci(tmp_path: Path) -> None:
    """Docker 25+ saves an OCI layout with a docker-archive ``manifest.json`` beside it."""
    files = oci_layout({"linux/amd64": IMAGE}, compat=True)
    archive = read_archive(write(tmp_path / "new-docker.tar", tar_of(files)))
    assert archive.layout == OCI_LAYOUT


def test_an_index_of_platforms_gives_one_image_each_and_platform_picks_one(tmp_path: Path) -> None:
    arm = (config([BASE, TOP], arch="arm64", variant="v8"), [BASE, TOP])
    armv7 = (config([BASE], arch="arm", variant="v7"), [BASE])
    files = oci_layout({"linux/amd64": IMAGE, "linux/arm64/v8": arm, "linux/arm/v7": armv7}, attestation=True)
    archive = read_archive(write(tmp_path / "multi.tar", tar_of(files)), display="multi.tar")
    assert archive.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")  # attestation left out
    assert [i.platform for i in archive.select("linux/arm64")] == ["linux/arm64"]
    assert [i.platform for i in archive.select("aarch64")] == ["linux/arm64"]
    assert [i.platform for i in archive.select("linux/arm64/v8")] == ["linux/arm64"]
    assert archive.select("linux/arm64")[0].config["architecture"] == "arm64"
    with pytest.raises(SlimImageError) as caught:
        archive.select("linux/s390x")
    assert str(caught.value) == (
        "multi.tar has no image for the platform 'linux/s390x': it holds linux/amd64, linux/arm64, linux/arm/v7"
    )


def test_a_platform_whose_blobs_were_not_saved_is_left_out_and_named(tmp_path: Path) -> None:
    """``docker save`` of a multi-platform image keeps the index but only the local platform's blobs."""
    arm = (config([TOP], arch="arm64"), [TOP])
    files = oci_layout({"linux/amd64": (config([BASE]), [BASE]), "linux/arm64": arm})
    files.pop("blobs/sha256/" + hashlib.sha256(TOP).hexdigest())  # arm64's only layer
    archive = read_archive(on_disk(files, tmp_path / "oci"), display="oci")
    assert archive.platforms == ("linux/amd64",)
    with pytest.raises(SlimImageError) as caught:
        archive.select("linux/arm64")
    assert str(caught.value).startswith(
        "oci has no image for the platform 'linux/arm64': it holds linux/amd64; not in the layout: linux/arm64 (blob"
    )


def test_several_images_for_one_platform_are_an_error(tmp_path: Path) -> None:
    other = (config([TOP]), [TOP])
    path = write(tmp_path / "two.tar", docker_save(IMAGE, other, tags=("a:1", "b:2")))
    with pytest.raises(SlimImageError, match=r"holds several images for linux/amd64 \(a:1, b:2\)"):
        read_archive(path, display="two.tar")


# ------------------------------------------------------------------------------------ errors
def test_a_missing_path_is_one_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SlimImageError) as caught:
        read_archive(tmp_path / "nope.tar", display="dist/nope.tar")
    assert str(caught.value) == (
        f"archive not found: dist/nope.tar (no such file or directory: {tmp_path / 'nope.tar'})"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "app.tar is empty: neither a docker save tarball nor an OCI image layout"),
        (
            b"FROM scratch\n" * 100,
            "app.tar is neither a docker save tarball nor an OCI image layout (a directory, or a tar of one):"
            " it is not a tar file",
        ),
        (
            tar_of({"README": b"hello"}),
            "app.tar is neither a docker save tarball (manifest.json) nor an OCI image layout (index.json, oci-layout)",
        ),
    ],
    ids=["empty", "text", "other-tar"],
)
def test_a_file_that_is_neither_layout_is_one_error(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(SlimImageError) as caught:
        read_archive(write(tmp_path / "app.tar", content), display="app.tar")
    assert str(caught.value) == message


def test_a_directory_that_is_no_layout_says_so(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    with pytest.raises(SlimImageError) as caught:
        read_archive(tmp_path / "dist", display="dist")
    assert str(caught.value) == (
        "dist is neither a docker save tarball (manifest.json) nor an OCI image layout (index.json, oci-layout):"
        " it is a directory"
    )


@pytest.mark.parametrize("cut", ["first-layer", "last-member", "boundary"])
def test_a_truncated_tar_is_one_error_naming_the_path(tmp_path: Path, cut: str) -> None:
    whole = docker_save(IMAGE)
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        members = tar.getmembers()
    first, last = members[0], members[-1]
    end = last.offset_data + last.size
    data = {
        "first-layer": whole[: first.offset_data + first.size // 2],
        "last-member": whole[: last.offset_data + 3],
        "boundary": whole[: end + (-end % 512)],  # where a member ends: no end-of-archive blocks
    }[cut]
    with pytest.raises(SlimImageError) as caught:
        archive = read_archive(write(tmp_path / "app.tar", data), display="app.tar")
        archive.index_layers(archive.images[0])
    text = str(caught.value)
    assert text.startswith("app.tar"), text
    assert "truncated" in text


def test_a_truncated_compressed_tar_is_one_error(tmp_path: Path) -> None:
    data = gzip.compress(docker_save(IMAGE))
    with pytest.raises(SlimImageError, match=r"^app.tar.gz is not a readable archive \(corrupt or truncated\)"):
        read_archive(write(tmp_path / "app.tar.gz", data[: len(data) // 2]), display="app.tar.gz")


def test_a_layer_that_is_not_the_one_its_config_names_is_corrupt(tmp_path: Path) -> None:
    lying = (config([BASE, TOP]), [BASE, layer(f("var/new", b"zz"))])
    archive = read_archive(write(tmp_path / "app.tar", docker_save(lying)), display="app.tar")
    with pytest.raises(SlimImageError, match=r"^app.tar is corrupt: its layer .*/layer.tar is not the layer"):
        archive.index_layers(archive.images[0])


def test_a_config_that_does_not_list_the_layers_is_an_error(tmp_path: Path) -> None:
    short = (config([BASE]), [BASE, TOP])
    with pytest.raises(SlimImageError, match=r"does not list the diff ids of the 2 layer\(s\) its manifest names"):
        read_archive(write(tmp_path / "app.tar", docker_save(short)), display="app.tar")


def test_a_blob_path_cannot_leave_the_layout(tmp_path: Path) -> None:
    files = oci_layout({"linux/amd64": IMAGE})
    index = json.loads(files["index.json"])
    index["manifests"][0]["digest"] = "sha256:../../../etc/passwd"
    files["index.json"] = json.dumps(index).encode()
    with pytest.raises(SlimImageError, match=r"is not a content digest"):
        read_archive(on_disk(files, tmp_path / "oci"))


# ------------------------------------------------------------------------- cache and loading
def test_cached_layers_are_not_read_again(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache")
    root = on_disk(oci_layout({"linux/amd64": IMAGE}), tmp_path / "oci")
    archive = read_archive(root)
    first = archive.index_layers(archive.images[0], cache=cache)
    for la in IMAGE[1]:  # garbage now: reading it would fail
        (root / "blobs" / "sha256" / hashlib.sha256(la).hexdigest()).write_bytes(b"not a tar")
    again = read_archive(root).index_layers(archive.images[0], cache=cache)
    assert [i.entries for i in again] == [i.entries for i in first]


@pytest.mark.parametrize("source", ["docker-save", "oci-gzip"])
def test_the_loadable_stream_is_a_docker_save_of_the_image_under_our_tag_only(tmp_path: Path, source: str) -> None:
    if source == "docker-save":
        path = write(tmp_path / "app.tar", docker_save(IMAGE))
    else:
        path = write(tmp_path / "app.tar", tar_of(oci_layout({"linux/amd64": IMAGE}, gzip_layers=True)))
    archive = read_archive(path)
    image = archive.images[0]
    stream = b"".join(archive.loadable(image, "pytest-slimimage-archive/app:t-1"))
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["pytest-slimimage-archive/app:t-1"]
    assert manifest[0]["Config"] == image.id.split(":")[1] + ".json"
    loaded = read_archive(write(tmp_path / "loaded.tar", stream))
    assert loaded.layout == DOCKER_ARCHIVE
    assert loaded.images[0].id == image.id
    sizes = [layer_disk_size(i) for i in loaded.index_layers(loaded.images[0])]
    assert sizes == [BASE_SIZE, TOP_SIZE]


def test_platforms_are_named_as_the_engine_names_them() -> None:
    assert normalise_platform("amd64") == "linux/amd64"
    assert normalise_platform("Linux/X86_64") == "linux/amd64"
    assert normalise_platform("linux/arm64/v8") == "linux/arm64"
    assert normalise_platform("linux/arm/v7") == "linux/arm/v7"


# ------------------------------------------------------------- checks, with no engine at all
def no_engine() -> Engine:
    raise EngineUnavailable("no Docker engine answers at unix:///nonexistent: refused")


def opened(tmp_path: Path, path: Path, **kwargs: Any) -> list[ArchiveImage]:
    images = ArchiveImages(session="unit", connect=no_engine, layer_cache=LayerCache(tmp_path / "cache"))
    return images.open(path, display=path.name, name="app", **kwargs)


def test_the_checks_read_the_archive_and_a_run_says_it_needs_an_engine(tmp_path: Path) -> None:
    hello = compile_c(tmp_path, "hello", "-static")
    program = layer(d("bin/"), f("bin/hello", hello, "exe"), f("usr/bin/gcc", b"\x7fELF" + b"\0" * 60, "exe"))
    image = (config([program]), [program])
    (app,) = opened(tmp_path, write(tmp_path / "app.tar", docker_save(image)))
    assert app.size == len(hello) + 64
    assert app.tag == "app:1"
    assert app.filesystem.get("/bin/hello") is not None
    assert_check(app, "max_size", app.size)
    assert_check(app, "exec_form")
    assert_check(app, "runnable")
    with pytest.raises(ImageCheckFailed, match=r"app: no_compilers"):
        assert_check(app, "no_compilers")
    with pytest.raises(SlimImageError, match=r"final_base needs the image's Dockerfile"):
        assert_check(app, "final_base", "scratch")
    with pytest.raises(EngineUnavailable) as caught:
        assert_runs(app, "hello")
    assert str(caught.value) == (
        "app: a run needs a Docker engine to load app.tar into (every other check reads the archive without one),"
        " and no Docker engine answers at unix:///nonexistent: refused"
    )
    assert check_max_size(app.facts(), app.size - 1).passed is False


def test_each_platform_is_an_image_named_for_it_and_a_dockerfile_is_read_for_it(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG TARGETARCH\nFROM scratch AS base-amd64\nFROM busybox:1.36 AS base-arm64\n"
        'FROM base-$TARGETARCH\nCMD ["/bin/hello"]\n'
    )
    arm = (config([BASE], arch="arm64"), [BASE])
    path = write(tmp_path / "multi.tar", tar_of(oci_layout({"linux/amd64": IMAGE, "linux/arm64": arm})))
    images = opened(tmp_path, path, dockerfile=dockerfile, dockerfile_display="Dockerfile")
    assert [(i.name, i.platform, i.size) for i in images] == [
        ("app[linux/amd64]", "linux/amd64", BASE_SIZE + TOP_SIZE),
        ("app[linux/arm64]", "linux/arm64", BASE_SIZE),
    ]
    assert [i.dockerfile.final_base for i in images] == ["scratch", "busybox:1.36"]
    (arm_only,) = opened(tmp_path, path, platform="linux/arm64")
    assert (arm_only.name, arm_only.config.architecture) == ("app", "arm64")


def test_layers_are_read_once_per_image(tmp_path: Path) -> None:
    path = write(tmp_path / "app.tar", docker_save(IMAGE))
    images = ArchiveImages(session="unit", connect=no_engine)
    (first,) = images.open(path, name="a")
    (second,) = images.open(path, name="b")
    assert second.layer_indexes is first.layer_indexes
    assert (first.name, second.name) == ("a", "b")
    assert images.close() == []


# ------------------------------------------------------------------------------ declarative
def declared(tmp_path: Path, table: str) -> Any:
    path = tmp_path / "slimimage.toml"
    path.write_text("[images.app]\n" + table)
    return load_declarations(path)


def test_the_archive_key_declares_an_image_checked_from_its_archive(tmp_path: Path) -> None:
    found = declared(tmp_path, 'archive = "dist/app.tar"\nplatform = "linux/arm64"\nmax_size = "10MB"\n')
    (decl,) = found.images
    assert (decl.archive, decl.platform, decl.context, decl.image) == ("dist/app.tar", "linux/arm64", None, None)
    assert decl.dockerfile_given is False


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'archive = "a.tar"\ncontext = "."\n',
            "give one of context (build it), image (check one already built) or archive (check one saved to a file),"
            " not archive and context",
        ),
        (
            'archive = "a.tar"\nimage = "app:1"\n',
            "give one of context (build it), image (check one already built) or archive (check one saved to a file),"
            " not archive and image",
        ),
        (
            'archive = "a.tar"\ntarget = "final"\n',
            "target applies to a build, not to an archive (checked as it was saved; give dockerfile and platform only)",
        ),
        (
            "archive = 3\n",
            "archive expects the path of a docker save tarball or an OCI image layout (relative to the rootdir), got 3",
        ),
    ],
    ids=["with-context", "with-image", "with-target", "not-a-path"],
)
def test_a_bad_archive_table_is_one_error(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        declared(tmp_path, table + 'max_size = "1MB"\n')
    assert str(caught.value) == f"{tmp_path / 'slimimage.toml'} [images.app]: {message}"
