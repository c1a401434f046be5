"""The layer index against a real engine: the overlay2 storage and the export give the same
index, a warm cache reads nothing else, cached layers are drained unparsed from an export, and
a GCC driver copied under an unrelated name is found by what it is.

The image is built here (legacy builder, from the local busybox and gcc images), named uniquely
and removed without pruning its parents.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from pytest_slimimage.analysis.layercache import LayerCache
from pytest_slimimage.analysis.layers import LayerIndex, chain_ids, index_overlay_dir, keeps_content, merge_layers
from pytest_slimimage.analysis.toolchains import Finding, find_toolchains
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.layerread import LayerReader
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import FileEntry

DOCKERFILE = """\
FROM busybox:latest
COPY --from=gcc:latest /usr/bin/gcc-12 /usr/local/bin/notacompiler
RUN mkdir -p /opt/gone/sub /opt/opaque/old /etc/ld.so.conf.d \\
 && echo a > /opt/gone/sub/f && echo b > /opt/opaque/old/f && echo x > /etc/deleted \\
 && printf '#!/bin/sh -e\\necho hi\\n' > /usr/local/bin/script && chmod 755 /usr/local/bin/script \\
 && echo /opt/lib > /etc/ld.so.conf.d/opt.conf && echo 'include /etc/ld.so.conf.d/*.conf' > /etc/ld.so.conf
RUN rm /etc/deleted && rm -rf /opt/gone /opt/opaque && mkdir /opt/opaque && echo new > /opt/opaque/new \\
 && ln /bin/busybox /usr/local/bin/hardbox
CMD ["/usr/local/bin/script"]
"""


@pytest.fixture(scope="module")
def layered(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """busybox, a GCC driver renamed, then a layer deleting a file and a directory and
    replacing another directory (opaque), plus a hard link made in the same layer as its target."""
    context = tmp_path_factory.mktemp("layered")
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = f"slimimage-layer-index-test:{uuid.uuid4().hex[:12]}"
    image, _ = docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    try:
        yield str(image.id)
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, noprune=True)


@pytest.fixture
def reader(docker_client: docker.DockerClient) -> LayerReader:
    return LayerReader(Engine(docker_client))  # shares the session's client (not closed here)


@pytest.fixture
def exports(docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every image export the engine is asked for during the test (counted, not replaced)."""
    asked: list[str] = []
    real: Callable[..., Any] = docker_client.api.get_image

    def counting(image: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(image)
        return real(image, *args, **kwargs)

    monkeypatch.setattr(docker_client.api, "get_image", counting)
    return asked


def storage_or_skip(reader: LayerReader) -> Path:
    root = reader.storage_root()
    if root is None:  # pragma: no cover - the project's machines run a local overlay2 engine as root
        pytest.skip("the engine's overlay2 storage is not readable by this process (remote or rootless engine)")
    return root


# ------------------------------------------------------------------------- storage == export
@pytest.mark.parametrize("which", ["busybox:latest", "layered", "gcc:latest"])
def test_storage_and_export_give_the_same_index(
    which: str, layered: str, reader: LayerReader, exports: list[str], request: pytest.FixtureRequest
) -> None:
    storage_or_skip(reader)
    image = layered if which == "layered" else which
    exported = reader.index_layers(image, source="export")
    assert exports == [image]
    stored = reader.index_layers(image, source="storage")
    assert exports == [image]  # the storage was read, not a second export
    assert [la.digest for la in stored] == reader.engine.inspect(image)["RootFS"]["Layers"]
    assert stored == exported  # entries, whiteouts, opaque dirs, contents, ELF facts, fingerprints
    assert any(e.elf is not None for la in stored for e in la.entries.values())


@pytest.mark.parametrize("which", ["busybox:latest", "layered"])
def test_walking_the_diff_directories_gives_the_exports_entries(which: str, layered: str, reader: LayerReader) -> None:
    """Without tar-split records, each layer's directory is walked and its overlay whiteouts and
    opaque directories translated: the same index for layers the engine built."""
    root = storage_or_skip(reader)
    image = layered if which == "layered" else which
    exported = reader.index_layers(image, source="export")
    diff_ids = [la.digest for la in exported]
    for layer, chain in zip(exported, chain_ids(diff_ids), strict=True):
        record = root / "image" / "overlay2" / "layerdb" / "sha256" / chain.removeprefix("sha256:")
        diff = root / "overlay2" / (record / "cache-id").read_text().strip() / "diff"
        walked = index_overlay_dir(diff, digest=layer.digest, want_content=keeps_content)
        assert walked == dataclasses.replace(layer, tar_size=0, head_digest=""), layer.digest


def test_the_layered_images_whiteouts_opaque_dir_and_probes(layered: str, reader: LayerReader) -> None:
    layers = reader.index_layers(layered, source="export")
    assert len(layers) == 5  # busybox's two, COPY, RUN, RUN
    top = layers[-1]
    assert sorted(top.whiteouts) == ["/etc/deleted", "/opt/gone"]
    assert top.opaque_dirs == ["/opt/opaque"]
    fs = merge_layers(layers)
    for gone in ("/etc/deleted", "/opt/gone", "/opt/gone/sub/f", "/opt/opaque/old", "/opt/opaque/old/f"):
        assert gone not in fs
    assert "/opt/opaque/new" in fs
    busybox = fs.entries["/bin/busybox"]
    assert busybox.layer == 4 and busybox.elf is not None and busybox.elf.static  # copied up by `ln`
    hardbox = fs.entries["/usr/local/bin/hardbox"]
    assert (hardbox.kind, hardbox.link, hardbox.elf) == ("hardlink", "/bin/busybox", busybox.elf)
    assert fs.entries["/usr/local/bin/script"].shebang == "/bin/sh -e"
    assert fs.contents["/etc/ld.so.conf.d/opt.conf"] == b"/opt/lib\n"
    assert fs.contents["/etc/ld.so.conf"] == b"include /etc/ld.so.conf.d/*.conf\n"


def test_a_gcc_driver_under_an_unrelated_name_is_found(layered: str, reader: LayerReader) -> None:
    fs = merge_layers(reader.index_layers(layered))
    driver = fs.entries["/usr/local/bin/notacompiler"]
    assert driver.elf is not None and driver.elf.markers == ("gcc-driver",)
    assert driver.elf.interp is not None and "libc.so.6" in driver.elf.needed
    findings = find_toolchains(fs)
    by_content = [f for f in findings if f.by == "content"]
    assert by_content == [Finding("gcc-driver", "/usr/local/bin/notacompiler", "file", by="content")]
    assert "/usr/local/bin/notacompiler (gcc-driver by content)" in [str(f) for f in findings]
    assert find_toolchains(fs, ["gcc-driver"]) == tuple(f for f in findings if f.by != "content")


# ------------------------------------------------------------------------------------ the cache
@pytest.mark.parametrize("source", ["export", "auto"])
def test_a_warm_cache_reads_neither_export_nor_storage(
    source: str, layered: str, reader: LayerReader, exports: list[str], tmp_path: Path
) -> None:
    cache = LayerCache(tmp_path)
    cold = reader.index_layers(layered, cache=cache, source=source)
    assert exports == ([layered] if source == "export" or reader.storage_root() is None else [])
    exports.clear()
    storage_reads: list[str] = []
    real = reader._storage_layers

    def counted(root: Path, diff_ids: list[str], missing: list[str]) -> dict[str, LayerIndex]:
        storage_reads.extend(missing)
        return real(root, diff_ids, missing)

    reader._storage_layers = counted  # type: ignore[method-assign]
    warm = reader.index_layers(layered, cache=cache, source=source)
    assert (exports, storage_reads) == ([], [])
    assert warm == cold


def test_cached_layers_are_drained_from_the_export_unparsed(
    layered: str, reader: LayerReader, exports: list[str], tmp_path: Path
) -> None:
    cache = LayerCache(tmp_path)
    cold = reader.index_layers(layered, cache=cache, source="export")
    fake = FileEntry("/seen-only-in-the-cache", "file")
    bottom = cold[0]
    cache.put(dataclasses.replace(bottom, entries={**bottom.entries, fake.path: fake}))
    cache.path(cold[-1].digest).unlink()  # the top layer must be read again
    exports.clear()
    again = reader.index_layers(layered, cache=cache, source="export")
    assert exports == [layered]
    assert fake.path in again[0].entries  # taken from the cache, not parsed from the export
    assert again[1:] == cold[1:]
    assert cache.get(cold[-1].digest) == cold[-1]  # stored again


def test_storage_that_cannot_be_read(
    layered: str, reader: LayerReader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overlay2 root that is not the engine's: forced, an error; by default, the export, silently."""
    monkeypatch.setattr(reader, "storage_root", lambda source="auto": tmp_path)
    with pytest.raises(
        SlimImageError, match=r"^cannot read the layers of .* from the engine's storage \(layer source 'storage'\): "
    ):
        reader.index_layers(layered, source="storage")
    assert reader.index_layers(layered, source="auto") == reader.index_layers(layered, source="export")


def test_the_layer_source_environment_variable(
    layered: str, reader: LayerReader, exports: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIMIMAGE_LAYER_SOURCE", "export")
    reader.index_layers(layered)
    assert exports == [layered]
    monkeypatch.setenv("SLIMIMAGE_LAYER_SOURCE", "nonsense")
    with pytest.raises(SlimImageError, match=r"^SLIMIMAGE_LAYER_SOURCE must be one of auto, export, storage"):
        reader.index_layers(layered)
