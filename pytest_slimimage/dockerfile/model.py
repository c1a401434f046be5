"""The Dockerfile as pytest-slimimage sees it: stages, the final stage, its external base.

Parsing (line continuations, comments) is dockerfile-parse's; this module adds what it
lacks: stages as objects, ARG substitution in FROM as Docker does it (``${X:-default}``,
errors for ARGs without a value; :mod:`.variables` expands), heredoc bodies kept inside
their instruction, ``FROM <stage>`` chains followed to the external base, ``--target``,
the stages a build needs and where their WORKDIR is, instruction flags, heredocs and the
automatic platform ARGs an instruction uses, the parser directives (``# syntax=``), exec-form
detection that is stricter than dockerfile-parse (which accepts ``CMD ['./hello']``,
Docker does not), and errors that say what and where. The lint rules read these facts.
Pure: no pytest, no docker.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from dockerfile_parse import DockerfileParser

from pytest_slimimage.dockerfile.variables import arg_declarations, env_declarations, expand
from pytest_slimimage.errors import SlimImageError

KNOWN_INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip


class DockerfileError(SlimImageError):
    """A Dockerfile that cannot be read or makes no sense; the message names file and line."""


@dataclass(frozen=True)
class Instruction:
    """One instruction. ``line`` and ``end_line`` are 1-based, as editors and ``docker build`` number them."""

    keyword: str
    value: str
    line: int
    end_line: int
    text: str

    @property
    def location(self) -> str:
        return f"line {self.line}" if self.line == self.end_line else f"lines {self.line}-{self.end_line}"

    @property
    def flags(self) -> tuple[str, ...]:
        """The leading ``--flag[=value]`` words of the value (``COPY --from=build --chmod=755 a /b``)."""
        return _split_flags(self.value)[0]

    @property
    def arguments(self) -> str:
        """The value after its flags."""
        return _split_flags(self.value)[1]

    def flag(self, name: str) -> str | None:
        """The value of ``--<name>=...``, quotes removed; None when it is not given."""
        for flag in self.flags:
            if flag.startswith(f"--{name}="):
                return flag.split("=", 1)[1].strip("\"'")
        return None

    def has_flag(self, name: str) -> bool:
        """Whether it is given ``--<name>``, with a value or without (``COPY --link``, ``--chmod=755``)."""
        return any(flag == f"--{name}" or flag.startswith(f"--{name}=") for flag in self.flags)

    @property
    def heredocs(self) -> tuple[str, ...]:
        """The terminators of the heredocs a RUN, COPY or ADD opens, in order (``RUN <<EOF`` -> ``("EOF",)``;
        ``python3 3<<'PY' <<-"SH"`` -> ``("PY", "SH")``); empty for other instructions."""
        if self.keyword not in ("RUN", "COPY", "ADD"):
            return ()
        return tuple(match.group(2) for match in _HEREDOC.finditer(self.value))

    @property
    def platform_args(self) -> tuple[str, ...]:
        """The :data:`AUTOMATIC_ARGS` its arguments use (``FROM base-${TARGETARCH}`` -> ``("TARGETARCH",)``), once
        each, in order; its flags are not read (``FROM --platform=$BUILDPLATFORM gcc`` uses none in its image)."""
        used = expand(self.arguments, {}, as_written=AUTOMATIC_ARGS).unsettled
        return tuple(dict.fromkeys(name for name in used if name in AUTOMATIC_ARGS))

    @property
    def from_refs(self) -> tuple[str, ...]:
        """The stages or images it reads files from, as written (``COPY --from=<ref>``,
        ``RUN --mount=...,from=<ref>``)."""
        if self.keyword == "COPY":
            ref = self.flag("from")
            return (ref,) if ref else ()
        refs: list[str] = []
        if self.keyword == "RUN":
            for flag in self.flags:
                if flag.startswith("--mount="):
                    for option in flag.split("=", 1)[1].split(","):
                        key, _, val = option.partition("=")
                        if key == "from" and val:
                            refs.append(val.strip("\"'"))
        return tuple(refs)


def _split_flags(value: str) -> tuple[tuple[str, ...], str]:
    flags: list[str] = []
    rest = value.strip()
    while rest.startswith("--"):
        word, *more = rest.split(None, 1)
        flags.append(word)
        rest = more[0].strip() if more else ""
    return tuple(flags), rest


AUTOMATIC_ARGS = frozenset(
    f"{when}{what}" for when in ("BUILD", "TARGET") for what in ("PLATFORM", "OS", "ARCH", "VARIANT")
)
"""BuildKit's automatic platform ARGs: ``TARGETPLATFORM``, ``TARGETOS``, ``TARGETARCH``, ``TARGETVARIANT``
and their ``BUILD*`` twins (the legacy builder knows none of them)."""

# A heredoc opener is a whole word (``<<EOF``, ``<<-"EOT"``, ``3<<X``), as BuildKit reads it; not ``<<<`` or ``1<<2``.
_HEREDOC = re.compile(r"(?<!\S)\d*<<-?(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1(?!\S)")

ExecFormKind = Literal["exec", "single-quoted", "invalid-array", "shell"]


@dataclass(frozen=True)
class ExecForm:
    """How Docker reads a CMD/ENTRYPOINT value."""

    kind: ExecFormKind
    """``exec`` (a JSON array of strings); else shell form: ``single-quoted`` (``['./hello']``), an
    ``invalid-array`` (brackets, not a JSON array of strings), or plain ``shell``."""
    argv: tuple[str, ...] | None
    """The JSON array when ``is_exec``; else the argv of a suggested exec-form rewrite (or None)."""
    reason: str
    """Why it is shell form ('' when exec form)."""

    @property
    def is_exec(self) -> bool:
        return self.kind == "exec"

    @property
    def rewrite(self) -> str | None:
        return json.dumps(list(self.argv)) if self.argv is not None else None


_SINGLE_QUOTED_ARRAY = re.compile(r"^\[\s*'.*'\s*\]$", re.S)


def exec_form(value: str) -> ExecForm:
    """Classify a CMD/ENTRYPOINT/RUN argument the way Docker's frontend does.

    Docker parses the value as a JSON array of strings; anything else is shell form and gets
    wrapped in ``/bin/sh -c``. ``['./hello']`` is not JSON (single quotes), so Docker runs
    ``/bin/sh -c "['./hello']"``, which looks for a program literally named ``[./hello]``.
    """
    text = value.strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and parsed and all(isinstance(x, str) for x in parsed):
        return ExecForm("exec", tuple(parsed), "")
    if _SINGLE_QUOTED_ARRAY.match(text):
        try:
            items = json.loads('"'.join(_swap_quotes(text)))
            argv = tuple(str(x) for x in items) if isinstance(items, list) else None
        except ValueError:
            argv = None
        return ExecForm(
            "single-quoted",
            argv,
            "single quotes are not JSON, so Docker treats the brackets as a shell command line and runs it"
            f" with /bin/sh -c (the shell then looks for a program named {_shell_word(text)!r})",
        )
    if text.startswith("["):
        return ExecForm(
            "invalid-array", None, "the brackets do not hold a valid JSON array of strings, so Docker uses shell form"
        )
    words = text.split()
    simple = bool(words) and all(re.fullmatch(r"[\w@%+=:,./-]+", w) for w in words)
    return ExecForm(
        "shell",
        tuple(words) if simple else ("/bin/sh", "-c", text),
        "shell form: Docker runs it as /bin/sh -c, which needs a shell in the image and makes the shell PID 1"
        " (signals do not reach the program)",
    )


def _swap_quotes(text: str) -> list[str]:
    # "['a', 'b']" -> split on single quotes; re-joined with double quotes by the caller.
    return text.split("'")


def _shell_word(text: str) -> str:
    first = text.split()[0] if text.split() else text
    return first.replace("'", "").rstrip(",")


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    """The FROM image as written, ARGs substituted: an external image or an earlier stage's name."""
    from_instruction: Instruction
    instructions: tuple[Instruction, ...]

    @property
    def label(self) -> str:
        return f"stage {self.index}" + (f" ({self.name})" if self.name else "")

    def last(self, keyword: str) -> Instruction | None:
        for ins in reversed(self.instructions):
            if ins.keyword == keyword:
                return ins
        return None

    def all(self, keyword: str) -> tuple[Instruction, ...]:
        return tuple(ins for ins in self.instructions if ins.keyword == keyword)


class Workdir(NamedTuple):
    written: str
    """The last WORKDIR instruction's value as written ('' when none)."""
    path: str | None
    """The absolute path it resolves to; None when it uses a variable with no known value."""


@dataclass(frozen=True)
class Dockerfile:
    path: str
    stages: tuple[Stage, ...]
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    """The platform the build targets (``linux/arm64``), when known: BuildKit's automatic
    ``TARGET*``/``BUILD*`` ARGs were resolved for it."""
    directives: Mapping[str, str] = field(default_factory=dict)
    """Its parser directives (``# syntax=docker/dockerfile:1``), by lower-cased name, values as written: see
    :func:`parser_directives`."""

    @property
    def syntax(self) -> str | None:
        """The frontend image a ``# syntax=`` directive names (``docker/dockerfile:1``); None without one."""
        value = self.directives.get("syntax")
        return value.split()[0] if value else None

    @property
    def instructions(self) -> tuple[Instruction, ...]:
        """Every instruction in file order, each stage's FROM included (the ARGs before the first FROM are not
        kept)."""
        return tuple(ins for stage in self.stages for ins in (stage.from_instruction, *stage.instructions))

    def first(self, predicate: Callable[[Instruction], bool]) -> Instruction | None:
        """The first instruction (in file order, see :attr:`instructions`) for which ``predicate`` holds."""
        return next((ins for ins in self.instructions if predicate(ins)), None)

    def first_with_flag(self, name: str) -> Instruction | None:
        """The first instruction given ``--<name>`` (``link``: ``COPY --link a /a``); None when none is."""
        return self.first(lambda ins: ins.has_flag(name))

    @property
    def final_stage(self) -> Stage:
        """The stage the build produces: ``target`` when given, else the last one."""
        if self.target is None:
            return self.stages[-1]
        return self.stage(self.target)

    def stage(self, ref: str | int) -> Stage:
        """The stage ``ref`` names (see :meth:`find_stage`); raises naming the stages when there is none."""
        found = self.find_stage(ref)
        if found is None:
            names = ", ".join(st.name or str(st.index) for st in self.stages)
            raise DockerfileError(f"{self.path}: no build stage named {ref!r} (stages: {names})")
        return found

    def find_stage(self, ref: str | int) -> Stage | None:
        """The stage ``ref`` names, as ``--from`` and ``--target`` read it: by name (case-insensitively), else by
        index; None for an image."""
        if isinstance(ref, str):
            for st in self.stages:
                if st.name is not None and st.name == ref.lower():
                    return st
            if not ref.isdigit():
                return None
        for st in self.stages:
            if st.index == int(ref):
                return st
        return None

    def stage_from(self, ref: str) -> Stage | None:
        """The stage a ``--from=<ref>`` names, ``${X}`` in ``ref`` expanded with the build args (BuildKit uses the
        global ARGs, whose defaults are not kept here: a ref using one without a build arg names no stage)."""
        expanded = expand(ref, self.build_args).known if "$" in ref else ref
        return self.find_stage(ref if expanded is None else expanded)

    def parent(self, stage: Stage) -> Stage | None:
        """The earlier stage ``stage`` is built FROM, if its base names one."""
        base = stage.base.lower()
        for st in self.stages[: stage.index]:
            if st.name == base:
                return st
        return None

    def chain(self, stage: Stage | None = None) -> tuple[Stage, ...]:
        """``stage`` and the stages it is built FROM, nearest first."""
        out = []
        current: Stage | None = stage or self.final_stage
        while current is not None:
            out.append(current)
            current = self.parent(current)
        return tuple(out)

    def base_of(self, stage: Stage | None = None) -> str:
        """The external image at the root of ``stage``'s FROM chain (``scratch`` included)."""
        return self.chain(stage)[-1].base

    @property
    def final_base(self) -> str:
        return self.base_of(self.final_stage)

    def effective(self, keyword: str, stage: Stage | None = None) -> Instruction | None:
        """The instruction that sets ``keyword`` (CMD, ENTRYPOINT, USER, ...) for ``stage``,
        inherited through ``FROM <stage>`` chains; None when only the external base sets it."""
        for st in self.chain(stage):
            found = st.last(keyword)
            if found is not None:
                return found
        return None

    def effective_command(self, stage: Stage | None = None) -> tuple[Instruction | None, Instruction | None]:
        """(ENTRYPOINT, CMD) that reach ``stage``'s image. As the builder does it, a stage that sets
        ENTRYPOINT without setting CMD itself resets the CMD it inherits."""
        entrypoint = self.effective("ENTRYPOINT", stage)
        for st in self.chain(stage):
            cmd = st.last("CMD")
            if cmd is not None:
                return entrypoint, cmd
            if st.last("ENTRYPOINT") is not None:
                break
        return entrypoint, None

    def contributing_stages(self) -> tuple[Stage, ...]:
        """The stages the build of the final stage needs, in file order: the final stage, the stages it is
        built FROM, and (transitively) those named by ``COPY --from`` or ``RUN --mount=...,from=``.
        Stages after a ``--target`` that nothing references are not among them."""
        seen: dict[int, Stage] = {}
        todo = [self.final_stage]
        while todo:
            stage = todo.pop()
            if stage.index in seen:
                continue
            seen[stage.index] = stage
            parent = self.parent(stage)
            if parent is not None:
                todo.append(parent)
            for ins in stage.instructions:
                for ref in ins.from_refs:
                    found = self.stage_from(ref)
                    if found is not None:
                        todo.append(found)
        return tuple(seen[i] for i in sorted(seen))

    def workdir(self, stage: Stage) -> Workdir:
        """The WORKDIR of ``stage``, following its ``FROM <stage>`` chain, ARGs (scoped to their stage, build
        args first) and ENV (inherited) substituted; ``("", "/")`` when none is set (the base image's own
        WORKDIR, which a Dockerfile does not show, is taken as ``/``)."""
        env: dict[str, str | None] = {}
        path: str | None = "/"
        written = ""
        for st in reversed(self.chain(stage)):
            args: dict[str, str | None] = {}
            for ins in st.instructions:
                if ins.keyword == "ARG":
                    for key, default in arg_declarations(ins.value):
                        value = self.build_args.get(key)
                        if value is None and default is not None:
                            value = expand(default, {**args, **env}).known
                        args[key] = value
                elif ins.keyword == "ENV":
                    for key, value in env_declarations(ins.value):
                        env[key] = expand(value, {**args, **env}).known
                elif ins.keyword == "WORKDIR":
                    written = ins.value.strip()
                    new = expand(written, {**args, **env}).known
                    if new is None or path is None:
                        path = None if new is None or not new.startswith("/") else posixpath.normpath(new)
                    else:
                        path = posixpath.normpath(posixpath.join(path, new))
        return Workdir(written, path)


def _instruction(item: Mapping[str, object]) -> Instruction:
    return Instruction(
        keyword=str(item["instruction"]).upper(),
        value=str(item["value"]),
        line=int(str(item["startline"])) + 1,
        end_line=int(str(item["endline"])) + 1,
        text=" ".join(re.sub(r"\\\r?\n", " ", str(item["content"])).split()),  # continuations joined
    )


def _from_parts(value: str) -> tuple[str | None, str | None]:
    """(image, stage name) of a FROM value; flags such as --platform skipped."""
    words = _split_flags(value)[1].split()
    if not words:
        return None, None
    name = None
    if len(words) >= 3 and words[1].lower() == "as":
        name = words[2].lower()
    return words[0], name


def platform_args(platform: str | None, build_platform: str | None = None) -> dict[str, str]:
    """BuildKit's automatic platform ARGs for a build targeting ``platform`` (``linux/arm64/v8``)
    on a builder of ``build_platform`` (default: the same): ``TARGETPLATFORM``, ``TARGETOS``,
    ``TARGETARCH``, ``TARGETVARIANT`` and their ``BUILD*`` twins. Empty when ``platform`` is None."""
    if not platform:
        return {}
    out: dict[str, str] = {}
    for prefix, value in (("TARGET", platform), ("BUILD", build_platform or platform)):
        parts = value.strip().lower().split("/")
        if len(parts) < 2 or not all(parts):
            raise DockerfileError(f"not a platform: {value!r} (expected os/arch[/variant], e.g. linux/arm64)")
        out[f"{prefix}PLATFORM"] = "/".join(parts)
        out[f"{prefix}OS"], out[f"{prefix}ARCH"] = parts[0], parts[1]
        out[f"{prefix}VARIANT"] = parts[2] if len(parts) > 2 else ""
    return out


def _global_args(value: str, args: dict[str, str | None], build_args: Mapping[str, str]) -> None:
    """Record the names an ARG before the first FROM declares (``ARG A=1 B``), build args overriding.
    A bare ``ARG TARGETARCH`` keeps BuildKit's automatic value (or stays as written without one)."""
    for key, default in arg_declarations(value):
        if key in build_args:
            args[key] = build_args[key]
        elif key in AUTOMATIC_ARGS and default is None:
            continue
        else:
            args[key] = None if default is None else expand(default, args, as_written=AUTOMATIC_ARGS).text


_DIRECTIVE = re.compile(r"([A-Za-z][A-Za-z0-9]*)\s*=\s*(.+?)\s*$")
_DIRECTIVE_NAMES = frozenset({"syntax", "escape", "check"})


def parser_directives(text: str) -> dict[str, str]:
    """The parser directives of a Dockerfile's ``text`` (``# syntax=docker/dockerfile:1``), by lower-cased name,
    values as written, read as BuildKit reads them: only the ``# name=value`` lines at the very top (after a
    ``#!`` line, if any) count; the first other line (a blank line, an ordinary comment, an unknown directive,
    an instruction) ends them, and a directive given twice keeps its first value."""
    lines = text.removeprefix("\ufeff").splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    found: dict[str, str] = {}
    for line in lines:
        match = _DIRECTIVE.match(line[1:].lstrip()) if line.startswith("#") else None
        if match is None or match.group(1).lower() not in _DIRECTIVE_NAMES:
            break
        found.setdefault(match.group(1).lower(), match.group(2))
    return found


def parse_dockerfile(
    source: str | os.PathLike[str],
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    text: str | None = None,
    label: str | None = None,
    platform: str | None = None,
    build_platform: str | None = None,
) -> Dockerfile:
    """Parse a Dockerfile into stages. ``text`` overrides reading ``source``; ``label`` is how
    messages name the file (default: ``source`` as given). ``platform`` (and ``build_platform``,
    default the same) resolve BuildKit's automatic platform ARGs in ``FROM`` (``FROM
    binaries-$TARGETOS`` is stage ``binaries-linux``); without it they stay as written.

    Raises :class:`DockerfileError` (a :class:`SlimImageError`) naming the file and line for a
    missing file, an empty one, an instruction before FROM, an unknown instruction, a FROM
    without an image, or a ``target`` that names no stage.
    """
    path = label or str(source)
    args = dict(build_args or {})
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DockerfileError(f"Dockerfile not found: {path}") from None
        except IsADirectoryError:
            raise DockerfileError(f"Dockerfile path is a directory, not a file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DockerfileError(f"cannot read Dockerfile {path}: {exc}") from None
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")), build_args=args, env_replace=True)
    structure = parser.structure

    stages: list[Stage] = []
    current: tuple[Instruction, str, str | None, list[Instruction]] | None = None
    global_args: dict[str, str | None] = {**platform_args(platform, build_platform)}
    global_args.update({k: v for k, v in args.items() if k in AUTOMATIC_ARGS})
    heredocs: list[str] = []  # terminators still to come (RUN <<EOF: dockerfile-parse splits the body into lines)
    for item in structure:
        if heredocs:
            for row in str(item["content"]).splitlines():
                if heredocs and row.strip() == heredocs[0]:
                    heredocs.pop(0)
            if current is not None and current[3]:
                last = current[3][-1]
                current[3][-1] = Instruction(
                    last.keyword, last.value, last.line, int(str(item["endline"])) + 1, last.text
                )
            continue
        ins = _instruction(item)
        if ins.keyword == "COMMENT":  # dockerfile-parse reports comment lines as instructions
            continue
        if ins.keyword not in KNOWN_INSTRUCTIONS:
            raise DockerfileError(f"{path}:{ins.line}: unknown instruction {ins.keyword!r}: {ins.text}")
        heredocs = list(ins.heredocs)
        if ins.keyword == "FROM":
            image, name = _from_parts(ins.value)
            if image is None:
                raise DockerfileError(f"{path}:{ins.line}: FROM names no image: {ins.text}")
            expanded = expand(image, global_args, as_written=AUTOMATIC_ARGS)
            base, unset = expanded.text, expanded.unset
            if unset:
                raise DockerfileError(
                    f"{path}:{ins.line}: FROM {image!r} uses an ARG with no default and no build arg:"
                    f" {', '.join(unset)}"
                    + (" (a build arg reaches FROM only when an ARG before the first FROM declares it)"
                       if any(name in args for name in unset) else "")
                )  # fmt: skip
            if not base:
                raise DockerfileError(f"{path}:{ins.line}: FROM {image!r} names no image once ARGs are substituted")
            if current is not None:
                stages.append(Stage(len(stages), current[2], current[1], current[0], tuple(current[3])))
            current = (ins, base, name, [])
        elif current is None:
            if ins.keyword != "ARG":
                raise DockerfileError(
                    f"{path}:{ins.line}: {ins.keyword} before the first FROM (only ARG may come before FROM)"
                )
            _global_args(ins.value, global_args, args)
        else:
            current[3].append(ins)
    if current is None:
        raise DockerfileError(f"{path}: no FROM instruction (is this a Dockerfile?)")
    stages.append(Stage(len(stages), current[2], current[1], current[0], tuple(current[3])))
    dockerfile = Dockerfile(
        path=path,
        stages=tuple(stages),
        target=target,
        build_args=args,
        platform=platform,
        directives=parser_directives(text),
    )
    if target is not None:
        dockerfile.stage(target)  # raises naming the stages when it does not exist
    return dockerfile


@dataclass(frozen=True)
class ImageRef:
    """A normalised image reference: ``docker.io/library/debian:12`` -> repository ``debian``, tag ``12``."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return self.repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def matches(self, expected: ImageRef) -> bool:
        """A bare expected name matches any tag or digest of its repository; a tag or digest must be equal."""
        if self.repository != expected.repository:
            return False
        if expected.digest and expected.digest != self.digest:
            return False
        return not (expected.tag and expected.tag != (self.tag or ("latest" if not self.digest else None)))


_DEFAULT_REGISTRY_PREFIXES = (
    "docker.io/library/",
    "index.docker.io/library/",
    "registry-1.docker.io/library/",
)


def parse_ref(reference: str) -> ImageRef:
    """Split an image reference; Docker Hub spellings are folded (``docker.io/library/x`` is ``x``)."""
    text = reference.strip().lower()
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
    for prefix in _DEFAULT_REGISTRY_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
    for prefix in ("docker.io/", "index.docker.io/", "library/"):  # library/x is Docker Hub's x
        if text.startswith(prefix):
            text = text[len(prefix) :]
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
    return ImageRef(text, tag, digest)
