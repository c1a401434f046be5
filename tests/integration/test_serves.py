"""``serves`` and ``healthy`` on real containers: busybox httpd serving a file, a handler answering
500, a service that exits at start, one whose program is missing, one that never listens, a
HEALTHCHECK that passes and one that fails; the sandbox and the removal of every container."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from pytest_slimimage import (
    BuiltImage,
    CheckResult,
    ImageCheckFailed,
    SlimImageError,
    SpecError,
    assert_check,
    assert_healthy,
    assert_serves,
    image_fixture,
)
from tests.integration.conftest import CONTEXTS, clean_env, drop_cache, session_leftovers, session_token
from tests.integration.private_engine import processes_running

SERVES = CONTEXTS / "serves"

svc_httpd = image_fixture(SERVES)
"""busybox httpd on 8080 serving ``hello service``; ``/cgi-bin/fail.cgi`` answers 500."""
svc_healthy = image_fixture(SERVES, dockerfile="Dockerfile.healthy")
svc_sick = image_fixture(SERVES, dockerfile="Dockerfile.sick")
svc_exits = image_fixture(SERVES, dockerfile="Dockerfile.exits")
svc_missing = image_fixture(SERVES, dockerfile="Dockerfile.missing")
svc_silent = image_fixture(SERVES, dockerfile="Dockerfile.silent")

HTTPD = '["sh", "-c", "echo serving /www on port 8080; exec httpd -f -v -p 8080 -h /www"]'


def failure(excinfo: pytest.ExceptionInfo[ImageCheckFailed]) -> list[str]:
    return str(excinfo.value).splitlines()


def gone(client: docker.DockerClient, result: CheckResult | pytest.ExceptionInfo[ImageCheckFailed]) -> bool:
    """Whether the container a serves or healthy check ran (by its name) no longer exists."""
    checked = result if isinstance(result, CheckResult) else result.value.results[0]
    assert isinstance(checked, CheckResult)
    name = str(checked.details["container"])
    assert name.startswith("slimimage-"), name
    return client.containers.list(all=True, filters={"name": name}) == []


# ------------------------------------------------------------------------------------------- serves
def test_httpd_serving_a_file_passes(svc_httpd: BuiltImage, docker_client: docker.DockerClient) -> None:
    result = assert_serves(svc_httpd, 8080, http="/index.html", body="hello service", log="serving /www")
    assert result.passed
    assert re.fullmatch(
        r"svc_httpd: serves: ready after \d+\.\ds: GET /index\.html answered 200 with the expected body,"
        r" the log showed 'serving /www' \(127\.0\.0\.1:\d+\)",
        result.headline,
    ), result.headline
    assert result.details["status"] == 200
    assert gone(docker_client, result)


def test_port_alone_regex_body_and_log_regex(svc_httpd: BuiltImage) -> None:
    assert assert_serves(svc_httpd, 8080).headline.startswith("svc_httpd: serves: ready after ")
    assert_serves(svc_httpd, 8080, http="/", body=re.compile(r"^hello"), log=re.compile(r"on port \d+"))
    assert_check(svc_httpd, "serves", {"port": 8080, "http": "/", "body_regex": "serv(ice|er)", "log_regex": "8080"})
    assert_check(svc_httpd, "serves", {"log": "serving"})  # the log alone needs no port


def test_a_handler_answering_500_fails_with_its_body(svc_httpd: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_serves(svc_httpd, 8080, http="/cgi-bin/fail.cgi", within=2)
    assert failure(excinfo) == [
        "svc_httpd: serves: GET /cgi-bin/fail.cgi answered 500, expected 200 (for 2s)",
        f"  command: {HTTPD}",
        "  port: 8080/tcp, published on 127.0.0.1 only (a bridge network)",
        "  body (first 10 lines):",
        "    | database unavailable",
        "    | retry later",
        "  container log (last lines):",
        "    | serving /www on port 8080",
        *failure(excinfo)[8:-1],  # one line per request the server logged: as many as it got
        "  hint: the service answers 500 on /cgi-bin/fail.cgi: read its log and the body above; if 500 is right,"
        " expect it with status=500",
    ]
    assert all(re.fullmatch(r"    \| \[::ffff:[0-9.]+\]:\d+: response:500", line) for line in failure(excinfo)[8:-1])
    assert_serves(svc_httpd, 8080, http="/cgi-bin/fail.cgi", status=500, body=re.compile("unavailable"))


def test_the_wrong_body_fails_with_the_body(svc_httpd: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_serves(svc_httpd, 8080, http="/", body="goodbye", within=1.5)
    lines = failure(excinfo)
    assert lines[0] == "svc_httpd: serves: GET / answered 200 with another body, expected 'goodbye' (for 1.5s)"
    assert lines[3:5] == ["  body (first 10 lines):", "    | hello service"]
    assert lines[-1].startswith("  hint: the service answers with another body: compare it with the body above")


def test_a_service_that_exits_at_start(svc_exits: BuiltImage, docker_client: docker.DockerClient) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_serves(svc_exits, 8080)
    lines = failure(excinfo)
    assert lines[:7] == [
        "svc_exits: serves: the container exited with code 3 before port 8080 accepted a connection",
        '  command: ["sh", "-c", "echo \'starting on port 8080\' >&2; echo \'fatal: /etc/app.conf: no such file\''
        ' >&2; exit 3"]',
        "  exit code: 3",
        "  port: 8080/tcp, published on 127.0.0.1 only (a bridge network)",
        "  container log (last lines):",
        "    | starting on port 8080",
        "    | fatal: /etc/app.conf: no such file",
    ]
    assert lines[7:] == [
        "  hint: the program exited before it was ready: read its log above, and run it by hand"
        " (docker run --rm -p 8080 IMAGE); a service must stay in the foreground (httpd -f, nginx -g 'daemon off;',"
        " no & at the end)"
    ]  # sh is in the image: no diagnosis to add
    assert gone(docker_client, excinfo)


def test_a_program_that_is_not_there_has_the_diagnosis(
    svc_missing: BuiltImage, docker_client: docker.DockerClient
) -> None:
    """The container is created, its start fails: it is removed all the same."""
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_serves(svc_missing, 8080)
    assert gone(docker_client, excinfo)
    lines = failure(excinfo)
    assert lines[0] == "svc_missing: serves: the container did not start"
    assert lines[1] == '  command: ["/usr/local/bin/server", "--port", "8080"]'
    assert lines[2].startswith("  engine: exec: ") and "/usr/local/bin/server" in lines[2], lines
    assert any(line.startswith("  diagnosis: ") and "/usr/local/bin/server" in line for line in lines), lines
    assert lines[-1].startswith("  hint: ")


def test_a_service_that_never_listens_times_out(svc_silent: BuiltImage, docker_client: docker.DockerClient) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_serves(svc_silent, 8080, within=2)
    assert failure(excinfo) == [
        "svc_silent: serves: port 8080 accepted no connection within 2s: connection refused",
        '  command: ["sleep", "300"]',
        "  port: 8080/tcp, published on 127.0.0.1 only (a bridge network)",
        "  container log: (empty)",
        "  hint: nothing answered on port 8080 in the container: make the program listen on 0.0.0.0:8080"
        " (127.0.0.1 inside the container cannot be reached through a published port) and on that port;"
        " or raise within= if it starts slowly",
    ]
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_serves(svc_silent, http="/", port=8080, within=1)
    assert failure(excinfo)[0] == "svc_silent: serves: GET / got no answer within 1s: connection refused"
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_serves(svc_silent, log="ready", within=1)
    assert failure(excinfo)[0] == "svc_silent: serves: the log did not show 'ready' within 1s"
    assert gone(docker_client, excinfo)


def test_bad_values_are_rejected_before_anything_runs(svc_httpd: BuiltImage) -> None:
    with pytest.raises(SpecError, match=r"^assert_serves: unknown key\(s\) 'prot' \(did you mean 'port'\?\)"):
        assert_check(svc_httpd, "serves", {"prot": 8080})
    with pytest.raises(SpecError, match=r"^assert_serves: serves needs the container's port \(or log= alone\)$"):
        assert_serves(svc_httpd)


# ------------------------------------------------------------------------------------------ sandbox
@pytest.fixture
def watched(docker_client: docker.DockerClient, svc_silent: BuiltImage) -> Iterator[list[dict[str, Any]]]:
    """The inspect data of the session's containers of ``svc_silent``, seen while they ran."""
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    prefix = f"slimimage-{session_token(svc_silent)}-svc_silent-"

    def watch() -> None:
        while not stop.is_set() and not seen:
            for container in docker_client.containers.list(filters={"name": prefix}):
                seen.append(container.attrs)
            stop.wait(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join(10)


def test_the_sandbox_is_a_runs_but_on_a_bridge_with_the_port_on_loopback(
    svc_silent: BuiltImage, watched: list[dict[str, Any]]
) -> None:
    with pytest.raises(ImageCheckFailed):
        assert_serves(svc_silent, 8080, within=2)
    assert watched, "the service's container was never seen running"
    attrs = watched[0]
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "bridge"
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert (host["Memory"], host["MemorySwap"], host["PidsLimit"]) == (256 * 1024 * 1024, 256 * 1024 * 1024, 256)
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    labels = attrs["Config"]["Labels"]
    assert labels["io.github.pytest-slimimage.session"] == session_token(svc_silent)
    assert {"io.github.pytest-slimimage.owner", "io.github.pytest-slimimage.expires"} <= set(labels)


# ------------------------------------------------------------------------------------------ healthy
def test_a_passing_healthcheck(svc_healthy: BuiltImage, docker_client: docker.DockerClient) -> None:
    assert svc_healthy.config.healthcheck is not None
    assert (svc_healthy.config.healthcheck.interval, svc_healthy.config.healthcheck.retries) == (1.0, 2)
    result = assert_healthy(svc_healthy)
    assert re.fullmatch(r"svc_healthy: healthy: its HEALTHCHECK reported healthy after \d+\.\ds", result.headline)
    assert result.details["probes"][-1]["exit_code"] == 0
    assert gone(docker_client, assert_healthy(svc_healthy, within=20))


def test_a_failing_healthcheck_shows_the_health_log(svc_sick: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_healthy(svc_sick)
    lines = failure(excinfo)
    assert lines[:4] == [
        "svc_sick: healthy: its HEALTHCHECK reported unhealthy",
        '  command: ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]',
        '  healthcheck: CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/cgi-bin/fail.cgi"]'
        " (every 1s, timeout 30s, unhealthy after 2 failures)",
        lines[3],
    ]
    assert re.fullmatch(r"  health log \(last [2-5] probes, oldest first\):", lines[3]), lines
    assert "    | exit 1: wget: server returned error: HTTP/1.1 500 Internal Server Error" in lines
    assert lines[-1].startswith("  hint: the HEALTHCHECK command fails in the container: read its output above")


def test_healthy_within_bounds_the_wait(svc_sick: BuiltImage) -> None:
    """Within 0.5 s no probe has run yet (the first comes an interval after the start)."""
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_healthy(svc_sick, within=0.5)
    lines = failure(excinfo)
    assert lines[0] == "svc_sick: healthy: its HEALTHCHECK did not report healthy within 0.5s (health: starting)"
    assert "  waited: up to 0.5s (within=0.5)" in lines
    assert "  health log: (no probe ran; health: starting)" in lines


def test_an_image_without_a_healthcheck_is_a_clear_error(svc_httpd: BuiltImage) -> None:
    with pytest.raises(SlimImageError) as excinfo:
        assert_healthy(svc_httpd)
    assert not isinstance(excinfo.value, ImageCheckFailed)
    assert str(excinfo.value) == (
        "svc_httpd: healthy needs a HEALTHCHECK; svc_httpd has none (add HEALTHCHECK CMD [...] to the final stage:"
        " a command that exits 0 once the service is ready)"
    )


def test_marker_runs_serves_and_healthy(pytester: pytest.Pytester) -> None:
    """The marker and a declarative table, through an inner session on the real engine."""
    context = pytester.mkdir("svc")
    (context / "www").mkdir()
    (context / "www" / "index.html").write_text("hello service\n")
    (context / "Dockerfile").write_text(
        "FROM busybox:latest\nCOPY www /www\n"
        'HEALTHCHECK --interval=1s --retries=2 CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]\n'
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    pytester.makepyfile(
        test_svc="""
import pytest
from pytest_slimimage import image_fixture

svc_marker = image_fixture("svc")


@pytest.mark.slimimage(serves={"port": 8080, "http": "/", "body": "hello service"}, healthy=True)
def test_serves(svc_marker):
    pass


@pytest.mark.slimimage(serves={"port": 8080, "http": "/", "body": "goodbye", "within": 1})
def test_wrong_body(svc_marker):
    pass
"""
    )
    pytester.makefile(
        ".toml",
        pyproject='[tool.slimimage.images.svc_table]\ncontext = "svc"\n'
        'serves = { port = 8080, http = "/", body_regex = "^hello" }\nhealthy = { within = 20 }\n',
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*svc_marker: serves: GET / answered 200 with another body, expected 'goodbye'*"])


def test_sigterm_while_waiting_removes_the_service(
    pytester: pytest.Pytester, docker_client: docker.DockerClient
) -> None:
    """A session stopped by SIGTERM while a service is awaited removes its container and says so."""
    fixture = f"svc_signalled_{uuid.uuid4().hex[:8]}"
    sleep = f"sleep {random.randint(100_000, 999_999)}"
    pytester.makeini("[pytest]\n")
    (pytester.mkdir("sleeper") / "Dockerfile").write_text(f'FROM busybox:latest\nCMD ["sleep", "{sleep.split()[1]}"]\n')
    pytester.makepyfile(
        test_inner=f"""
import pytest
from pytest_slimimage import image_fixture

{fixture} = image_fixture("sleeper")


@pytest.mark.slimimage(serves={{"port": 8080, "within": 120}})
def test_waits({fixture}):
    pass
"""
    )
    env = clean_env()
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not processes_running(sleep):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the service never started"
            time.sleep(0.1)
        time.sleep(0.5)  # waiting on its port now
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        drop_cache(docker_client, fixture)
    assert proc.returncode == 143, output
    found = re.search(rf"slimimage-([0-9a-f]{{10}})-{fixture}-[0-9a-f]{{8}}", output)
    assert found is not None, output
    assert f"slimimage: stopped by SIGTERM (exit status 143): removed the running container {found[0]}" in output
    assert session_leftovers(docker_client, found[1]) == []
    assert not processes_running(sleep)
