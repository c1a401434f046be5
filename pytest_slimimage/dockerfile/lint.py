"""Dockerfile lint: the pitfalls of the article's Dockerfiles, found without building anything.

Rules (``RULES`` holds their one-line descriptions):

``SI001``
    ``COPY --from=<stage or image> <relative source>``. Docker resolves a ``COPY --from`` source from the
    root (``/``) of the source stage or image, never from its WORKDIR (the Dockerfile reference says so;
    moby/moby#35650). A relative source therefore works only while the file is built in ``/``, and when
    the source stage sets a WORKDIR it copies the wrong path (or fails). Checked in every stage that
    contributes to the final stage: the final stage, the stages it is built FROM, and, transitively, the
    stages those name in ``COPY --from`` or ``RUN --mount=...,from=``. A source that starts with a variable
    is not flagged (it may expand to an absolute path). The destination is not checked: it resolves against
    the copying stage's own WORKDIR, which Docker does honour and which relative CMD paths share.
``SI002``
    Shell-form CMD or ENTRYPOINT that reaches the final image (the effective one, inherited through
    ``FROM <stage>`` chains; an ENTRYPOINT resets an inherited CMD, as Docker does). Shadowed ones are
    not reported: they never reach the image.
``SI003``
    The single-quote pitfall, ``CMD ['./hello']``: not JSON, so Docker runs it with ``/bin/sh -c``.
    Reported instead of SI002, never with it.
``SI004``
    The final image's external base (``FROM <stage>`` chains followed) is untagged or ``:latest``.
    ``scratch`` and digests are fine. Build-only stages are not checked: they do not ship.

Findings are sorted by line. The facts the rules read (stages, flags, WORKDIRs, the effective command, exec
form) are :mod:`.model`'s. Pure: no pytest, no docker.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_slimimage.dockerfile.model import Dockerfile, Instruction, exec_form, parse_dockerfile, parse_ref

RULES: Mapping[str, str] = {
    "SI001": "COPY --from with a relative source: Docker reads it from the root of the source stage or image,"
    " not from its WORKDIR",
    "SI002": "shell-form CMD or ENTRYPOINT in the final image: Docker runs it with /bin/sh -c (needs a shell;"
    " the shell is PID 1)",
    "SI003": "CMD or ENTRYPOINT written as an array in single quotes: not JSON, so Docker runs it with /bin/sh -c",
    "SI004": "the final image is built FROM an untagged or :latest base: pin a tag or a digest",
}
"""Rule id -> one-line description."""

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class LintFinding:
    """One problem on one instruction."""

    rule: str
    line: int
    """1-based, the first line of the instruction."""
    message: str
    fix: str
    """The suggested rewrite of the instruction, or the action to take."""
    severity: str
    """``error`` (the image is broken or copies the wrong file) or ``warning`` (fragile)."""
    instruction: str
    """The instruction as written, continuation lines joined."""


def lint_dockerfile(
    path: str | os.PathLike[str],
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
) -> list[LintFinding]:
    """Parse the Dockerfile at ``path`` and lint it (raises DockerfileError as parse_dockerfile does)."""
    return lint(parse_dockerfile(path, build_args=build_args, target=target))


def lint(dockerfile: Dockerfile) -> list[LintFinding]:
    """Every finding of every rule on an already parsed Dockerfile, sorted by line (then rule)."""
    findings = [*_relative_copy_from(dockerfile), *_commands(dockerfile), *_unpinned_base(dockerfile)]
    return sorted(findings, key=lambda f: (f.line, f.rule))


# ----------------------------------------------------------------------------------------- SI001
def _relative_copy_from(dockerfile: Dockerfile) -> list[LintFinding]:
    findings = []
    for stage in dockerfile.contributing_stages():
        for ins in stage.instructions:
            if ins.keyword != "COPY":
                continue
            finding = _check_copy(dockerfile, ins)
            if finding is not None:
                findings.append(finding)
    return findings


def _copy_operands(rest: str) -> tuple[list[str], bool] | None:
    """The operands (sources, then destination) of a COPY and whether they are a JSON array."""
    if rest.startswith("["):
        try:
            items = json.loads(rest)
        except ValueError:
            items = None
        if isinstance(items, list) and len(items) >= 2 and all(isinstance(x, str) for x in items):
            return [str(x) for x in items], True
    words = rest.split()
    if len(words) < 2 or any(w.startswith("<<") for w in words):  # heredoc sources: not paths
        return None
    return words, False


def _check_copy(dockerfile: Dockerfile, ins: Instruction) -> LintFinding | None:
    ref = ins.flag("from")
    operands = _copy_operands(ins.arguments)
    if not ref or operands is None:
        return None
    items, json_form = operands
    sources, dest = items[:-1], items[-1]
    relative = [s for s in sources if not _is_absolute(s)]
    if not relative:
        return None
    source_stage = dockerfile.stage_from(ref)
    workdir: str | None = "/"
    written = ""
    if source_stage is not None:
        what = source_stage.label
        written, workdir = dockerfile.workdir(source_stage)
    elif "$" in ref:
        what = f"the stage or image {ref}"
    else:
        what = f"the image {ref}"
    read = [_absolute("/", s) for s in relative]
    noun = "source" if len(relative) == 1 else "sources"
    head = (
        f"relative {noun} {', '.join(map(repr, relative))} in COPY --from: Docker reads"
        f" {'it' if len(relative) == 1 else 'them'} from the root of {what}"
    )
    severity = WARNING
    if source_stage is None:
        message = f"{head}, never from its WORKDIR; an absolute path says which file is meant"
        base = "/"
        note = ""
    elif workdir == "/":
        files = "the file is" if len(relative) == 1 else "the files are"
        message = f"{head}, not from a WORKDIR, so it works only while {files} built in /"
        base = "/"
        note = ""
    elif workdir is None:
        message = f"{head}, not from its WORKDIR {written}, so this copies {', '.join(read)}"
        base = "/"
        pronoun = "it" if len(relative) == 1 else "them"
        note = f" (or the absolute path under WORKDIR {written}, if the build writes {pronoun} there)"
    else:
        intended = [_absolute(workdir, s) for s in relative]
        message = f"{head}, not from its WORKDIR {workdir}, so this copies {', '.join(read)}, not {', '.join(intended)}"
        severity = ERROR
        base = workdir
        note = ""
    rewritten = [_absolute(base, s) if s in relative else s for s in sources] + [dest]
    operands_text = json.dumps(rewritten) if json_form else " ".join(rewritten)
    fix = " ".join(["COPY", *ins.flags, operands_text]) + note
    return LintFinding("SI001", ins.line, message, fix, severity, ins.text)


_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")


def _is_absolute(source: str) -> bool:
    """``/app``, a Windows image's ``c:/app.exe`` or ``C:\\app``, or a variable (it may expand to one)."""
    return source.startswith(("/", "\\", "$")) or bool(_WINDOWS_ABSOLUTE.match(source))


def _absolute(base: str, source: str) -> str:
    path = posixpath.normpath(posixpath.join(base, source))
    if source.endswith("/") and path != "/":
        path += "/"
    return path


# ----------------------------------------------------------------------------------- SI002, SI003
def _shell_program(text: str) -> str:
    """The first word /bin/sh -c makes of ``text``: the program it looks for."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return words[0] if words else text


def _commands(dockerfile: Dockerfile) -> list[LintFinding]:
    findings = []
    on_scratch = dockerfile.final_base.lower() == "scratch"
    for ins in dockerfile.effective_command():
        if ins is None:
            continue
        text = ins.value.strip()
        if text == "[]":  # CMD [] clears the command: exec form, nothing to run through a shell
            continue
        form = exec_form(text)
        if form.is_exec:
            continue
        keyword = ins.keyword
        if form.kind == "single-quoted":
            message = (
                f"{keyword} uses single quotes, which are not JSON, so Docker does not read it as exec form"
                f" and runs it with /bin/sh -c; the shell then looks for a program named {_shell_program(text)!r}"
            )
            fix = f"{keyword} {form.rewrite}" if form.rewrite else f"write {keyword} as a JSON array in double quotes"
            findings.append(LintFinding("SI003", ins.line, message, fix, ERROR, ins.text))
            continue
        if form.kind == "invalid-array":
            message = (
                f"{keyword} is not a valid JSON array of strings, so Docker uses shell form and runs it with /bin/sh -c"
            )
        else:
            message = (
                f"{keyword} is shell form: Docker runs it with /bin/sh -c, which needs a shell in the image and"
                " makes the shell PID 1 (signals do not reach the program)"
            )
        if on_scratch:
            message += "; the image is built FROM scratch, which has no /bin/sh unless one is copied in"
        if form.argv is None:
            fix = f'write {keyword} as a JSON array of double-quoted strings, e.g. {keyword} ["/app", "--flag"]'
        elif len(form.argv) == 3 and form.argv[:2] == ("/bin/sh", "-c"):
            fix = (
                f"exec the program directly as a JSON array; if it needs the shell's features, say so:"
                f" {keyword} {form.rewrite}"
            )
        else:
            fix = f"{keyword} {form.rewrite}"
        findings.append(LintFinding("SI002", ins.line, message, fix, ERROR if on_scratch else WARNING, ins.text))
    return findings


# ----------------------------------------------------------------------------------------- SI004
def _unpinned_base(dockerfile: Dockerfile) -> list[LintFinding]:
    chain = dockerfile.chain()
    root = chain[-1]
    base = root.base
    if base.lower() == "scratch":
        return []
    ref = parse_ref(base)
    if ref.digest or (ref.tag and ref.tag != "latest"):
        return []
    bare = base[: -len(":latest")] if base.lower().endswith(":latest") else base
    through = f" (FROM chain: {' <- '.join([*(st.label for st in chain), base])})" if len(chain) > 1 else ""
    if ref.tag is None:
        message = (
            f"the final image is built FROM {base}{through} with no tag, which means {bare}:latest:"
            " the same Dockerfile builds on a different base whenever latest moves"
        )
    else:
        message = (
            f"the final image is built FROM {base}{through}: latest moves, so the same Dockerfile builds on a"
            " different base over time"
        )
    flags = root.from_instruction.flags
    words = root.from_instruction.arguments.split()
    if words and "$" in words[0]:
        fix = f"set {words[0]} to a pinned image: {bare}:<version> or {bare}@sha256:<digest>"
    else:
        rewritten = " ".join(["FROM", *flags, f"{bare}:<version>", *words[1:]])
        fix = f"{rewritten} (or pin a digest: {bare}@sha256:<digest>)"
    return [LintFinding("SI004", root.from_instruction.line, message, fix, WARNING, root.from_instruction.text)]
