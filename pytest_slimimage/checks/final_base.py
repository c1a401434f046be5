"""``final_base``: the final build stage's external base image."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_slimimage.checks.check import DOCKERFILE, Check, ParseContext
from pytest_slimimage.checks.result import CheckResult, need_dockerfile, passing
from pytest_slimimage.dockerfile.model import parse_ref
from pytest_slimimage.facts import ImageFacts


def check_final_base(facts: ImageFacts, expected: str | Sequence[str]) -> CheckResult:
    """The final stage's external base (``FROM <stage>`` chains followed) is one of ``expected``."""
    wanted = [expected] if isinstance(expected, str) else list(expected)
    if not wanted or not all(isinstance(w, str) and w.strip() for w in wanted):
        raise ValueError(f"final_base expects an image name or a list of them, got {expected!r}")
    dockerfile = need_dockerfile(facts, "final_base")
    actual = dockerfile.final_base
    shown = " or ".join(wanted)
    details = {"actual": actual, "expected": wanted}
    if any(parse_ref(actual).matches(parse_ref(w)) for w in wanted):
        return passing("final_base", facts, f"final stage is FROM {actual} (expected {shown})", **details)
    final = dockerfile.final_stage
    evidence = [f"final stage: {final.label}, {final.from_instruction.text} ({dockerfile.path}, "
                f"{final.from_instruction.location})"]  # fmt: skip
    chain = dockerfile.chain()
    if len(chain) > 1:
        evidence.append("FROM chain: " + " <- ".join([st.label for st in chain] + [actual]))
    if dockerfile.target:
        evidence.append(f"build target: {dockerfile.target}")
    return CheckResult(
        "final_base",
        facts.name,
        False,
        f"{facts.name}: final_base: the final stage is FROM {actual}, expected {shown}",
        tuple(evidence),
        f"end the Dockerfile with a stage FROM {wanted[0]} that copies in only what the program needs"
        " (COPY --from=<build stage> /absolute/path ...)",
        details,
    )


def _parse(value: object, context: ParseContext) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else None
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"final_base expects an image name or a list of names, got {value!r}")
    return names


FINAL_BASE: Check[tuple[str, ...]] = Check(
    "final_base",
    check_final_base,
    parse=_parse,
    needs=frozenset({DOCKERFILE}),
    value="a name or a list",
    passes="the final stage (or `target`), `FROM <stage>` chains followed, is FROM one of them;"
    " a bare name matches any tag",
    helper_param="expected",
    builtin=True,
)
