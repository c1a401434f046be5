"""``max_growth``: the image grew by at most an allowance over its recorded size baseline."""

from __future__ import annotations

import re
from typing import Any

from pytest_slimimage.analysis.attribution import TOP_LAYERS
from pytest_slimimage.analysis.secrets import mask_text
from pytest_slimimage.baseline import BaselineEntry, Growth, parse_growth
from pytest_slimimage.checks.check import BASELINE, Check, ParseContext
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import ImageFacts
from pytest_slimimage.sizes import format_delta, format_size


def check_max_growth(facts: ImageFacts, growth: Growth) -> CheckResult:
    """The image grew by at most ``growth`` over its recorded baseline size (``facts.baseline``;
    ``facts.baseline_updating``: this session records the baseline, so the check passes)."""
    baseline, updating = facts.baseline, facts.baseline_updating
    details: dict[str, Any] = {"actual": facts.size, "max_growth": str(growth)}
    if updating:
        details["baseline"] = facts.size
        return passing("max_growth", facts, f"baseline updated to {format_size(facts.size)}", **details)
    if baseline is None:
        return CheckResult(
            "max_growth",
            facts.name,
            False,
            f"{facts.name}: max_growth: no baseline entry for this image",
            (),
            "record one with --slimimage-update-baseline (and commit the baseline file)",
            details,
        )
    allowed = growth.allowance(baseline.size)
    delta = facts.size - baseline.size
    percent = (delta / baseline.size * 100) if baseline.size else 0.0
    details.update(baseline=baseline.size, delta=delta, allowed=allowed)
    shown = (
        f"{format_size(facts.size)} vs baseline {format_size(baseline.size)}: {format_delta(delta)} ({percent:+.1f}%)"
    )
    if delta <= allowed:
        return passing("max_growth", facts, f"{shown}, within the allowed growth of {growth}", **details)
    evidence = ["layer changes since the baseline:", *_layer_changes(facts, baseline)]
    return CheckResult(
        "max_growth",
        facts.name,
        False,
        f"{facts.name}: max_growth: grew {format_delta(delta)} ({percent:+.1f}%) over its baseline of"
        f" {format_size(baseline.size)}, more than the allowed {growth}",
        tuple(evidence),
        "shrink the layers that grew, or accept the new size with --slimimage-update-baseline",
        details,
    )


_content_hashes = re.compile(r"\b(file|dir|multi):[0-9a-f]{64}\b")
"""The legacy builder names COPY sources by content hash; a changed file is the same instruction."""


def _layer_changes(facts: ImageFacts, baseline: BaselineEntry) -> list[str]:
    """Per-instruction size changes between the baseline's layers and the image's."""
    before: dict[str, int] = {}
    for old in baseline.layers:
        key = _content_hashes.sub(r"\1:…", old.instruction)
        before[key] = before.get(key, 0) + old.size
    after: dict[str, int] = {}
    for new in facts.layers:
        if new.size:
            key = _content_hashes.sub(r"\1:…", new.instruction)
            after[key] = after.get(key, 0) + new.size
    rows = []
    for instruction in set(before) | set(after):
        change = after.get(instruction, 0) - before.get(instruction, 0)
        if change:
            status = "new" if instruction not in before else "gone" if instruction not in after else "changed"
            rows.append((change, instruction, status))
    rows.sort(key=lambda row: -abs(row[0]))
    out = []
    for change, instruction, status in rows[:TOP_LAYERS]:
        text = mask_text(instruction)
        text = text if len(text) <= 90 else text[:87] + "..."
        out.append(f"{format_delta(change):>9}  {text}  ({status})")
    return out or ["(no layer-level change recorded)"]


def _parse(value: object, context: ParseContext) -> Growth:
    return parse_growth(value)


def _growth_column(result: CheckResult) -> dict[str, Any]:
    return {"max_growth": str(result.details.get("max_growth"))}


MAX_GROWTH: Check[Growth] = Check(
    "max_growth",
    check_max_growth,
    parse=_parse,
    needs=frozenset({BASELINE}),
    value='`"5%"`, `"2MB"`, bytes',
    passes="at most this much over the size baseline (`--slimimage-baseline`)",
    helper_param="growth",
    record=_growth_column,
    builtin=True,
)
