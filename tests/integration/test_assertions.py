"""Each ``assert_*`` helper passing and failing on real images, with the failure text pinned.

``assert_runs`` has its own module (test_runs.py); the example project's images have theirs.
"""

from __future__ import annotations

import docker
import pytest

from pytest_slimimage import (
    BuiltImage,
    ImageCheckFailed,
    assert_exec_form,
    assert_final_base,
    assert_max_size,
    assert_no_compilers,
    format_size,
    image_fixture,
)
from pytest_slimimage.checks.spec import SpecError
from tests.integration.conftest import BUSYBOX_CONTEXT

shell_cmd = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.shellcmd")
single_quoted = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.singlequote")
shell_entrypoint = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.shellentrypoint")
stages = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.stages")
stages_app = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.stages", target="app")
arg_base = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.argbase")
arg_base_debian = image_fixture(
    BUSYBOX_CONTEXT, dockerfile="Dockerfile.argbase", build_args={"BASE": "debian:bookworm-slim"}
)

BUSYBOX_DOCKERFILES = "tests/integration/contexts/busybox"
"""How messages name the Dockerfiles: relative to the rootdir."""


def failure(excinfo: pytest.ExceptionInfo[ImageCheckFailed]) -> list[str]:
    """The failure text's lines (what pytest prints after ``E``)."""
    return str(excinfo.value).splitlines()


# ------------------------------------------------------------------------------------------ max_size
def test_size_is_the_engines_size_in_bytes(
    chain: BuiltImage, no_cmd: BuiltImage, docker_client: docker.DockerClient
) -> None:
    for image in (chain, no_cmd):
        assert image.size == docker_client.images.get(image.id).attrs["Size"]
        assert image.size == docker_client.images.get(image.tags[0]).attrs["Size"]


def test_max_size_in_bytes_passes_at_exactly_the_size(chain: BuiltImage) -> None:
    result = assert_max_size(chain, chain.size)
    assert result.passed
    assert result.details == {"actual": chain.size, "limit": chain.size}


def test_max_size_one_byte_under_fails_by_one_byte(chain: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_max_size(chain, chain.size - 1)
    lines = failure(excinfo)
    assert lines[0] == f"chain: max_size: 1.99MB ({chain.size} bytes) exceeds the budget of 1.99MB by +1B"
    assert lines[1] == "  largest layers:"
    assert lines[-1].startswith("  hint: shrink the largest layers above: build in a separate stage")


def test_max_size_with_units(chain: BuiltImage) -> None:
    assert 1_000_000 < chain.size < 2 * 1024 * 1024
    assert assert_max_size(chain, "2 MiB").passed
    assert assert_max_size(chain, "2MB").passed
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_max_size(chain, "1MB")
    lines = failure(excinfo)
    over = format_size(chain.size - 1_000_000)
    assert lines[0] == f"chain: max_size: 1.99MB ({chain.size} bytes) exceeds the budget of 1MB by +{over}"
    # the evidence: the largest layers with where they come from, the base's share, then the hint
    assert lines[1] == "  largest layers:"
    assert lines[2].strip().startswith("1.98MB  COPY file:")
    assert lines[2].endswith("in /bin/busybox  (base busybox:latest)")
    assert any(
        line.strip() == '16B  RUN echo "$GREETING from base" > /srv/app/greeting.txt  (Dockerfile line 5)'
        for line in lines
    )
    assert "  the final base busybox:latest alone is 1.99MB" in lines
    assert lines[-1] == (
        "  hint: the base image busybox:latest is already over the budget: copy the built artifact into a smaller"
        " final stage (FROM scratch with a static binary, busybox, or a distroless image)"
    )


def test_max_size_rejects_a_size_it_cannot_read(chain: BuiltImage) -> None:
    with pytest.raises(SpecError, match=r"^assert_max_size: not a size: '2 parsecs'"):
        assert_max_size(chain, "2 parsecs")


# ---------------------------------------------------------------------------------------- final_base
def test_final_base_follows_the_from_stage_chain(chain: BuiltImage) -> None:
    assert chain.dockerfile.final_stage.base == "base"
    assert chain.dockerfile.final_base == "busybox:latest"
    result = assert_final_base(chain, "busybox")
    assert result.headline == "chain: final_base: final stage is FROM busybox:latest (expected busybox)"


@pytest.mark.parametrize(
    "expected",
    ["busybox", "busybox:latest", "docker.io/library/busybox", ["scratch", "busybox"], ("debian", "busybox:latest")],
)
def test_final_base_matches_names_tags_and_lists(chain: BuiltImage, expected: str | list[str]) -> None:
    assert assert_final_base(chain, expected).passed


def test_final_base_fails_on_another_tag(chain: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_final_base(chain, "busybox:1.36")
    assert failure(excinfo)[0] == "chain: final_base: the final stage is FROM busybox:latest, expected busybox:1.36"


def test_final_base_failure_shows_the_chain(chain: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_final_base(chain, ["scratch", "gcr.io/distroless/static"])
    assert failure(excinfo) == [
        "chain: final_base: the final stage is FROM busybox:latest, expected scratch or gcr.io/distroless/static",
        f"  final stage: stage 1, FROM base ({BUSYBOX_DOCKERFILES}/Dockerfile.chain, line 7)",
        "  FROM chain: stage 1 <- stage 0 (base) <- busybox:latest",
        "  hint: end the Dockerfile with a stage FROM scratch that copies in only what the program needs"
        " (COPY --from=<build stage> /absolute/path ...)",
    ]


def test_final_base_of_the_default_build_is_the_last_stage(stages: BuiltImage) -> None:
    assert stages.dockerfile.final_stage.name == "final"
    assert assert_final_base(stages, "scratch").passed
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_final_base(stages, "busybox")
    assert failure(excinfo)[:2] == [
        "stages: final_base: the final stage is FROM scratch, expected busybox",
        f"  final stage: stage 2 (final), FROM scratch AS final ({BUSYBOX_DOCKERFILES}/Dockerfile.stages, line 8)",
    ]


def test_final_base_of_a_target_build_is_the_targets(stages_app: BuiltImage) -> None:
    """``target="app"`` builds up to the app stage, which is FROM base, which is FROM busybox."""
    assert stages_app.dockerfile.target == "app"
    assert stages_app.dockerfile.final_stage.name == "app"
    assert stages_app.config.cmd == ("cat", "/base.txt")  # the engine really built the target
    assert stages_app.run().stdout == "built in base\n"
    assert assert_final_base(stages_app, "busybox").passed
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_final_base(stages_app, "scratch")
    assert failure(excinfo)[:4] == [
        "stages_app: final_base: the final stage is FROM busybox:latest, expected scratch",
        f"  final stage: stage 1 (app), FROM base AS app ({BUSYBOX_DOCKERFILES}/Dockerfile.stages, line 5)",
        "  FROM chain: stage 1 (app) <- stage 0 (base) <- busybox:latest",
        "  build target: app",
    ]


def test_arg_before_from_defaults_the_final_base(arg_base: BuiltImage) -> None:
    assert arg_base.dockerfile.final_base == "busybox:latest"
    assert assert_final_base(arg_base, "busybox").passed


def test_build_arg_changes_the_final_base(arg_base_debian: BuiltImage, docker_client: docker.DockerClient) -> None:
    assert arg_base_debian.dockerfile.final_base == "debian:bookworm-slim"
    assert arg_base_debian.size == docker_client.images.get("debian:bookworm-slim").attrs["Size"]
    assert assert_final_base(arg_base_debian, "debian").passed
    assert assert_final_base(arg_base_debian, "debian:bookworm-slim").passed
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_final_base(arg_base_debian, "busybox")
    assert failure(excinfo)[:2] == [
        "arg_base_debian: final_base: the final stage is FROM debian:bookworm-slim, expected busybox",
        f"  final stage: stage 0, FROM ${{BASE}} ({BUSYBOX_DOCKERFILES}/Dockerfile.argbase, line 3)",
    ]


# ----------------------------------------------------------------------------------------- exec_form
def test_exec_form_passes(busybox: BuiltImage, with_entrypoint: BuiltImage) -> None:
    assert (
        assert_exec_form(busybox).headline
        == 'busybox: exec_form: runs ["echo", "hello from busybox"] directly (exec form)'
    )
    assert assert_exec_form(with_entrypoint).passed


def test_exec_form_inherited_cmd_passes(arg_base: BuiltImage) -> None:
    assert assert_exec_form(arg_base).passed


def test_shell_form_cmd_fails_with_the_line_and_its_rewrite(shell_cmd: BuiltImage) -> None:
    assert shell_cmd.config.cmd == ("/bin/sh", "-c", "echo hello from a shell")
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_exec_form(shell_cmd)
    lines = failure(excinfo)
    assert lines[0] == "shell_cmd: exec_form: CMD is shell form, so Docker runs it through /bin/sh -c"
    assert lines[1] == f"  {BUSYBOX_DOCKERFILES}/Dockerfile.shellcmd, line 3: CMD echo hello from a shell"
    assert lines[-1] == (
        '  hint: use exec form (a JSON array of double-quoted strings): CMD ["echo", "hello", "from", "a", "shell"]'
    )


def test_single_quoted_cmd_is_shell_form(single_quoted: BuiltImage) -> None:
    """``CMD ['echo', 'hi']`` is not JSON: Docker stores ``/bin/sh -c "['echo', 'hi']"``."""
    assert single_quoted.config.cmd == ("/bin/sh", "-c", "['echo', 'hi']")
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_exec_form(single_quoted)
    lines = failure(excinfo)
    assert lines[0] == "single_quoted: exec_form: CMD is shell form, so Docker runs it through /bin/sh -c"
    assert lines[1] == f"  {BUSYBOX_DOCKERFILES}/Dockerfile.singlequote, line 3: CMD ['echo', 'hi']"
    assert lines[2].startswith("    single quotes are not JSON")
    assert lines[-1] == '  hint: use exec form (a JSON array of double-quoted strings): CMD ["echo", "hi"]'


def test_shell_form_entrypoint_fails(shell_entrypoint: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_exec_form(shell_entrypoint)
    lines = failure(excinfo)
    assert lines[0] == "shell_entrypoint: exec_form: ENTRYPOINT is shell form, so Docker runs it through /bin/sh -c"
    assert lines[1] == (
        f"  {BUSYBOX_DOCKERFILES}/Dockerfile.shellentrypoint, line 2: ENTRYPOINT echo hello from an entrypoint"
    )
    assert lines[-1].endswith('ENTRYPOINT ["echo", "hello", "from", "an", "entrypoint"]')


def test_no_cmd_nor_entrypoint_fails(no_cmd: BuiltImage) -> None:
    assert no_cmd.config.cmd is None
    assert no_cmd.config.entrypoint is None
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_exec_form(no_cmd)
    assert failure(excinfo) == [
        "no_cmd: exec_form: the image has neither CMD nor ENTRYPOINT",
        "  `docker run` on it fails with 'no command specified'",
        '  hint: add an exec-form command to the final stage, e.g. CMD ["/app"]',
    ]


# -------------------------------------------------------------------------------------- no_compilers
def test_busybox_has_no_compilers(busybox: BuiltImage) -> None:
    result = assert_no_compilers(busybox)
    assert result.headline.startswith("busybox: no_compilers: no compiler or toolchain among ")
    assert "/bin/busybox" in busybox.filesystem


def test_a_scratch_image_with_a_static_binary_has_no_compilers(no_cmd: BuiltImage) -> None:
    """The final stage of a multi-stage ``FROM gcc AS build`` build: the builder's toolchain stays behind."""
    assert assert_no_compilers(no_cmd).passed
    assert [entry.path for entry in no_cmd.filesystem if entry.kind == "file"] == ["/hello"]


def test_files_named_like_compilers_are_found(fake_gcc: BuiltImage) -> None:
    """By name, as build scripts find them: an executable ``gcc`` (here a static hello) and a ``cc``
    on PATH (here a symlink to busybox, which a probing ``./configure`` would run). A data file named
    gcc and a dangling ``ld`` symlink run nothing, so they are not toolchains."""
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_compilers(fake_gcc)
    assert failure(excinfo) == [
        "fake_gcc: no_compilers: found 2 toolchain file(s) and 0 package(s) (cc, gcc)",
        "  /usr/bin/gcc",
        "  /usr/local/bin/cc",
        "  hint: compile in a builder stage and COPY --from=<builder> only the built artifact into a final stage"
        " without the toolchain (or allow=[...] the tools you ship on purpose)",
    ]
    assert "/usr/share/doc/gcc" in fake_gcc.filesystem
    assert "/usr/local/bin/ld" in fake_gcc.filesystem


def test_allow_suppresses_the_listed_tools(fake_gcc: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_compilers(fake_gcc, allow=["gcc"])
    assert failure(excinfo)[:2] == [
        "fake_gcc: no_compilers: found 1 toolchain file(s) and 0 package(s) (cc)",
        "  /usr/local/bin/cc",
    ]
    assert assert_no_compilers(fake_gcc, allow=["gcc", "cc"]).passed
    assert assert_no_compilers(fake_gcc, allow=["/usr/bin/gcc", "/usr/local/bin/*"]).passed


def test_the_filesystem_is_indexed_once(fake_gcc: BuiltImage) -> None:
    assert fake_gcc.filesystem is fake_gcc.filesystem
    assert fake_gcc.facts(filesystem=True).filesystem is fake_gcc.filesystem
