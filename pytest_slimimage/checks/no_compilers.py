"""``no_compilers``: no compiler, assembler, linker or toolchain package in the final filesystem."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_slimimage.analysis.toolchains import Finding, find_toolchains
from pytest_slimimage.checks.allowlist import allow_parser
from pytest_slimimage.checks.check import FILESYSTEM, Check
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import ImageFacts


def check_no_compilers(facts: ImageFacts, allow: Sequence[str] = ()) -> CheckResult:
    """No compiler, assembler, linker or toolchain package anywhere in the final filesystem."""
    if isinstance(allow, str):
        allow = (allow,)
    if facts.filesystem is None:
        raise ValueError(f"no_compilers needs the filesystem of {facts.name}, which was not indexed")
    findings = find_toolchains(facts.filesystem, allow)
    details = {"found": [str(f) for f in findings], "allow": list(allow)}
    if not findings:
        return passing(
            "no_compilers", facts, f"no compiler or toolchain among {len(facts.filesystem)} paths", **details
        )
    files = [f for f in findings if f.kind == "file"]
    packages = [f for f in findings if f.kind == "package"]
    names = sorted({f.name for f in findings})
    evidence = [str(f) for f in findings]
    where = _toolchain_source(facts, files)
    if where:
        evidence.append(where)
    return CheckResult(
        "no_compilers",
        facts.name,
        False,
        f"{facts.name}: no_compilers: found {len(files)} toolchain file(s) and {len(packages)} package(s)"
        f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})",
        tuple(evidence),
        "compile in a builder stage and COPY --from=<builder> only the built artifact into a final stage"
        " without the toolchain (or allow=[...] the tools you ship on purpose)",
        details,
    )


def _toolchain_source(facts: ImageFacts, files: Sequence[Finding]) -> str:
    """Say so when every toolchain file comes from the final stage's base image."""
    if not files or facts.dockerfile is None or facts.filesystem is None:
        return ""
    base_layers = sum(1 for layer in facts.layers if layer.from_base and not layer.empty)
    entries = [facts.filesystem.get(f.where) for f in files]
    if base_layers and all(e is not None and 0 <= e.layer < base_layers for e in entries):
        return f"all of these come with the final stage's base image, {facts.dockerfile.final_base}"
    return ""


_parse = allow_parser("no_compilers")


NO_COMPILERS: Check[tuple[str, ...]] = Check(
    "no_compilers",
    check_no_compilers,
    parse=_parse,
    needs=frozenset({FILESYSTEM}),
    value="`True`, or a list of allowed names/globs",
    passes="no compiler, assembler, linker or toolchain package in the filesystem",
    helper_param="allow",
    helper_default=(),
    builtin=True,
)
