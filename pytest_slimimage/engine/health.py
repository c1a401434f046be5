"""Whether the session's engine still answers, and one clear error when it does not.

An engine can die under a session (killed, stopped, restarted) or freeze (a stopped process, a
hung host). docker-py, requests and urllib3 then raise what they raise (``ProtocolError:
Connection broken: IncompleteRead``, ``ChunkedEncodingError: Response ended prematurely``, a read
timeout, or nothing at all: a frozen engine's answer never comes), and a stopped engine kills a
build's step, which looks like the step failing (``returned a non-zero code: 137``).

:class:`EngineWatch` turns each into one :class:`~pytest_slimimage.errors.EngineUnavailable`
naming the engine (``DOCKER_HOST``), the image and what was being done: a failure of the
connection, or a failed build, is followed by a ping (:data:`PROBE_TIMEOUT`), and when that gets
no answer the engine is *lost*. The loss is remembered, so every later use of the engine fails at
once with the same error (asked again at most every :data:`RECHECK_AFTER` seconds: an engine that
came back is used again). Every API call has a timeout: :data:`API_TIMEOUT` by default; a build
has its own limit (``--slimimage-build-timeout``) and a run its timeout plus a ping.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from pytest_slimimage.errors import EngineLost, EngineUnavailable, ImageBuildError

__all__ = [
    "API_TIMEOUT",
    "PROBE_TIMEOUT",
    "RECHECK_AFTER",
    "EngineWatch",
    "engine_address",
    "transport_failure",
]

API_TIMEOUT = 60.0
"""Seconds any API call other than a build or a run may wait for the engine's answer."""
PROBE_TIMEOUT = 10.0
"""Seconds a ping may take before the engine counts as not answering (after a broken connection,
a failed build, or a run past its timeout)."""
RECHECK_AFTER = 30.0
"""Once the engine is lost, later uses fail at once; it is pinged again at most this often."""

_REFUSED = "it refuses connections"
_BROKEN = "the connection broke mid-answer"
_SILENT = "no answer"


def engine_address() -> str:
    """The engine docker-py and the docker client talk to, as messages name it."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, exceptions among its arguments
    (requests wraps urllib3's that way) and urllib3's ``reason``."""
    found: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(item for item in nested if isinstance(item, BaseException))
    return found


def transport_failure(exc: BaseException) -> str | None:
    """What went wrong on the way to the engine when ``exc`` is a failure of the connection (not
    an answer of the engine's, such as an HTTP error): ``it refuses connections``, ``no answer``
    (a read timeout) or ``the connection broke mid-answer``; None otherwise."""
    chain = _chain(exc)
    refused = (ConnectionRefusedError, FileNotFoundError, urllib3.exceptions.NewConnectionError)
    if any(isinstance(e, refused) for e in chain):
        return _REFUSED
    timeouts = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)
    if any(isinstance(e, timeouts) for e in chain):
        return _SILENT
    broken = (
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        ConnectionError,
        EOFError,
    )
    if any(isinstance(e, broken) for e in chain):
        return _BROKEN
    if isinstance(exc, docker.errors.DockerException) and "Error while fetching server API version" in str(exc):
        return _REFUSED
    return None


def _frozen(why: str) -> bool:
    """Whether a ping's failure (:func:`_ping`) is a silence (a frozen engine) rather than a refusal."""
    return why.startswith(_SILENT)


def _ping(timeout: float) -> str | None:
    """Ask the engine (a connection of its own); None when it answers, else why it does not."""
    try:
        client = docker.from_env(timeout=max(1, math.ceil(timeout)))  # asks the engine's version
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        why = transport_failure(exc)
        if why == _SILENT:
            return f"no answer within {timeout:g} s"
        return why or str(exc).split(" (Caused by", 1)[0]
    return None


class EngineWatch:
    """Whether the engine at ``address`` (default: ``DOCKER_HOST``) still answers, for one session;
    shared by everything of the session that talks to it (its connection, builds, runs, archive
    loads), so a loss seen once is known everywhere."""

    def __init__(
        self,
        address: str | None = None,
        *,
        ping: Callable[[float], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address or engine_address()
        self._ping = ping or _ping
        self._clock = clock
        self._lock = threading.Lock()
        self._lost: EngineLost | None = None
        self._what = ""
        self._asked = 0.0

    def __repr__(self) -> str:
        return f"<EngineWatch {self.address} {'lost' if self._lost else 'ok'}>"

    @property
    def lost(self) -> EngineLost | None:
        """The error the engine's loss raised; None while it is not known lost."""
        return self._lost

    @property
    def what(self) -> str:
        """How it was lost (``went away while building hello (Dockerfile)``); empty while it is not."""
        return self._what if self._lost is not None else ""

    def answers(self, timeout: float = PROBE_TIMEOUT) -> str | None:
        """Ping the engine: None when it answers, else why not."""
        return self._ping(timeout)

    def gone(self, doing: str, why: str, *, silent: bool = False) -> EngineLost:
        """Remember the engine as lost while ``doing`` (``building hello (Dockerfile)``) because
        ``why``; the error to raise. ``silent``: it froze (no answer) rather than went away."""
        verb = "stopped answering" if silent else "went away"
        error = EngineLost(f"the Docker engine at {self.address} {verb} while {doing}: {why}")
        with self._lock:
            self._lost = error
            self._what = f"{verb} while {doing}"
            self._asked = self._clock()
        return error

    def check(self, doing: str) -> None:
        """Before ``doing`` something with the engine: nothing unless it is known lost. A lost
        engine fails at once with an error naming what needs it and what was lost, unless
        :data:`RECHECK_AFTER` seconds passed since it was last asked and it answers again."""
        with self._lock:
            lost, what, asked = self._lost, self._what, self._asked
        if lost is None:
            return
        still = ""
        if self._clock() - asked >= RECHECK_AFTER:
            found = self.answers()
            with self._lock:
                self._asked = self._clock()
                if found is None:  # it came back: use it again
                    self._lost = None
                    return
            still = f", and still answers no ping ({found})"
        raise EngineLost(f"the Docker engine at {self.address} is gone: it {what}{still}; {doing} needs it")

    def failure(self, exc: BaseException, doing: str) -> EngineLost | None:
        """What ``exc``, raised by a call to the engine while ``doing``, means: when it is a
        failure of the connection (or the engine's own :class:`EngineUnavailable`) and a ping gets
        no answer, the engine is lost (the error returned); None when the engine answers or the
        failure is not the connection's."""
        how = transport_failure(exc)
        if how is None and not isinstance(exc, EngineUnavailable):
            return None
        found = self.answers()
        if found is None:
            return None
        return self.unanswered(doing, how or "the connection to it failed", found)  # an EngineUnavailable: said anew

    def unanswered(self, doing: str, cause: str, found: str) -> EngineLost:
        """The engine lost while ``doing``: ``cause`` (what the call met), then a ping that got
        no answer (``found``: why, as :meth:`answers` said)."""
        return self.gone(doing, f"{cause}, and it answers no ping ({found})", silent=_frozen(found))

    def build_failure(self, exc: ImageBuildError, doing: str) -> EngineLost | None:
        """A failed build is the engine's when the engine answers no ping after it (a stopped
        engine kills the build's step: ``returned a non-zero code: 137``; a frozen one lets it
        run into its time limit); None when the engine answers (the build's own failure)."""
        found = self.answers()
        if found is None:
            return None
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else "the build failed"
        why = f"it answers no ping ({found}), so the build's failure is the engine's ({said})"
        return self.gone(doing, why, silent=_frozen(found))

    @contextlib.contextmanager
    def guard(self, doing: str, *, build: bool = False) -> Iterator[None]:
        """Around calls to the engine while ``doing``: a lost engine raises at once (see
        :meth:`check`), and a failure that is the engine's becomes its one clear
        :class:`EngineUnavailable`; with ``build``, a failed build is followed by a ping too."""
        self.check(doing)
        try:
            yield
        except EngineLost:  # said already
            raise
        except ImageBuildError as exc:
            lost = self.build_failure(exc, doing) if build else None
            if lost is not None:
                raise lost from None
            raise
        except Exception as exc:
            lost = self.failure(exc, doing)
            if lost is not None:
                raise lost from None
            raise


@contextlib.contextmanager
def removed_after(watch: EngineWatch, name: str, interrupted: list[str], remove: Callable[[], None]) -> Iterator[None]:
    """Run the body that made the container ``name``, then ``remove`` it, however the body ended;
    an interrupt (a signal, Ctrl-C) records ``name`` in ``interrupted``.

    It is left alone when the engine is lost (``watch``: a later session's reaper removes it) or
    when the body failed on the way to the engine (it froze or died mid-call): asking it would wait
    out the API timeout, the watch is about to say whether it is lost, and if it still answers,
    the session's end removes the container by its label."""
    stopped = unreachable = False
    try:
        yield
    except BaseException as exc:
        stopped = not isinstance(exc, Exception)
        unreachable = transport_failure(exc) is not None
        raise
    finally:
        if watch.lost is None and not unreachable:
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                remove()
                if stopped:
                    interrupted.append(name)
