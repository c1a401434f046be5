"""Images checked from their archives, against the real engine: a tiny image built here (layers
with a deleted file, an opaque directory, hard links, symlinks, a FIFO), saved with ``docker save``
and copied to an OCI layout (directory and tar) with Debian's ``skopeo``, as CI makes its archives.

- the size an archive gives is the engine's ``Size`` to the byte (busybox, debian:bookworm-slim,
  the image made here), and each history entry's size is the engine's;
- with ``DOCKER_HOST`` pointing nowhere, the archive and the OCI layouts give the verdicts the
  engine's image gives, and a run is one clear error;
- with an engine, a run loads the archive, and the session removes what it loaded;
- an OCI index of two platforms is checked per platform (``name[linux/arm64]``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from pytest_slimimage import assert_runs
from pytest_slimimage.checks.check import ParseContext
from pytest_slimimage.checks.registry import REGISTRY, call
from pytest_slimimage.engine.archive import ARCHIVE_REPOSITORY, ArchiveImages
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.errors import EngineUnavailable
from tests.integration.conftest import clean_env

DOCKERFILE = """\
FROM busybox:latest
RUN echo {token} > /id && mkdir -p /data/sub && dd if=/dev/zero of=/data/big bs=1k count=150 2>/dev/null \\
 && echo hi > /data/sub/a && ln /data/big /data/big-hard && ln -s /data/sub/a /data/sym && touch /data/empty
RUN rm -rf /data/sub /data/big && echo changed > /data/empty && mkdir /data/sub && echo x > /data/sub/new
RUN ln -s a-rather-long-symlink-target-whose-length-counts /lnk && mkfifo /fifo \\
 && head -c 40000 /bin/busybox > /part && ln /part /part2 && ln /part /part3
CMD ["echo", "hello from the archive"]
"""
SPEC: dict[str, Any] = {
    "exec_form": True,
    "no_compilers": True,
    "runnable": True,
    "max_waste": "100kB",  # the 150 kB file deleted by the second RUN: fails
    "final_base": "busybox",
    "lint": True,  # FROM busybox:latest: SI004, fails
}
NOWHERE = "unix:///nonexistent/docker.sock"


@dataclass(frozen=True)
class Made:
    tag: str
    size: int
    folder: Path
    dockerfile: Path
    saved: Path
    """``docker save`` of the image."""
    oci_dir: Path
    oci_tar: Path
    """The same image as an OCI layout (directory, and tar) made by ``skopeo copy``."""


def skopeo(*args: str) -> None:
    exe = shutil.which("skopeo")
    if exe is None:
        pytest.fail(
            "these tests make OCI layouts with Debian's skopeo, which is not installed:"
            " bash scripts/bootstrap.sh installs it (apt-get install skopeo)",
            pytrace=False,
        )
    host = os.environ.get("DOCKER_HOST")
    daemon = ["--src-daemon-host", host] if host else []
    subprocess.run([exe, "copy", "-q", *daemon, *args], check=True, capture_output=True, text=True, timeout=300)


def save(client: docker.DockerClient, reference: str, target: Path) -> Path:
    with target.open("wb") as out:
        for chunk in client.images.get(reference).save(chunk_size=1024 * 1024):
            out.write(chunk)
    return target


@pytest.fixture(scope="module")
def made(docker_client: docker.DockerClient) -> Iterator[Made]:
    token = uuid.uuid4().hex[:10]
    folder = Path(tempfile.mkdtemp(prefix=f"slimimage-archives-{token}-"))
    tag = f"slimimage-archive-test/{token}:1"
    try:
        context = folder / "context"
        context.mkdir()
        dockerfile = context / "Dockerfile"
        dockerfile.write_text(DOCKERFILE.format(token=token))
        docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        saved = save(docker_client, tag, folder / "app.tar")
        skopeo(f"docker-daemon:{tag}", f"oci:{folder / 'app-oci'}:app")
        skopeo(f"docker-daemon:{tag}", f"oci-archive:{folder / 'app-oci.tar'}:app")
        size = int(inspect(docker_client, tag)["Size"])
        yield Made(tag, size, folder, dockerfile, saved, folder / "app-oci", folder / "app-oci.tar")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        # with its intermediate images (this build's own: the token makes its steps unique)
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)


def inspect(client: docker.DockerClient, reference: str) -> dict[str, Any]:
    return dict(client.api.inspect_image(reference))  # type: ignore[no-untyped-call]


def history(client: docker.DockerClient, reference: str) -> list[dict[str, Any]]:
    return list(client.api.history(reference))  # type: ignore[no-untyped-call]


def no_engine() -> Engine:
    raise EngineUnavailable(f"no Docker engine answers at {NOWHERE}")


def engine_history_sizes(client: docker.DockerClient, reference: str) -> list[int]:
    return [int(entry["Size"]) for entry in reversed(history(client, reference))]


# ------------------------------------------------------------------------------------ sizes
@pytest.mark.parametrize("reference", ["busybox:latest", "debian:bookworm-slim"])
def test_a_saved_base_image_has_the_engines_size(docker_client: docker.DockerClient, reference: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="slimimage-archives-"))
    try:
        path = save(docker_client, reference, folder / "base.tar")
        (image,) = ArchiveImages(session="it", connect=no_engine).open(path, name="base")
        attrs = inspect(docker_client, reference)
        assert (image.id, image.size) == (attrs["Id"], attrs["Size"])
        assert [la.size for la in image.layers] == engine_history_sizes(docker_client, reference)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("form", ["saved", "oci_dir", "oci_tar"])
def test_the_made_image_has_the_engines_size_in_every_form(
    made: Made, docker_client: docker.DockerClient, form: str
) -> None:
    """Whiteouts, an opaque directory, hard links (counted once), symlinks (their target's length)."""
    (image,) = ArchiveImages(session="it", connect=no_engine).open(getattr(made, form), name=form)
    assert image.size == made.size
    assert [la.size for la in image.layers] == engine_history_sizes(docker_client, made.tag)
    assert [la.instruction for la in image.layers][-1] == 'CMD ["echo" "hello from the archive"]'


# ------------------------------------------------------------------- no engine, same verdicts
def run_inner(project: Path, *args: str, docker_host: str | None) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.pop("CI", None)
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-vv", "-rA", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def project_with(made: Made, test_file: str, pyproject: str = "") -> Path:
    project = made.folder / f"project-{uuid.uuid4().hex[:6]}"
    project.mkdir()
    (project / "pyproject.toml").write_text(pyproject or "[tool.pytest.ini_options]\n")
    shutil.copy(made.dockerfile, project / "Dockerfile")
    for path in (made.saved, made.oci_tar):
        os.link(path, project / path.name)
    shutil.copytree(made.oci_dir, project / made.oci_dir.name)
    (project / "test_inner.py").write_text(textwrap.dedent(test_file))
    return project


def test_archives_give_the_engines_verdicts_with_no_engine(
    made: Made, docker_client: docker.DockerClient, slimimage_image: Any
) -> None:
    spec = {**SPEC, "max_size": made.size}
    project = project_with(
        made,
        f"""\
        import pytest
        from pytest_slimimage import archive_fixture

        saved = archive_fixture("app.tar", dockerfile="Dockerfile")
        oci_dir = archive_fixture("app-oci", dockerfile="Dockerfile")
        oci_tar = archive_fixture("app-oci.tar", dockerfile="Dockerfile")
        SPEC = {spec!r}

        @pytest.mark.slimimage(**SPEC)
        def test_saved(saved):
            pass

        @pytest.mark.slimimage(**SPEC)
        def test_oci_dir(oci_dir):
            pass

        @pytest.mark.slimimage(**SPEC)
        def test_oci_tar(oci_tar):
            pass

        @pytest.mark.slimimage(runs="hello from the archive")
        def test_runs_without_an_engine(oci_tar):
            pass
        """,
        pyproject=textwrap.dedent(
            f"""\
            [tool.slimimage.images.declared]
            archive = "app-oci.tar"
            dockerfile = "Dockerfile"
            max_size = {made.size}
            lint = true
            """
        ),
    )
    proc = run_inner(project, "--slimimage-report", "report.json", docker_host=NOWHERE)
    out = proc.stdout + proc.stderr
    records = {r["name"]: r for r in json.loads((project / "report.json").read_text())["images"]}

    engine_image = slimimage_image(made.tag, dockerfile=made.dockerfile, name="engine")
    facts = engine_image.facts(filesystem=True)  # the pure checks over the engine's facts: no verdict reported here
    expected = {
        name: "passed"
        if call(REGISTRY.get(name), facts, REGISTRY.get(name).expectation(value, ParseContext())).passed
        else "failed"
        for name, value in spec.items()
    }
    assert expected["max_size"] == "passed" and expected["lint"] == "failed", expected  # both verdicts are compared
    for name in ("saved", "oci_dir", "oci_tar"):
        assert records[name]["size"] == made.size, out
        assert records[name]["checks"] == expected, (name, out)
        assert f"FAILED test_inner.py::test_{name} - MarkerCheckFailed" in out
    assert records["declared"]["checks"] == {"max_size": "passed", "lint": "failed"}, out
    assert re.search(
        r"oci_tar: a run needs a Docker engine to load app-oci.tar into \(every other check reads the archive"
        rf" without one\), and no Docker engine answers at {re.escape(NOWHERE)}",
        out,
    ), out


# -------------------------------------------------------------------------- runs load it
def images_under(client: docker.DockerClient, repository: str) -> list[str]:
    return [t for image in client.api.images(name=f"{repository}/*") for t in image.get("RepoTags") or ()]


def test_a_run_loads_the_archive_and_close_removes_what_was_loaded(
    made: Made, docker_client: docker.DockerClient
) -> None:
    archives = ArchiveImages(session=f"it{uuid.uuid4().hex[:8]}")
    try:
        (oci,) = archives.open(made.oci_dir, display="app-oci", name="loaded")
        (saved,) = archives.open(made.saved, display="app.tar", name="saved")
        assert oci.id != saved.id  # skopeo rewrote the config as an OCI one: not on the engine yet
        with pytest.raises(docker.errors.ImageNotFound):
            inspect(docker_client, oci.id)
        result = assert_runs(oci, "hello from the archive")
        assert result.exit_code == 0
        tags = inspect(docker_client, oci.id)["RepoTags"]
        assert len(tags) == 1 and tags[0].startswith(f"{ARCHIVE_REPOSITORY}/loaded:"), tags
        assert "loaded app-oci (linux/amd64) into the engine at" in oci.build_log
        assert_runs(oci, "hi", args=["echo", "hi"])  # loaded once
        assert_runs(saved, "hello from the archive")
        assert "already on the engine" in saved.build_log  # built here: run as it is
    finally:
        assert archives.close() == []
    with pytest.raises(docker.errors.ImageNotFound):
        inspect(docker_client, oci.id)
    assert inspect(docker_client, saved.id)["RepoTags"] == [made.tag]


def test_a_session_with_an_engine_runs_the_archive_and_leaves_nothing(
    made: Made, docker_client: docker.DockerClient
) -> None:
    project = project_with(
        made,
        """\
        import pytest
        from pytest_slimimage import archive_fixture

        app = archive_fixture("app-oci.tar")

        @pytest.mark.slimimage(runs="hello from the archive", runnable=True)
        def test_app(app):
            pass
        """,
    )
    before = images_under(docker_client, ARCHIVE_REPOSITORY)
    proc = run_inner(project, docker_host=os.environ.get("DOCKER_HOST"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert images_under(docker_client, ARCHIVE_REPOSITORY) == before


# ----------------------------------------------------------------------------- platforms
def put_blob(layout: Path, data: bytes) -> dict[str, Any]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / hexdigest).write_bytes(data)
    return {"digest": f"sha256:{hexdigest}", "size": len(data)}


def blob(layout: Path, digest: str) -> Any:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())


def two_platforms(source: Path, layout: Path) -> None:
    """``source``'s image as linux/amd64 and, with its config saying arm64, as linux/arm64, under
    one image index (as ``buildx --platform linux/amd64,linux/arm64 --output type=oci`` writes)."""
    shutil.copytree(source, layout)
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    manifest = blob(layout, top["digest"])
    config = blob(layout, manifest["config"]["digest"])
    arm_config = put_blob(layout, json.dumps({**config, "architecture": "arm64"}).encode())
    arm_manifest = {**manifest, "config": {**manifest["config"], **arm_config}}
    kind = "application/vnd.oci.image.manifest.v1+json"
    entries = [
        {"mediaType": kind, **put_blob(layout, json.dumps(m).encode()), "platform": {"os": "linux", "architecture": a}}
        for m, a in ((manifest, "amd64"), (arm_manifest, "arm64"))
    ]
    index_kind = "application/vnd.oci.image.index.v1+json"
    index = put_blob(layout, json.dumps({"schemaVersion": 2, "mediaType": index_kind, "manifests": entries}).encode())
    top_entry = {"mediaType": index_kind, **index, "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top_entry]}))


def test_an_index_of_two_platforms_is_checked_per_platform_with_no_engine(made: Made) -> None:
    project = project_with(
        made,
        f"""\
        import pytest
        from pytest_slimimage import archive_fixture

        multi = archive_fixture("multi")
        picked = archive_fixture("multi", platform="linux/arm64")
        absent = archive_fixture("multi", platform="linux/s390x")

        @pytest.mark.slimimage(runnable=True, max_size={made.size})
        def test_multi(multi):
            assert multi.name == "multi[" + multi.platform + "]"

        def test_picked(picked):
            assert (picked.name, picked.platform, picked.size) == ("picked", "linux/arm64", {made.size})

        def test_absent(absent):
            pass
        """,
        pyproject=textwrap.dedent(
            """\
            [tool.slimimage.images.declared]
            archive = "multi"
            runnable = true
            """
        ),
    )
    two_platforms(made.oci_dir, project / "multi")
    proc = run_inner(project, docker_host=NOWHERE)
    out = proc.stdout
    assert "PASSED test_inner.py::test_multi[linux/amd64]" in out
    assert "FAILED test_inner.py::test_multi[linux/arm64] - MarkerCheckFailed: multi[linux/arm64]: runnable" in out
    assert "PASSED test_inner.py::test_picked" in out
    assert (
        "ERROR test_inner.py::test_absent - SlimImageError: multi has no image for the platform 'linux/s390x':"
        " it holds linux/amd64, linux/arm64"
    ) in out
    assert "FAILED pyproject.toml::declared::runnable - DeclaredCheckFailed: declared[linux/arm64]: runnable" in out
