"""Reading a build's log: its steps as they start (for progress), its failing step, and a failure
message that names the cause when the log shows a known one. Pure: the log and the parsed
Dockerfile in (its facts are the model's: :mod:`pytest_slimimage.dockerfile.model`), text out.

Two log shapes: the legacy builder's (``Step 3/4 : RUN make``) and BuildKit's ``--progress=plain``
(``#8 [build 3/4] RUN make``, ``#8 ERROR: ...``, ``failed to solve: ...``). The known causes are
Dockerfile syntax the builder cannot read: BuildKit-only syntax under the legacy builder, and
syntax newer than the engine's built-in Dockerfile frontend (heredocs, ``COPY --link``) or a
``# syntax=`` frontend image that cannot be pulled under BuildKit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_slimimage.dockerfile.model import Dockerfile, Instruction

__all__ = [
    "Cause",
    "Step",
    "buildkit_failure",
    "buildkit_step",
    "diagnose",
    "failure_text",
    "last_buildkit_step",
    "last_legacy_step",
    "legacy_step",
    "log_tail",
    "running_container",
    "step_output",
    "timeout_text",
]

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LEGACY_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_LEGACY_CONTAINER = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})\s*$", re.M)
_BUILDKIT_VERTEX = re.compile(r"^#(\d+) \[(?:(?P<stage>[^\]]*?) )?(?P<n>\d+)/(?P<m>\d+)\] (?P<instruction>.*)$")
_BUILDKIT_ANY_VERTEX = re.compile(r"^#(\d+) (?!ERROR:|DONE |CACHED$|sha256:|\d+\.\d+ )(?P<name>\S.*)$")
_BUILDKIT_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
TAIL_LINES = 15


@dataclass(frozen=True)
class Step:
    """A build step as the log announces it."""

    step: int
    steps: int
    instruction: str
    """``RUN make`` (BuildKit shows it with the ARGs substituted)."""
    stage: str | None = None
    """BuildKit's stage name (``build``, ``stage-1``); None for the legacy builder and one-stage builds."""
    line: str = ""
    """The log line itself (``Step 3/4 : RUN make``, ``#8 [3/4] RUN make``)."""


@dataclass(frozen=True)
class Cause:
    """What a failure means, when the log shows a known cause."""

    headline: str
    """Said after ``building X failed:``."""
    hint: str


def legacy_step(line: str) -> Step | None:
    """``Step 3/4 : RUN make`` -> step 3 of 4."""
    match = _LEGACY_STEP.match(line.strip())
    if match is None:
        return None
    return Step(int(match.group(1)), int(match.group(2)), match.group(3).strip(), line=match.group(0))


def buildkit_step(line: str) -> Step | None:
    """``#8 [build 3/4] RUN make`` -> step 3 of 4 of stage ``build`` (``[internal]`` lines are not steps)."""
    match = _BUILDKIT_VERTEX.match(line.strip())
    if match is None:
        return None
    return Step(
        int(match.group("n")),
        int(match.group("m")),
        match.group("instruction").strip(),
        stage=match.group("stage"),
        line=match.group(0),
    )


def last_legacy_step(log: str) -> str | None:
    """The last ``Step n/m : ...`` line of a legacy build's log: the one that failed, when it failed."""
    steps = re.findall(r"^Step \d+/\d+ : .*$", log, re.M)
    return steps[-1] if steps else None


def running_container(log: str) -> str | None:
    """The container of the last step the legacy builder started (`` ---> Running in 1a2b3c4d5e6f``):
    the one still running when a build is stopped."""
    found = _LEGACY_CONTAINER.findall(log)
    return found[-1] if found else None


def buildkit_failure(log: str) -> tuple[str, str | None]:
    """A failed BuildKit build's error (its last words: ``failed to solve: ...``, ``ERROR: ...``, or the
    last line) and its failing step (the vertex that reported ``#N ERROR``: ``#8 [3/4] RUN make``)."""
    lines = [ANSI_ESCAPE.sub("", line).rstrip() for line in log.splitlines()]
    names: dict[str, str] = {}
    failed: str | None = None
    for line in lines:
        vertex = _BUILDKIT_ANY_VERTEX.match(line)
        if vertex is not None:
            names.setdefault(vertex.group(1), line)
        error = _BUILDKIT_ERROR.match(line)
        if error is not None:
            failed = error.group(1)
    step = names.get(failed) if failed is not None else None
    error_text = ""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("ERROR: "):
            error_text = text[len("ERROR: ") :]
            break
        if re.match(r"(error: )?failed to (solve|compute cache key|build|read|load|create)", text, re.I):
            error_text = text
            break
    if not error_text:
        meaningful = [line.strip() for line in lines if line.strip() and not line.startswith(("------", "#", " > "))]
        error_text = meaningful[-1] if meaningful else "the build failed without a message"
    return error_text, step


def last_buildkit_step(log: str) -> str | None:
    """The last ``#N [n/m] ...`` step the log announces (the one running when a build was stopped)."""
    last = None
    for line in log.splitlines():
        if buildkit_step(line) is not None:
            last = line.strip()
    return last


def log_tail(log: str, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` non-blank lines of ``log``, without BuildKit's vertex digests."""
    kept = [
        line
        for line in log.rstrip().splitlines()
        if line.strip() and not re.match(r"^#\d+ sha256:[0-9a-f]{64}$", line.strip())
    ]
    return kept[-lines:]


def step_output(log: str, step: str, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of BuildKit step ``step`` (``#8 [3/4] RUN make``): its header, what
    it printed (without BuildKit's ``#8 0.240`` prefix: the program's own lines), its error."""
    vertex = step.split(" ", 1)[0]
    out: list[str] = []
    for raw in log.splitlines():
        line = ANSI_ESCAPE.sub("", raw).rstrip()
        if not line.startswith(vertex + " "):
            continue
        rest = line[len(vertex) + 1 :]
        if re.fullmatch(r"sha256:[0-9a-f]{64}|DONE \d+(\.\d+)?s|CACHED", rest):
            continue
        printed = re.match(r"\d+\.\d+ (.*)$", rest)
        out.append(printed.group(1) if printed else line)
    return out[-lines:]


def failure_text(
    dockerfile: str,
    error: str,
    log: str,
    *,
    step: str | None = None,
    cause: Cause | None = None,
    tail: list[str] | None = None,
) -> str:
    """``building X failed: ...``, the failing step and the log's tail (``tail``: these lines
    instead); with a known ``cause``, the cause first, then what the engine said, and a hint
    instead of the log (it stays attached)."""
    lines = [f"building {dockerfile} failed: {cause.headline if cause else error}"]
    if step:
        lines.append(f"  failing step: {step}")
    if cause is not None:
        lines.append(f"  the engine said: {error}")
        lines.append(f"  hint: {cause.hint}")
        return "\n".join(lines)
    tail = log_tail(log) if tail is None else tail
    if tail:
        lines.append("  build log (last lines):")
        lines += [f"    | {line}" for line in tail]
    return "\n".join(lines)


def timeout_text(
    dockerfile: str,
    limit: float,
    how: str,
    log: str,
    *,
    step: str | None = None,
    tail: list[str] | None = None,
) -> str:
    """``building X failed: the build exceeded N s (how it was stopped)``, the step it was at, the
    log's tail (``tail``: these lines instead) and how to give it longer."""
    lines = [f"building {dockerfile} failed: the build exceeded {limit:g} s ({how})"]
    if step:
        lines.append(f"  stopped at step: {step}")
    tail = log_tail(log) if tail is None else tail
    if tail:
        lines.append("  build log (last lines):")
        lines += [f"    | {line}" for line in tail]
    lines.append(
        f"  hint: a build may take {limit:g} s (--slimimage-build-timeout, ini slimimage_build_timeout):"
        " raise it if this build needs longer, or make the step faster"
    )
    return "\n".join(lines)


def _with_flag(dockerfile: Dockerfile | None, flag: str) -> Instruction | None:
    return dockerfile.first_with_flag(flag) if dockerfile is not None else None


def _heredoc(dockerfile: Dockerfile | None) -> Instruction | None:
    return dockerfile.first(lambda ins: bool(ins.heredocs)) if dockerfile is not None else None


def _failed_vertex(text: str, name: str) -> re.Match[str] | None:
    """The match of ``name`` in the first BuildKit vertex (``#3 [internal] load metadata for X``)
    whose number also reported ``#3 ERROR: ...``."""
    for vertex in re.finditer(rf"^#(\d+) (?:\[[^\]]*\] )?{name}\s*$", text, re.M):
        if re.search(rf"^#{vertex.group(1)} ERROR: ", text, re.M):
            named = re.search(name, vertex.group(0))
            return named
    return None


def _where(found: Instruction | None) -> str:
    return f" (line {found.line}: {found.text})" if found else ""


_FLAG_INSTRUCTIONS = {"link": "COPY --link", "chmod": "COPY --chmod", "mount": "RUN --mount"}


def diagnose(builder: str, error: str, log: str, dockerfile: Dockerfile | None) -> Cause | None:
    """The cause of a failure, when ``error``/``log`` show a known one; ``builder`` is the kind
    that built (``legacy`` or ``buildkit``) and ``dockerfile`` the parsed Dockerfile (None when
    unknown: then no cause that needs the Dockerfile is named, nor where one is)."""
    text = f"{log}\n{error}"
    if builder == "legacy":
        return _legacy_cause(text, dockerfile)
    return _buildkit_cause(text, dockerfile)


def _legacy_cause(text: str, dockerfile: Dockerfile | None) -> Cause | None:
    use = "build it with BuildKit: builder='auto' (the default) or 'buildkit'"
    requires = re.search(r"the --(\w+) option requires BuildKit", text)
    flag = requires.group(1) if requires else None
    unknown = re.search(r"Unknown flag: (link|chmod|mount|chown-link|parents|exclude|checksum|network|security)", text)
    if flag is None and unknown is not None:
        flag = unknown.group(1)
    if flag is not None:
        what = _FLAG_INSTRUCTIONS.get(flag, f"--{flag}")
        return Cause(
            f"{what} needs BuildKit, and the legacy builder built this image{_where(_with_flag(dockerfile, flag))}",
            use,
        )
    heredoc = _heredoc(dockerfile)
    if heredoc is not None and re.search(r"dockerfile parse error line \d+: unknown instruction", text):
        return Cause(f"heredocs need BuildKit, and the legacy builder built this image{_where(heredoc)}", use)
    if "invalid reference format" in text and dockerfile is not None:
        platform = dockerfile.first(lambda ins: ins.keyword == "FROM" and bool(ins.platform_args))
        if platform is not None:
            return Cause(
                f"BuildKit's automatic platform ARGs (TARGETARCH, TARGETOS, ...) in FROM need BuildKit, and"
                f" the legacy builder built this image{_where(platform)}",
                use,
            )
    return None


def _buildkit_cause(text: str, dockerfile: Dockerfile | None) -> Cause | None:
    syntax = dockerfile.syntax if dockerfile is not None else None
    frontend = re.escape(syntax.split(":")[0]) if syntax else ""
    if syntax is not None and _failed_vertex(text, rf"resolve image config for \S*{frontend}\S*"):
        return Cause(
            f"the Dockerfile's '# syntax={syntax}' line asks BuildKit for a frontend image, and it could not be"
            " pulled from a registry",
            f"let the engine reach a registry (or mirror) that has {syntax}, or remove the '# syntax=' line to use"
            " the engine's built-in Dockerfile frontend (without the syntax that line was for)",
        )
    too_old = (
        "the engine's built-in Dockerfile frontend is too old for {what}{where}; a '# syntax=docker/dockerfile:1'"
        " line would fetch a newer frontend from a registry, which fails without one"
    )
    newer = "use an engine whose built-in frontend knows it (Docker 23.0 or later), or write it without {what}"
    if re.search(r"Unknown flag: link\b", text):
        where = _where(_with_flag(dockerfile, "link"))
        return Cause(too_old.format(what="COPY --link", where=where), newer.format(what="COPY --link"))
    heredoc = _heredoc(dockerfile)
    if heredoc is not None and re.search(r"dockerfile parse error line \d+: unknown instruction", text):
        return Cause(
            too_old.format(what="heredocs", where=_where(heredoc)),
            newer.format(what="heredocs") + " (a RUN line per command, or a script COPYed in)",
        )
    unknown = re.search(r"Unknown flag: ([\w-]+)", text)
    if unknown is not None:
        flag = unknown.group(1)
        return Cause(
            too_old.format(what=f"--{flag}", where=_where(_with_flag(dockerfile, flag))), newer.format(what=f"--{flag}")
        )
    if re.search(r"exec .*: exec format error", text):
        return Cause(
            "a RUN step started a program built for another architecture than the engine's, which does not"
            ' emulate it ("exec format error"): the RUN steps of a build for another platform run under emulation',
            "set up QEMU user-mode emulation on the engine's machine (Debian: bash scripts/emulation.sh; elsewhere:"
            " docker run --privileged tonistiigi/binfmt --install all), or run the stage on the build machine"
            " (FROM --platform=$BUILDPLATFORM ...) and cross-compile for $TARGETARCH, as"
            " example_project/Dockerfile.cross does",
        )
    missing = _failed_vertex(text, r"load metadata for (\S+)")
    if missing is not None:
        return Cause(
            f"the base image {missing.group(1).rstrip(':')} is not on the engine, and it could not be pulled",
            "pull or build the base image before the tests (pytest-slimimage never pulls), or fix its name",
        )
    return None
