"""The checks: one pure function per property, over :class:`ImageFacts`.

Every ``check_<property>`` returns a :class:`CheckResult`; the ``assert_*`` helpers, the
``slimimage`` marker and the declarative form all call these, so a property is defined here
and nowhere else. No I/O, no pytest, no docker.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_slimimage.baseline import BaselineEntry, Growth
from pytest_slimimage.dockerfile import Dockerfile, Instruction, exec_form, parse_ref
from pytest_slimimage.facts import ImageFacts, Layer, RunResult
from pytest_slimimage.sizes import format_delta, format_size, parse_size
from pytest_slimimage.toolchains import Finding, find_toolchains

TOP_LAYERS = 5
TAIL_LINES = 20


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one image, with the text a person needs to act on it."""

    check: str
    image: str
    passed: bool
    headline: str
    evidence: tuple[str, ...] = ()
    hint: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    """JSON-safe figures for reports (actual, expected, ...)."""

    def message(self) -> str:
        """Headline, indented evidence, then one ``hint:`` line."""
        lines = [self.headline]
        lines += [f"  {line}" for line in self.evidence]
        if self.hint and not self.passed:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message()


def _ok(check: str, facts: ImageFacts, headline: str, **details: Any) -> CheckResult:
    return CheckResult(check, facts.name, True, f"{facts.name}: {check}: {headline}", details=details)


# ----------------------------------------------------------------------------------------- size
def check_max_size(facts: ImageFacts, limit: int | str) -> CheckResult:
    """The image's size (the engine's ``Size``, what ``docker images`` shows) is at most ``limit``."""
    budget = parse_size(limit)
    details = {"actual": facts.size, "limit": budget}
    if facts.size <= budget:
        return _ok(
            "max_size",
            facts,
            f"{format_size(facts.size)} within {format_size(budget)} (headroom {format_size(budget - facts.size)})",
            **details,
        )
    over = facts.size - budget
    evidence = ["largest layers:", *layer_lines(facts)]
    if facts.waste is not None and facts.waste.wasted_bytes:
        from pytest_slimimage.waste import format_waste_lines, layer_origins  # waste imports checks

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
        return _ok(
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


def check_max_growth(
    facts: ImageFacts, growth: Growth, baseline: BaselineEntry | None, *, updating: bool = False
) -> CheckResult:
    """The image grew by at most ``growth`` over its recorded baseline size."""
    details: dict[str, Any] = {"actual": facts.size, "max_growth": str(growth)}
    if updating:
        details["baseline"] = facts.size
        return _ok("max_growth", facts, f"baseline updated to {format_size(facts.size)}", **details)
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
        return _ok("max_growth", facts, f"{shown}, within the allowed growth of {growth}", **details)
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
        text = instruction if len(instruction) <= 90 else instruction[:87] + "..."
        out.append(f"{format_delta(change):>9}  {text}  ({status})")
    return out or ["(no layer-level change recorded)"]


def layer_lines(facts: ImageFacts, top: int = TOP_LAYERS) -> list[str]:
    """The largest layers, each with the instruction that made it and its Dockerfile line."""
    lines = attribute_layers(facts)
    ranked = sorted(((la, where) for la, where in lines if la.size > 0), key=lambda item: -item[0].size)
    out = []
    for layer, where in ranked[:top]:
        text = layer.instruction
        if len(text) > 90:
            text = text[:87] + "..."
        out.append(f"{format_size(layer.size):>8}  {text}  ({where})")
    if len(ranked) > top:
        rest = sum(la.size for la, _ in ranked[top:])
        out.append(f"{format_size(rest):>8}  ({len(ranked) - top} smaller layers)")
    return out


def attribute_layers(facts: ImageFacts) -> list[tuple[Layer, str]]:
    """Pair each history entry with where it came from: a Dockerfile line, or the base image."""
    instructions: list[Instruction] = []
    if facts.dockerfile is not None:
        for stage in reversed(facts.dockerfile.chain()):
            instructions.extend(stage.instructions)
    base = f"base {facts.dockerfile.final_base}" if facts.dockerfile else "base image"
    out: list[tuple[Layer, str]] = []
    position = 0
    for layer in facts.layers:
        if layer.from_base:
            out.append((layer, base))
            continue
        keyword = layer.instruction.split(" ", 1)[0].upper()
        where = "build"
        for offset, ins in enumerate(instructions[position:]):
            if ins.keyword == keyword:
                where = f"Dockerfile {ins.location}"
                position += offset + 1
                break
        out.append((layer, where))
    return out


# ------------------------------------------------------------------------------------- final base
def check_final_base(facts: ImageFacts, expected: str | Sequence[str]) -> CheckResult:
    """The final stage's external base (``FROM <stage>`` chains followed) is one of ``expected``."""
    wanted = [expected] if isinstance(expected, str) else list(expected)
    if not wanted or not all(isinstance(w, str) and w.strip() for w in wanted):
        raise ValueError(f"final_base expects an image name or a list of them, got {expected!r}")
    dockerfile = _need_dockerfile(facts, "final_base")
    actual = dockerfile.final_base
    shown = " or ".join(wanted)
    details = {"actual": actual, "expected": wanted}
    if any(parse_ref(actual).matches(parse_ref(w)) for w in wanted):
        return _ok("final_base", facts, f"final stage is FROM {actual} (expected {shown})", **details)
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


def _need_dockerfile(facts: ImageFacts, check: str) -> Dockerfile:
    if facts.dockerfile is None:
        raise ValueError(
            f"{check} needs the image's Dockerfile; {facts.name} was not built from one"
            " (for an existing image, pass the dockerfile= it was built from)"
        )
    return facts.dockerfile


# -------------------------------------------------------------------------------------- exec form
_SHELLS = ("/bin/sh", "sh", "/bin/bash", "bash", "/bin/ash", "/usr/bin/sh", "/usr/bin/bash")


def _is_shell_wrapper(argv: Sequence[str] | None) -> bool:
    return bool(argv) and len(argv or ()) >= 2 and argv[0] in _SHELLS and argv[1] == "-c"  # type: ignore[index]


def check_exec_form(facts: ImageFacts) -> CheckResult:
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
        if keyword in flagged or not _is_shell_wrapper(argv):
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
        return _ok("exec_form", facts, f"runs {shown} directly (exec form)", **details)
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


# ---------------------------------------------------------------------------------- no compilers
def check_no_compilers(facts: ImageFacts, allow: Sequence[str] = ()) -> CheckResult:
    """No compiler, assembler, linker or toolchain package anywhere in the final filesystem."""
    if isinstance(allow, str):
        allow = (allow,)
    if facts.filesystem is None:
        raise ValueError(f"no_compilers needs the filesystem of {facts.name}, which was not indexed")
    findings = find_toolchains(facts.filesystem, allow)
    details = {"found": [str(f) for f in findings], "allow": list(allow)}
    if not findings:
        return _ok("no_compilers", facts, f"no compiler or toolchain among {len(facts.filesystem)} paths", **details)
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


# ------------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunExpectation:
    """What ``runs=`` / :func:`assert_runs` expects of one container run as shipped."""

    stdout: str | re.Pattern[str] | None = None
    stderr: str | re.Pattern[str] | None = None
    exit_code: int | None = 0
    args: tuple[str, ...] | None = None
    timeout: float = 30.0

    @classmethod
    def from_value(cls, value: object, *, default_timeout: float = 30.0) -> RunExpectation:
        """``True``, an expected stdout (str or compiled regex), or a dict of keyword arguments.

        In a dict, ``stdout_regex``/``stderr_regex`` take a pattern as text (for TOML, which has
        no compiled regexes)."""
        if value is True:
            return cls(timeout=default_timeout)
        if isinstance(value, (str, re.Pattern)):
            return cls(stdout=value, timeout=default_timeout)
        if isinstance(value, Mapping):
            known = ("stdout", "stderr", "stdout_regex", "stderr_regex", "exit_code", "args", "timeout")
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(known)}")
            value = dict(value)
            for stream in ("stdout", "stderr"):
                pattern = value.pop(f"{stream}_regex", None)
                if isinstance(pattern, re.Pattern):
                    value[stream] = pattern
                elif isinstance(pattern, str):
                    try:
                        value[stream] = re.compile(pattern)
                    except re.error as exc:
                        raise ValueError(f"{stream}_regex is not a valid regex ({exc}): {pattern!r}") from None
                elif pattern is not None:
                    raise ValueError(f"{stream}_regex expects a pattern as a str, got {pattern!r}")
            for stream in ("stdout", "stderr"):
                if value.get(stream) is not None and not isinstance(value[stream], (str, re.Pattern)):
                    raise ValueError(f"{stream} expects a str or a compiled regex, got {value[stream]!r}")
            exit_code = value.get("exit_code", 0)
            if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
                raise ValueError(f"exit_code expects an int or None, got {exit_code!r}")
            timeout = value.get("timeout", default_timeout)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                raise ValueError(f"timeout expects a positive number of seconds, got {timeout!r}")
            args = value.get("args")
            if isinstance(args, str):
                args = tuple(shlex.split(args))
            elif args is not None and not isinstance(args, (list, tuple)):
                raise ValueError(f"args expects a list of strings or a command line as a str, got {args!r}")
            return cls(
                stdout=value.get("stdout"),
                stderr=value.get("stderr"),
                exit_code=exit_code,
                args=tuple(str(a) for a in args) if args is not None else None,
                timeout=float(timeout),
            )
        raise ValueError(
            f"runs expects True, an expected stdout (str or re.Pattern), or a dict of assert_runs arguments;"
            f" got {value!r}"
        )


def output_matches(actual: str, expected: str | re.Pattern[str]) -> bool:
    """A str must equal the output, trailing newlines removed on both sides; a regex is searched."""
    if isinstance(expected, re.Pattern):
        return expected.search(actual) is not None
    return actual.rstrip("\r\n") == expected.rstrip("\r\n")


def tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    rows = text.rstrip("\n").splitlines()
    cut = rows[-lines:]
    return ([f"... ({len(rows) - lines} earlier lines)"] if len(rows) > lines else []) + cut


def _shown(expected: str | re.Pattern[str], limit: int = 80) -> str:
    """A value for a headline: a regex as re.compile(...), a long text cut to ``limit`` characters."""
    if isinstance(expected, re.Pattern):
        return f"re.compile({expected.pattern!r})"
    text = expected.rstrip("\r\n")
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


def check_runs(facts: ImageFacts, expectation: RunExpectation, result: RunResult) -> CheckResult:
    """The container, run as shipped, exited as expected and printed what was expected."""
    wrong: list[str] = []
    if result.start_error:
        wrong.append("the container did not start")
    elif result.timed_out:
        wrong.append(f"timed out after {expectation.timeout:g}s (killed)")
    else:
        if expectation.exit_code is not None and result.exit_code != expectation.exit_code:
            wrong.append(f"exit code {result.exit_code}, expected {expectation.exit_code}")
        if expectation.stdout is not None and not output_matches(result.stdout, expectation.stdout):
            wrong.append(f"stdout {_shown(result.stdout)}, expected {_shown(expectation.stdout)}")
        if expectation.stderr is not None and not output_matches(result.stderr, expectation.stderr):
            wrong.append(f"stderr {_shown(result.stderr)}, expected {_shown(expectation.stderr)}")
    details: dict[str, Any] = {
        "argv": list(result.argv),
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "duration": round(result.duration, 3),
    }
    if not wrong:
        return _ok("runs", facts, f"{_argv(result.argv)} exited {result.exit_code} as expected", **details)
    evidence = [f"command: {_argv(result.argv) if result.argv else '(none)'}"]
    if result.start_error:
        evidence.append(f"engine: {result.start_error}")
    else:
        evidence.append(f"exit code: {result.exit_code}" + (" (timed out, killed)" if result.timed_out else ""))
    for label, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            evidence.append(f"{label}:")
            evidence += [f"  | {line}" for line in tail(text)]
        else:
            evidence.append(f"{label}: (empty)")
    if result.truncated:
        evidence.append("(output beyond the cap was dropped; the lines above are the end of what was kept)")
    return CheckResult(
        "runs",
        facts.name,
        False,
        f"{facts.name}: runs: {'; '.join(wrong)}",
        tuple(evidence),
        run_hint(facts, result),
        details,
    )


def _argv(argv: Sequence[str]) -> str:
    return json.dumps(list(argv))


def is_json_pitfall(argv: Sequence[str]) -> bool:
    """``/bin/sh -c "['./hello']"``: a bracketed command that was not JSON, so Docker wrapped it."""
    return (
        _is_shell_wrapper(argv)
        and len(argv) > 2
        and argv[2].lstrip().startswith("[")
        and not exec_form(argv[2]).is_exec
    )


def run_hint(facts: ImageFacts, result: RunResult) -> str:
    """The most likely fix, read off the run and the image's command."""
    text = f"{result.start_error}\n{result.stderr}"
    argv = result.argv
    if "no command specified" in result.start_error.lower():
        return 'the image has no CMD or ENTRYPOINT: add one in exec form to the final stage, e.g. CMD ["/app"]'
    if is_json_pitfall(argv):
        form = exec_form(argv[2])
        rewrite = f" CMD {form.rewrite}" if form.rewrite else ""
        return f"the command is not valid JSON, so /bin/sh ran it as a command line: use exec form{rewrite}"
    if _is_shell_wrapper(argv) and re.search(r"no such file or directory|not found", text, re.I) and "sh" in text:
        return "the command runs through /bin/sh -c; use exec form (a JSON array) and make sure the program exists"
    if re.search(r"exec .*no such file or directory|no such file or directory", text, re.I):
        return (
            "the program or its ELF loader is missing: a dynamically linked binary needs its loader and libc,"
            " which scratch does not have; link statically (gcc -static) or use a base with libc; also check"
            " the path (COPY --from with an absolute source, WORKDIR)"
        )
    if "permission denied" in text.lower():
        return "the program is not executable in the image: chmod +x it in the build stage (or COPY --chmod)"
    if result.timed_out:
        return "the program did not exit: a long-running service wants a readiness check, not runs="
    return "run the image by hand (docker run --rm IMAGE) and compare with the expectation"


# --------------------------------------------------------------------------------------- registry
CHECKS: tuple[str, ...] = (
    "max_size",
    "warn_size",
    "max_growth",
    "final_base",
    "exec_form",
    "no_compilers",
    "lint",
    "runnable",
    "max_waste",
    "runs",
)
"""The check names, which are also the ``slimimage`` marker's and the declarative form's keywords."""
