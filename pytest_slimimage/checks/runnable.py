"""``runnable``: the image's entrypoint would start, found by reading its layers (no container)."""

from __future__ import annotations

import json
from typing import Any

from pytest_slimimage.analysis.runnable import examine, render
from pytest_slimimage.checks.check import FILESYSTEM, Check, parse_flag
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.facts import ImageFacts


def check_runnable(facts: ImageFacts, expected: bool = True, *, engine_arch: str | None = None) -> CheckResult:
    """The image as shipped would start: its program exists and is executable, and its ``#!``
    interpreter, ELF loader and libraries are in the image and match the architecture (of
    ``engine_arch``, default ``facts.engine_arch``)."""
    engine_arch = engine_arch or facts.engine_arch
    if facts.filesystem is None:
        raise ValueError(f"runnable needs the filesystem of {facts.name}, which was not indexed")
    diagnosis = examine(facts, engine_arch=engine_arch)
    problems = diagnosis.problems
    argv = list(diagnosis.argv)
    details: dict[str, Any] = {
        "argv": argv,
        "program": diagnosis.program,
        "static": diagnosis.static,
        "loader": diagnosis.loader,
        "problems": [{"code": p.code, "message": p.message} for p in problems],
    }
    if not problems:
        return CheckResult(
            "runnable",
            facts.name,
            True,
            f"{facts.name}: runnable: {'; '.join(diagnosis.summary) or 'runs ' + json.dumps(argv)}",
            details=details,
        )
    first = problems[0]
    evidence = [f"command: {json.dumps(argv)}"] if argv else []
    evidence += render(problems, lead=False, seen=evidence)
    return CheckResult(
        "runnable",
        facts.name,
        False,
        f"{facts.name}: runnable: {first.message}",
        tuple(evidence),
        first.hint,
        details,
    )


RUNNABLE: Check[bool] = Check(
    "runnable",
    check_runnable,
    parse=parse_flag,
    needs=frozenset({FILESYSTEM}),
    value="`True`",
    passes="the entrypoint would start (program, loader, libraries, interpreter, mode, architecture),"
    " found without running it",
    helper_param="expected",
    helper_default=True,
    builtin=True,
)
