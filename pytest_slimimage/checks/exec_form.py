"""``exec_form``: CMD and ENTRYPOINT in exec (JSON) form, in the Dockerfile and in the built config."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pytest_slimimage.checks.check import Check, parse_flag
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.dockerfile.model import Dockerfile, exec_form
from pytest_slimimage.facts import ImageFacts

_SHELLS = ("/bin/sh", "sh", "/bin/bash", "bash", "/bin/ash", "/usr/bin/sh", "/usr/bin/bash")


def is_shell_wrapper(argv: Sequence[str] | None) -> bool:
    return bool(argv) and len(argv or ()) >= 2 and argv[0] in _SHELLS and argv[1] == "-c"  # type: ignore[index]


def check_exec_form(facts: ImageFacts, expected: bool = True) -> CheckResult:
    """CMD and ENTRYPOINT are exec form (JSON arrays), in the Dockerfile and in the built image."""
    problems: list[str] = []
    rewrites: list[str] = []
    flagged: set[str] = set()
    dockerfile = facts.dockerfile
    if dockerfile is not None:
        for keyword, ins in zip(("ENTRYPOINT", "CMD"), dockerfile.effective_command(), strict=True):
            if ins is None:
                continue
            form = exec_form(ins.value)
            if form.is_exec:
                continue
            flagged.add(keyword)
            problems.append(f"{dockerfile.path}, {ins.location}: {ins.text}")
            problems.append(f"  {form.reason}")
            if form.rewrite:
                rewrites.append(f"{keyword} {form.rewrite}")
    config = facts.config
    for keyword, argv in (("ENTRYPOINT", config.entrypoint), ("CMD", config.cmd)):
        if keyword in flagged or not is_shell_wrapper(argv):
            continue
        source = _origin(dockerfile, keyword)
        problems.append(f"image config {keyword.title()}: {json.dumps(list(argv or ()))} ({source})")
        form = exec_form((argv or ())[2] if len(argv or ()) > 2 else "")
        if form.rewrite:
            rewrites.append(f"{keyword} {form.rewrite}")
    details: dict[str, Any] = {"cmd": list(config.cmd or []), "entrypoint": list(config.entrypoint or [])}
    if not config.cmd and not config.entrypoint:
        return CheckResult(
            "exec_form",
            facts.name,
            False,
            f"{facts.name}: exec_form: the image has neither CMD nor ENTRYPOINT",
            ("`docker run` on it fails with 'no command specified'",),
            'add an exec-form command to the final stage, e.g. CMD ["/app"]',
            details,
        )
    if not problems:
        shown = json.dumps(list(config.argv))
        return passing("exec_form", facts, f"runs {shown} directly (exec form)", **details)
    hint = "use exec form (a JSON array of double-quoted strings)"
    if rewrites:
        hint += ": " + "; ".join(rewrites)
    return CheckResult(
        "exec_form",
        facts.name,
        False,
        f"{facts.name}: exec_form: {' and '.join(sorted(flagged) or ['the command'])}"
        f" {'are' if len(flagged) > 1 else 'is'} shell form, so Docker runs it through /bin/sh -c",
        tuple(problems),
        hint,
        details,
    )


def _origin(dockerfile: Dockerfile | None, keyword: str) -> str:
    if dockerfile is None:
        return "no Dockerfile known"
    entrypoint, cmd = dockerfile.effective_command()
    ins = entrypoint if keyword == "ENTRYPOINT" else cmd
    if ins is not None:
        return f"set at {dockerfile.path}, {ins.location}"
    return f"inherited from the base image {dockerfile.final_base}"


EXEC_FORM: Check[bool] = Check(
    "exec_form",
    check_exec_form,
    parse=parse_flag,
    value="`True`",
    passes="the final stage's CMD/ENTRYPOINT are JSON arrays and the built config has no `/bin/sh -c` wrapper"
    " (inherited ones included), and there is a command",
    helper_param="expected",
    helper_default=True,
    builtin=True,
)
