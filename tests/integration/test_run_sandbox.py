"""The run sandbox on a real engine: an out-of-memory kill is named as such (with the way to
raise the limit), and the engine's own log of a flooding run stays bounded on its disk."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import docker
import pytest

from pytest_slimimage import BuiltImage, ImageCheckFailed, assert_runs, image_fixture
from tests.integration.conftest import CONTEXTS

hungry = image_fixture(CONTEXTS / "sandbox", dockerfile="Dockerfile.hungry")
flood = image_fixture(CONTEXTS / "sandbox", dockerfile="Dockerfile.flood")


def test_an_oom_kill_says_the_memory_limit_did_it(hungry: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as failed:
        assert_runs(hungry)
    lines = str(failed.value).splitlines()
    assert lines[0] == "hungry: runs: killed by the sandbox's memory limit of 256m (out of memory)"
    assert "  exit code: 137 (OOMKilled: over the memory limit)" in lines
    hint = lines[-1]
    assert hint.startswith("  hint: the program needed more than the sandbox's 256m: raise the limit for this run with")
    assert "memory=" in hint
    assert "by hand" not in hint


def test_memory_raises_the_limit_for_one_run(hungry: BuiltImage) -> None:
    result = assert_runs(hungry, memory="512m")
    assert result.exit_code == 0 and not result.oom_killed and result.memory == "512m"


def test_a_bad_memory_value_is_an_error_naming_it(hungry: BuiltImage) -> None:
    with pytest.raises(ValueError, match=r"memory expects a size as docker run --memory takes it .* got 'lots'"):
        assert_runs(hungry, memory="lots")


def test_the_engine_log_of_a_flood_is_bounded(flood: BuiltImage, docker_client: docker.DockerClient) -> None:
    """40 MB printed; the json-file log the engine keeps of it holds at most about 2 MiB."""
    seen: dict[str, object] = {}
    sizes: list[int] = []
    done = threading.Event()

    def watch() -> None:
        """The largest size the run's log file had while the run lasted."""
        while not done.is_set():
            for container in docker_client.containers.list(filters={"name": "-flood-"}):
                if container.image is None or container.image.id != flood.id:
                    continue
                seen["config"] = container.attrs["HostConfig"]["LogConfig"]
                with contextlib.suppress(OSError):  # not written yet, or removed with the container
                    sizes.append(os.path.getsize(container.attrs["LogPath"]))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = assert_runs(flood, exit_code=0)
    finally:
        done.set()
        watcher.join()
    assert result.truncated and len(result.stdout) == 1024 * 1024
    assert seen.get("config") == {"Type": "json-file", "Config": {"max-file": "1", "max-size": "2097152"}}
    assert sizes, "the run's log file was never seen"
    assert max(sizes) <= 3 * 1024 * 1024, max(sizes)
