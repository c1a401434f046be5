"""``max_pull_size`` and ``reproducible`` on the real engine, against tiny images that pass and
images that fail: each layer's compressed size compared with a real gzip of the layer tars the
engine exports (and with the sizes an OCI layout's manifest lists), cached by layer digest and
not computed when no check asks; a RUN that writes the date (not reproducible) next to one that
does not, a second build that never becomes the fixture's image and leaves no tag behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pytest_slimimage import (
    ArchiveImage,
    BuiltImage,
    ImageCheckFailed,
    SlimImageError,
    assert_max_pull_size,
    assert_reproducible,
    existing_image_fixture,
    image_fixture,
)
from pytest_slimimage.analysis.layercache import FILES_FORMAT, PULL_FORMAT, LayerCache
from pytest_slimimage.engine.archive import ArchiveImages
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.layerread import LayerReader
from pytest_slimimage.engine.rebuild import REBUILD_REPOSITORY
from pytest_slimimage.glue.fixtures import BuildFactory
from tests.integration.conftest import CONTEXTS, clean_env

REBUILD = CONTEXTS / "rebuild"

stamped = image_fixture(REBUILD, dockerfile="Dockerfile.stamped")
"""busybox, a RUN that writes a fixed text, and a RUN that writes the date: not reproducible."""
steady = image_fixture(REBUILD, dockerfile="Dockerfile.steady")
"""busybox and a RUN that writes a fixed text: reproducible, but not strictly (its mtime)."""
FIXED_MTIME = 1_700_000_000
"""The context file's modification time. COPY keeps it, and neither BuildKit's cache nor the
plugin's key looks at it: a cached layer keeps the mtime of the checkout it was first built from.
So the test pins the mtime and builds without cache, to compare like with like in any checkout."""


@pytest.fixture(scope="session")
def copied(slimimage_build: BuildFactory, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """scratch and a COPY from the context: reproducible even strictly."""
    context = tmp_path_factory.mktemp("copied")
    shutil.copy(REBUILD / "Dockerfile.copied", context / "Dockerfile")
    shutil.copy(REBUILD / "message.txt", context / "message.txt")
    os.utime(context / "message.txt", (FIXED_MTIME, FIXED_MTIME))
    return slimimage_build(context, name="copied", no_cache=True)


pulled_busybox = existing_image_fixture("busybox:latest")


def failure(excinfo: pytest.ExceptionInfo[ImageCheckFailed]) -> list[str]:
    return str(excinfo.value).splitlines()


def gzip6(data: bytes) -> int:
    """A real gzip of ``data`` (zlib level 6, one stream, the 10-byte header ``gzip -n`` writes)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return len(compressor.compress(data)) + len(compressor.flush())


def exported_layers(client: docker.DockerClient, image: str) -> list[bytes]:
    """The layer tars of ``docker save``, bottom to top, as the engine exports (and pushes) them."""
    with tempfile.TemporaryFile() as fh:
        for chunk in client.images.get(image).save(chunk_size=1024 * 1024):
            fh.write(chunk)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:

            def member(name: str) -> bytes:
                extracted = tar.extractfile(name)
                assert extracted is not None
                return extracted.read()

            manifest = json.loads(member("manifest.json"))[0]
            return [member(name) for name in manifest["Layers"]]


# -------------------------------------------------------------------------------- max_pull_size
def test_pull_size_passes_within_its_budget_and_fails_over_it(steady: BuiltImage) -> None:
    result = assert_max_pull_size(steady, "5MB")
    total = result.details["actual"]
    assert 100_000 < total < steady.size  # busybox compresses to about half
    passed = r"steady: max_pull_size: [\d.]+[kM]B to pull \(compressed\), within 5MB \(headroom .*\)"
    assert re.fullmatch(passed, result.headline), result.headline
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_max_pull_size(steady, "1kB")
    lines = failure(excinfo)
    assert re.fullmatch(
        rf"steady: max_pull_size: [\d.]+[kM]B to pull \({total} bytes compressed\) exceeds the budget of 1kB by \+.*",
        lines[0],
    ), lines
    ratio = r"  [\d.]+MB on the engine; [\d.]+[kM]B compressed \(\d+% of its .* of layer tars\): each layer tar"
    assert re.fullmatch(ratio + r" gzip-compressed as a push sends it \(zlib level 6\)", lines[1]), lines
    assert lines[2] == "  largest compressed layers:"
    assert re.fullmatch(r"\s+[\d.]+[kM]B  \(of [\d.]+MB\)  .* \(base busybox:latest\)", lines[3]), lines
    assert any(re.fullmatch(r"\s+\d+B  \(of [\d.]+kB\)  RUN echo .* \(Dockerfile line 4\)", line) for line in lines)
    assert lines[-1].startswith("  hint: the base image's layers are ")


def test_pull_size_is_a_real_gzip_of_the_layers_the_engine_exports(
    steady: BuiltImage, docker_client: docker.DockerClient
) -> None:
    tars = exported_layers(docker_client, steady.id)
    layers = steady.pulled_layers()
    assert [layer.tar_size for layer in layers] == [len(tar) for tar in tars]
    for layer, tar in zip(layers, tars, strict=True):
        real = gzip6(tar)
        assert layer.source == "gzip"
        assert abs(layer.compressed - real) <= max(16, real // 1000), (layer, real)  # block-wise: within 0.1%


def test_pull_sizes_are_read_once_per_layer_digest_and_kept_apart_from_the_index(
    stamped: BuiltImage, tmp_path: Path
) -> None:
    engine = Engine.connect()
    try:
        cache = LayerCache(tmp_path)
        reader = LayerReader(engine)
        first = reader.scan_layers(stamped.id, cache=cache, pull=True)
        digests = list(dict.fromkeys(scan.digest for scan in first))
        assert sorted(p.name for p in (tmp_path / PULL_FORMAT).iterdir()) == sorted(
            d.removeprefix("sha256:") + ".json" for d in digests
        )
        assert not (tmp_path / FILES_FORMAT).exists()  # what was not asked is not read
        assert all(cache.get(d) is None for d in digests)  # nor is the layer index touched
        again = reader.scan_layers(stamped.id, cache=cache, pull=True, source="storage")
        assert [(s.digest, s.compressed) for s in again] == [(s.digest, s.compressed) for s in first]
        exported = LayerReader(engine).scan_layers(stamped.id, pull=True, source="export")  # no cache
        assert [(s.digest, s.tar_size, s.compressed) for s in exported] == [
            (s.digest, s.tar_size, s.compressed) for s in first
        ]  # the storage's reassembled tars are the export's, byte for byte
    finally:
        engine.close()


def test_an_oci_layout_gives_its_manifests_sizes_and_a_saved_tarball_is_compressed(
    steady: BuiltImage, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    exe = shutil.which("skopeo")
    if exe is None:
        pytest.fail("this test makes an OCI layout with Debian's skopeo: apt-get install skopeo", pytrace=False)
    tag = f"slimimage-pull-test/{uuid.uuid4().hex[:10]}:1"
    repository, _, name = tag.partition(":")
    docker_client.api.tag(steady.id, repository, name)
    try:
        subprocess.run([exe, "copy", "-q", f"docker-daemon:{tag}", f"oci:{tmp_path / 'oci'}:app"], check=True)
        with (tmp_path / "app.tar").open("wb") as out:
            for chunk in docker_client.images.get(tag).save(chunk_size=1024 * 1024):
                out.write(chunk)
    finally:
        docker_client.api.remove_image(tag, noprune=True)
    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((tmp_path / "oci" / "blobs" / "sha256" / digest).read_text())
    archives = ArchiveImages(session=f"it{uuid.uuid4().hex[:8]}")
    try:
        (oci,) = archives.open(tmp_path / "oci", name="oci")
        (saved,) = archives.open(tmp_path / "app.tar", name="saved")
        assert isinstance(oci, ArchiveImage) and isinstance(saved, ArchiveImage)
        from_manifest = oci.pulled_layers()
        assert [layer.compressed for layer in from_manifest] == [layer["size"] for layer in manifest["layers"]]
        assert {layer.source for layer in from_manifest} == {"manifest"}
        result = assert_max_pull_size(oci, "5MB")
        assert result.details["actual"] == sum(layer["size"] for layer in manifest["layers"])
        computed = saved.pulled_layers()  # docker save's layers are plain tars: compressed here
        assert [(la.digest, la.compressed) for la in computed] == [
            (la.digest, la.compressed) for la in steady.pulled_layers()
        ]
        # skopeo compresses with pgzip, a little larger than zlib's level 6
        for ours, theirs in zip(computed, from_manifest, strict=True):
            assert 0.85 < ours.compressed / theirs.compressed <= 1.0, (ours, theirs)
        with pytest.raises(SlimImageError, match=r"oci: reproducible builds the image a second time"):
            assert_reproducible(oci)
    finally:
        assert archives.close() == []


def test_pull_sizes_cost_nothing_unless_asked(pytester: pytest.Pytester) -> None:
    """An inner session asking only for other checks writes no compressed size and reads no layer
    a second time; one that asks for max_pull_size does, and the report shows it beside the size."""
    context = pytester.mkdir("ctx")
    (context / "Dockerfile").write_text((REBUILD / "Dockerfile.steady").read_text())
    pytester.makepyfile(
        test_one=textwrap.dedent(
            """
            import os
            import pytest
            from pytest_slimimage import image_fixture

            app = image_fixture("ctx")

            @pytest.mark.slimimage(max_size="5MB", no_compilers=True, max_waste=0)
            def test_other_checks(app):
                pass

            @pytest.mark.skipif(not os.environ.get("ASK_PULL"), reason="asked only in the second session")
            @pytest.mark.slimimage(max_pull_size="5MB")
            def test_pull(app):
                pass
            """
        )
    )
    env = clean_env()
    layers = pytester.path / ".pytest_cache" / "d" / "slimimage-layers"
    args = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-rA", "--slimimage-require-engine", "-v"]
    report = ["--slimimage-report", "report.json"]
    first = subprocess.run(args + report, cwd=pytester.path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert layers.is_dir() and not any(p.name.startswith("pull-") for p in layers.iterdir()), list(layers.iterdir())
    assert "pull" not in first.stdout.split("slimimage", 1)[-1].splitlines()[2]  # no pull column
    env["ASK_PULL"] = "1"
    second = subprocess.run(args + report, cwd=pytester.path, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert any(p.name.startswith("pull-") for p in layers.iterdir())
    (image,) = json.loads((pytester.path / "report.json").read_text())["images"]
    assert image["pull_limit"] == 5_000_000 and 0 < image["pull_size"] < image["size"]
    header = next(line for line in second.stdout.splitlines() if line.startswith("image "))
    assert header.split()[:3] == ["image", "size", "pull"], second.stdout


# --------------------------------------------------------------------------------- reproducible
def test_a_run_that_writes_the_date_is_not_reproducible(stamped: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_reproducible(stamped)
    lines = failure(excinfo)
    assert re.fullmatch(r"stamped: reproducible: building again without cache changes 1 of \d+ paths", lines[0])
    assert re.fullmatch(
        r"  built again without cache as sha256:[0-9a-f]{12} \(the image is sha256:[0-9a-f]{12}\); compared types,"
        r" modes, owners and content, not modification times",
        lines[1],
    ), lines
    assert lines[2] == "  /built-at: content differs; written by RUN date +%s%N > /built-at (Dockerfile line 4)"
    assert lines[-1].startswith("  hint: a RUN step writes the time or something random into a file")
    assert len(lines) == 4, lines
    assert stamped.rebuilt().id != stamped.id


def test_the_same_steps_without_the_date_are_reproducible_but_not_strictly(steady: BuiltImage) -> None:
    result = assert_reproducible(steady)
    assert re.fullmatch(
        r"steady: reproducible: a rebuild without cache gives the same \d+ paths \(types, modes, owners and content\)",
        result.headline,
    )
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_reproducible(steady, "strict")  # the same rebuild: built once
    lines = failure(excinfo)
    assert re.fullmatch(r"steady: reproducible: building again without cache changes \d+ of \d+ paths", lines[0])
    assert any(
        re.fullmatch(
            r"  /steady.txt: mtime [-\d]+ [:\d]+ -> [-\d]+ [:\d]+ UTC; written by RUN echo .* \(Dockerfile line 4\)",
            line,
        )
        for line in lines
    ), lines
    assert lines[-1].startswith("  hint: modification times differ (strict)")


def test_a_copy_from_the_context_is_reproducible_even_strictly(copied: BuiltImage) -> None:
    assert assert_reproducible(copied, "strict").passed


def test_the_rebuild_leaves_no_tag_and_never_replaces_the_fixtures_image(
    stamped: BuiltImage, docker_client: docker.DockerClient
) -> None:
    with pytest.raises(ImageCheckFailed):
        assert_reproducible(stamped)
    rebuilt = stamped.rebuilt()
    assert [t for image in docker_client.api.images(name=f"{REBUILD_REPOSITORY}/*") for t in image["RepoTags"]] == []
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.api.inspect_image(rebuilt.id)  # type: ignore[no-untyped-call]  # its tag gone, so is it
    fixtures = docker_client.api.inspect_image(stamped.tag)  # type: ignore[no-untyped-call]
    assert fixtures["Id"] == stamped.id  # the fixture's image is as it was


def test_reproducible_needs_an_image_the_plugin_builds(pulled_busybox: BuiltImage) -> None:
    with pytest.raises(SlimImageError) as excinfo:
        assert_reproducible(pulled_busybox)
    assert str(excinfo.value) == (
        "pulled_busybox: reproducible builds the image a second time from its Dockerfile and context, and"
        " pulled_busybox was not built by pytest-slimimage (an existing image or an archive): there is nothing"
        " to build it again from"
    )


@pytest.fixture(scope="module", autouse=True)
def _no_rebuild_left(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    left = [t for image in docker_client.api.images(name=f"{REBUILD_REPOSITORY}/*") for t in image["RepoTags"]]
    assert left == [], left
