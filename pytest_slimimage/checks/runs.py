"""``runs``: the image, run as shipped, exits as expected and prints what is expected."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_slimimage.analysis.runnable import diagnose, render
from pytest_slimimage.checks.check import FILESYSTEM, RUN, Check, ParseContext
from pytest_slimimage.checks.exec_form import is_shell_wrapper
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.dockerfile.model import exec_form
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT, ImageFacts, RunResult

TAIL_LINES = 20


@dataclass(frozen=True)
class RunExpectation:
    """What ``runs=`` / :func:`assert_runs` expects of one container run as shipped."""

    stdout: str | re.Pattern[str] | None = None
    stderr: str | re.Pattern[str] | None = None
    exit_code: int | None = 0
    args: tuple[str, ...] | None = None
    timeout: float = DEFAULT_RUN_TIMEOUT
    memory: str | None = None
    """The sandbox's memory limit for this run (``"1g"``, ``"512m"``); None: the session's."""

    def __post_init__(self) -> None:
        if self.memory is not None and not _MEMORY.match(str(self.memory)):
            raise ValueError(
                f"memory expects a size as docker run --memory takes it (e.g. '512m', '1g'), got {self.memory!r}"
            )

    @classmethod
    def from_value(cls, value: object, *, default_timeout: float = DEFAULT_RUN_TIMEOUT) -> RunExpectation:
        """``True``, an expected stdout (str or compiled regex), or a dict of keyword arguments.

        In a dict, ``stdout_regex``/``stderr_regex`` take a pattern as text (for TOML, which has
        no compiled regexes)."""
        if value is True:
            return cls(timeout=default_timeout)
        if isinstance(value, (str, re.Pattern)):
            return cls(stdout=value, timeout=default_timeout)
        if isinstance(value, Mapping):
            known = ("stdout", "stderr", "stdout_regex", "stderr_regex", "exit_code", "args", "timeout", "memory")
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
                memory=value.get("memory"),
            )
        raise ValueError(
            f"runs expects True, an expected stdout (str or re.Pattern), or a dict of assert_runs arguments;"
            f" got {value!r}"
        )


_MEMORY = re.compile(r"^\d+[bkmg]?$", re.I)
"""A memory limit as ``docker run --memory`` takes it."""


def output_matches(actual: str, expected: str | re.Pattern[str]) -> bool:
    """A str must equal the output, trailing newlines removed on both sides; a regex is searched."""
    if isinstance(expected, re.Pattern):
        return expected.search(actual) is not None
    return actual.rstrip("\r\n") == expected.rstrip("\r\n")


LINE_CHARS = 500
"""Characters of one output line a failure shows (after escaping); the rest is cut and counted."""


def tail(text: str, lines: int = TAIL_LINES, *, width: int = LINE_CHARS) -> list[str]:
    """The last ``lines`` lines of a program's output as a failure shows them: each line's control
    characters escaped (``\\x00``, ``\\x1b``), at most ``width`` characters of it, and what was cut said."""
    body = text.rstrip("\n")
    rows = body.split("\n") if body else []
    cut = [shown_line(row, width) for row in rows[-lines:]]
    return ([f"... ({len(rows) - lines} earlier lines)"] if len(rows) > lines else []) + cut


def shown_line(line: str, width: int = LINE_CHARS) -> str:
    """``line`` printable on one line of a terminal or an XML report, cut to ``width`` characters."""
    line = line.removesuffix("\r")
    if line.isprintable():
        escaped, pieces = line, None
    else:
        escaped = line.translate(_ESCAPES)
        pieces = [_ESCAPES[ord(char)] for char in line[:width]]
    if len(escaped) <= width:
        return escaped
    shown = escaped[:width]
    if pieces is not None:  # never cut an escape in half
        kept: list[str] = []
        used = 0
        for piece in pieces:
            if used + len(piece) > width:
                break
            kept.append(piece)
            used += len(piece)
        shown = "".join(kept)
    return f"{shown}... ({len(escaped) - len(shown):,} more characters on this line)"


class _Escapes(dict[int, str]):
    """``str.translate`` table: every non-printable character (but a tab) as a Python escape."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = char if char.isprintable() or char == "\t" else repr(char)[1:-1]
        self[code] = value
        return value


_ESCAPES = _Escapes()


def _shown(expected: str | re.Pattern[str], limit: int = 80) -> str:
    """A value for a headline: a regex as re.compile(...), a long text cut to ``limit`` characters."""
    if isinstance(expected, re.Pattern):
        return f"re.compile({expected.pattern!r})"
    text = expected.rstrip("\r\n")
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


def check_runs(facts: ImageFacts, expectation: RunExpectation, result: RunResult | None = None) -> CheckResult:
    """The container, run as shipped (``result``, default ``facts.run``), exited as expected and
    printed what was expected. A failure on facts with the filesystem carries the static
    diagnosis of why the program cannot start (missing loader, library, interpreter, ...)."""
    result = result if result is not None else facts.run
    if result is None:
        raise ValueError(f"runs needs a container run of {facts.name}, and none was made")
    wrong: list[str] = []
    if result.start_error:
        wrong.append("the container did not start")
    elif result.oom_killed:
        wrong.append(f"killed by the sandbox's memory limit of {result.memory or 'the sandbox'} (out of memory)")
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
    if result.emulation:
        details["emulation"] = result.emulation
    if not wrong:
        emulated = f" ({result.emulation})" if result.emulation else ""
        return passing(
            "runs", facts, f"{_argv(result.argv)} exited {result.exit_code} as expected{emulated}", **details
        )
    evidence = [f"command: {_argv(result.argv) if result.argv else '(none)'}"]
    if result.emulation:
        evidence.append(f"ran as {result.emulation}")
    if result.start_error:
        evidence.append(f"engine: {result.start_error}")
    else:
        note = (
            " (timed out, killed)"
            if result.timed_out
            else " (OOMKilled: over the memory limit)"
            if result.oom_killed
            else ""
        )
        evidence.append(f"exit code: {result.exit_code}{note}")
    for label, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            evidence.append(f"{label}:")
            evidence += [f"  | {line}" for line in tail(text)]
        else:
            evidence.append(f"{label}: (empty)")
    if result.truncated:
        evidence.append("(output beyond the cap was dropped; the lines above are the end of what was kept)")
    hint = run_hint(facts, result)
    if facts.filesystem is not None:
        problems = diagnose(facts, engine_arch=facts.engine_arch, args=expectation.args)
        evidence += render(problems)
        # the non-JSON CMD is the cause of everything the diagnosis finds after it: keep its hint
        if problems and not is_json_pitfall(result.argv):
            hint = problems[0].hint or hint
    return CheckResult(
        "runs", facts.name, False, f"{facts.name}: runs: {'; '.join(wrong)}", tuple(evidence), hint, details
    )


def _argv(argv: Sequence[str]) -> str:
    return json.dumps(list(argv))


def is_json_pitfall(argv: Sequence[str]) -> bool:
    """``/bin/sh -c "['./hello']"``: a bracketed command that was not JSON, so Docker wrapped it."""
    return (
        is_shell_wrapper(argv) and len(argv) > 2 and argv[2].lstrip().startswith("[") and not exec_form(argv[2]).is_exec
    )


def run_hint(facts: ImageFacts, result: RunResult) -> str:
    """The most likely fix, read off the run and the image's command."""
    text = f"{result.start_error}\n{result.stderr}"
    argv = result.argv
    if result.oom_killed:
        return (
            f"the program needed more than the sandbox's {result.memory or 'memory limit'}: raise the limit for"
            f" this run with memory= (runs={{'memory': '1g', ...}} or assert_runs(..., memory='1g')); a run"
            " without pytest-slimimage's sandbox has no such limit, so it would not show this"
        )
    if "no command specified" in result.start_error.lower():
        return 'the image has no CMD or ENTRYPOINT: add one in exec form to the final stage, e.g. CMD ["/app"]'
    if is_json_pitfall(argv):
        form = exec_form(argv[2])
        rewrite = f" CMD {form.rewrite}" if form.rewrite else ""
        return f"the command is not valid JSON, so /bin/sh ran it as a command line: use exec form{rewrite}"
    if is_shell_wrapper(argv) and re.search(r"no such file or directory|not found", text, re.I) and "sh" in text:
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


def _parse(value: object, context: ParseContext) -> RunExpectation | None:
    if value is False:
        return None
    return RunExpectation.from_value(value, default_timeout=context.run_timeout)


RUNS: Check[RunExpectation] = Check(
    "runs",
    check_runs,
    parse=_parse,
    needs=frozenset({RUN}),
    explain_with=frozenset({FILESYSTEM}),
    value="`True`, an expected stdout (str or `re.compile(...)`), or a dict of `assert_runs` arguments",
    passes="run as shipped, it exits as expected and prints what is expected; a failure carries the static diagnosis",
    helper_param="expectation",
    helper_default=True,
    helper_signature="assert_runs(image, stdout=None, *, args=None, exit_code=0, stderr=None, timeout=None,"
    " memory=None)",
    builtin=True,
)
