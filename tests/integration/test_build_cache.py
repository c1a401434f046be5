"""The engine as the build cache: the checked image is exactly what the builder builds outside
pytest (same id), an unchanged one is found by its key with no build call, a new base image under
an unchanged Dockerfile is a new key, each fixture keeps its 3 most recently used builds (only
its own ``pytest-slimimage/`` tags are ever untagged), and two sessions at once building the same
key do not disturb each other.

Each inner session is a subprocess (the plugin's state is per process). Fixture names are unique
to the test (``<what>_<random>``), so the tags counted are the test's own; they are dropped at
its end. Builds are counted by the summary line, which counts the builder's calls (proven in
test_cleanup.py): never by time.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from pytest_slimimage import BuiltImage
from pytest_slimimage.glue.fixtures import BuildFactory
from tests.integration.conftest import LABEL_SESSION, TAG, cache_tags, clean_env, drop_cache

SUMMARY = re.compile(r"^slimimage: (?P<built>\d+) image build\(s\), (?P<reused>\d+) reused, ")

INNER = """
import pathlib
from pytest_slimimage import image_fixture

{name} = image_fixture("ctx")


def test_image({name}):
    out = {name}.run().stdout if pathlib.Path("run-it").exists() else ""
    pathlib.Path("image.txt").write_text(f"{{{name}.tag}} {{{name}.id}} {{out}}")
"""


class Inner:
    """A project of its own with one image fixture ``name`` over the context ``ctx``."""

    def __init__(self, pytester: pytest.Pytester, name: str) -> None:
        self.pytester = pytester
        self.name = name
        self.path = pytester.path
        pytester.makeini("[pytest]\n")
        pytester.makepyfile(test_inner=INNER.format(name=name))
        (self.path / "ctx").mkdir()

    def dockerfile(self, text: str) -> None:
        (self.path / "ctx" / "Dockerfile").write_text(text)

    def run(self, *args: str) -> tuple[int, int, str, str, str]:
        """A session: (builds, reused, tag, id, what the image printed when asked to run)."""
        result = self.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)
        result.assert_outcomes(passed=1)
        built, reused = counts(result.outlines)
        tag, image_id, out = ((self.path / "image.txt").read_text() + " ").split(" ", 2)
        return built, reused, tag, image_id, out.strip()


def counts(lines: list[str]) -> tuple[int, int]:
    """(builds, reused) from a session's ``slimimage:`` summary line."""
    found = [match for line in lines if (match := SUMMARY.match(line))]
    assert len(found) == 1, lines
    return int(found[0]["built"]), int(found[0]["reused"])


@pytest.fixture
def unique_names(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Fixture names made by a test; their cache tags are dropped at its end."""
    names: list[str] = []
    yield names
    for name in names:
        drop_cache(docker_client, name)


def unique(names: list[str], what: str) -> str:
    name = f"{what}_{uuid.uuid4().hex[:8]}"
    names.append(name)
    return name


def version(n: int, nonce: str) -> str:
    return f'FROM busybox:latest\nENV VERSION={n} NONCE={nonce}\nCMD ["echo", "{n}"]\n'


# ----------------------------------------------------------------------------- the image itself
def debian_client() -> str:
    """A docker client that builds with either builder by ``DOCKER_BUILDKIT`` (20.10: both)."""
    client = "/usr/bin/docker"
    if not os.access(client, os.X_OK):
        pytest.skip(f"{client} (a docker client that runs BuildKit itself) is not installed")
    return client


def make_tree(context: Path) -> None:
    """A context with something of each kind the CLI's tar writes: a file in a folder, an executable,
    a symlink, a hard link, a name that is not UTF-8, and a file ``.dockerignore`` keeps out."""
    (context / "sub").mkdir()
    (context / "sub" / "data.txt").write_text("in a folder\n")
    (context / "run.sh").write_text("#!/bin/sh\necho run\n")
    (context / "run.sh").chmod(0o755)
    (context / "link").symlink_to("sub/data.txt")
    os.link(context / "sub" / "data.txt", context / "hard.txt")
    Path(os.fsdecode(os.fsencode(context) + b"/caf\xe9.txt")).write_bytes(b"latin-1 name\n")
    (context / "ignored.txt").write_text("never sent\n")
    (context / ".dockerignore").write_text("ignored.txt\n")


COPIES = {
    "": "",
    "file": "COPY file.txt /file.txt\n",
    "tree": "COPY . /ctx/\n",
}
"""What the Dockerfile copies from the context: nothing, one file, all of it."""


@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
@pytest.mark.parametrize("copy", list(COPIES))
def test_the_image_is_exactly_what_docker_build_builds(
    slimimage_build: BuildFactory,
    tmp_path: Path,
    builder: str,
    copy: str,
    unique_names: list[str],
    docker_client: docker.DockerClient,
    request: pytest.FixtureRequest,
) -> None:
    """Built in pytest first, then by ``docker build`` of the same context with the same builder:
    the same image id (no label, no step added). A COPY under the legacy builder is a cache hit
    for the CLI only when the context's tar headers are the CLI's (the mode with the file type,
    uid/gid 0): the builder's COPY cache hashes them."""
    client = debian_client()
    dockerfile = version(1, uuid.uuid4().hex) + "RUN echo built > /built.txt\n" + COPIES[copy]
    (tmp_path / "file.txt").write_text("some content\n")
    if copy == "tree":
        make_tree(tmp_path)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    image: BuiltImage = slimimage_build(tmp_path, builder=builder, name=unique(unique_names, "exact"))
    assert image.builder == builder
    assert LABEL_SESSION not in image.config.labels
    env = {**clean_env(), "DOCKER_BUILDKIT": "1" if builder == "buildkit" else "0"}
    outside = subprocess.run(
        [client, "build", "-q", str(tmp_path)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    if outside != image.id:  # the build outside made an image of its own: this test's to remove
        request.addfinalizer(lambda: docker_client.api.remove_image(outside, noprune=True))
    assert outside == image.id
    if copy == "tree":
        files = image.filesystem
        assert files.get("/ctx/caf\udce9.txt") is not None  # the name's bytes, b"caf\xe9.txt"
        assert files.get("/ctx/hard.txt") is not None and files.get("/ctx/sub/data.txt") is not None
        assert files.get("/ctx/ignored.txt") is None


# ----------------------------------------------------------------------------- the warm path
def test_an_unchanged_image_is_found_by_its_key_and_not_built(
    pytester: pytest.Pytester, docker_client: docker.DockerClient, unique_names: list[str]
) -> None:
    inner = Inner(pytester, unique(unique_names, "warm"))
    inner.dockerfile(version(1, uuid.uuid4().hex))
    built, reused, tag, image_id, _ = inner.run()
    assert (built, reused) == (1, 0)
    assert TAG.match(tag) and tag.startswith(f"pytest-slimimage/{inner.name}:"), tag
    assert inner.run()[:4] == (0, 1, tag, image_id)
    assert cache_tags(docker_client, inner.name) == {tag}

    # a context file the Dockerfile does not copy: a new key, a build call, the same image, whose
    # older tag the new one replaces (a fixture's builds are distinct images)
    (inner.path / "ctx" / "notes.txt").write_text("not copied\n")
    built, reused, new_tag, same_id, _ = inner.run()
    assert (built, reused, same_id) == (1, 0, image_id)
    assert new_tag != tag
    assert cache_tags(docker_client, inner.name) == {new_tag}
    tag = new_tag

    # the same content under another fixture's name: reused, and tagged for that fixture too
    renamed = unique(unique_names, "renamed")
    pytester.makepyfile(test_inner=INNER.format(name=renamed))
    built, reused, other_tag, other_id, _ = inner.run()
    assert (built, reused, other_id) == (0, 1, image_id)
    assert other_tag.startswith(f"pytest-slimimage/{renamed}:")
    assert other_tag.split(":")[1] == tag.split(":")[1]  # the same key


def test_a_new_base_image_is_a_new_key(
    pytester: pytest.Pytester, docker_client: docker.DockerClient, unique_names: list[str]
) -> None:
    """An unchanged Dockerfile FROM a base image that was rebuilt: built again, on the new base."""
    base = f"slimimage-test-base-{uuid.uuid4().hex[:8]}:latest"
    made: list[str] = []

    def make_base(text: str) -> None:
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            dockerfile = f"FROM busybox:latest\nRUN echo {text} > /base.txt\n".encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        context.seek(0)
        image, _ = docker_client.images.build(fileobj=context, custom_context=True, tag=base, rm=True, forcerm=True)
        made.append(str(image.id))

    inner = Inner(pytester, unique(unique_names, "onbase"))
    inner.dockerfile(f'FROM {base}\nCMD ["cat", "/base.txt"]\n')
    (inner.path / "run-it").write_text("")
    try:
        make_base(f"one-{uuid.uuid4().hex}")
        first = inner.run()
        assert first[:2] == (1, 0) and first[4].startswith("one-")
        assert inner.run()[:4] == (0, 1, *first[2:4])
        make_base(f"two-{uuid.uuid4().hex}")  # the same tag, another image
        third = inner.run()
        assert third[:2] == (1, 0) and third[4].startswith("two-")
        assert third[2] != first[2]  # another key
    finally:
        drop_cache(docker_client, inner.name)
        for image_id in reversed(made):  # this test's own base images
            with contextlib.suppress(docker.errors.APIError):
                docker_client.api.remove_image(image_id, force=True, noprune=True)


# ----------------------------------------------------------------------------- the bound
def test_each_fixture_keeps_its_three_most_recently_used_builds(
    pytester: pytest.Pytester, docker_client: docker.DockerClient, unique_names: list[str]
) -> None:
    inner = Inner(pytester, unique(unique_names, "bounded"))
    nonce = uuid.uuid4().hex
    tags: dict[int, str] = {}
    user_repository = f"slimimage-user-{uuid.uuid4().hex[:8]}"
    user_tag = f"{user_repository}:mine"
    try:
        for n in (1, 2, 3, 4):
            inner.dockerfile(version(n, nonce))
            built, reused, tags[n], *_ = inner.run()
            assert (built, reused) == (1, 0)
            assert cache_tags(docker_client, inner.name) == {tags[k] for k in range(max(1, n - 2), n + 1)}, n
            if n == 3:
                # a tag of the user's on build 3 (tagging counts as a use, so before build 4):
                # the plugin untags its own tag only, and the image stays
                docker_client.api.tag(tags[3], user_repository, "mine")

        inner.dockerfile(version(2, nonce))  # used again: now the most recently used
        assert inner.run()[:3] == (0, 1, tags[2])
        inner.dockerfile(version(5, nonce))
        built, reused, tags[5], *_ = inner.run()
        assert (built, reused) == (1, 0)
        # the least recently used (3) went, not the earliest made (2)
        assert cache_tags(docker_client, inner.name) == {tags[2], tags[4], tags[5]}
        assert docker_client.images.get(user_tag).tags == [user_tag]

        # --slimimage-keep-images: nothing is untagged; the next session bounds the cache again
        inner.dockerfile(version(6, nonce))
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--slimimage-keep-images")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "slimimage: 1 image build(s), 0 reused, 0 check(s) (0 failed); 1 image tag(s) cached,"
                " older builds kept (--slimimage-keep-images), 0 leftover container(s) removed"
            ]
        )
        tags[6] = (inner.path / "image.txt").read_text().split()[0]
        assert cache_tags(docker_client, inner.name) == {tags[2], tags[4], tags[5], tags[6]}
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.stdout.fnmatch_lines(
            [
                "slimimage: 0 image build(s), 1 reused, 0 check(s) (0 failed); 1 image tag(s) cached,"
                " 1 older pruned, 0 leftover container(s) removed"
            ]
        )
        assert cache_tags(docker_client, inner.name) == {tags[2], tags[5], tags[6]}  # 4: used before 2
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_image(user_tag, noprune=True)


# ----------------------------------------------------------------------------- sessions at once
def test_two_sessions_at_once_building_the_same_key(
    pytester: pytest.Pytester, docker_client: docker.DockerClient, unique_names: list[str]
) -> None:
    inner = Inner(pytester, unique(unique_names, "together"))
    inner.dockerfile(version(1, uuid.uuid4().hex))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "test_inner.py"]
    procs = [
        subprocess.Popen(command, cwd=inner.path, env=clean_env(), stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
        assert sum(counts(output.splitlines())) == 1, output
    (tag,) = cache_tags(docker_client, inner.name)
    # a later session finds it
    assert inner.run()[:3] == (0, 1, tag)
