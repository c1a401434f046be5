"""``serves`` and ``healthy`` without an engine: their values, the HEALTHCHECK read from an image's
config, the texts made from hand-made :class:`ServiceResult` s, and ``evaluate`` deciding that an
image without a HEALTHCHECK cannot be checked before anything runs."""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

import pytest_slimimage as si
from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.evaluate import assert_check, evaluate
from pytest_slimimage.checks.healthy import HEALTHY, check_healthy, parse_healthy
from pytest_slimimage.checks.registry import REGISTRY, helper_call
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.serves import SERVES, check_serves, parse_serves
from pytest_slimimage.checks.spec import Spec, SpecError, parse_spec
from pytest_slimimage.errors import ImageCheckFailed, SlimImageError
from pytest_slimimage.facts import (
    FileEntry,
    FileSystem,
    Healthcheck,
    HealthProbe,
    ImageConfig,
    ImageFacts,
    RunResult,
    ServicePlan,
    ServiceResult,
)

HTTPD = ("httpd", "-f", "-p", "8080", "-h", "/www")
WGET = {"Test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"], "Interval": 10**9, "Retries": 2}


def image_facts(
    argv: tuple[str, ...] = HTTPD, healthcheck: dict[str, Any] | None = None, filesystem: FileSystem | None = None
) -> ImageFacts:
    config = ImageConfig.from_inspect({"Config": {"Cmd": list(argv), "Healthcheck": healthcheck}})
    return ImageFacts("web", "sha256:" + "0" * 64, 2_000_000, config, filesystem=filesystem)


def served(result: ServiceResult, **facts: Any) -> ImageFacts:
    from dataclasses import replace

    return replace(image_facts(**facts), service=result)


def lines(result: CheckResult) -> list[str]:
    return result.message().splitlines()


# --------------------------------------------------------------------------------------- the values
def test_a_port_alone() -> None:
    assert parse_serves(8080) == ServicePlan(port=8080, within=30.0)
    assert parse_serves(False) is None
    assert parse_serves(None) is None


def test_a_dict_of_everything() -> None:
    plan = parse_serves(
        {"port": 80, "http": "/health", "status": 204, "body": "ok", "log": re.compile("up"), "within": 5}
    )
    assert plan == ServicePlan(port=80, http="/health", status=204, body="ok", log=re.compile("up"), within=5.0)


def test_regexes_as_text_for_toml() -> None:
    plan = parse_serves({"port": 80, "http": "/", "body_regex": "^hel+o", "log_regex": r"listening on \d+"})
    assert plan is not None
    assert plan.body == re.compile("^hel+o")
    assert plan.log == re.compile(r"listening on \d+")


def test_the_log_alone_needs_no_port() -> None:
    assert parse_serves({"log": "ready"}) == ServicePlan(log="ready")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "serves expects a port (an int) or a dict of port, http, status, body, log and within; got True"),
        ("8080", "serves expects a port (an int) or a dict of port, http, status, body, log and within; got '8080'"),
        (
            {"prot": 8080, "wihtin": 3},
            "unknown key(s) 'prot' (did you mean 'port'?), 'wihtin' (did you mean 'within'?); expected port, http,"
            " status, body, body_regex, log, log_regex, within",
        ),
        ({"port": True}, "port expects a container port (an int from 1 to 65535), got True"),
        ({"port": 70000}, "port expects a container port (an int from 1 to 65535), got 70000"),
        ({"port": "8080"}, "port expects a container port (an int from 1 to 65535), got '8080'"),
        ({"port": 80, "http": "health"}, "http expects a path starting with / (http='/health'), got 'health'"),
        ({"port": 80, "http": "/", "status": 99}, "status expects an HTTP status (an int from 100 to 599), got 99"),
        ({"port": 80, "status": 500}, "status needs http= (the path to GET)"),
        ({"port": 80, "body": "x", "status": 201}, "status and body need http= (the path to GET)"),
        ({"port": 80, "within": 0}, "within expects a positive number of seconds, got 0"),
        ({"port": 80, "within": "3s"}, "within expects a positive number of seconds, got '3s'"),
        ({"port": 80, "http": "/", "body": "a", "body_regex": "a"}, "give body or body_regex, not both"),
        ({"port": 80, "http": "/", "body": 3}, "body expects a str or a compiled regex, got 3"),
        ({"port": 80, "log_regex": "("}, "log_regex is not a valid regex (missing ), unterminated subpattern"),
        ({"port": 80, "log": ""}, "log expects a text to look for, got ''"),
        ({}, "serves needs the container's port (or log= alone)"),
        ({"http": "/"}, "serves needs the container's port (or log= alone) for http="),
        ({"http": "/", "log": "x"}, "serves needs the container's port (or log= alone) for http="),
    ],
)
def test_bad_serves_values(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_serves(value)
    assert str(info.value).startswith(message)


def test_healthy_values() -> None:
    assert parse_healthy(True) == ServicePlan(healthy=True, within=None)
    assert parse_healthy({"within": 20}) == ServicePlan(healthy=True, within=20.0)
    assert parse_healthy({}) == ServicePlan(healthy=True, within=None)
    assert parse_healthy(False) is None
    with pytest.raises(ValueError, match=r"^unknown key\(s\) 'whithin' \(did you mean 'within'\?\); expected within$"):
        parse_healthy({"whithin": 3})
    with pytest.raises(ValueError, match=r"^healthy expects True or a dict \{'within': seconds\}, got 'yes'$"):
        parse_healthy("yes")
    with pytest.raises(ValueError, match=r"^within expects a positive number of seconds, got -1$"):
        parse_healthy({"within": -1})


def test_marker_errors_name_the_check() -> None:
    with pytest.raises(SpecError, match=r"^here: serves: unknown key\(s\) 'prot' \(did you mean 'port'\?\)"):
        parse_spec({"serves": {"prot": 1}}, where="here")
    with pytest.raises(SpecError, match=r"^here: healthy expects True or a dict"):
        parse_spec({"healthy": 3}, where="here")
    spec = parse_spec({"serves": 8080, "healthy": True, "runs": True}, where="here")
    assert spec.checks == ("runs", "serves", "healthy")
    assert spec.needs == {"run", "service"}


# --------------------------------------------------------------------------------------- the helpers
def test_the_helpers_take_the_arguments_of_the_check() -> None:
    assert str(inspect.signature(si.assert_serves)) == (
        "(image, port: 'int | None' = None, *, http: 'str | None' = None, status: 'int' = 200,"
        " body: 'str | re.Pattern[str] | None' = None, log: 'str | re.Pattern[str] | None' = None,"
        " within: 'float | None' = None) -> pytest_slimimage.checks.result.CheckResult"
    )
    assert helper_call(SERVES) == (
        "assert_serves(image, port=None, *, http=None, status=200, body=None, log=None, within=None)"
    )
    assert helper_call(HEALTHY) == "assert_healthy(image, within=None)"
    assert si.assert_serves.__name__ == "assert_serves"
    assert "check_serves" in si.__all__ and "assert_healthy" in si.__all__


def test_a_helper_refuses_arguments_it_does_not_take() -> None:
    image = FakeImage()
    with pytest.raises(TypeError, match=r"^assert_serves\(\): got an unexpected keyword argument 'path'$"):
        si.assert_serves(image, 8080, path="/")
    with pytest.raises(TypeError, match=r"^assert_healthy\(\): too many positional arguments$"):
        si.assert_healthy(image, 3, 4)


# --------------------------------------------------------------------------------- the HEALTHCHECK
def test_healthcheck_from_the_config() -> None:
    healthcheck = image_facts(healthcheck=WGET).config.healthcheck
    assert healthcheck == Healthcheck(
        ("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"), interval=1.0, retries=2
    )
    assert healthcheck.command == 'CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]'
    assert healthcheck.budget == 0 + 2 * (1 + 30) + 5
    assert not healthcheck.disabled
    test = ["CMD-SHELL", "wget -q -O- localhost || exit 1"]
    shell = Healthcheck.from_config({"Test": test, "StartPeriod": 3 * 10**9})
    assert shell == Healthcheck(("CMD-SHELL", "wget -q -O- localhost || exit 1"), start_period=3.0)
    assert shell.command == "CMD wget -q -O- localhost || exit 1"
    assert shell.budget == 3 + 3 * (30 + 30) + 5
    assert Healthcheck.from_config({"Test": ["NONE"]}) == Healthcheck(("NONE",))
    assert Healthcheck(("NONE",)).disabled
    assert Healthcheck.from_config(None) is None
    assert Healthcheck.from_config({}) is None
    assert image_facts().config.healthcheck is None


def test_the_deadline() -> None:
    healthcheck = Healthcheck(("CMD", "true"), interval=1.0, retries=2, timeout=2.0)
    assert ServicePlan(port=1).deadline(None) == 30.0
    assert ServicePlan(healthy=True, within=None).deadline(healthcheck) == 2 * 3 + 5
    assert ServicePlan(healthy=True, within=4).deadline(healthcheck) == 4


@pytest.mark.parametrize(
    ("plan", "body", "matches"),
    [
        (ServicePlan(body="hello"), "hello\n", True),
        (ServicePlan(body="hello\n"), "hello", True),
        (ServicePlan(body="hello"), "hello there", False),
        (ServicePlan(body=re.compile(r"^hel+o")), "hello there", True),
        (ServicePlan(), "anything", True),
    ],
)
def test_body_matching(plan: ServicePlan, body: str, matches: bool) -> None:
    assert plan.body_matches(body) is matches


def test_log_matching() -> None:
    assert ServicePlan(log="listening").log_matches("2026 listening on :80\n")
    assert not ServicePlan(log="Listening").log_matches("listening")
    assert ServicePlan(log=re.compile(r"on :\d+$", re.M)).log_matches("listening on :80\nnext\n")


# ------------------------------------------------------------------------------------ serves texts
PLAN = ServicePlan(port=8080, http="/", body="hello service", within=3.0)


def test_serves_passing_says_what_answered_and_how_fast() -> None:
    result = ServiceResult(
        ready=True, status=200, argv=HTTPD, duration=0.43, waited=3, port=8080, host_port=32768, host="127.0.0.1"
    )
    checked = check_serves(served(result), ServicePlan(port=8080, http="/", body="x", log=re.compile("up")))
    assert checked.passed
    assert checked.headline == (
        "web: serves: ready after 0.4s: GET / answered 200 with the expected body, the log showed re.compile('up')"
        " (127.0.0.1:32768)"
    )
    assert checked.details["host_port"] == 32768
    port_only = check_serves(served(ServiceResult(ready=True, duration=1.0)), ServicePlan(port=8080))
    assert port_only.headline == "web: serves: ready after 1.0s: port 8080 accepted a connection"


def test_serves_says_when_it_ran_under_emulation() -> None:
    emulation = "linux/arm64 under QEMU emulation (binfmt_misc qemu-aarch64)"
    ok = check_serves(served(ServiceResult(ready=True, duration=2.5, emulation=emulation)), ServicePlan(port=80))
    assert ok.headline == f"web: serves: ready after 2.5s: port 80 accepted a connection ({emulation})"
    late = ServiceResult(ready=False, unmet="port", seen="connection refused", timed_out=True, waited=3,
                         emulation=emulation)  # fmt: skip
    failed = check_serves(served(late), ServicePlan(port=80))
    assert failed.headline == f"web: serves: port 80 accepted no connection within 3s: connection refused ({emulation})"
    assert failed.hint.endswith("or raise within= if it starts slowly (under emulation a program starts several times"
                                " slower)")  # fmt: skip


def test_serves_status_failure_shows_the_body() -> None:
    result = ServiceResult(
        ready=False, unmet="http", seen="status 500", status=500, body="database unavailable\nretry later\n",
        timed_out=True, logs="GET / 500\n", argv=HTTPD, waited=3, port=8080,
    )  # fmt: skip
    assert lines(check_serves(served(result), PLAN)) == [
        "web: serves: GET / answered 500, expected 200 (for 3s)",
        '  command: ["httpd", "-f", "-p", "8080", "-h", "/www"]',
        "  port: 8080/tcp, published on 127.0.0.1 only (a bridge network)",
        "  body (first 10 lines):",
        "    | database unavailable",
        "    | retry later",
        "  container log (last lines):",
        "    | GET / 500",
        "  hint: the service answers 500 on /: read its log and the body above; if 500 is right, expect it with"
        " status=500",
    ]


def test_serves_body_failure_and_a_long_body_is_cut() -> None:
    body = "".join(f"line {n}\x1b\n" for n in range(30))
    result = ServiceResult(ready=False, unmet="http", seen="status 200 with another body", status=200, body=body,
                           timed_out=True, waited=3, argv=HTTPD, port=8080)  # fmt: skip
    text = lines(check_serves(served(result), PLAN))
    assert text[0] == "web: serves: GET / answered 200 with another body, expected 'hello service' (for 3s)"
    assert text[4:14] == [f"    | line {n}\\x1b" for n in range(10)]
    assert text[14] == "  container log: (empty)"
    assert text[15].startswith("  hint: the service answers with another body")


def test_serves_without_an_answer() -> None:
    result = ServiceResult(ready=False, unmet="http", seen="no answer within 2s", timed_out=True, waited=3,
                           argv=HTTPD, port=8080)  # fmt: skip
    text = lines(check_serves(served(result), PLAN))
    assert text[0] == "web: serves: GET / got no answer within 3s: no answer within 2s"
    assert "body" not in "\n".join(text[1:-1])


def test_serves_log_not_shown() -> None:
    result = ServiceResult(ready=False, unmet="log", seen="not in its output (2 lines)", timed_out=True, waited=1.5,
                           logs="a\nb\n", argv=HTTPD)  # fmt: skip
    text = lines(check_serves(served(result), ServicePlan(log=re.compile(r"ready\b"), within=1.5)))
    assert text == [
        "web: serves: the log did not show re.compile('ready\\\\b') within 1.5s",
        '  command: ["httpd", "-f", "-p", "8080", "-h", "/www"]',
        "  container log (last lines):",
        "    | a",
        "    | b",
        text[-1],
    ]
    assert text[-1].startswith("  hint: the output does not show it: check the text")


def test_serves_exited_with_its_code_and_log() -> None:
    result = ServiceResult(ready=False, unmet="port", seen="exited with code 3", exited=True, exit_code=3,
                           logs="fatal: no config\n", argv=("/app",), waited=30, port=8080)  # fmt: skip
    assert lines(check_serves(served(result), ServicePlan(port=8080))) == [
        "web: serves: the container exited with code 3 before port 8080 accepted a connection",
        '  command: ["/app"]',
        "  exit code: 3",
        "  port: 8080/tcp, published on 127.0.0.1 only (a bridge network)",
        "  container log (last lines):",
        "    | fatal: no config",
        "  hint: the program exited before it was ready: read its log above, and run it by hand (docker run --rm"
        " -p 8080 IMAGE); a service must stay in the foreground (httpd -f, nginx -g 'daemon off;', no & at the end)",
    ]
    oom = ServiceResult(ready=False, unmet="http", exited=True, exit_code=137, oom_killed=True, argv=("/app",))
    text = lines(check_serves(served(oom), PLAN))
    assert text[0] == (
        "web: serves: the container was killed by the sandbox's memory limit (out of memory) before GET / answered"
        " 200 with the expected body"
    )
    assert text[2] == "  exit code: 137 (OOMKilled: over the memory limit)"


def test_a_container_that_died_gets_the_static_diagnosis() -> None:
    filesystem = FileSystem(entries={"/etc": FileEntry("/etc", "dir", mode=0o755)})
    result = ServiceResult(ready=False, unmet="start", seen="exec: no such file", start_error="exec: no such file",
                           argv=("/app",), port=8080)  # fmt: skip
    facts = served(result, argv=("/app",), filesystem=filesystem)
    text = lines(check_serves(facts, ServicePlan(port=8080)))
    assert text[:3] == [
        "web: serves: the container did not start",
        '  command: ["/app"]',
        "  engine: exec: no such file",
    ]
    assert "  diagnosis: the program /app is not in the image" in text
    assert text[-1].startswith("  hint: COPY the program to /app")
    without = lines(check_serves(served(result, argv=("/app",)), ServicePlan(port=8080)))
    assert not any(line.startswith("  diagnosis:") for line in without)


def test_serves_needs_a_service_run() -> None:
    with pytest.raises(ValueError, match=r"^serves needs a service run of web, and none was made$"):
        check_serves(image_facts(), ServicePlan(port=1))


# ----------------------------------------------------------------------------------- healthy texts
SICK = (HealthProbe(1, "wget: server returned error: HTTP/1.1 500 Internal Server Error\n"), HealthProbe(1, ""))


def test_healthy_passing() -> None:
    result = ServiceResult(ready=True, health="healthy", health_log=(HealthProbe(0, ""),), duration=1.234)
    checked = check_healthy(served(result, healthcheck=WGET), ServicePlan(healthy=True, within=None))
    assert checked.passed
    assert checked.headline == "web: healthy: its HEALTHCHECK reported healthy after 1.2s"
    assert checked.details["probes"] == [{"exit_code": 0, "output": ""}]


def test_healthy_unhealthy_shows_the_health_log() -> None:
    result = ServiceResult(ready=False, unmet="healthy", seen="health: unhealthy", health="unhealthy",
                           health_log=SICK, argv=HTTPD, waited=67, logs="")  # fmt: skip
    assert lines(check_healthy(served(result, healthcheck=WGET), ServicePlan(healthy=True, within=None))) == [
        "web: healthy: its HEALTHCHECK reported unhealthy",
        '  command: ["httpd", "-f", "-p", "8080", "-h", "/www"]',
        '  healthcheck: CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"] (every 1s, timeout 30s,'
        " unhealthy after 2 failures)",
        "  health log (last 2 probes, oldest first):",
        "    | exit 1: wget: server returned error: HTTP/1.1 500 Internal Server Error",
        "    | exit 1: (no output)",
        "  container log: (empty)",
        "  hint: the HEALTHCHECK command fails in the container: read its output above, and run it by hand"
        " (docker exec CONTAINER <its command>) against the running service",
    ]


def test_healthy_timeout_says_what_it_waited_for() -> None:
    result = ServiceResult(ready=False, unmet="healthy", seen="health: starting", health="starting",
                           timed_out=True, argv=HTTPD, waited=67)  # fmt: skip
    text = lines(check_healthy(served(result, healthcheck=WGET), ServicePlan(healthy=True, within=None)))
    assert text[0] == "web: healthy: its HEALTHCHECK did not report healthy within 67s (health: starting)"
    assert text[3] == "  waited: up to 67s (its start period, then 2 probes of up to 30s 1s apart, plus 5s)"
    assert text[4] == "  health log: (no probe ran; health: starting)"
    assert text[-1] == (
        "  hint: the HEALTHCHECK did not say healthy in time: raise within=, or shorten its --start-period and"
        " --interval"
    )
    given = lines(check_healthy(served(result, healthcheck=WGET), ServicePlan(healthy=True, within=67)))
    assert given[3] == "  waited: up to 67s (within=67)"


def test_healthy_probe_program_missing() -> None:
    probe = HealthProbe(-1, 'OCI runtime exec failed: exec: "curl": executable file not found in $PATH: unknown')
    result = ServiceResult(ready=False, unmet="healthy", health="unhealthy", health_log=(probe,), argv=HTTPD)
    checked = check_healthy(served(result, healthcheck=WGET), ServicePlan(healthy=True))
    assert checked.hint.startswith("the HEALTHCHECK's program is not in the image")


def test_healthy_exited() -> None:
    result = ServiceResult(ready=False, unmet="healthy", exited=True, exit_code=127, health="starting",
                           logs="/bin/sh: /app: not found\n", argv=("/bin/sh", "-c", "/app"))  # fmt: skip
    text = lines(check_healthy(served(result, healthcheck=WGET), ServicePlan(healthy=True)))
    assert text[0] == "web: healthy: the container exited with code 127 before its HEALTHCHECK reported healthy"
    assert "  exit code: 127" in text
    assert "    | /bin/sh: /app: not found" in text


# --------------------------------------------------------------------------------------- evaluate
@dataclass
class FakeImage:
    """An image made of facts, with a HEALTHCHECK or not, serving what it is told to."""

    name: str = "web"
    default_timeout: float = 30.0
    healthcheck: dict[str, Any] | None = None
    answer: ServiceResult = field(default_factory=lambda: ServiceResult(ready=True, duration=0.5))
    served: list[ServicePlan] = field(default_factory=list)
    ran: int = 0

    def facts(self, *, filesystem: bool = False, pull: bool = False, rebuild: bool = False) -> ImageFacts:
        return image_facts(healthcheck=self.healthcheck)

    def run(
        self, args: Sequence[str] | None = None, timeout: float | None = None, *, memory: str | None = None
    ) -> RunResult:
        self.ran += 1
        return RunResult(0, "", "", argv=HTTPD)

    def serve(self, plan: ServicePlan) -> ServiceResult:
        self.served.append(plan)
        return self.answer

    def observe(self, result: CheckResult) -> CheckResult:
        return result

    def growth_baseline(self) -> tuple[BaselineEntry | None, bool]:
        return None, False


def test_evaluate_serves_with_the_runs_in_one_pool() -> None:
    image = FakeImage(healthcheck=WGET)
    spec = Spec(runs=REGISTRY.get("runs").expectation(True), serves=ServicePlan(port=8080),
                healthy=ServicePlan(healthy=True, within=None))  # fmt: skip
    results = evaluate(image, spec)
    assert [r.check for r in results] == ["runs", "serves", "healthy"]
    assert all(r.passed for r in results)
    assert image.ran == 1
    assert image.served == [ServicePlan(port=8080), ServicePlan(healthy=True, within=None)]


def test_assert_serves_raises_with_the_text() -> None:
    image = FakeImage(answer=ServiceResult(ready=False, unmet="port", seen="connection refused", waited=2))
    with pytest.raises(ImageCheckFailed, match=r"^web: serves: port 8080 accepted no connection within 2s"):
        si.assert_serves(image, 8080, within=2)
    assert image.served == [ServicePlan(port=8080, within=2.0)]
    assert si.assert_check(FakeImage(), "serves", {"log": "x"}).check == "serves"


def test_healthy_without_a_healthcheck_is_an_error_before_anything_runs() -> None:
    image = FakeImage()
    message = (
        "web: healthy needs a HEALTHCHECK; web has none (add HEALTHCHECK CMD [...] to the final stage: a command"
        " that exits 0 once the service is ready)"
    )
    with pytest.raises(SlimImageError) as info:
        si.assert_healthy(image)
    assert str(info.value) == message
    assert not isinstance(info.value, ImageCheckFailed)
    with pytest.raises(SlimImageError, match=re.escape(message)):
        evaluate(image, Spec(serves=ServicePlan(port=1), healthy=ServicePlan(healthy=True)))
    assert image.served == []  # decided before anything ran
    disabled = FakeImage(healthcheck={"Test": ["NONE"]})
    with pytest.raises(SlimImageError, match=r"has its HEALTHCHECK disabled \(HEALTHCHECK NONE\)"):
        assert_check(disabled, "healthy", True)


def test_an_interrupt_does_not_wait_for_the_service_thread() -> None:
    """The serve runs in the checks' pool; an interrupt reaching the main thread leaves at once (the
    session's end then cancels the wait, which removes the container)."""
    release = threading.Event()
    finished: list[bool] = []

    class Interrupted(FakeImage):
        def facts(self, *, filesystem: bool = False, pull: bool = False, rebuild: bool = False) -> ImageFacts:
            raise KeyboardInterrupt

        def serve(self, plan: ServicePlan) -> ServiceResult:
            release.wait(60)
            finished.append(True)
            return self.answer

    try:
        with pytest.raises(KeyboardInterrupt):
            evaluate(Interrupted(), Spec(serves=ServicePlan(port=8080)))
        assert finished == []  # evaluate did not wait for the serve
    finally:
        release.set()
