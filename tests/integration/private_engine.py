"""A second, private Docker engine for the tests that kill, stop or freeze one (never the main one).

Set up as ../shared/ENGINE.md says: its own ``--data-root``, ``--exec-root``, ``--pidfile`` and
unix socket in a temporary folder of its own, and its own bridge, created first (``ip link add
NAME type bridge``, ``172.30.0.1/16``; never ``--bridge=none``, which deleted the main engine's
``docker0``); no iptables rules (the main engine's chains are left alone) and its own containerd
namespace. Started with ``setsid``, stdin from ``/dev/null``, its output in a log file, under a
small keeper process that adopts and reaps what the daemon leaves when it is killed (this VM's
init does not reap orphans: a killed dockerd's containerd would stay a zombie under its pid, and
the next dockerd would wait for it forever). It has ``busybox:latest``, copied from the main
engine (``docker save`` / ``load``): no registry here.

:meth:`PrivateEngine.close` removes everything it made whatever state the engine is in (frozen,
killed, running): the daemon, then any process still naming its folder (its containerd and
shims), the mounts under its folder, the bridge, the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

BRIDGE_ADDRESS = "172.30.0.1/16"
START_TIMEOUT = 60.0

KEEPER = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the daemon's orphans come here
pidfile, log, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "ab") as out:
    daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(daemon.pid))
os.replace(pidfile + ".tmp", pidfile)
while True:  # reap the daemon and every orphan it leaves, until none is left
    try:
        os.wait()
    except ChildProcessError:
        break
"""
"""The keeper: ``python -c KEEPER PIDFILE LOG ARGV...`` runs ARGV, writes its pid, reaps what it leaves."""


class PrivateEngineError(RuntimeError):
    """The private engine could not be set up (the log's tail is in the message)."""


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=30)


class PrivateEngine:
    """A dockerd of the tests' own: :meth:`start`, :meth:`kill` (``SIGKILL``), :meth:`stop`
    (``SIGTERM``, waited for), :meth:`freeze` / :meth:`thaw` (``SIGSTOP`` / ``SIGCONT``), :meth:`close`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="slimimage-private-engine-"))
        self.bridge = f"slimpriv{uuid.uuid4().hex[:6]}"
        self.socket = self.root / "docker.sock"
        self.pidfile = self.root / "docker.pid"
        self.log = self.root / "dockerd.log"
        self.keepers: list[subprocess.Popen[bytes]] = []
        self.pid: int | None = None
        """The running daemon's pid."""
        self._bridge_made = False

    @property
    def host(self) -> str:
        """Its address, for ``DOCKER_HOST``."""
        return f"unix://{self.socket}"

    def client(self, timeout: int = 30) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def _make_bridge(self) -> None:
        if self._bridge_made:
            return
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        _run("ip", "addr", "add", BRIDGE_ADDRESS, "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def start(self) -> None:
        """Start the daemon (the bridge first) and wait until it answers."""
        self._make_bridge()
        argv = [
            "dockerd",
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.pidfile),
            "-H", self.host,
            "--bridge", self.bridge,
            "--iptables=false",
            "--ip-masq=false",
            "--containerd-namespace", "slimimage-private",
            "--containerd-plugins-namespace", "slimimage-private-plugins",
        ]  # fmt: skip
        started = self.root / f"keeper-{len(self.keepers)}.pid"
        keeper = subprocess.Popen(  # setsid: a session of its own, holding no terminal of ours
            [sys.executable, "-c", KEEPER, str(started), str(self.log), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.keepers.append(keeper)
        deadline = time.monotonic() + START_TIMEOUT
        while self.pid is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                self.pid = int(started.read_text())
            time.sleep(0.05)
        while time.monotonic() < deadline:
            if not self.running():
                raise PrivateEngineError(f"the private dockerd exited:\n{self.tail()}")
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                client = self.client(timeout=5)
                try:
                    client.ping()
                    return
                finally:
                    client.close()
            time.sleep(0.2)
        raise PrivateEngineError(f"the private dockerd did not answer within {START_TIMEOUT:g} s:\n{self.tail()}")

    def running(self) -> bool:
        """Whether the daemon's process is there (frozen or not)."""
        if self.pid is None:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    def ensure_running(self) -> None:
        if not self.running():
            self.start()

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _signal(self, signum: int) -> None:
        if self.pid is not None and self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self.running()

    def kill(self) -> None:
        """``SIGKILL``: the engine dies at once (its containers stay, as on a crash)."""
        self._signal(signal.SIGKILL)
        self._wait_gone(30)
        self.pid = None

    def stop(self, timeout: float = 60) -> None:
        """``SIGTERM``: the engine stops its containers and exits; waited for."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        if not self._wait_gone(timeout):
            self.kill()
        self.pid = None

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def load_busybox(self, main: docker.DockerClient) -> None:
        """Copy ``busybox:latest`` from the main engine (``docker save`` into ``docker load``)."""
        data = b"".join(main.images.get("busybox:latest").save(named=True))
        client = self.client(timeout=120)
        try:
            client.images.load(data)
        finally:
            client.close()

    def close(self) -> None:
        """Remove everything the private engine made, whatever state it is in."""
        with contextlib.suppress(Exception):
            self.stop(timeout=60)
        # its containerd and shims, if a killed daemon left them, and what they run
        for pid in _with_descendants(_processes_naming(str(self.root))):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for keeper in self.keepers:  # each exits once what it adopted is reaped
            try:
                keeper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                keeper.kill()
                keeper.wait(timeout=30)
        for mountpoint in sorted(_mounts_under(str(self.root)), reverse=True):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False, timeout=30)
        if self._bridge_made:
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False, timeout=30)
            self._bridge_made = False
        shutil.rmtree(self.root, ignore_errors=True)


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                found.append(int(entry.name))
    return found


def _with_descendants(pids: list[int]) -> list[int]:
    """``pids`` and every process below them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = list(pids)
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.append(pid)
            stack.extend(children.get(pid, ()))
    return found


def _mounts_under(prefix: str) -> list[str]:
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1].startswith(prefix):
                found.append(fields[1].replace("\\040", " "))
    return found


def processes_running(text: str) -> list[int]:
    """The pids of processes whose command line holds ``text`` (a build step's ``sleep 3141``)."""
    return _processes_naming(text)
