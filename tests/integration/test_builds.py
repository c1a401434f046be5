"""Builds through ``slimimage_build``: cached per session by content, failures that say where,
and the facts a :class:`BuiltImage` carries."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import docker
import pytest

from pytest_slimimage import BuiltImage, ImageBuildError, RunResult, SlimImageError
from pytest_slimimage.glue.fixtures import BuildFactory
from pytest_slimimage.glue.state import session_of
from tests.integration.conftest import BUSYBOX_CONTEXT, LABEL_SESSION, TAG

MESSAGE_DOCKERFILE = """\
FROM busybox:latest
COPY message.txt /message.txt
CMD ["cat", "/message.txt"]
"""


@pytest.fixture
def message_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A context of its own (unique content, so no other test or worker shares its build). Its
    folder's name, the image's default name, is the same in every run (``message0``, ...), so the
    build cache keeps a bounded number of ``pytest-slimimage/message<n>`` tags."""
    context = tmp_path_factory.mktemp("message")
    (context / "Dockerfile").write_text(MESSAGE_DOCKERFILE)
    (context / "message.txt").write_text(f"first {uuid.uuid4().hex}\n")
    (context / ".dockerignore").write_text("notes.txt\n")
    (context / "notes.txt").write_text("not sent to the engine\n")
    return context


# ------------------------------------------------------------------------------------------ caching
def test_same_inputs_build_once(
    slimimage_build: BuildFactory,
    message_context: Path,
    docker_client: docker.DockerClient,
    pytestconfig: pytest.Config,
) -> None:
    builder = session_of(pytestconfig).builder()
    builds, reused = builder.builds, builder.reused
    first = slimimage_build(message_context, name="message")
    again = slimimage_build(message_context, name="message")
    assert again is first
    # new content: one build call, none for the second request (the session's own cache)
    assert (builder.builds, builder.reused) == (builds + 1, reused)
    # tagged as the fixture's build cache, and nothing else made of it
    assert TAG.match(first.tag), first.tag
    assert docker_client.images.get(first.tag).id == first.id
    assert first.tags == (first.tag,)


def test_the_same_dockerfile_given_another_way_is_the_same_build(
    slimimage_build: BuildFactory, message_context: Path
) -> None:
    first = slimimage_build(message_context)
    assert slimimage_build(message_context, dockerfile=message_context / "Dockerfile") is first
    assert slimimage_build(str(message_context) + "/") is first


def test_changing_a_context_file_builds_again(slimimage_build: BuildFactory, message_context: Path) -> None:
    first = slimimage_build(message_context)
    assert first.run().stdout.startswith("first ")
    (message_context / "message.txt").write_text("second\n")
    second = slimimage_build(message_context)
    assert second is not first
    assert second.id != first.id
    assert second.tags != first.tags
    assert second.run().stdout == "second\n"


def test_changing_an_ignored_file_does_not(slimimage_build: BuildFactory, message_context: Path) -> None:
    first = slimimage_build(message_context)
    (message_context / "notes.txt").write_text("edited, but .dockerignore keeps it out of the build\n")
    assert slimimage_build(message_context) is first


def test_target_and_build_args_are_part_of_the_key(slimimage_build: BuildFactory) -> None:
    default = slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.stages")
    app = slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.stages", target="app")
    assert app is not default
    assert slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.stages", target="app") is app
    busybox_base = slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.argbase")
    debian_base = slimimage_build(
        BUSYBOX_CONTEXT, dockerfile="Dockerfile.argbase", build_args={"BASE": "debian:bookworm-slim"}
    )
    assert debian_base is not busybox_base
    assert debian_base.dockerfile.final_base == "debian:bookworm-slim"


def test_names_that_are_not_valid_in_a_tag_are_made_valid(
    slimimage_build: BuildFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A fixture named ``_hello`` or ``hello_`` must not make an invalid tag (a failed build)."""
    context = tmp_path_factory.mktemp("names")
    for name in ("_hello", "hello_", "Hello___World", "x.-y"):
        (context / "Dockerfile").write_text(f'FROM busybox:latest\nCMD ["echo", "{name}"]\n')
        image = slimimage_build(context, name=name)
        assert TAG.match(image.tag), image.tags
        assert image.run().stdout == f"{name}\n"


# ------------------------------------------------------------------------------------------ failures
def test_a_failing_run_step_raises_with_the_step_and_log_tail(slimimage_build: BuildFactory) -> None:
    """The legacy builder's failure (BuildKit's: tests/integration/test_buildkit.py)."""
    with pytest.raises(ImageBuildError) as excinfo:
        slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.fails", builder="legacy")
    error = excinfo.value
    lines = str(error).splitlines()
    assert lines[0] == (
        "building tests/integration/contexts/busybox/Dockerfile.fails failed:"
        " The command '/bin/sh -c echo \"about to fail\" >&2 && exit 3' returned a non-zero code: 3"
    )
    assert re.fullmatch(r'  failing step: Step 2/\d+ : RUN echo "about to fail" >&2 && exit 3', lines[1])
    assert lines[2] == "  build log (last lines):"
    assert "    | about to fail" in lines  # the step's stderr, without the builder's colour codes
    assert "\x1b" not in str(error)
    assert error.step is not None and error.step.endswith('RUN echo "about to fail" >&2 && exit 3')
    assert "Step 1/" in error.log


def test_a_failed_build_is_not_retried(slimimage_build: BuildFactory) -> None:
    with pytest.raises(ImageBuildError) as first:
        slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.fails")
    with pytest.raises(ImageBuildError) as again:
        slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.fails")
    assert again.value is first.value


def test_missing_dockerfile(slimimage_build: BuildFactory) -> None:
    missing = BUSYBOX_CONTEXT / "Dockerfile.missing"
    with pytest.raises(SlimImageError) as excinfo:
        slimimage_build(BUSYBOX_CONTEXT, dockerfile="Dockerfile.missing")
    assert str(excinfo.value) == f"Dockerfile not found: {missing} (context {BUSYBOX_CONTEXT})"
    assert not isinstance(excinfo.value, ImageBuildError)


def test_missing_context(slimimage_build: BuildFactory, tmp_path: Path) -> None:
    with pytest.raises(SlimImageError, match=re.escape(f"build context {tmp_path / 'nowhere'} does not exist")):
        slimimage_build(tmp_path / "nowhere")


def test_relative_context_resolves_against_the_rootdir(slimimage_build: BuildFactory, busybox: BuiltImage) -> None:
    assert slimimage_build("tests/integration/contexts/busybox") is busybox


# ------------------------------------------------------------------------------------ what is known
def test_built_image_fields(chain: BuiltImage, docker_client: docker.DockerClient) -> None:
    attrs = docker_client.images.get(chain.id).attrs
    assert chain.id == attrs["Id"]
    assert chain.id.startswith("sha256:")
    assert chain.tags == tuple(attrs["RepoTags"])
    match = TAG.match(chain.tag)
    assert match is not None
    assert match.group("name") == "chain"
    assert chain.tag in chain.tags
    assert chain.size == attrs["Size"]

    config = chain.config
    assert config.cmd == ("/srv/app/greeting.txt",)
    assert config.entrypoint == ("cat",)
    assert config.argv == ("cat", "/srv/app/greeting.txt")
    assert config.user == "1000:1000"
    assert config.workdir == "/srv/app"
    assert config.env["GREETING"] == "hello"
    assert "PATH" in config.env
    assert LABEL_SESSION not in config.labels  # exactly what the Dockerfile builds: no label added


def test_layers_carry_size_instruction_and_origin(chain: BuiltImage, docker_client: docker.DockerClient) -> None:
    history = docker_client.images.get(chain.id).history()
    assert len(chain.layers) == len(history)
    assert sum(layer.size for layer in chain.layers) == chain.size
    base_layers = len(docker_client.images.get("busybox:latest").history())
    assert [layer.from_base for layer in chain.layers] == [True] * base_layers + [False] * (
        len(chain.layers) - base_layers
    )
    own = [(layer.instruction, layer.size, layer.empty) for layer in chain.layers if not layer.from_base]
    assert own[:6] == [
        ("WORKDIR /srv/app", 0, True),
        ("ENV GREETING=hello", 0, True),
        ('RUN echo "$GREETING from base" > /srv/app/greeting.txt', len("hello from base\n"), False),
        ("USER 1000:1000", 0, True),
        ('ENTRYPOINT ["cat"]', 0, True),
        ('CMD ["/srv/app/greeting.txt"]', 0, True),
    ]
    assert chain.layers[0].instruction.startswith("COPY file:")  # busybox's own layer
    assert chain.layers[0].size > 1_000_000


def test_dockerfile_stages(chain: BuiltImage) -> None:
    dockerfile = chain.dockerfile
    assert [(stage.index, stage.name, stage.base) for stage in dockerfile.stages] == [
        (0, "base", "busybox:latest"),
        (1, None, "base"),
    ]
    assert dockerfile.final_stage is dockerfile.stages[1]
    assert dockerfile.final_base == "busybox:latest"
    assert dockerfile.path == "tests/integration/contexts/busybox/Dockerfile.chain"


def test_run_returns_a_run_result(chain: BuiltImage) -> None:
    result = chain.run()
    assert result == RunResult(
        exit_code=0,
        stdout="hello from base\n",
        stderr="",
        timed_out=False,
        argv=("cat", "/srv/app/greeting.txt"),
        duration=result.duration,
        memory="256m",
    )
    assert result.duration > 0
    assert chain.run(["/etc/hostname", "/nowhere"]).exit_code == 1
    whoami = chain.run(["/proc/self/status"])
    assert re.search(r"^Uid:\t1000\t", whoami.stdout, re.M)  # USER 1000 is honoured
