"""``max_size`` and ``warn_size``: the image's size against a budget (hard) and a soft budget."""

from __future__ import annotations

from typing import Any

from pytest_slimimage.analysis.attribution import layer_lines
from pytest_slimimage.analysis.waste import format_waste_lines, layer_origins
from pytest_slimimage.checks.check import FILESYSTEM, Check, ParseContext
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import ImageFacts
from pytest_slimimage.sizes import format_delta, format_size, parse_size


def check_max_size(facts: ImageFacts, limit: int | str) -> CheckResult:
    """The image's size (the engine's ``Size``, what ``docker images`` shows) is at most ``limit``."""
    budget = parse_size(limit)
    details = {"actual": facts.size, "limit": budget}
    if facts.size <= budget:
        return passing(
            "max_size",
            facts,
            f"{format_size(facts.size)} within {format_size(budget)} (headroom {format_size(budget - facts.size)})",
            **details,
        )
    over = facts.size - budget
    evidence = ["largest layers:", *layer_lines(facts)]
    if facts.waste is not None and facts.waste.wasted_bytes:
        evidence += format_waste_lines(facts.waste, 3, layer_origins(facts, facts.waste))
    base = facts.dockerfile.final_base if facts.dockerfile else None
    if base and base != "scratch" and facts.base_size is not None:
        evidence.append(f"the final base {base} alone is {format_size(facts.base_size)}")
    if base and base != "scratch" and facts.base_size is not None and facts.base_size > budget:
        hint = (
            f"the base image {base} is already over the budget: copy the built artifact into a smaller final"
            " stage (FROM scratch with a static binary, busybox, or a distroless image)"
        )
    else:
        hint = (
            "shrink the largest layers above: build in a separate stage and COPY --from only the artifact;"
            " clean package caches in the same RUN that creates them"
        )
    return CheckResult(
        "max_size",
        facts.name,
        False,
        f"{facts.name}: max_size: {format_size(facts.size)} ({facts.size} bytes) exceeds the budget of"
        f" {format_size(budget)} by {format_delta(over)}",
        tuple(evidence),
        hint,
        details,
    )


def check_warn_size(facts: ImageFacts, limit: int | str) -> CheckResult:
    """A soft budget: never fails; over ``limit`` the result carries a warning (``details["warning"]``)."""
    soft = parse_size(limit)
    details: dict[str, Any] = {"actual": facts.size, "warn_size": soft}
    if facts.size <= soft:
        return passing(
            "warn_size", facts, f"{format_size(facts.size)} within the soft budget of {format_size(soft)}", **details
        )
    warning = (
        f"{facts.name}: {format_size(facts.size)} is over its soft budget of {format_size(soft)}"
        f" by {format_delta(facts.size - soft)} (warn_size; not a failure)"
    )
    details["warning"] = warning
    return CheckResult(
        "warn_size", facts.name, True, warning, tuple(["largest layers:", *layer_lines(facts)]), "", details
    )


def parse_budget(value: object, context: ParseContext) -> int | None:
    """A size in bytes (int) or in ``docker images`` units (``"16kB"``, ``"74 MB"``, ``"1.5GiB"``)."""
    return parse_size(value)  # type: ignore[arg-type]


def _budget_column(result: CheckResult) -> dict[str, Any]:
    limit = result.details.get("limit")
    return {"limit": limit} if isinstance(limit, int) else {}


def _soft_budget_column(result: CheckResult) -> dict[str, Any]:
    soft = result.details.get("warn_size")
    return {"warn_size": soft} if isinstance(soft, int) else {}


MAX_SIZE: Check[int] = Check(
    "max_size",
    check_max_size,
    parse=parse_budget,
    per_platform=True,
    explain_with=frozenset({FILESYSTEM}),
    value='bytes (int) or `"16kB"`, `"74 MB"`, `"1.5GiB"`; or one per platform:'
    ' `{"linux/amd64": "20MB", "linux/arm64": "22MB"}`',
    passes="`image.size <= limit` (kB/MB/GB are 1000ⁿ, KiB/MiB/GiB 1024ⁿ, case-insensitive)",
    helper_param="limit",
    record=_budget_column,
    builtin=True,
)
WARN_SIZE: Check[int] = Check(
    "warn_size",
    check_warn_size,
    parse=parse_budget,
    per_platform=True,
    value="a size",
    passes="never fails; above it, a `SlimImageWarning`",
    helper_param="limit",
    record=_soft_budget_column,
    builtin=True,
)
