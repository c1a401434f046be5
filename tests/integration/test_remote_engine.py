"""A remote engine: the test engine reached over TCP on 127.0.0.1, as ``DOCKER_HOST=tcp://...``.

A small forwarder (asyncio, in a thread, bound to 127.0.0.1 on a free port) passes every byte
between a TCP client and the engine's unix socket (the one ``DOCKER_HOST`` names, else
``/var/run/docker.sock``), and notes the HTTP request lines going to the engine. Inner pytest
sessions (subprocesses, no tty) then build a tiny image FROM busybox through it and check it:

- over TCP the image is built, checked (max_size, exec_form, no_compilers, runnable, runs) and
  passes; its layers are read from the image's export (``GET /images/<id>/get`` crossed the
  forwarder), and the build is the one ``auto`` chooses here, as the session's progress lines
  and JSON report name it and as its build request on the wire shows (BuildKit's carries
  ``version=2``);
- over TCP with the layer source forced to the engine's storage the layer checks fail with the
  "not readable" message, and no export crosses the forwarder: a remote engine's storage is
  another machine's disk;
- the same forced storage over the unix socket passes (when this process can read the engine's
  storage, as root can): the storage path is refused because the engine is remote, not for any
  other reason; the local session's builder is the remote one's.

An ``ssh://`` engine cannot be shown here (no ssh server); see docs/scale.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from pytest_slimimage.engine.client import Engine
from pytest_slimimage.engine.layerread import LayerReader
from pytest_slimimage.engine.layersource import STORAGE_UNREADABLE
from tests.integration.conftest import clean_env

WORD = "slimimage-remote-engine"

INNER_TESTS = f"""
import pytest

from pytest_slimimage import image_fixture

remote = image_fixture("remote")


@pytest.mark.slimimage(max_size="5MB", exec_form=True, no_compilers=True, runnable=True, runs={WORD!r})
def test_remote(remote):
    pass
"""

_REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|DELETE) (/[^ \r\n]*) HTTP/1\.[01]\r\n")


@dataclass
class Forwarder:
    """TCP on 127.0.0.1 (a free port) to the engine's socket; ``requests`` are the request lines
    (method and path) clients sent through it, in order."""

    target: str
    """``unix:///path`` or ``tcp://host:port``: where the engine listens."""
    port: int = 0
    requests: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    @property
    def docker_host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="engine-forwarder", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the forwarder did not start: {self._error}")

    def stop(self) -> None:
        """Close the port and every connection, and join the thread (again: nothing)."""
        if self._thread is None or not self._thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the forwarder thread did not stop"

    def mark(self) -> int:
        """Where the requests seen so far end (for :meth:`since`)."""
        return len(self.requests)

    def since(self, mark: int) -> list[str]:
        return list(self.requests[mark:])

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(), or by the test's own failure
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._connect(reader, writer)
            except asyncio.CancelledError:  # stopped: the connection is closed, nothing to report
                pass
            finally:
                connections.discard(task)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.target.startswith("unix://"):
            return await asyncio.open_unix_connection(self.target.removeprefix("unix://"))
        host, _, port = self.target.removeprefix("tcp://").rpartition(":")
        return await asyncio.open_connection(host, int(port))

    async def _connect(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            engine_r, engine_w = await self._open()
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(self._pump(client_r, engine_w, note=True), self._pump(engine_r, client_w))
        finally:
            for writer in (client_w, engine_w):
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, note: bool = False) -> None:
        pending = b""
        try:
            while chunk := await reader.read(65536):
                if note:
                    pending = self._note(pending + chunk)
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # a half-closed stream (a container's stdin, a hijacked session)
        except (ConnectionError, OSError):
            writer.close()

    def _note(self, data: bytes) -> bytes:
        """Record the request lines in ``data``; what is left to search with the next chunk."""
        end = 0
        for match in _REQUEST_LINE.finditer(data):
            self.requests.append(f"{match.group(1).decode()} {match.group(2).decode(errors='replace')}")
            end = match.end()
        return data[end:][-4096:]


def _engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith(("unix://", "tcp://")):
        pytest.skip(f"the forwarder reaches unix and tcp engines, not {host}")
    return host


@pytest.fixture
def forwarder() -> Iterator[Forwarder]:
    fwd = Forwarder(_engine_socket())
    fwd.start()
    try:
        yield fwd
    finally:
        fwd.stop()


@dataclass(frozen=True)
class Session:
    result: pytest.RunResult
    requests: list[str]

    @property
    def lines(self) -> list[str]:
        return self.result.outlines

    def summary(self) -> list[str]:
        """The lines a closing note quotes: the plugin's, and pytest's last."""
        return [line for line in self.lines if line.startswith("slimimage:")] + self.lines[-1:]

    def built(self) -> str:
        """The builder the session's progress line names for the image it built."""
        ends = [line for line in self.lines if line.startswith("slimimage: built remote in ")]
        assert len(ends) == 1, "\n".join(self.lines)
        match = re.fullmatch(r"slimimage: built remote in \d+\.\ds \((?P<builder>[^)]+)\)", ends[0])
        assert match is not None, ends[0]
        return match.group("builder")


def run_inner(
    pytester: pytest.Pytester,
    forwarder: Forwarder,
    *,
    docker_host: str | None,
    layer_source: str | None = None,
) -> Session:
    """One inner session on a Dockerfile of its own (a fresh comment: a fresh content key, so
    the image is built, not found in the engine's build cache), no layer cache."""
    context = pytester.path / "remote"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(
        f'# run {uuid.uuid4().hex}\nFROM busybox:latest\nCMD ["echo", "{WORD}"]\n', encoding="utf-8"
    )
    env = clean_env()
    env.pop("SLIMIMAGE_LAYER_SOURCE", None)
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    if layer_source is not None:
        env["SLIMIMAGE_LAYER_SOURCE"] = layer_source
    mark = forwarder.mark()
    with pytest.MonkeyPatch.context() as patch:
        for key in set(os.environ) - set(env):
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        result = pytester.runpytest_subprocess(
            "--slimimage-require-engine",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-rA",
            "--slimimage-report",
            "report.json",
        )
    return Session(result, forwarder.since(mark))


def _report_builder(pytester: pytest.Pytester) -> str:
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    (image,) = report["images"]
    return str(image.get("builder", ""))


def _local_storage_readable() -> bool:
    engine = Engine.connect()
    try:
        return engine.base_url.startswith("http+docker://") and LayerReader(engine).storage_root("auto") is not None
    finally:
        engine.close()


def test_a_remote_engine_over_tcp(pytester: pytest.Pytester, forwarder: Forwarder) -> None:
    pytester.makepyfile(test_inner=INNER_TESTS)

    remote = run_inner(pytester, forwarder, docker_host=forwarder.docker_host)
    remote.result.assert_outcomes(passed=1)
    print("remote session:", *remote.summary(), sep="\n  ")
    print("its requests through the forwarder:", *remote.requests, sep="\n  ")
    # (a) built, checked and run through the forwarder
    assert "slimimage: building remote (remote/Dockerfile) ..." in remote.lines
    builds = [r for r in remote.requests if re.match(r"POST /v[\d.]+/build\?", r)]
    assert len(builds) == 1, remote.requests
    assert any(re.match(r"POST /v[\d.]+/containers/create", r) for r in remote.requests), remote.requests
    # (b) the layers came through the image export
    assert any(re.match(r"GET /v[\d.]+/images/\S+/get$", r) for r in remote.requests), remote.requests
    # (c) the builder auto chose, as the progress line, the report and the wire say
    builder = remote.built()
    assert _report_builder(pytester) == builder
    kind = "buildkit" if "version=2" in builds[0] else "legacy"
    assert builder.split(":")[0] == kind, (builder, builds[0])

    storage = run_inner(pytester, forwarder, docker_host=forwarder.docker_host, layer_source="storage")
    print("remote session, storage forced:", *storage.summary(), sep="\n  ")
    assert storage.result.ret != 0
    text = storage.result.stdout.str()
    assert "cannot read the layers of" in text and STORAGE_UNREADABLE in text, text
    assert not any(re.search(r"/images/\S+/get$", r) for r in storage.requests), storage.requests

    if not _local_storage_readable():
        pytest.skip("this process cannot read the local engine's storage: the local control cannot run")
    local = run_inner(pytester, forwarder, docker_host=os.environ.get("DOCKER_HOST"), layer_source="storage")
    print("local session, storage forced:", *local.summary(), sep="\n  ")
    local.result.assert_outcomes(passed=1)
    assert local.requests == []  # the forwarder was not on its way
    assert local.built() == builder
    assert STORAGE_UNREADABLE not in local.result.stdout.str()


def test_the_forwarder_stops_and_frees_its_port(forwarder: Forwarder) -> None:
    """What the test above relies on: the forwarder reaches the engine (``GET /_ping``), and once
    stopped its thread is joined and its port closed."""
    with socket.create_connection(("127.0.0.1", forwarder.port), timeout=10) as conn:
        conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer.endswith(b"OK")
    assert forwarder.requests == ["GET /_ping"]
    forwarder.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", forwarder.port), timeout=5):
        pass
