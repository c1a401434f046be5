"""Which builder builds: the pure choice from what docker clients said about themselves (fake
probes here), the build inputs' validation, and the session's builder set asking each client
once. No engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from pytest_slimimage.buildinputs import parse_builder, parse_platform, parse_secrets
from pytest_slimimage.engine.builderchoice import (
    LEGACY,
    BuilderChoice,
    BuilderUnavailable,
    ClientProbe,
    choose,
    client_verdict,
    parse_client_version,
)
from pytest_slimimage.engine.builderset import BuilderSet
from pytest_slimimage.engine.builds import BuildRequest
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.glue.fixtures import image_fixture

NEW_WITHOUT_BUILDX = ClientProbe("/usr/local/bin/docker", "28.2.2", said="docker: unknown command: docker buildx")
DEBIAN = ClientProbe("/usr/bin/docker", "20.10.24+dfsg1", said="docker: 'buildx' is not a docker command.")
WITH_BUILDX = ClientProbe("/opt/docker", None, buildx="github.com/docker/buildx v0.12.1 30feaa1")
ANCIENT = ClientProbe("/old/docker", "18.06.1-ce")
BROKEN = ClientProbe("/broken/docker", None, said="exec format error")


def probes(*found: ClientProbe, then_fail: bool = True) -> Iterator[ClientProbe]:
    """``found`` in order; asking for one more fails the test (the choice must stop early)."""
    yield from found
    if then_fail:
        raise AssertionError("asked one client too many")


# ------------------------------------------------------------------------------------- versions
@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("Docker version 20.10.24+dfsg1, build 297e128", (20, 10, 24)),
        ("20.10.24+dfsg1", (20, 10, 24)),
        ("28.2.2", (28, 2, 2)),
        ("18.06.1-ce", (18, 6, 1)),
        ("v23.0", (23, 0)),
        ("unknown", None),
    ],
)
def test_client_versions(text: str, version: tuple[int, ...] | None) -> None:
    assert parse_client_version(text) == version


@pytest.mark.parametrize(
    ("probe", "how", "why"),
    [
        (WITH_BUILDX, "buildx", "has the buildx plugin (github.com/docker/buildx v0.12.1 30feaa1)"),
        (DEBIAN, "in-client", "version 20.10.24+dfsg1 runs BuildKit itself (DOCKER_BUILDKIT=1)"),
        (
            NEW_WITHOUT_BUILDX,
            None,
            "version 28.2.2 has no buildx plugin (docker: unknown command: docker buildx), and from 23.0 on a"
            " client runs BuildKit only through it",
        ),
        (ClientProbe("/d", "23.0.0"), None, "version 23.0.0 has no buildx plugin, and from 23.0 on a client"
         " runs BuildKit only through it"),
        (ClientProbe("/d", "22.06.0-beta"), "in-client",
         "version 22.06.0-beta runs BuildKit itself (DOCKER_BUILDKIT=1)"),
        (ANCIENT, None, "version 18.06.1-ce predates BuildKit (18.09)"),
        (BROKEN, None, "did not answer docker --version (exec format error)"),
        (ClientProbe("/d", "dev"), None, "reported a version that is not one: 'dev'"),
    ],
)  # fmt: skip
def test_client_verdicts(probe: ClientProbe, how: str | None, why: str) -> None:
    assert client_verdict(probe) == (how, why)


# -------------------------------------------------------------------------------------- choices
def test_legacy_asks_no_client() -> None:
    assert choose("legacy", probes(then_fail=True)) is LEGACY


def test_auto_takes_the_first_client_that_runs_buildkit() -> None:
    """These machines: the 28.x client first on PATH refuses without buildx; Debian's runs it."""
    choice = choose("auto", probes(NEW_WITHOUT_BUILDX, DEBIAN))
    assert choice == BuilderChoice("buildkit", "/usr/bin/docker")
    assert (choice.name, choice.note) == ("buildkit", "")
    assert choice.describe() == "/usr/bin/docker build with DOCKER_BUILDKIT=1"


def test_buildx_builds_with_buildx_load() -> None:
    choice = choose("buildkit", probes(WITH_BUILDX))
    assert choice == BuilderChoice("buildkit", "/opt/docker", buildx=True)
    assert choice.describe() == "/opt/docker buildx build --load"


def test_the_first_client_that_can_wins_in_path_order() -> None:
    assert choose("auto", probes(DEBIAN, WITH_BUILDX)).client == "/usr/bin/docker"


def test_a_buildx_builder_needs_buildx() -> None:
    choice = choose("auto", probes(DEBIAN, WITH_BUILDX), buildx_builder="remote")
    assert choice == BuilderChoice("buildkit", "/opt/docker", buildx=True, buildx_builder="remote")
    assert choice.name == "buildkit:remote"
    assert choice.describe() == "/opt/docker buildx build --load --builder remote"


def test_a_buildx_builder_without_buildx_is_an_error_even_under_auto() -> None:
    with pytest.raises(BuilderUnavailable) as raised:
        choose("auto", probes(DEBIAN, then_fail=False), buildx_builder="remote")
    assert str(raised.value) == (
        "the buildx builder 'remote' (--slimimage-buildx-builder) needs a docker client with the buildx plugin,"
        " and none was found. Tried: /usr/bin/docker: version 20.10.24+dfsg1 runs BuildKit itself"
        " (DOCKER_BUILDKIT=1), but the buildx builder 'remote' needs buildx."
        " hint: install the buildx plugin, or drop the setting to build with the engine's own BuildKit"
    )


def test_buildkit_that_cannot_be_had_says_which_clients_said_what() -> None:
    with pytest.raises(BuilderUnavailable) as raised:
        choose("buildkit", probes(NEW_WITHOUT_BUILDX, ANCIENT, then_fail=False))
    assert str(raised.value) == (
        "builder='buildkit': no docker client here can build with BuildKit. Tried:"
        " /usr/local/bin/docker: version 28.2.2 has no buildx plugin (docker: unknown command: docker buildx),"
        " and from 23.0 on a client runs BuildKit only through it;"
        " /old/docker: version 18.06.1-ce predates BuildKit (18.09)."
        " hint: install the buildx plugin, or a docker client before 23.0 (Debian 12's docker.io runs BuildKit"
        " itself), or build with builder='legacy'"
    )


def test_auto_without_buildkit_is_legacy_with_a_note_saying_why() -> None:
    choice = choose("auto", probes(NEW_WITHOUT_BUILDX, BROKEN, then_fail=False))
    assert (choice.kind, choice.name, choice.client) == ("legacy", "legacy", None)
    assert choice.note == (
        "slimimage: built with the legacy builder (builder=auto): no docker client here runs BuildKit:"
        " /usr/local/bin/docker: version 28.2.2 has no buildx plugin (docker: unknown command: docker buildx),"
        " and from 23.0 on a client runs BuildKit only through it;"
        " /broken/docker: did not answer docker --version (exec format error)"
    )
    assert "\n" not in choice.note  # one line in the build log


def test_no_client_at_all() -> None:
    assert choose("auto", []).note.endswith("no docker client found (on PATH, nor /usr/bin/docker)")
    with pytest.raises(BuilderUnavailable, match=r"Tried: no docker client found \(on PATH, nor /usr/bin/docker\)\."):
        choose("buildkit", [])


def test_an_unknown_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="builder: expected one of auto, buildkit, legacy, got 'kaniko'"):
        choose("kaniko", [])


# ---------------------------------------------------------------------------------- build inputs
@pytest.mark.parametrize(("value", "kind"), [("auto", "auto"), (" BuildKit ", "buildkit"), ("legacy", "legacy")])
def test_builder_kinds(value: str, kind: str) -> None:
    assert parse_builder(value) == kind


@pytest.mark.parametrize("value", ["kaniko", "", None, 1])
def test_bad_builder_kinds(value: object) -> None:
    with pytest.raises(ValueError) as raised:
        parse_builder(value)
    assert str(raised.value) == f"expected auto, buildkit or legacy, got {value!r}"


@pytest.mark.parametrize(
    ("value", "platform"),
    [("linux/amd64", "linux/amd64"), ("Linux/ARM64", "linux/arm64"), ("linux/arm/v7", "linux/arm/v7")],
)
def test_platforms(value: str, platform: str) -> None:
    assert parse_platform(value) == platform


@pytest.mark.parametrize("value", ["amd64", "linux/", "linux/arm/v7/x", "", None])
def test_bad_platforms(value: object) -> None:
    with pytest.raises(ValueError, match="expected a platform os/arch"):
        parse_platform(value)


def test_secrets() -> None:
    assert parse_secrets({"token": "secrets/token", "npm.rc": "x"}) == {"token": "secrets/token", "npm.rc": "x"}
    for bad, message in [
        (["token"], "expected a mapping of secret id to file path"),
        ({"to ken": "x"}, "a secret id is letters, digits, '.', '_' or '-', got 'to ken'"),
        ({"token": 3}, "secret 'token': expected a file path, got 3"),
        ({"token": ""}, "secret 'token': expected a file path, got an empty one"),
    ]:
        with pytest.raises(ValueError) as raised:
            parse_secrets(bad)
        assert str(raised.value).startswith(message)


# -------------------------------------------------------------------------- the session's builders
def test_the_session_asks_each_client_once_and_only_as_far_as_needed() -> None:
    asked: list[str] = []
    answers = {p.path: p for p in (NEW_WITHOUT_BUILDX, DEBIAN, WITH_BUILDX)}

    def probe(path: str) -> ClientProbe:
        asked.append(path)
        return answers[path]

    builders = BuilderSet(
        cast(Engine, object()), clients=lambda: list(answers), probe=probe
    )  # no engine call: the legacy builder only keeps it
    assert builders.resolve(None).client == "/usr/bin/docker"
    assert builders.resolve("buildkit") == builders.resolve("auto")
    assert builders.resolve("legacy") is LEGACY
    assert builders.name == "buildkit"
    assert asked == ["/usr/local/bin/docker", "/usr/bin/docker"]


def test_the_session_remembers_that_buildkit_cannot_be_had() -> None:
    calls: list[str] = []

    def probe(path: str) -> ClientProbe:
        calls.append(path)
        return NEW_WITHOUT_BUILDX

    builders = BuilderSet(cast(Engine, object()), default="buildkit", clients=lambda: ["/a"], probe=probe)
    with pytest.raises(BuilderUnavailable) as first:
        builders.resolve(None)
    with pytest.raises(BuilderUnavailable) as again:
        builders.resolve("buildkit")
    assert again.value is first.value
    assert builders.name == "buildkit"  # a build asking for another kind is unaffected
    assert builders.resolve("auto").name == "legacy"
    assert calls == ["/a"]


# ------------------------------------------------------------------------------- fixtures and keys
@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"builder": "kaniko"}, "builder: expected auto, buildkit or legacy, got 'kaniko'"),
        ({"platform": "arm64"}, "platform: expected a platform os/arch[/variant] such as linux/amd64, got 'arm64'"),
        ({"secrets": {"a b": "x"}}, "secrets: a secret id is letters, digits, '.', '_' or '-', got 'a b'"),
    ],
)
def test_image_fixture_rejects_bad_build_inputs_where_it_is_made(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        image_fixture(".", **given)
    assert str(raised.value) == message


def test_the_key_holds_builder_secret_paths_platform_and_no_cache(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    secret = tmp_path / "token"  # outside the context (inside it, it would be sent, and hashed, as context)
    secret.write_text("one")

    def key(**inputs: Any) -> str:
        return BuildRequest.resolve(tmp_path, "ctx", **inputs).key()

    base = key()
    assert key(builder="buildkit") != base
    assert key(builder="buildkit:remote") != key(builder="buildkit")
    assert key(platform="linux/arm64") != base
    assert key(no_cache=True) != base
    with_secret = key(secrets={"token": "token"})
    assert with_secret != base
    assert key(secrets={"other": "token"}) != with_secret
    secret.write_text("two")  # contents are not read: the same key
    assert key(secrets={"token": "token"}) == with_secret
    assert key(builder_note="why") == base


def test_secret_paths_resolve_against_the_rootdir_and_must_be_files(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "token").write_text("x")
    request = BuildRequest.resolve(tmp_path, ".", secrets={"token": "token"})
    assert request.secrets == (("token", tmp_path / "token"),)
    with pytest.raises(SlimImageError) as raised:
        BuildRequest.resolve(tmp_path, ".", secrets={"token": "missing"})
    assert str(raised.value) == (
        f"secret 'token' for Dockerfile: {tmp_path / 'missing'} does not exist (given as 'missing')"
    )
