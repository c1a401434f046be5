"""The runnable diagnosis in words: each step of a :class:`.commands.Walk` that would fail becomes a
:class:`Problem` (headline, evidence lines, one hint), first problem first, and the steps that would
work become the summary a passing check shows. :func:`render` lays problems out as evidence lines.

Only wording: what the engine runs and what the loader finds were worked out before
(:mod:`.commands`, :mod:`.libraries`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_slimimage.analysis.runnable.commands import (
    MAX_INTERPRETERS,
    Command,
    Directory,
    Found,
    Missing,
    Program,
    Script,
    Step,
    Walk,
)
from pytest_slimimage.analysis.runnable.files import arch, is_musl
from pytest_slimimage.analysis.runnable.libraries import Library, LibrarySearch, Loader, ObjectSearch, SearchDir
from pytest_slimimage.dockerfile.model import exec_form
from pytest_slimimage.facts import ElfInfo, FileEntry

_KINDS = {"exec": "executable", "rel": "relocatable object", "core": "core dump"}
_STATIC_HINT = "link statically (gcc -static, or CGO_ENABLED=0 for Go)"


@dataclass(frozen=True)
class Problem:
    """One reason the image would not start, in the words a failure message needs."""

    code: str
    """``no-command``, ``no-shell``, ``not-found``, ``is-directory``, ``not-executable``,
    ``interpreter-missing``, ``shebang-crlf``, ``interpreter-loop``, ``wrong-arch``,
    ``not-a-program``, ``loader-missing``, ``library-missing`` or ``library-not-cached``."""
    message: str
    evidence: tuple[str, ...] = ()
    hint: str = ""


def render(problems: Sequence[Problem], *, lead: bool = True, seen: Iterable[str] = ()) -> list[str]:
    """Problems as evidence lines: ``diagnosis: <first>`` (unless ``lead`` is False, when the first
    message is the headline), ``then: <next>``, each with the evidence lines not shown yet."""
    out: list[str] = []
    shown = set(seen)
    for number, problem in enumerate(problems):
        nested = bool(number) or lead
        if nested:
            out.append(f"{'then' if number else 'diagnosis'}: {problem.message}")
        for line in problem.evidence:
            if line not in shown:
                shown.add(line)
                out.append(f"  {line}" if nested else line)
    return out


def explain(walk: Walk) -> tuple[tuple[Problem, ...], tuple[str, ...]]:
    """The walk's problems, first first, and its summary (what the command runs, one line a program)."""
    writer = _Writer(walk.command)
    if not walk.command.argv:
        writer.problems.append(
            Problem(
                "no-command",
                "the image has neither ENTRYPOINT nor CMD",
                ("`docker run` on it fails with 'no command specified'",),
                'add an exec-form command to the final stage, e.g. CMD ["/app"]',
            )
        )
    if walk.no_shell is not None:
        writer.problems.append(no_shell(walk.no_shell, walk.command, walk.exec_argv))
    for step in walk.steps:
        writer.step(step, (), "")
    return tuple(writer.problems), tuple(writer.summary)


class _Writer:
    """Problems and summary lines for the steps of one walk, in the order the steps would fail."""

    def __init__(self, command: Command) -> None:
        self.command = command
        self.problems: list[Problem] = []
        self.summary: list[str] = []

    def step(self, step: Step, trace: tuple[str, ...], start: str) -> None:
        """``trace``: the evidence lines that led to the step; ``start``: the chain's first program."""
        if isinstance(step, Missing):
            self.problems.append(not_found(step, self.command, trace))
            return
        trace = (*trace, *found_trace(step.found, self.command))
        if isinstance(step, Directory):
            self.problems.append(is_directory(step, self.command, trace))
            return
        if step.depth == 0:
            start = label(step.found)
        if not step.entry.executable:
            self.problems.append(not_executable(step, trace))
            if not step.regular:
                return
        if step.script is not None:
            self.script(step, step.script, trace, start)
        elif step.elf is not None:
            self.elf(step, step.elf, trace)
        elif step.recorded:
            self.summary.append(f"{label(step.found)} is an executable file (its type was not read)")

    def script(self, step: Program, script: Script, trace: tuple[str, ...], start: str) -> None:
        path = step.found.real
        trace = (*trace, f"{path}: script, {shebang(script.line.rstrip(chr(13)))}")
        if script.crlf:
            interp, arg = script.read_as
            self.problems.append(
                Problem(
                    "shebang-crlf",
                    f"the #! line of {path} ends in a carriage return (Windows line endings), so "
                    + (
                        f"{interp} gets the argument {_quote(arg)}" if arg else f"the kernel looks for {_quote(interp)}"
                    ),
                    (*trace, f"#! line as stored: {_quote('#!' + script.line)}"),
                    f"convert {path} to LF line endings (dos2unix, or `*.sh text eol=lf` in .gitattributes)",
                )
            )
        if not script.interpreter:
            return
        if step.too_deep:
            self.problems.append(
                Problem(
                    "interpreter-loop",
                    f"the #! interpreters starting at {start} nest more than {MAX_INTERPRETERS} deep",
                    (*trace, 'the engine reports this as "too many levels of symbolic links"'),
                    "point the #! line at a real program (an ELF binary), not another script",
                )
            )
            return
        if step.recorded:
            self.summary.append(f"{label(step.found)} is a {shebang(script.cleaned)} script")
        for child in (step.interpreter, step.env_target):
            if child is not None:
                self.step(child, trace, start)

    def elf(self, step: Program, elf: ElfInfo, trace: tuple[str, ...]) -> None:
        found = step.found
        trace = (*trace, f"{found.real}: {describe(elf)}")
        machine = arch(elf.machine)
        command = self.command
        if not command.runs(elf):
            emulator = command.emulator(elf)
            if emulator:
                if step.recorded:
                    self.summary.append(f"the {command.arch} engine runs {machine} programs under {emulator}")
            else:
                self.problems.append(wrong_arch(found, machine, command, trace))
        if elf.kind in ("rel", "core"):
            self.problems.append(
                Problem(
                    "not-a-program",
                    f"{label(found)} is an ELF {_KINDS[elf.kind]}, not a program",
                    tuple(trace),
                    "ship the linked executable (gcc -o program ...), not an object file",
                )
            )
            return
        search = step.libraries
        if elf.interp is None or search is None:
            if step.recorded:
                self.summary.append(f"{label(found)} is a static {machine} ELF {_kind(elf)}")
            return
        if not search.loader.present:
            self.problems.append(loader_missing(step, search.loader, trace))
        self.problems += library_problems(search, trace)
        if step.recorded:
            count = f"{search.found} librar{'y' if search.found == 1 else 'ies'} found"
            self.summary.append(
                f"{label(found)} is a dynamic {machine} ELF {_kind(elf)} (loader {elf.interp}; {count})"
            )


def _a(word: str) -> str:
    """``an arm64``, ``a 386``."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def wrong_arch(found: Found, machine: str, command: Command, trace: tuple[str, ...]) -> Problem:
    """A program built for another machine than the engine's, which the engine does not emulate."""
    rebuild = (
        f"or build the program for {command.arch}: cross-compile in the build stage for $TARGETARCH"
        f" (GOARCH, rustc --target, a cross gcc), or build the image with --platform linux/{command.arch}"
        " so that its stages build for that architecture"
    )
    if not command.arch_from_engine:
        return Problem(
            "wrong-arch",
            f"{label(found)} is built for {machine}, but the image config says {command.arch}",
            (*trace, 'the engine reports this as "exec format error"'),
            rebuild.removeprefix("or "),
        )
    if command.emulates is None:
        emulation = f"and whether it emulates {machine} cannot be told from here (it is not on this machine)"
        seen = "binfmt_misc: not readable (the engine runs on another machine)"
    else:
        emulation = f"and emulates no {machine}"
        seen = f"binfmt_misc: no enabled handler (with the F flag) runs {machine} programs"
    return Problem(
        "wrong-arch",
        f"{label(found)} is built for {machine}, but the engine runs {command.arch} {emulation}:"
        f" {_a(machine)} program cannot start on {_a(command.arch)} engine without emulation",
        (*trace, seen, 'the engine reports this as "exec format error"'),
        f"to run linux/{machine} images on this {command.arch} engine, set up QEMU user-mode emulation on its"
        " machine (Debian: qemu-user-static with binfmt_misc mounted, as scripts/emulation.sh does; elsewhere:"
        f" docker run --privileged tonistiigi/binfmt --install {machine}), or check this platform on"
        f" {_a(machine)} engine; {rebuild}",
    )


# ---------------------------------------------------------------------------------- the command
def no_shell(found: Found, command: Command, rewritten: tuple[str, ...] | None) -> Problem:
    """``sh -c`` with no shell; ``rewritten``: what the exec-form rewrite would run."""
    script = command.argv[2]
    if found.via == "PATH":
        evidence = [f"looked on PATH {path_shown(command)}"]
    else:
        evidence = [*found_trace(found, command), f"{found.path}: not in the image"]
    if rewritten:
        evidence.append(f"in exec form it would run {json.dumps(list(rewritten))} directly")
        hint = f"use exec form, which needs no shell: {command.keyword} {json.dumps(list(rewritten))}"
    else:
        hint = (
            "the command needs a shell (pipes, variables, globs): move that logic into the program and use"
            " exec form, or use a final base that has /bin/sh (busybox, distroless :debug, debian-slim)"
        )
    where = f"no {found.written}" + (" on PATH" if found.via == "PATH" else "")
    return Problem(
        "no-shell",
        f"the command is shell form ({found.written} -c {_quote(script)}) and the image has {where}",
        tuple(evidence),
        hint,
    )


def not_found(step: Missing, command: Command, trace: tuple[str, ...]) -> Problem:
    found, role = step.found, step.role
    name = found.written
    evidence = list(trace)
    how = _how(found, command)
    if found.via == "PATH":
        evidence.append(f"looked on PATH {path_shown(command)}")
        if found.skipped:
            evidence.append(f"passed over on PATH: {', '.join(f'{p}: {what(e)}' for p, e in found.skipped)}")
        missing = "is not on PATH"
    else:
        evidence.append(f"looked for {found.path}" + (f" ({name} {how})" if how else ""))
        if step.link:
            evidence.append(f"{found.path} is a symlink to {step.link}, which is not in the image")
        missing = "is not in the image" + (f" ({how}: {found.path})" if how else "")
    if step.same_name:
        evidence.append(f"same name elsewhere in the image: {', '.join(step.same_name)}")
    elif step.similar:
        evidence.append(f"similar names in the image: {', '.join(step.similar)}")
    best = step.same_name[0] if step.same_name else None
    shown = _quote(name) if any(c.isspace() for c in name) else name
    if role.kind == "interpreter":
        message = f"the #! interpreter {shown} of {role.parent} {missing}"
        evidence.append(f'the engine reports this as "no such file or directory" for {role.parent} itself')
        hint = (
            f"install {name} in the final image (or use a base that has it), or change the #! line of"
            f" {role.parent} to " + (f"#!{best}" if best else "an interpreter the image has")
        )
    elif role.kind == "env":
        message = f"{shown}, which {shebang(role.shebang)} in {role.parent} runs, {missing}"
        if step.first_word is not None:
            evidence.append(f"Linux passes {_quote(name)} to env as one word, and env runs it as one name")
            head, _, rest = name.partition(" ")
            target = step.first_word
            direct = f"#!{target.path} {rest}" if target.entry is not None else f"#!/path/to/{head} {rest}"
            hint = f"use #!/usr/bin/env -S {name} (GNU env splits it), or {direct}"
        else:
            hint = f"install {name} in the final image (or use a base that has it)" + (
                f", or change the #! line of {role.parent} to #!{best}" if best else ""
            )
    elif role.kind == "shell-command" and role.shebang.lstrip().startswith("["):
        message = f"{shown}, which {role.parent} -c runs, {missing}"
        form = exec_form(role.shebang)
        hint = "the command is not valid JSON, so /bin/sh runs it as a command line: use exec form" + (
            f" {command.keyword} {form.rewrite}" if form.rewrite else ""
        )
    else:
        if role.kind == "program":
            message = f"the program {shown} {missing}"
        elif role.kind == "exec-form":
            message = f"{shown}, which the command would run in exec form, {missing}"
        else:
            message = f"{shown}, which {role.parent} -c runs, {missing}"
        hint = _program_hint(found, command, best, role.argv, shell=role.kind != "program")
    code = "interpreter-missing" if role.kind in ("interpreter", "env") else "not-found"
    return Problem(code, message, tuple(evidence), hint)


def _program_hint(found: Found, command: Command, best: str | None, argv: Sequence[str], *, shell: bool) -> str:
    form = "in exec form, " if shell else ""
    keyword = command.keyword
    if found.via == "PATH":
        if best:
            return (
                f"use its absolute path {form}{_rewrite(command, best, argv)}, or put its directory on PATH"
                f" (ENV PATH={posixpath.dirname(best)}:$PATH)"
            )
        return f"install {found.written} in the final image, or name a program the image has in {keyword}"
    if best and found.via:
        return (
            f"use the absolute path the file has, {form}{_rewrite(command, best, argv)} (a relative program is"
            f" looked up from WORKDIR {command.workdir}), or COPY it to {found.path}"
        )
    if best:
        return f"point {keyword} at the file, {form}{_rewrite(command, best, argv)}, or COPY it to {found.path}"
    return (
        f"COPY the program to {found.path} (COPY --from=<build stage> /absolute/path/in/that/stage"
        f" {found.path}), or fix the path in {keyword}"
    )


def _rewrite(command: Command, program: str, argv: Sequence[str]) -> str:
    shown = json.dumps([program, *argv[1:]])
    return f"args={shown}" if command.keyword == "args" else f"{command.keyword} {shown}"


def is_directory(step: Directory, command: Command, trace: tuple[str, ...]) -> Problem:
    found, inside = step.found, step.executables
    evidence = [*trace, f"{found.real}: a directory"]
    if inside:
        evidence.append(f"executables in it: {', '.join(inside[:3])}" + (", ..." if len(inside) > 3 else ""))
    if step.role.argv:
        hint = (
            f"point {command.keyword} at the program inside it: {_rewrite(command, inside[0], step.role.argv)}"
            if inside
            else f"point {command.keyword} at the program file, not a directory"
        )
    else:
        hint = f"name the program file, not the directory {found.real}"
    return Problem("is-directory", f"{label(found)} is a directory, not a program", tuple(evidence), hint)


def not_executable(step: Program, trace: tuple[str, ...]) -> Problem:
    found, entry = step.found, step.entry
    return Problem(
        "not-executable",
        f"{label(found)} is not executable ({what(entry)})" if step.regular else f"{label(found)} is {what(entry)}",
        (
            *trace,
            f"{found.real}: {what(entry)}",
            *(["runc passes over files on PATH that are not executable"] if found.via == "PATH" else []),
        ),
        f"make it executable where it is built: RUN chmod +x {found.real} in that stage, or"
        f" COPY --chmod=755 <source> {found.real}",
    )


# ------------------------------------------------------------------------------- loader, libraries
def loader_missing(step: Program, loader: Loader, trace: tuple[str, ...]) -> Problem:
    found, role = step.found, step.role
    interp, others = loader.path, loader.others
    evidence = list(trace)
    if loader.link:
        evidence.append(f"loader {interp}: a symlink to {loader.link}, which is not in the image")
    else:
        evidence.append(f"loader {interp}: not in the image")
    if others:
        evidence.append(f"the image has other loaders: {', '.join(others[:3])}")
    reported = role.parent if role.kind in ("interpreter", "env") else found.written
    evidence.append(
        f'the engine reports this as "no such file or directory" for {reported}, although {found.real} exists'
    )
    other_musl = any(is_musl(o) for o in others)
    same = [o for o in others if posixpath.basename(o) == posixpath.basename(interp)]
    if same:
        hint = (
            f"the loader is at {same[0]}, not {interp}: put it at {interp} too"
            f" (COPY --from=<stage> {interp} {interp}), or {_STATIC_HINT}"
        )
    elif others and loader.musl != other_musl:
        built, image = ("musl", "glibc") if loader.musl else ("glibc", "musl")
        hint = (
            f"{found.real} was built against {built} and the image has {image}: build it in a stage with the"
            f" same libc as the final base, or {_STATIC_HINT}"
        )
    elif loader.musl:
        hint = f"{_STATIC_HINT} or use a final base with musl that provides {interp} (alpine)"
    else:
        hint = (
            f"{_STATIC_HINT} or use a final base with libc that provides {interp}"
            " (gcr.io/distroless/base-debian12, debian:12-slim)"
        )
    return Problem(
        "loader-missing",
        f"{label(found)} is dynamically linked, and its ELF loader {interp} is not in the image",
        tuple(evidence),
        hint,
    )


def library_problems(search: LibrarySearch, trace: tuple[str, ...]) -> list[Problem]:
    """For each object in load order: its libraries found only through an uncached /etc/ld.so.conf,
    then its missing libraries (one problem). ``trace`` leads to the program."""
    problems: list[Problem] = []
    for obj in search.objects:
        owner_trace = (*trace, *(f"{path}: {describe(elf)}" for path, elf in obj.via))
        for library in obj.libraries:
            if library.uncached and library.path is not None:
                problems.append(_not_cached(obj.owner, library.name, library.path, owner_trace))
        if obj.missing:
            problems.append(_missing_libraries(obj, obj.missing, owner_trace))
    return problems


def _missing_libraries(obj: ObjectSearch, missing: Sequence[Library], trace: tuple[str, ...]) -> Problem:
    names = [library.name for library in missing]
    evidence = [*trace, f"looked in {search_path(obj.dirs)}"]
    places: dict[str, tuple[str, ...]] = {}
    for library in missing:
        evidence += [f"passed over {p.path}: {p.elf.bits}-bit {arch(p.elf.machine)}" for p in library.passed_over]
        if library.elsewhere:
            evidence.append(f"{library.name} is elsewhere in the image: {', '.join(library.elsewhere)}")
            places[library.name] = library.elsewhere
    shown = _join(names)
    verb = "is" if len(names) == 1 else "are"
    owner = obj.owner
    if places and len(places) == len(names):
        where = sorted({posixpath.dirname(p[0]) for p in places.values()})
        message = f"{shown}, needed by {owner}, {verb} not on the library search path"
        joined = ":".join(where)
        hint = (
            f"put {joined} on the library search path: ENV LD_LIBRARY_PATH={joined}, or link with"
            f" -Wl,-rpath,{where[0]} (or -Wl,-rpath,'$ORIGIN/...'), or copy the librar"
            f"{'y' if len(names) == 1 else 'ies'} into /usr/lib"
        )
    else:
        message = f"{shown}, needed by {owner}, {verb} not in the image"
        hint = (
            f"copy {shown} (and what {'it needs' if len(names) == 1 else 'they need'}) into the image from the"
            " build stage, use a final base that ships them, or link statically"
        )
    return Problem("library-missing", message, tuple(evidence), hint)


def _not_cached(owner: str, name: str, path: str, trace: tuple[str, ...]) -> Problem:
    directory = posixpath.dirname(path)
    return Problem(
        "library-not-cached",
        f"{name}, needed by {owner}, is in {directory}, which /etc/ld.so.conf lists, but the image has no"
        " /etc/ld.so.cache, so the loader does not look there",
        (*trace, f"{path}: found through /etc/ld.so.conf", "/etc/ld.so.cache: not in the image"),
        f"run ldconfig in the final stage after adding the library, or set ENV LD_LIBRARY_PATH={directory}",
    )


# ---------------------------------------------------------------------------------------- words
def label(found: Found) -> str:
    """``./hello (/app/hello)``: the name as written, and the file it leads to when that differs."""
    return found.written if found.written == found.real else f"{found.written} ({found.real})"


def found_trace(found: Found, command: Command) -> list[str]:
    """How the name became a file: ``./hello -> /app/hello (relative to WORKDIR /app)``."""
    steps = [found.written]
    if found.path != found.written:
        how = _how(found, command)
        steps.append(found.path + (f" ({how})" if how else ""))
    if found.entry is not None and found.entry.path != found.path:
        steps.append(found.entry.path)
    return [" -> ".join(steps)] if len(steps) > 1 else []


def _how(found: Found, command: Command) -> str:
    if found.via == "PATH":
        return "on PATH"
    return f"relative to WORKDIR {command.workdir}" if found.via == "workdir" else ""


def path_shown(command: Command) -> str:
    return f"{command.path} (the engine's default)" if command.path_default else command.path


def describe(elf: ElfInfo) -> str:
    """``ELF 64-bit amd64 executable, dynamically linked (loader ...), needs libc.so.6``."""
    text = f"ELF {elf.bits}-bit {arch(elf.machine)} {_kind(elf) if elf.kind != 'dyn' else 'PIE executable'}"
    if elf.kind == "dyn" and elf.interp is None:
        text = f"ELF {elf.bits}-bit {arch(elf.machine)} shared object or static-pie executable"
    if elf.interp is None:
        text += ", statically linked"
    else:
        text += f", dynamically linked (loader {elf.interp})"
    if elf.needed:
        text += f", needs {', '.join(elf.needed)}"
    if elf.runpath:
        text += f", RUNPATH {':'.join(elf.runpath)}"
    return text


def search_path(dirs: Sequence[SearchDir]) -> str:
    """``RUNPATH $ORIGIN/../lib /opt/lib; default /lib, /usr/lib``: directories grouped by source."""
    groups: list[tuple[str, list[str]]] = []
    for directory in dirs:
        source = f"{directory.source} {directory.written}" if directory.written else directory.source
        if groups and groups[-1][0] == source:
            groups[-1][1].append(directory.path)
        else:
            groups.append((source, [directory.path]))
    return "; ".join(f"{source} {', '.join(paths)}" for source, paths in groups)


def what(entry: FileEntry) -> str:
    if entry.kind == "dir":
        return "a directory"
    if entry.kind not in ("file", "hardlink"):
        return "not a regular file"
    return f"mode {entry.mode & 0o7777:04o}, no execute bit" if not entry.executable else f"mode {entry.mode:04o}"


def shebang(line: str) -> str:
    return "#!" + line.strip(" \t")


def _kind(elf: ElfInfo) -> str:
    return _KINDS.get(elf.kind, "executable")


def _quote(text: str) -> str:
    return json.dumps(text)


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
