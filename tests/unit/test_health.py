"""The engine watch over a fake ping and a fake clock: which failures are the connection's, the
one error a lost engine gives (naming the engine, the image and what was being done), the same
error at once for later uses, and the engine used again once it answers. The real engine dying,
stopping and freezing is tests/integration/test_engine_death.py."""

from __future__ import annotations

import http.client

import docker.errors
import pytest
import requests.exceptions
import urllib3.exceptions

from pytest_slimimage.engine.health import RECHECK_AFTER, EngineWatch, transport_failure
from pytest_slimimage.errors import EngineLost, ImageBuildError, SlimImageError

ADDRESS = "unix:///tmp/engine.sock"


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Ping:
    """Answers (None) or not (the reason), counting the pings."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self, timeout: float) -> str | None:
        self.calls += 1
        return self.answer


def test_what_the_client_libraries_raise_when_the_connection_fails() -> None:
    refused = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionRefusedError(111, "refused"))
    )
    assert transport_failure(refused) == "it refuses connections"
    assert transport_failure(docker.errors.DockerException("Error while fetching server API version: x")) == (
        "it refuses connections"
    )
    assert transport_failure(requests.exceptions.ReadTimeout("Read timed out.")) == "no answer"
    broken = urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(0 bytes read)")
    assert transport_failure(broken) == "the connection broke mid-answer"
    assert transport_failure(requests.exceptions.ChunkedEncodingError("Response ended prematurely")) == (
        "the connection broke mid-answer"
    )
    assert transport_failure(chained(RuntimeError("wrapped"), http.client.IncompleteRead(b""))) == (
        "the connection broke mid-answer"
    )
    # the engine's own answers are not the connection's failures
    assert transport_failure(docker.errors.NotFound("no such image")) is None
    assert transport_failure(ValueError("bad")) is None


def test_a_broken_connection_and_no_ping_is_one_clear_error() -> None:
    watch = EngineWatch(ADDRESS, ping=Ping("it refuses connections"))
    with pytest.raises(EngineLost) as raised, watch.guard("running hello (container slimimage-t-hello-1)"):
        raise requests.exceptions.ChunkedEncodingError("Response ended prematurely")
    assert str(raised.value) == (
        "the Docker engine at unix:///tmp/engine.sock went away while running hello (container slimimage-t-hello-1):"
        " the connection broke mid-answer, and it answers no ping (it refuses connections)"
    )
    assert watch.lost is raised.value
    assert watch.what == "went away while running hello (container slimimage-t-hello-1)"


def test_a_failed_build_is_the_engines_when_it_answers_no_ping() -> None:
    watch = EngineWatch(ADDRESS, ping=Ping("no answer within 10 s"))
    said = "building Dockerfile failed: The command '/bin/sh -c sleep 60' returned a non-zero code: 137"
    failure = ImageBuildError(said)
    with pytest.raises(EngineLost) as raised, watch.guard("building slow (Dockerfile)", build=True):
        raise failure
    assert str(raised.value) == (
        "the Docker engine at unix:///tmp/engine.sock stopped answering while building slow (Dockerfile):"
        " it answers no ping (no answer within 10 s), so the build's failure is the engine's"
        " (building Dockerfile failed: The command '/bin/sh -c sleep 60' returned a non-zero code: 137)"
    )


def test_failures_of_an_engine_that_answers_are_left_as_they_are() -> None:
    ping = Ping(None)
    watch = EngineWatch(ADDRESS, ping=ping)
    failure = ImageBuildError("building Dockerfile failed: exit code 3")
    with pytest.raises(ImageBuildError) as raised, watch.guard("building app (Dockerfile)", build=True):
        raise failure
    assert raised.value is failure
    with pytest.raises(requests.exceptions.ReadTimeout), watch.guard("looking up the image app"):
        raise requests.exceptions.ReadTimeout("Read timed out.")
    with pytest.raises(SlimImageError, match=r"^not found$"), watch.guard("looking up the image app"):
        raise SlimImageError("not found")  # not the connection's: no ping
    assert ping.calls == 2
    assert watch.lost is None


def test_later_uses_fail_at_once_until_the_engine_answers_again() -> None:
    clock, ping = Clock(), Ping("it refuses connections")
    watch = EngineWatch(ADDRESS, ping=ping, clock=clock)
    with pytest.raises(EngineLost), watch.guard("building slow (Dockerfile)"):
        raise urllib3.exceptions.ProtocolError("Connection broken")
    assert ping.calls == 1
    for _ in range(3):  # at once: no ping
        with pytest.raises(EngineLost) as raised:
            watch.check("building other (Dockerfile)")
        assert str(raised.value) == (
            "the Docker engine at unix:///tmp/engine.sock is gone: it went away while building slow (Dockerfile);"
            " building other (Dockerfile) needs it"
        )
    assert ping.calls == 1
    clock.now += RECHECK_AFTER
    with pytest.raises(EngineLost, match=r"\(Dockerfile\), and still answers no ping \(it refuses connections\);"):
        watch.check("building other (Dockerfile)")
    assert ping.calls == 2
    clock.now += RECHECK_AFTER
    ping.answer = None  # restarted
    watch.check("building other (Dockerfile)")
    assert watch.lost is None
    with watch.guard("building other (Dockerfile)"):
        pass


def test_an_error_the_watch_raised_is_not_judged_again() -> None:
    ping = Ping("it refuses connections")
    watch = EngineWatch(ADDRESS, ping=ping)
    with pytest.raises(EngineLost) as raised, watch.guard("outer"):
        raise watch.gone("running hello", "the connection broke mid-answer")
    assert raised.value is watch.lost
    assert ping.calls == 0
