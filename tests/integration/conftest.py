"""Integration tests: a real Docker engine, never a mock.

Every test here needs the engine, so one autouse session fixture connects first: without an
engine the tests skip with one reason, or ERROR when ``CI`` is set or the engine is required
(``--slimimage-require-engine`` / ``slimimage_require_engine``), the same rule the plugin's
``slimimage_build`` fixture applies. Direct docker-py use goes through ``docker_client``.

The images are tiny (busybox, scratch, static C binaries built in a ``FROM gcc`` stage) and are
shared: the plugin builds each Dockerfile once per session, so fixtures here are session-scoped
and named for what the image is.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import requests.exceptions

from pytest_slimimage import BuiltImage, image_fixture
from tests.integration.private_engine import PrivateEngine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CONTEXTS = HERE / "contexts"
BUSYBOX_CONTEXT = CONTEXTS / "busybox"
STATIC_C_CONTEXT = CONTEXTS / "static-c"
EXAMPLE = ROOT / "example_project"

LABEL_SESSION = "io.github.pytest-slimimage.session"
TAG = re.compile(r"^pytest-slimimage/(?P<name>[a-z0-9._-]+):(?P<key>[0-9a-f]{12})$")
"""The tags the plugin gives its images, its build cache: ``pytest-slimimage/<name>:<key>``."""


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def engine_required(config: pytest.Config) -> bool:
    """``CI`` set (to anything but a false value), or the plugin's option or ini key."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off"):
        return True
    if config.getoption("slimimage_require_engine", default=None):
        return True
    return _truthy(config.getini("slimimage_require_engine"))


@pytest.fixture(scope="session", autouse=True)
def docker_client(pytestconfig: pytest.Config) -> Iterator[docker.DockerClient]:
    """A docker-py client of the engine the plugin uses (``DOCKER_HOST`` honoured)."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = str(exc).split(" (Caused by", 1)[0]
        message = f"slimimage integration tests need a Docker engine; none answers at {where}: {reason}"
        if engine_required(pytestconfig):
            pytest.fail(f"{message} (required: CI is set or --slimimage-require-engine was given)", pytrace=False)
        pytest.skip(f"{message} (set CI or pass --slimimage-require-engine to make this an error)")
    yield client
    client.close()


@pytest.fixture(scope="session")
def private_engine(pytestconfig: pytest.Config, docker_client: docker.DockerClient) -> Iterator[PrivateEngine]:
    """A second, private dockerd with busybox:latest, for the tests that kill, stop or freeze an
    engine or need one no other session uses (:mod:`.private_engine`); started by the first test
    that asks for it, removed (daemon, bridge, folder) at the end whatever happened."""
    missing = [tool for tool in ("dockerd", "ip") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        reason = f"a private dockerd needs root and {', '.join(missing) or 'dockerd and ip'}"
        if engine_required(pytestconfig):
            pytest.fail(f"{reason} (required: CI is set or --slimimage-require-engine was given)", pytrace=False)
        pytest.skip(reason)
    engine = PrivateEngine()
    try:
        engine.start()
        engine.load_busybox(docker_client)
        yield engine
    finally:
        engine.close()


def clean_env() -> dict[str, str]:
    """This process's environment for an inner pytest, without what would make it behave like this
    one (xdist worker variables, ``PYTEST_ADDOPTS``)."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "COV_"))}


def session_token(image: BuiltImage) -> str:
    """The token of the session using ``image`` (its containers carry it in the session label)."""
    return image.session


def session_leftovers(client: docker.DockerClient, token: str) -> list[str]:
    """Containers (any state) of session ``token`` that still exist, by the session label and by the
    container name prefix ``slimimage-<token>``, and any image labelled with it (the plugin labels
    no image: its images are exactly what the Dockerfiles build, and stay as the build cache)."""
    by_label = client.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={token}"})
    by_name = client.containers.list(all=True, filters={"name": f"slimimage-{token}"})
    containers = {c.id: c for c in by_label + by_name}
    found = [f"container {c.name} ({c.status})" for c in containers.values()]
    found += [f"image {img.id} (labelled)" for img in client.images.list(filters={"label": f"{LABEL_SESSION}={token}"})]
    return found


def cache_tags(client: docker.DockerClient, name: str) -> set[str]:
    """The plugin's build-cache tags of the fixture ``name`` on the engine."""
    return {tag for image in client.api.images(name=f"pytest-slimimage/{name}") for tag in image["RepoTags"] or ()}


def drop_cache(client: docker.DockerClient, name: str) -> None:
    """Untag every build-cache tag of the fixture ``name`` (no pruning of parents: other builds' cache)."""
    for tag in cache_tags(client, name):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_image(tag, noprune=True)


# Shared images. The fixture's name is the image's name in failure text.
busybox = image_fixture(BUSYBOX_CONTEXT)
"""busybox with ``CMD ["echo", "hello from busybox"]``: run tests replace CMD with ``args=``."""
with_entrypoint = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.entrypoint")
chain = image_fixture(BUSYBOX_CONTEXT, dockerfile="Dockerfile.chain")
"""Final stage ``FROM base``, base ``FROM busybox``; WORKDIR, ENV, USER, ENTRYPOINT and CMD set."""
no_cmd = image_fixture(STATIC_C_CONTEXT, dockerfile="Dockerfile.nocmd")
"""A static C binary on scratch, with neither CMD nor ENTRYPOINT."""
fake_gcc = image_fixture(STATIC_C_CONTEXT, dockerfile="Dockerfile.fakegcc")
"""busybox plus things named like compilers (see its Dockerfile)."""
