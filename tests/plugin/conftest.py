"""Fixtures for the plugin-surface tests: each test runs a small pytest session with pytester."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest
import requests.exceptions


@pytest.fixture(scope="module")
def docker_engine(request: pytest.FixtureRequest) -> Iterator[docker.DockerClient]:
    """The real engine, for the modules whose inner sessions build tiny images FROM busybox:latest.

    No engine: an error when the run demands one (``CI`` set, or ``--slimimage-require-engine``
    given to the outer run), else a skip with the reason. Never a silent pass.
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = f"no Docker engine answers at {host} ({exc}); these plugin tests build images FROM busybox:latest"
        if os.environ.get("CI") or request.config.getoption("slimimage_require_engine", default=None):
            pytest.fail(f"{reason}; this run requires the engine (CI or --slimimage-require-engine)", pytrace=False)
        pytest.skip(reason)
    try:
        client.images.get("busybox:latest")
    except docker.errors.ImageNotFound:
        pytest.fail("busybox:latest is not in the local image store (bash scripts/base-images.sh)", pytrace=False)
    yield client
    client.close()


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point DOCKER_HOST at a socket that does not exist (unique per test); returns it."""
    host = f"unix:///tmp/nonexistent-slimimage-{uuid.uuid4().hex}.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    return host
