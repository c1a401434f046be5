"""``lint``: the Dockerfile lints (SI001-SI004) on the image's Dockerfile, rules to ignore by id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from pytest_slimimage.checks.check import DOCKERFILE, Check, ParseContext, suggest
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.dockerfile.lint import RULES, lint
from pytest_slimimage.facts import ImageFacts


def check_lint(facts: ImageFacts, ignore: Sequence[str] = ()) -> CheckResult:
    """The image's Dockerfile has no lint finding, except for the rules in ``ignore``."""
    if isinstance(ignore, str):
        ignore = (ignore,)
    ignored = sorted({str(rule).strip().upper() for rule in ignore})
    unknown = [rule for rule in ignored if rule not in RULES]
    if unknown:
        raise ValueError(f"lint: unknown rule id(s) in ignore: {', '.join(unknown)} (known: {', '.join(RULES)})")
    if facts.dockerfile is None:
        raise ValueError(
            f"lint needs the image's Dockerfile; {facts.name} was not built from one"
            " (for an existing image, pass the dockerfile= it was built from)"
        )
    dockerfile = facts.dockerfile
    checked = [rule for rule in RULES if rule not in ignored]
    all_findings = lint(dockerfile)
    findings = [f for f in all_findings if f.rule not in ignored]
    details: dict[str, Any] = {
        "findings": [asdict(f) for f in findings],
        "rules": checked,
        "ignore": ignored,
        "ignored_findings": len(all_findings) - len(findings),
    }
    if not findings:
        headline = f"{facts.name}: lint: no findings ({len(checked)} rules checked: {', '.join(checked) or 'none'}"
        headline += f"; ignored: {', '.join(ignored)})" if ignored else ")"
        return CheckResult("lint", facts.name, True, headline, details=details)
    ids = sorted({f.rule for f in findings})
    evidence: list[str] = []
    for f in findings:
        evidence += [f"{dockerfile.path}:{f.line}: {f.rule} {f.message}", f"  {f.instruction}", f"  fix: {f.fix}"]
    return CheckResult(
        "lint",
        facts.name,
        False,
        f"{facts.name}: lint: {len(findings)} finding(s) ({', '.join(ids)})",
        tuple(evidence),
        f"apply the fix under each finding; a rule broken on purpose can be ignored by its id ({', '.join(ids)})",
        details,
    )


def _parse(value: object, context: ParseContext) -> tuple[str, ...] | None:
    """``True``, ``False``, a list of rule ids to ignore, or ``{"ignore": [...]}``."""
    if value is True:
        return ()
    if value is False:
        return None
    given = value.get("ignore", ()) if isinstance(value, Mapping) and set(value) <= {"ignore"} else value
    if not isinstance(given, (list, tuple)) or not all(isinstance(rule, str) for rule in given):
        raise ValueError(f"expects True, False, a list of rule ids to ignore, or {{'ignore': [...]}}, got {value!r}")
    ignore = tuple(rule.strip().upper() for rule in given)  # as check_lint reads them
    unknown = [rule for rule in ignore if rule not in RULES]
    if unknown:
        raise ValueError(f"unknown rule id {unknown[0]!r}{suggest(unknown[0], RULES)}; rules: {', '.join(RULES)}")
    return ignore


LINT: Check[tuple[str, ...]] = Check(
    "lint",
    check_lint,
    parse=_parse,
    needs=frozenset({DOCKERFILE}),
    value="`True`, or a list of rule ids to ignore",
    passes="no Dockerfile lint: SI001 relative `COPY --from` source, SI002 shell-form CMD/ENTRYPOINT,"
    " SI003 single-quoted JSON, SI004 untagged or `latest` final base",
    helper="assert_no_lint",
    helper_param="ignore",
    helper_default=(),
    builtin=True,
)
