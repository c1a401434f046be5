"""``no_package_manager``: no operating-system package manager and no language installer in the
final filesystem (listed apart), found by name, by link and by package record."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_slimimage.analysis.packagemanagers import LANGUAGE, OS, PackageManager, find_package_managers
from pytest_slimimage.checks.allowlist import allow_parser
from pytest_slimimage.checks.check import FILESYSTEM, Check
from pytest_slimimage.checks.provenance import layer_namer
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import ImageFacts


def check_no_package_manager(facts: ImageFacts, allow: Sequence[str] = ()) -> CheckResult:
    """No OS package manager (apt, apt-get, dpkg, apk, rpm, yum, dnf, microdnf, zypper, pacman) and
    no language installer (pip, npm, gem, ...) in the final filesystem; ``allow`` lists glob patterns
    of names or paths kept on purpose (``"language"`` allows every language installer)."""
    if isinstance(allow, str):
        allow = (allow,)
    if facts.filesystem is None:
        raise ValueError(f"no_package_manager needs the filesystem of {facts.name}, which was not indexed")
    found = find_package_managers(facts.filesystem, allow)
    system = [f for f in found if f.family == OS]
    language = [f for f in found if f.family == LANGUAGE]
    details = {
        "os": [str(f) for f in system],
        "language": [str(f) for f in language],
        "allow": list(allow),
    }
    if not found:
        return passing(
            "no_package_manager", facts, f"no package manager among {len(facts.filesystem)} paths", **details
        )
    layer = layer_namer(facts)
    evidence: list[str] = []
    for title, group in (("OS package managers:", system), ("language installers:", language)):
        if group:
            evidence.append(title)
            for item in group:
                evidence.append(f"  {item}" + (f"  ({layer(item.layer)})" if item.kind != "package" else ""))
    headline = f"{facts.name}: no_package_manager: found {_count(system, 'OS package manager')}"
    headline += f" and {_count(language, 'language installer')}"
    return CheckResult(
        "no_package_manager",
        facts.name,
        False,
        headline,
        tuple(evidence),
        _hint(system, language),
        details,
    )


def _count(group: Sequence[PackageManager], what: str) -> str:
    if not group:
        return f"no {what}"
    names = sorted({f.name for f in group})
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(group)} {what}{'s' if len(group) != 1 else ''} ({shown})"


def _hint(system: Sequence[PackageManager], language: Sequence[PackageManager]) -> str:
    if system:
        return (
            "install packages in a build stage and COPY --from=<build> only what the program needs into a"
            " scratch or distroless final stage; or allow=[...] the managers you keep on purpose"
        )
    return (
        "install dependencies in a build stage (pip install --target, npm ci) and copy them into a final"
        " stage without the installer; or allow=[...] the installers you keep on purpose"
    )


NO_PACKAGE_MANAGER: Check[tuple[str, ...]] = Check(
    "no_package_manager",
    check_no_package_manager,
    parse=allow_parser("no_package_manager"),
    needs=frozenset({FILESYSTEM}),
    value="`True`, or a list of allowed names/globs",
    passes="no OS package manager (apt, dpkg, apk, rpm, yum, dnf, microdnf, zypper, pacman) and no language"
    " installer (pip, npm, gem), by name, link or package record",
    helper_param="allow",
    helper_default=(),
    builtin=True,
)
