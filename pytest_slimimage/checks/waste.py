"""``max_waste``: bytes written by one layer and overwritten or deleted by a later one."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_slimimage.analysis.waste import (
    OVERWRITTEN,
    TOP_PATHS,
    Origin,
    WasteReport,
    _percent,
    format_waste_lines,
    layer_origins,
    parse_waste_limit,
)
from pytest_slimimage.checks.check import FILESYSTEM, Check, ParseContext
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.facts import ImageFacts
from pytest_slimimage.sizes import format_size

APT_DIRS = ("/var/lib/apt/lists/", "/var/cache/apt/")


def check_max_waste(facts: ImageFacts, limit: int | str) -> CheckResult:
    """The bytes the image's layers store but its final filesystem no longer reaches are at most
    ``limit``: bytes, a size (``"20MB"``), or a percentage of all the bytes written (``"10%"``)."""
    allowed = parse_waste_limit(limit)
    report = facts.waste
    if not isinstance(report, WasteReport):
        raise ValueError(f"max_waste needs the layers of {facts.name}, which were not indexed")
    budget = allowed.allowance(report.total_bytes)
    shown_limit = allowed.describe(report.total_bytes)
    wasted, total = report.wasted_bytes, report.total_bytes
    details = {
        "wasted": wasted,
        "total": total,
        "efficiency": round(report.efficiency, 4),
        "limit": budget,
        "limit_text": str(allowed),
        "paths": report.to_json(top=TOP_PATHS)["paths"],
    }
    if wasted <= budget:
        return CheckResult(
            "max_waste",
            facts.name,
            True,
            f"{facts.name}: max_waste: {format_size(wasted)} wasted, efficiency {report.efficiency * 100:.1f}%,"
            f" within the limit of {shown_limit}",
            details=details,
        )
    origins = layer_origins(facts, report)
    return CheckResult(
        "max_waste",
        facts.name,
        False,
        f"{facts.name}: max_waste: {format_size(wasted)} wasted ({_percent(wasted, total)} of"
        f" {format_size(total)}), over the limit of {shown_limit}",
        tuple(format_waste_lines(report, TOP_PATHS, origins)),
        waste_hint(report, origins),
        details,
    )


def waste_hint(report: WasteReport, origins: Sequence[Origin] = ()) -> str:
    """The one fix most of the waste calls for."""
    wasted = report.wasted_bytes or 1
    base = sum(la.wasted for la in report.layers if la.number < len(origins) and origins[la.number].from_base)
    apt = sum(it.wasted for it in report.items if it.path.startswith(APT_DIRS))
    overwritten = sum(it.wasted for it in report.items if it.ended == OVERWRITTEN)
    if base * 2 >= wasted:
        return (
            "most of the waste is in the base image's layers, which later layers cannot shrink: start from a"
            " smaller base, or COPY --from only what the program needs into a fresh final stage"
        )
    if apt * 4 >= wasted:
        return (
            "run apt-get update, apt-get install and rm -rf /var/lib/apt/lists/* in one RUN: a later RUN rm"
            " hides the package lists but their layer still ships them"
        )
    if overwritten * 2 > wasted:
        return (
            "write each file in one layer: set owner and mode as you copy (COPY --chown/--chmod) instead of"
            " a later RUN chown/chmod, which stores every file again"
        )
    return (
        "delete temporary files in the same RUN that creates them (a later RUN rm hides them but their"
        " layer still ships them), or build in a separate stage and COPY --from only the result"
    )


def _parse(value: object, context: ParseContext) -> int | str:
    parse_waste_limit(value)
    return value  # type: ignore[return-value]


MAX_WASTE: Check[int | str] = Check(
    "max_waste",
    check_max_waste,
    parse=_parse,
    needs=frozenset({FILESYSTEM}),
    value='bytes, `"10MB"` or `"5%"`',
    passes="at most this much written by one layer and overwritten or deleted by a later one"
    " (N-1 copies of an overwritten file)",
    helper_param="limit",
    builtin=True,
)
