"""``serves``: the image, run as shipped, becomes ready within ``within`` seconds: its ``port``
accepts connections, ``http`` answers ``status`` (and ``body``), ``log`` shows in its output.

The waiting is the engine adapter's (:mod:`pytest_slimimage.engine.services`); this module
validates what is asked and says what was seen. The evidence shared with ``healthy`` (the
command, the container's log, the static diagnosis of a container that died) is made here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pytest_slimimage.analysis.runnable import diagnose, render
from pytest_slimimage.checks.check import FILESYSTEM, SERVICE, Check, ParseContext, suggest
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.runs import is_json_pitfall, run_hint, shown_line, tail
from pytest_slimimage.facts import DEFAULT_SERVICE_WITHIN, ImageFacts, RunResult, ServicePlan, ServiceResult

KEYS = ("port", "http", "status", "body", "body_regex", "log", "log_regex", "within")
"""What a ``serves`` dict may hold (``*_regex``: a pattern as text, for TOML)."""
BODY_LINES = 10
"""Lines of an HTTP body a failure shows."""
LOG_LINES = 20
"""Lines of the container's output a failure shows."""


def parse_serves(value: object, context: ParseContext | None = None) -> ServicePlan | None:
    """``serves=8080`` (a port), or a dict: ``port`` (required unless ``log`` alone), ``http`` (a
    path), ``status`` (default 200), ``body`` (str or compiled regex; ``body_regex`` as text),
    ``log`` (str or compiled regex; ``log_regex`` as text), ``within`` (seconds, default 30)."""
    if value is None or value is False:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"port": value}
    if not isinstance(value, Mapping):
        raise ValueError(
            f"serves expects a port (an int) or a dict of port, http, status, body, log and within; got {value!r}"
        )
    unknown = [key for key in value if key not in KEYS]
    if unknown:
        named = ", ".join(f"{key!r}{suggest(str(key), KEYS)}" for key in unknown)
        raise ValueError(f"unknown key(s) {named}; expected {', '.join(KEYS)}")
    port = value.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise ValueError(f"port expects a container port (an int from 1 to 65535), got {port!r}")
    http = value.get("http")
    if http is not None and (not isinstance(http, str) or not http.startswith("/")):
        raise ValueError(f"http expects a path starting with / (http='/health'), got {http!r}")
    status = value.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"status expects an HTTP status (an int from 100 to 599), got {status!r}")
    body = _text_or_regex(value, "body")
    log = _text_or_regex(value, "log")
    within = value.get("within", DEFAULT_SERVICE_WITHIN)
    if isinstance(within, bool) or not isinstance(within, (int, float)) or within <= 0:
        raise ValueError(f"within expects a positive number of seconds, got {within!r}")
    if http is None:
        asked = [key for key in ("status", "body", "body_regex") if key in value]
        if asked:
            raise ValueError(f"{' and '.join(asked)} {'needs' if len(asked) == 1 else 'need'} http= (the path to GET)")
    if port is None and (http is not None or log is None):
        raise ValueError("serves needs the container's port (or log= alone)" + (" for http=" if http else ""))
    return ServicePlan(port=port, http=http, status=status, body=body, log=log, within=float(within))


def _text_or_regex(value: Mapping[str, Any], key: str) -> str | re.Pattern[str] | None:
    text, pattern = value.get(key), value.get(f"{key}_regex")
    if text is not None and pattern is not None:
        raise ValueError(f"give {key} or {key}_regex, not both")
    if pattern is not None:
        if isinstance(pattern, re.Pattern):
            return pattern
        if not isinstance(pattern, str):
            raise ValueError(f"{key}_regex expects a pattern as a str, got {pattern!r}")
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{key}_regex is not a valid regex ({exc}): {pattern!r}") from None
    if text is not None and not isinstance(text, (str, re.Pattern)):
        raise ValueError(f"{key} expects a str or a compiled regex, got {text!r}")
    if key == "log" and text == "":
        raise ValueError("log expects a text to look for, got ''")
    return text


def serves_value(
    port: int | None = None,
    *,
    http: str | None = None,
    status: int = 200,
    body: str | re.Pattern[str] | None = None,
    log: str | re.Pattern[str] | None = None,
    within: float | None = None,
) -> object:
    """``assert_serves``' arguments as the marker keyword's value."""
    value: dict[str, object] = {"port": port, "http": http, "body": body, "log": log, "within": within}
    if status != 200 or http is not None:
        value["status"] = status
    return {key: item for key, item in value.items() if item is not None}


def shown(expected: str | re.Pattern[str], limit: int = 80) -> str:
    """A value for a headline: a regex as re.compile(...), a long text cut to ``limit`` characters."""
    if isinstance(expected, re.Pattern):
        return f"re.compile({expected.pattern!r})"
    text = expected.rstrip("\r\n")
    return repr(text[:limit]) + (f"... ({len(text)} characters)" if len(text) > limit else "")


def _reached(plan: ServicePlan, unmet: str) -> str:
    """The condition ``unmet`` as met: what a container that died did not get to."""
    if unmet == "log" and plan.log is not None:
        return f"the log showed {shown(plan.log)}"
    if unmet == "http" or (unmet == "port" and plan.http is not None):
        return f"GET {plan.http} answered {plan.status}" + (" with the expected body" if plan.body is not None else "")
    if unmet == "healthy" or plan.healthy:
        return "its HEALTHCHECK reported healthy"
    return f"port {plan.port} accepted a connection"


def death(plan: ServicePlan, result: ServiceResult) -> str:
    """``the container exited with code 3 before port 8080 accepted a connection``."""
    if result.oom_killed:
        how = "was killed by the sandbox's memory limit (out of memory)"
    else:
        how = f"exited with code {result.exit_code}"
    return f"the container {how} before {_reached(plan, result.unmet)}"


def _headline(plan: ServicePlan, result: ServiceResult) -> str:
    within = f"{result.waited:g}s"
    if result.start_error:
        return "the container did not start"
    if result.exited:
        return death(plan, result)
    if result.unmet == "log" and plan.log is not None:
        return f"the log did not show {shown(plan.log)} within {within}"
    if plan.http is not None and result.unmet in ("http", "port"):
        if result.status is None:
            return f"GET {plan.http} got no answer within {within}: {result.seen}"
        if result.status != plan.status:
            return f"GET {plan.http} answered {result.status}, expected {plan.status} (for {within})"
        expected = shown(plan.body) if plan.body is not None else "another body"
        return f"GET {plan.http} answered {result.status} with another body, expected {expected} (for {within})"
    return f"port {plan.port} accepted no connection within {within}: {result.seen}"


def common_evidence(facts: ImageFacts, result: ServiceResult) -> list[str]:
    """The command, and how the container ended when it did."""
    evidence = [f"command: {json.dumps(list(result.argv)) if result.argv else '(none)'}"]
    if result.start_error:
        evidence.append(f"engine: {result.start_error}")
    elif result.exited:
        note = " (OOMKilled: over the memory limit)" if result.oom_killed else ""
        evidence.append(f"exit code: {result.exit_code}{note}")
    return evidence


def log_evidence(result: ServiceResult) -> list[str]:
    """The container's last output lines."""
    if result.start_error:
        return []
    if not result.logs:
        return ["container log: (empty)"]
    return ["container log (last lines):", *(f"  | {line}" for line in tail(result.logs, LOG_LINES))]


def diagnosis(facts: ImageFacts, result: ServiceResult, hint: str) -> tuple[list[str], str]:
    """For a container that died or did not start, on facts with the filesystem: the static
    diagnosis of why its program cannot start (as ``runs`` shows it), and its hint."""
    if not (result.exited or result.start_error) or facts.filesystem is None:
        return [], hint
    problems = diagnose(facts, engine_arch=facts.engine_arch)
    if problems and not is_json_pitfall(result.argv):
        hint = problems[0].hint or hint
    return render(problems), hint


def death_hint(facts: ImageFacts, result: ServiceResult, port: int | None) -> str:
    """The likely fix when the container did not start or exited before it was ready."""
    as_run = RunResult(result.exit_code or -1, result.logs, "", argv=result.argv, start_error=result.start_error)
    if result.oom_killed or result.start_error or is_json_pitfall(result.argv):
        return run_hint(facts, as_run)
    publish = f" -p {port}" if port else ""
    return (
        f"the program exited before it was ready: read its log above, and run it by hand (docker run --rm{publish}"
        " IMAGE); a service must stay in the foreground (httpd -f, nginx -g 'daemon off;', no & at the end)"
    )


def _hint(facts: ImageFacts, plan: ServicePlan, result: ServiceResult) -> str:
    if result.start_error or result.exited:
        return death_hint(facts, result, plan.port)
    slow = " (under emulation a program starts several times slower)" if result.emulation else ""
    if result.unmet == "log" and plan.log is not None:
        return (
            "the output does not show it: check the text (a str is looked for as it is, a regex with re.search)"
            f" and that the program logs to stdout or stderr, not to a file; or raise within= if it starts slowly{slow}"
        )
    if result.status is not None and result.status != plan.status:
        return (
            f"the service answers {result.status} on {plan.http}: read its log and the body above; if {result.status}"
            f" is right, expect it with status={result.status}"
        )
    if result.status is not None:
        return (
            "the service answers with another body: compare it with the body above, or match part of it with a"
            " compiled regex (body=re.compile(...))"
        )
    return (
        f"nothing answered on port {plan.port} in the container: make the program listen on 0.0.0.0:{plan.port}"
        " (127.0.0.1 inside the container cannot be reached through a published port) and on that port;"
        f" or raise within= if it starts slowly{slow}"
    )


def _details(result: ServiceResult) -> dict[str, Any]:
    return {
        "argv": list(result.argv),
        "container": result.container,
        "ready": result.ready,
        "unmet": result.unmet,
        "seen": result.seen,
        "exit_code": result.exit_code,
        "status": result.status,
        "health": result.health,
        "port": result.port,
        "host_port": result.host_port,
        "duration": round(result.duration, 3),
        "within": result.waited,
    }


def emulated(text: str, result: ServiceResult) -> str:
    """``text`` with how a foreign platform ran, when it was emulated."""
    return f"{text} ({result.emulation})" if result.emulation else text


def need_service(facts: ImageFacts, check: str) -> ServiceResult:
    if facts.service is None:
        raise ValueError(f"{check} needs a service run of {facts.name}, and none was made")
    return facts.service


def check_serves(facts: ImageFacts, plan: ServicePlan) -> CheckResult:
    """The container, run as shipped (``facts.service``), was ready within ``plan.within``: its
    port accepted connections, its HTTP path answered as expected, its log showed the text. A
    failure says which condition was not met and what was seen instead; for a container that died,
    on facts with the filesystem, with the static diagnosis of why its program cannot start."""
    result = need_service(facts, "serves")
    details = _details(result)
    if result.ready:
        met = []
        if plan.http is not None:
            body = " with the expected body" if plan.body is not None else ""
            met.append(f"GET {plan.http} answered {result.status}{body}")
        elif plan.port is not None:
            met.append(f"port {plan.port} accepted a connection")
        if plan.log is not None:
            met.append(f"the log showed {shown(plan.log)}")
        where = f" ({result.host}:{result.host_port})" if result.host_port else ""
        headline = f"{facts.name}: serves: ready after {result.duration:.1f}s: {', '.join(met)}{where}"
        return CheckResult("serves", facts.name, True, emulated(headline, result), details=details)
    evidence = common_evidence(facts, result)
    if plan.port is not None:
        evidence.append(f"port: {plan.port}/tcp, published on 127.0.0.1 only (a bridge network)")
    if result.body and result.unmet in ("http", "port"):
        evidence.append(f"body (first {BODY_LINES} lines):")
        evidence += [f"  | {shown_line(line)}" for line in result.body.rstrip("\n").split("\n")[:BODY_LINES]]
    elif result.status is not None and result.unmet in ("http", "port"):
        evidence.append("body: (empty)")
    evidence += log_evidence(result)
    found, hint = diagnosis(facts, result, _hint(facts, plan, result))
    evidence += found
    headline = emulated(f"{facts.name}: serves: {_headline(plan, result)}", result)
    return CheckResult("serves", facts.name, False, headline, tuple(evidence), hint, details)


SERVES: Check[ServicePlan] = Check(
    "serves",
    check_serves,
    parse=parse_serves,
    needs=frozenset({SERVICE}),
    explain_with=frozenset({FILESYSTEM}),
    value="a port (int), or a dict of `assert_serves` arguments (`body_regex`, `log_regex` as text)",
    passes="run as shipped, within `within` seconds (30) its port (published on 127.0.0.1) accepts connections,"
    " `http` answers `status` (and `body`), `log` shows in its output; a failure says what was seen",
    helper_param="port",
    helper_value=serves_value,
    builtin=True,
)
