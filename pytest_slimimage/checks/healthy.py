"""``healthy``: the image, run as shipped, is reported healthy by its own ``HEALTHCHECK`` within the
time its timing allows (or ``within``). An image without a HEALTHCHECK cannot be checked, which
:mod:`pytest_slimimage.checks.evaluate` says before anything runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_slimimage.checks.check import FILESYSTEM, SERVICE, Check, ParseContext, suggest
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.runs import shown_line
from pytest_slimimage.checks.serves import (
    common_evidence,
    death,
    death_hint,
    diagnosis,
    emulated,
    log_evidence,
    need_service,
)
from pytest_slimimage.facts import HEALTH_MARGIN, Healthcheck, ImageFacts, ServicePlan, ServiceResult

KEYS = ("within",)
PROBE_LINES = 3
"""Lines of one probe's output a failure shows."""


def parse_healthy(value: object, context: ParseContext | None = None) -> ServicePlan | None:
    """``True`` (within the HEALTHCHECK's own timing) or ``{"within": seconds}``."""
    if value is None or value is False:
        return None
    if value is True:
        return ServicePlan(healthy=True, within=None)
    if not isinstance(value, Mapping):
        raise ValueError(f"healthy expects True or a dict {{'within': seconds}}, got {value!r}")
    unknown = [key for key in value if key not in KEYS]
    if unknown:
        named = ", ".join(f"{key!r}{suggest(str(key), KEYS)}" for key in unknown)
        raise ValueError(f"unknown key(s) {named}; expected {', '.join(KEYS)}")
    within = value.get("within")
    if within is not None and (isinstance(within, bool) or not isinstance(within, (int, float)) or within <= 0):
        raise ValueError(f"within expects a positive number of seconds, got {within!r}")
    return ServicePlan(healthy=True, within=float(within) if within is not None else None)


def healthy_value(within: float | None = None) -> object:
    """``assert_healthy``' arguments as the marker keyword's value."""
    return True if within is None else {"within": within}


def timing(healthcheck: Healthcheck) -> str:
    """``CMD ["wget", ...] (every 1s, timeout 30s, unhealthy after 2 failures)``."""
    start = f", start period {healthcheck.start_period:g}s" if healthcheck.start_period else ""
    return (
        f"{healthcheck.command} (every {healthcheck.interval:g}s, timeout {healthcheck.timeout:g}s{start},"
        f" unhealthy after {healthcheck.retries} failure{'s' if healthcheck.retries != 1 else ''})"
    )


def _waited(plan: ServicePlan, result: ServiceResult, healthcheck: Healthcheck | None) -> str:
    if plan.within is not None or healthcheck is None:
        return f"waited: up to {result.waited:g}s (within={result.waited:g})"
    return (
        f"waited: up to {result.waited:g}s (its start period, then {healthcheck.retries} probes of up to"
        f" {healthcheck.timeout:g}s {healthcheck.interval:g}s apart, plus {HEALTH_MARGIN:g}s)"
    )


def _probes(result: ServiceResult) -> list[str]:
    if not result.health_log:
        health = "" if result.exited else f"; health: {result.health or 'none'}"  # an exit makes it unhealthy
        return [f"health log: (no probe ran{health})"]
    lines = [f"health log (last {len(result.health_log)} probes, oldest first):"]
    for probe in result.health_log:
        output = [row for row in probe.output.strip("\n").split("\n") if row.strip()] or ["(no output)"]
        lines.append(f"  | exit {probe.exit_code}: {shown_line(output[0])}")
        lines += [f"  |   {shown_line(row)}" for row in output[1:PROBE_LINES]]
        if len(output) > PROBE_LINES:
            lines.append(f"  |   ... ({len(output) - PROBE_LINES} more lines)")
    return lines


def _hint(facts: ImageFacts, result: ServiceResult) -> str:
    if result.start_error or result.exited:
        return death_hint(facts, result, None)
    outputs = " ".join(probe.output for probe in result.health_log).lower()
    if "executable file not found" in outputs or "no such file or directory" in outputs:
        return (
            "the HEALTHCHECK's program is not in the image: use one the image has (busybox wget,"
            " the service's own binary with a check flag) or add it to the final stage"
        )
    if result.health == "unhealthy":
        return (
            "the HEALTHCHECK command fails in the container: read its output above, and run it by hand"
            " (docker exec CONTAINER <its command>) against the running service"
        )
    slow = " (under emulation a program starts several times slower)" if result.emulation else ""
    return (
        "the HEALTHCHECK did not say healthy in time: raise within=, or shorten its --start-period and"
        f" --interval{slow}"
    )


def check_healthy(facts: ImageFacts, plan: ServicePlan) -> CheckResult:
    """The container, run as shipped (``facts.service``), was reported healthy by its HEALTHCHECK in
    time. A failure shows the health log (each probe's exit code and output)."""
    result = need_service(facts, "healthy")
    healthcheck = facts.config.healthcheck
    details: dict[str, Any] = {
        "argv": list(result.argv),
        "container": result.container,
        "ready": result.ready,
        "health": result.health,
        "exit_code": result.exit_code,
        "probes": [{"exit_code": p.exit_code, "output": p.output} for p in result.health_log],
        "duration": round(result.duration, 3),
        "within": result.waited,
    }
    if result.ready:
        headline = f"{facts.name}: healthy: its HEALTHCHECK reported healthy after {result.duration:.1f}s"
        return CheckResult("healthy", facts.name, True, emulated(headline, result), details=details)
    if result.start_error:
        what = "the container did not start"
    elif result.exited:
        what = death(plan, result)
    elif result.health == "unhealthy":
        what = "its HEALTHCHECK reported unhealthy"
    else:
        what = f"its HEALTHCHECK did not report healthy within {result.waited:g}s (health: {result.health or 'none'})"
    evidence = common_evidence(facts, result)
    if healthcheck is not None:
        evidence.append(f"healthcheck: {timing(healthcheck)}")
    if not result.start_error:
        if not result.exited and result.health != "unhealthy":
            evidence.append(_waited(plan, result, healthcheck))
        evidence += _probes(result)
    evidence += log_evidence(result)
    found, hint = diagnosis(facts, result, _hint(facts, result))
    evidence += found
    headline = emulated(f"{facts.name}: healthy: {what}", result)
    return CheckResult("healthy", facts.name, False, headline, tuple(evidence), hint, details)


HEALTHY: Check[ServicePlan] = Check(
    "healthy",
    check_healthy,
    parse=parse_healthy,
    needs=frozenset({SERVICE}),
    explain_with=frozenset({FILESYSTEM}),
    value="`True`, or `{'within': seconds}`",
    passes="run as shipped, the image's own HEALTHCHECK reports healthy within the time its timing allows"
    " (start period + retries x (interval + timeout) + 5 s) or `within`; a failure shows the health log",
    helper_param="within",
    helper_default=True,
    helper_value=healthy_value,
    builtin=True,
)
