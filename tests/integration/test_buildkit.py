"""BuildKit on the test engine, through ``auto`` (the default): what only BuildKit builds
(``RUN --mount=type=cache`` and ``type=secret``, ``COPY --chmod``, the automatic platform ARGs in
``FROM`` and ``RUN``), the same Dockerfiles under ``legacy`` failing with an error that names
BuildKit, syntax newer than the engine's built-in frontend failing with its cause, and the
article's five Dockerfiles giving the same verdicts under both builders.

On these machines ``auto`` resolves to Debian's docker client (20.10), which runs BuildKit
itself (``DOCKER_BUILDKIT=1``); the first client on PATH (28.x, no buildx) cannot.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from pytest_slimimage import BuiltImage, ImageBuildError, assert_final_base, assert_runs, image_fixture
from pytest_slimimage.checks.evaluate import evaluate
from pytest_slimimage.checks.spec import parse_spec
from pytest_slimimage.engine.builder import BuildJob, BuildProgress
from pytest_slimimage.engine.builderchoice import client_verdict
from pytest_slimimage.engine.builderset import BuilderSet
from pytest_slimimage.engine.buildkit import candidate_clients, probe_client
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.glue.fixtures import BuildFactory
from tests.integration.conftest import CONTEXTS, EXAMPLE

BUILDKIT_CONTEXT = CONTEXTS / "buildkit"
SHOWN = "tests/integration/contexts/buildkit"

bk_cache = image_fixture(BUILDKIT_CONTEXT, dockerfile="Dockerfile.cache")
bk_chmod = image_fixture(BUILDKIT_CONTEXT, dockerfile="Dockerfile.chmod")
bk_platform = image_fixture(BUILDKIT_CONTEXT, dockerfile="Dockerfile.platform")


@pytest.fixture(scope="module")
def engine_arch(docker_client: docker.DockerClient) -> str:
    return str(docker_client.version()["Arch"])


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A secret with content found nowhere else (the build checks its prefix)."""
    path = tmp_path / "token"
    path.write_text(f"slimimage-secret-{uuid.uuid4().hex}")
    return path


def image_contains(client: docker.DockerClient, image: str, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the image's ``docker save`` archive (its layers are
    uncompressed tars in it), read as a stream through docker-py."""
    tail = b""
    for chunk in client.api.get_image(image, chunk_size=1 << 20):
        if needle in tail + chunk:
            return True
        tail = (tail + chunk)[-len(needle) :]
    return False


# --------------------------------------------------------------------------------- auto is BuildKit
def test_auto_builds_with_buildkit_here(bk_cache: BuiltImage) -> None:
    """The first docker client on PATH cannot run BuildKit, Debian's can: ``auto`` finds it."""
    assert bk_cache.builder == "buildkit"
    assert "#1 [internal] load build definition" in bk_cache.build_log or bk_cache.build_log.startswith("not built")
    assert "legacy builder" not in bk_cache.build_log


def test_the_probe_asks_every_client_and_auto_takes_the_first_that_can() -> None:
    clients = candidate_clients()
    assert "/usr/bin/docker" in clients  # Debian's docker.io, always a candidate
    verdicts = [(path, client_verdict(probe_client(path))[0]) for path in clients]
    first = next(path for path, how in verdicts if how is not None)
    set_ = BuilderSet(Engine.connect())
    choice = set_.resolve(None)
    assert (choice.kind, choice.client, choice.note) == ("buildkit", first, "")
    assert set_.resolve("auto") is choice  # decided once
    assert [probe.path for probe in set_.probes] == clients[: clients.index(first) + 1]  # asked as far as needed


def test_auto_without_a_buildkit_client_falls_back_to_legacy_with_a_note(
    docker_client: docker.DockerClient,
) -> None:
    """Only the clients that cannot run BuildKit (here the 28.x client without buildx): ``auto``
    builds with the legacy builder, the log's first line says why; ``buildkit`` is an error."""
    unable = [path for path in candidate_clients() if client_verdict(probe_client(path))[0] is None]
    set_ = BuilderSet(Engine.connect(), clients=lambda: unable)
    choice = set_.resolve("auto")
    assert choice.name == "legacy"
    assert choice.note.startswith("slimimage: built with the legacy builder (builder=auto): no docker client here")
    for path in unable:
        assert f"{path}: " in choice.note
    with pytest.raises(Exception, match=r"builder='buildkit': no docker client here can build with BuildKit"):
        set_.resolve("buildkit")

    tag = f"pytest-slimimage/bk-fallback:{uuid.uuid4().hex[:12]}"
    job = BuildJob(
        context=CONTEXTS / "busybox",
        dockerfile="Dockerfile",
        display="tests/integration/contexts/busybox/Dockerfile",
        tag=tag,
        builder=choice.name,
        note=choice.note,
    )
    try:
        outcome = set_.build(job)
        assert outcome.builder == "legacy"
        assert outcome.log.splitlines()[0] == choice.note
        assert "Step 1/" in outcome.log
    finally:
        docker_client.images.remove(tag, noprune=True)


# ------------------------------------------------------------------------------- BuildKit features
def test_run_mount_cache(bk_cache: BuiltImage) -> None:
    assert_runs(bk_cache, "from the cache mount")
    assert "/cache/note" not in bk_cache.filesystem  # the cache mount is not in the image


def test_run_mount_secret_is_used_and_in_no_layer(
    slimimage_build: BuildFactory, secret_file: Path, docker_client: docker.DockerClient
) -> None:
    image = slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.secret", secrets={"token": secret_file})
    assert image.builder == "buildkit"
    secret = secret_file.read_bytes()
    assert_runs(image, str(len(secret)))  # the step read it (and checked its prefix)
    assert image_contains(docker_client, image.id, b"layer-marker-42")  # the search sees what RUN wrote
    assert not image_contains(docker_client, image.id, secret)
    assert secret.decode() not in image.build_log


def test_secrets_are_part_of_the_key_by_path_not_content(
    slimimage_build: BuildFactory, secret_file: Path, tmp_path: Path
) -> None:
    first = slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.secret", secrets={"token": secret_file})
    other = tmp_path / "other-token"
    other.write_text(secret_file.read_text())
    assert slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.secret", secrets={"token": other}) is not first
    secret_file.write_text(f"slimimage-secret-{uuid.uuid4().hex}")  # same path, new content: the same build
    assert slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.secret", secrets={"token": secret_file}) is first


def test_a_missing_secret_file_is_an_error_naming_it(slimimage_build: BuildFactory, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"secret 'token' for .*Dockerfile.secret: .*/nothere does not exist"):
        slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.secret", secrets={"token": tmp_path / "nothere"})


def test_copy_chmod(bk_chmod: BuiltImage) -> None:
    assert (BUILDKIT_CONTEXT / "hello.sh").stat().st_mode & 0o777 == 0o644
    entry = bk_chmod.filesystem.get("/hello.sh")
    assert entry is not None and entry.mode & 0o777 == 0o755
    assert_runs(bk_chmod, "hello from a 755 script")


def test_automatic_platform_args_in_from_and_run(bk_platform: BuiltImage, engine_arch: str) -> None:
    assert_runs(bk_platform, engine_arch)  # RUN echo $TARGETARCH
    assert_runs(bk_platform, f"base for {engine_arch}", args=["cat", "/base"])  # FROM base-${TARGETARCH}
    assert_runs(bk_platform, f"linux/{engine_arch} built on linux/{engine_arch}", args=["cat", "/platforms"])
    # the static model follows: the final stage is FROM base-<arch>, itself FROM busybox
    chain = bk_platform.dockerfile.chain()
    assert [stage.name for stage in chain] == [None, f"base-{engine_arch}"]
    assert bk_platform.dockerfile.final_base == "busybox:latest"
    assert_final_base(bk_platform, "busybox")


def test_an_explicit_platform_is_part_of_the_key(
    slimimage_build: BuildFactory, bk_platform: BuiltImage, engine_arch: str
) -> None:
    image = slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.platform", platform=f"linux/{engine_arch}")
    assert image is not bk_platform
    assert image.id == bk_platform.id  # the same build, asked for by name
    assert_runs(image, engine_arch)


def test_no_cache_builds_again(slimimage_build: BuildFactory, bk_chmod: BuiltImage) -> None:
    image = slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.chmod", no_cache=True, name="bk_chmod_fresh")
    assert image is not bk_chmod
    copy = next(line for line in image.build_log.splitlines() if line.endswith("] COPY --chmod=755 hello.sh /hello.sh"))
    assert f"{copy.split()[0]} CACHED" not in image.build_log  # only the base image's FROM may be
    assert_runs(image, "hello from a 755 script")


def test_a_failing_buildkit_step_says_which(slimimage_build: BuildFactory) -> None:
    with pytest.raises(ImageBuildError) as excinfo:
        slimimage_build(BUILDKIT_CONTEXT, dockerfile="Dockerfile.fails", name="bk_fails")
    error = excinfo.value
    lines = str(error).splitlines()
    assert lines[0].startswith(f"building {SHOWN}/Dockerfile.fails failed: ")
    assert "exit code: 3" in lines[0]
    assert lines[1].startswith("  failing step: #")
    assert lines[1].endswith('] RUN echo "bk about to fail" >&2 && exit 3')
    assert "[3/4]" in lines[1]
    assert lines[2] == "  build log (last lines):"
    assert any(line.endswith("bk about to fail") for line in lines[3:])
    assert error.step is not None and error.step.endswith("exit 3")
    assert "#1 [internal] load build definition" in error.log


# ------------------------------------------------------------------- the same Dockerfiles, legacy
@pytest.mark.parametrize(
    ("dockerfile", "secrets", "cause"),
    [
        ("Dockerfile.cache", False, "RUN --mount needs BuildKit, and the legacy builder built this image (line 3: "),
        ("Dockerfile.secret", False, "RUN --mount needs BuildKit, and the legacy builder built this image (line 4: "),
        ("Dockerfile.secret", True, "with secrets needs BuildKit; the legacy builder has no such input"),
        ("Dockerfile.chmod", False, "COPY --chmod needs BuildKit, and the legacy builder built this image (line 3: "),
        ("Dockerfile.platform", False, "BuildKit's automatic platform ARGs (TARGETARCH, TARGETOS, ...) in FROM need"),
        (
            "Dockerfile.heredoc",
            False,
            "heredocs need BuildKit, and the legacy builder built this image (line 3: RUN <<EOT)",
        ),
        ("Dockerfile.link", False, "COPY --link needs BuildKit, and the legacy builder built this image (line 3: "),
    ],
)
def test_buildkit_syntax_under_legacy_names_buildkit(
    slimimage_build: BuildFactory, secret_file: Path, dockerfile: str, secrets: bool, cause: str
) -> None:
    with pytest.raises(ImageBuildError) as excinfo:
        slimimage_build(
            BUILDKIT_CONTEXT,
            dockerfile=dockerfile,
            builder="legacy",
            secrets={"token": secret_file} if secrets else None,
            name="bk_under_legacy",
        )
    text = str(excinfo.value)
    assert text.startswith(f"building {SHOWN}/{dockerfile} ")
    assert cause in text.splitlines()[0]
    if not secrets:
        assert text.splitlines()[-1] == ("  hint: build it with BuildKit: builder='auto' (the default) or 'buildkit'")


# --------------------------------------------------------------- newer than the built-in frontend
@pytest.mark.parametrize(
    ("dockerfile", "headline", "said"),
    [
        (
            "Dockerfile.heredoc",
            "the engine's built-in Dockerfile frontend is too old for heredocs (line 3: RUN <<EOT); a"
            " '# syntax=docker/dockerfile:1' line would fetch a newer frontend from a registry, which fails"
            " without one",
            "dockerfile parse error line 4: unknown instruction: ECHO",
        ),
        (
            "Dockerfile.link",
            "the engine's built-in Dockerfile frontend is too old for COPY --link (line 3: COPY --link hello.sh"
            " /hello.sh); a '# syntax=docker/dockerfile:1' line would fetch a newer frontend from a registry,"
            " which fails without one",
            "Unknown flag: link",
        ),
        (
            "Dockerfile.syntax",
            "the Dockerfile's '# syntax=docker/dockerfile:1' line asks BuildKit for a frontend image, and it could"
            " not be pulled from a registry",
            "docker/dockerfile",
        ),
    ],
)
def test_syntax_newer_than_the_engines_frontend_names_the_cause(
    slimimage_build: BuildFactory, dockerfile: str, headline: str, said: str
) -> None:
    with pytest.raises(ImageBuildError) as excinfo:
        slimimage_build(BUILDKIT_CONTEXT, dockerfile=dockerfile, name="bk_newer_syntax")
    lines = str(excinfo.value).splitlines()
    assert lines[0] == f"building {SHOWN}/{dockerfile} failed: {headline}"
    if lines[1].startswith("  failing step: "):  # the frontend's pull is a step of its own
        assert lines.pop(1) == "  failing step: #3 resolve image config for docker.io/docker/dockerfile:1"
    assert lines[1].startswith("  the engine said: ") and said in lines[1]
    assert lines[2].startswith("  hint: ")
    assert len(lines) == 3  # the cause, not a raw log (the log stays attached)
    assert excinfo.value.log


# ------------------------------------------------------------------------- progress and time limit
def test_buildkit_reports_progress_and_stops_at_its_time_limit(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f'FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /id\nRUN sleep 60\nCMD ["cat", "/id"]\n'
    )
    events: list[BuildProgress] = []
    set_ = BuilderSet(Engine.connect())
    choice = set_.resolve("buildkit")
    job = BuildJob(
        context=tmp_path,
        dockerfile="Dockerfile",
        display="slow/Dockerfile",
        tag=f"pytest-slimimage/bk-slow:{uuid.uuid4().hex[:12]}",
        builder=choice.name,
        timeout=3,
        progress=events.append,
    )
    with pytest.raises(ImageBuildError) as excinfo:
        set_.build(job)
    lines = str(excinfo.value).splitlines()
    assert lines[0] == (
        "building slow/Dockerfile failed: the build exceeded 3 s (the docker client was stopped, which cancels it on"
        " the engine)"
    )
    assert lines[1].startswith("  stopped at step: #") and lines[1].endswith("[3/3] RUN sleep 60")
    steps = [(e.step, e.steps, e.instruction) for e in events if not e.done]
    assert steps[0][:2] == (1, 3) and steps[0][2].startswith("FROM ")
    assert (3, 3, "RUN sleep 60") in steps
    assert events[-1].done and not any(e.done for e in events[:-1])
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(job.tag)


def test_legacy_reports_progress(docker_client: docker.DockerClient) -> None:
    events: list[BuildProgress] = []
    set_ = BuilderSet(Engine.connect())
    tag = f"pytest-slimimage/bk-legacy-progress:{uuid.uuid4().hex[:12]}"
    job = BuildJob(
        context=CONTEXTS / "busybox",
        dockerfile="Dockerfile.chain",
        display="chain",
        tag=tag,
        builder="legacy",
        progress=events.append,
    )
    try:
        outcome = set_.build(job)
    finally:
        docker_client.images.remove(tag, noprune=True)
    assert outcome.builder == "legacy"
    steps = [(e.step, e.steps, e.instruction) for e in events if not e.done]
    assert steps[0] == (1, len(steps), "FROM busybox:latest AS base")
    assert [step for step, _, _ in steps] == list(range(1, len(steps) + 1))
    assert events[-1] == BuildProgress("chain", done=True)


# ------------------------------------------------------------- the article's five, both builders
ARTICLE = {
    "naive": ("Dockerfile.naive", "100MB", "gcc"),
    "multistage": ("Dockerfile.multistage", "250MB", "debian"),
    "scratch": ("Dockerfile.scratch", "100kB", "scratch"),
    "static": ("Dockerfile.static", "1MB", "scratch"),
    "busybox": ("Dockerfile.busybox", "5MB", "busybox"),
}
FAILS = {
    "naive": {"max_size", "no_compilers", "lint"},
    "multistage": {"exec_form", "lint", "runnable", "runs"},
    "scratch": {"lint", "runnable", "runs"},
    "static": set(),
    "busybox": {"lint"},
}
"""What the article says about each image (lint: SI001 relative COPY --from sources, SI002/SI003
the single-quoted CMD, SI004 an untagged final base; runnable: /bin/sh -c looks for "[./hello]",
and the dynamic binary has no loader in scratch)."""


@pytest.fixture(scope="module")
def verdicts(slimimage_build: BuildFactory) -> Iterator[dict[tuple[str, str], dict[str, bool]]]:
    found: dict[tuple[str, str], dict[str, bool]] = {}
    for image_name, (dockerfile, budget, base) in ARTICLE.items():
        spec = parse_spec(
            {
                "max_size": budget,
                "final_base": base,
                "exec_form": True,
                "no_compilers": True,
                "runnable": True,
                "lint": True,
                "runs": "hello world",
            },
            where=image_name,
        )
        for builder in ("legacy", "buildkit"):
            image = slimimage_build(
                EXAMPLE, dockerfile=dockerfile, builder=builder, name=f"bk_article_{image_name}_{builder}"
            )
            assert image.builder == builder
            found[image_name, builder] = {result.check: result.passed for result in evaluate(image, spec)}
    yield found


@pytest.mark.parametrize("image_name", list(ARTICLE))
def test_the_articles_dockerfiles_give_the_same_verdicts_under_both_builders(
    verdicts: dict[tuple[str, str], dict[str, bool]], image_name: str
) -> None:
    legacy, buildkit = verdicts[image_name, "legacy"], verdicts[image_name, "buildkit"]
    assert buildkit == legacy
    assert {check for check, passed in legacy.items() if not passed} == FAILS[image_name]
