"""The plugin's own reaper: on its first use of the engine, a session removes what ended sessions
left -- containers whose owner is provably gone (this host, a process that exited) or whose lease
expired (another host), images loaded from archives or rebuilt by a session whose folder names a
gone owner,
the temporary folders of gone owners, and the build-cache tags such a session could not prune --
says so in one line, and leaves alone everything a live session (or one it cannot see, within
its lease) owns. (Left behind by real deaths: tests/integration/test_engine_death.py.)

On the private engine, with a ``TMPDIR`` of the test's own: no other session's reaper can see
what this test sets up, so the line counts exactly what this one removed.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from pytest_slimimage.labels import LABEL_EXPIRES, LABEL_OWNER, LABEL_SESSION, LABEL_WORKER
from pytest_slimimage.owner import Owner, claim_session_dir, session_dir
from tests.integration.conftest import clean_env
from tests.integration.private_engine import PrivateEngine

INNER_TESTS = """
from pytest_slimimage import existing_image_fixture

busybox = existing_image_fixture("busybox:latest")


def test_uses_the_engine(busybox):
    assert busybox.size > 0
"""


def ended_owner() -> Owner:
    proc = subprocess.Popen(["sleep", "30"])
    owner = Owner.of(proc.pid)
    proc.kill()
    proc.wait()
    return owner


def token() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def engine(private_engine: PrivateEngine) -> Iterator[docker.DockerClient]:
    private_engine.ensure_running()
    client = private_engine.client()
    yield client
    for container in client.containers.list(all=True):  # what the test kept on purpose
        container.remove(force=True, v=True)
    for image in client.api.images(name="pytest-slimimage*/*"):
        for tag in image.get("RepoTags") or ():
            client.api.remove_image(tag, noprune=True)
    client.close()


def test_a_session_removes_what_ended_sessions_left_and_nothing_a_live_one_owns(
    private_engine: PrivateEngine, engine: docker.DockerClient, pytester: pytest.Pytester
) -> None:
    tmp = pytester.mkdir("tmp")
    now = time.time()
    dead, live, foreign = ended_owner(), Owner.current(), Owner("elsewhere.example", 4242, "0123456789abcdef.1")
    dead_session, live_session = token(), token()

    def container(session: str, owner: Owner | None, expires: float | None) -> Container:
        labels = {LABEL_SESSION: session, LABEL_WORKER: session}
        if owner is not None:
            labels[LABEL_OWNER] = str(owner)
        if expires is not None:
            labels[LABEL_EXPIRES] = str(int(expires))
        name = f"slimimage-{session}-fake-{uuid.uuid4().hex[:8]}"
        return engine.containers.create("busybox:latest", ["sleep", "1"], labels=labels, name=name)

    removed = [
        container(dead_session, dead, now + 3600),  # its owner is gone: its lease does not matter
        container(token(), foreign, now - 60),  # another host's, its lease expired
    ]
    kept = [
        container(live_session, live, now - 60),  # a live owner's: never
        container(token(), foreign, now + 3600),  # another host's, within its lease
        container(token(), None, None),  # no owner (an older version's): made just now
    ]

    # the sessions' folders; the dead one's records name a fixture whose cache it could not prune
    fixture = f"reaped_{uuid.uuid4().hex[:8]}"
    claim_session_dir(session_dir(dead_session, tmp), dead)
    claim_session_dir(session_dir(live_session, tmp), live)
    record = {"id": "sha256:x", "tag": f"pytest-slimimage/{fixture}:{'a' * 12}", "log": ""}
    (session_dir(dead_session, tmp) / f"{'a' * 64}.json").write_text(json.dumps(record))
    builds = []
    for n in range(4):  # four builds of the fixture, the oldest first: one beyond the bound
        dockerfile = f"FROM busybox:latest\nLABEL n={n} nonce={uuid.uuid4().hex}\n"
        image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
        image.tag(f"pytest-slimimage/{fixture}", f"{n:012d}")
        builds.append(f"pytest-slimimage/{fixture}:{n:012d}")
        time.sleep(0.01)
    busybox = engine.images.get("busybox:latest")
    digest = str(busybox.id).split(":")[1][:12]
    dead_archive = f"pytest-slimimage-archive/app:{dead_session}-{digest}"
    live_archive = f"pytest-slimimage-archive/app:{live_session}-gw0-{digest}"
    dead_rebuild = f"pytest-slimimage-rebuild/app:{dead_session}-gw1-{uuid.uuid4().hex[:12]}"
    busybox.tag(*dead_archive.split(":"))
    busybox.tag(*live_archive.split(":"))
    busybox.tag(*dead_rebuild.split(":"))

    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_inner=INNER_TESTS)
    env = clean_env()
    env.update(DOCKER_HOST=private_engine.host, TMPDIR=str(tmp))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reaped = [line for line in proc.stdout.splitlines() if line.endswith("left by ended sessions")]
    assert reaped == [
        "slimimage: removed 2 containers, 1 temporary folder, 2 loaded or rebuilt images and 1 build-cache tag"
        " beyond the bound left by ended sessions"
    ], proc.stdout

    present = {c.id for c in engine.containers.list(all=True)}
    assert [c.name for c in removed if c.id in present] == []
    assert [c.name for c in kept if c.id not in present] == []
    assert not session_dir(dead_session, tmp).exists()
    assert session_dir(live_session, tmp).is_dir()
    tags = {tag for image in engine.api.images(name="pytest-slimimage*/*") for tag in image.get("RepoTags") or ()}
    assert dead_archive not in tags and dead_rebuild not in tags and live_archive in tags
    assert sorted(tag for tag in tags if fixture in tag) == builds[1:]  # the oldest went
    engine.images.get("busybox:latest")  # untagging an archive tag keeps the image's other tags
