"""``no_shell``: no shell in the final filesystem -- by name, by the links that reach one, and by an
executable's content (a renamed busybox), read from the layers: no shell is needed to look."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_slimimage.analysis.shells import find_shells
from pytest_slimimage.checks.allowlist import allow_parser
from pytest_slimimage.checks.check import FILESYSTEM, Check
from pytest_slimimage.checks.provenance import layer_namer
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import ImageFacts


def check_no_shell(facts: ImageFacts, allow: Sequence[str] = ()) -> CheckResult:
    """No shell (sh, bash, dash, ash, zsh, ksh, ...; busybox or toybox providing ``sh``) anywhere in
    the final filesystem; ``allow`` lists glob patterns of shells kept on purpose."""
    if isinstance(allow, str):
        allow = (allow,)
    if facts.filesystem is None:
        raise ValueError(f"no_shell needs the filesystem of {facts.name}, which was not indexed")
    shells = find_shells(facts.filesystem, allow)
    details = {
        "found": [{"path": s.path, "name": s.name, "by": s.by, "links": list(s.links)} for s in shells],
        "allow": list(allow),
    }
    if not shells:
        return passing("no_shell", facts, f"no shell among {len(facts.filesystem)} paths", **details)
    layer = layer_namer(facts)
    evidence: list[str] = []
    for shell in shells:
        evidence += [shell.describe(), f"  written by {layer(shell.layer)}"]
    names = sorted({s.name for s in shells})
    return CheckResult(
        "no_shell",
        facts.name,
        False,
        f"{facts.name}: no_shell: found {len(shells)} shell(s) ({', '.join(names)})",
        tuple(evidence),
        "ship the program alone: a final stage FROM scratch or a distroless base with only what it needs"
        " (COPY --from=<build>), with an exec-form ENTRYPOINT; or allow=[...] the shell you keep on purpose",
        details,
    )


NO_SHELL: Check[tuple[str, ...]] = Check(
    "no_shell",
    check_no_shell,
    parse=allow_parser("no_shell"),
    needs=frozenset({FILESYSTEM}),
    value="`True`, or a list of allowed names/globs",
    passes="no shell (sh, bash, dash, ash, zsh, ksh, ...; busybox/toybox as `sh`) by name, link or ELF content",
    helper_param="allow",
    helper_default=(),
    builtin=True,
)
