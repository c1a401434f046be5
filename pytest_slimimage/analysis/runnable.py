"""Why an image would not start as shipped, read off its files without running anything.

The engine (runc) looks the program up, the kernel reads its ``#!`` line or ELF header, loads
the ELF loader named by PT_INTERP, and the loader finds every DT_NEEDED library. Each step that
would fail is a :class:`Problem`, found in that order. :func:`check_runnable` turns them into a
``runnable`` check; :func:`explain_run_failure` into evidence for a failed ``runs`` check.

Pure: reads :class:`ImageFacts` (the config and the indexed filesystem); no I/O, no pytest,
no docker. Paths are followed with :meth:`FileSystem.resolve` only.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_slimimage.dockerfile.model import exec_form
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem, ImageFacts, normalise

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH the engine gives a container whose image config sets none."""
MAX_INTERPRETERS = 4
"""How deep the kernel follows ``#!`` interpreters that are scripts themselves (BINPRM_MAX_RECURSION)."""

_MULTIARCH = {
    "amd64": ("x86_64-linux-gnu",),
    "arm64": ("aarch64-linux-gnu",),
    "386": ("i386-linux-gnu",),
    "arm": ("arm-linux-gnueabihf", "arm-linux-gnueabi"),
    "ppc64le": ("powerpc64le-linux-gnu",),
    "s390x": ("s390x-linux-gnu",),
    "riscv64": ("riscv64-linux-gnu",),
    "mips64le": ("mips64el-linux-gnuabi64",),
    "loong64": ("loongarch64-linux-gnu",),
}
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "armhf": "arm",
    "armel": "arm",
    "armv7l": "arm",
    "armv6l": "arm",
}
_RUNS_ON = {"amd64": {"amd64", "386"}}
"""Engine architectures that also run another ELF machine natively (the kernel's compat mode)."""
_KINDS = {"exec": "executable", "rel": "relocatable object", "core": "core dump"}
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~{}\n\\]")
_SHELL_BUILTINS = frozenset(
    {":", ".", "[", "cd", "echo", "eval", "export", "printf", "set", "source", "test", "trap", "true", "false", "wait"}
)
_LOADER_NAME = re.compile(r"^ld-(?:linux|musl)[\w.-]*\.so(?:\.\d+)*$")


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


# ------------------------------------------------------------------------------------------ public
def diagnose(
    facts: ImageFacts, *, engine_arch: str | None = None, args: Sequence[str] | None = None
) -> tuple[Problem, ...]:
    """Why ``facts``' image would not start: ENTRYPOINT + CMD (``args``, when given and not empty,
    replace CMD, as ``docker run IMAGE ARGS...`` does), first problem first.

    ``engine_arch`` is the engine's architecture (``amd64``, ``arm64``, ...); without it the
    image config's architecture is what the program must match. Without an indexed filesystem
    only a missing command can be found."""
    return Diagnosis(facts, engine_arch, args).run()


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


# -------------------------------------------------------------------------------------- the walk
@dataclass(frozen=True)
class _Found:
    """Where a program name led: the path looked up and the entry it resolves to."""

    written: str
    path: str
    """The absolute path tried (the first executable on PATH, else the last candidate)."""
    entry: FileEntry | None
    how: str = ""
    """``relative to WORKDIR /app``, ``on PATH`` or '' (absolute)."""
    looked: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    """PATH candidates passed over, with why (``/usr/bin/x: a directory``)."""

    @property
    def real(self) -> str:
        return self.entry.path if self.entry is not None else self.path

    @property
    def label(self) -> str:
        return self.written if self.written == self.real else f"{self.written} ({self.real})"

    def trace(self) -> list[str]:
        """How the name became a file: ``./hello -> /app/hello (relative to WORKDIR /app)``."""
        steps = [self.written]
        if self.path != self.written:
            steps.append(self.path + (f" ({self.how})" if self.how else ""))
        if self.entry is not None and self.entry.path != self.path:
            steps.append(self.entry.path)
        return [" -> ".join(steps)] if len(steps) > 1 else []


@dataclass
class _Role:
    """Who runs the program: the engine (``program``), the kernel for a script, env, or a shell."""

    kind: str
    """``program`` (what the engine runs), ``exec-form`` (what it would run without the missing
    shell), ``shell-command`` (what ``sh -c`` runs), ``interpreter`` (a ``#!`` line's) or ``env``."""
    argv: tuple[str, ...] = ()
    """For the first three: the command, whose first word a fix rewrites."""
    parent: str = ""
    """The script (or shell) that names this program."""
    shebang: str = ""
    """The ``#!`` line (without ``#!``), or the ``sh -c`` command line."""
    trace: tuple[str, ...] = ()


class Diagnosis:
    """One walk from the command to the libraries, collecting problems and a summary."""

    def __init__(self, facts: ImageFacts, engine_arch: str | None, args: Sequence[str] | None) -> None:
        self.facts = facts
        config = facts.config
        self.fs = facts.filesystem or FileSystem()
        self.problems: list[Problem] = []
        self.summary: list[str] = []
        self.program: str | None = None
        self.static: bool | None = None
        self.loader: str | None = None
        self.start = ""
        """The first program of the current chain of #! interpreters."""
        self.workdir = normalise(config.workdir or "/")
        self.env = dict(config.env)
        path = self.env.get("PATH", DEFAULT_PATH)
        self.path_dirs = [d or "." for d in path.split(":")] if path else []
        self.path_shown = path if "PATH" in self.env else f"{DEFAULT_PATH} (the engine's default)"
        replaced = tuple(args) if args else None  # empty args keep CMD, as the engine does
        if config.entrypoint:
            self.keyword, self.command = "ENTRYPOINT", tuple(config.entrypoint)
        elif replaced:
            self.keyword, self.command = "args", replaced
        else:
            self.keyword, self.command = "CMD", tuple(config.cmd or ())
        self.argv = (config.entrypoint or ()) + (replaced or config.cmd or ())
        arch = engine_arch or config.architecture
        self.arch = _arch(arch) if arch else ""
        self.arch_source = "the engine runs" if engine_arch else "the image config says"

    def run(self) -> tuple[Problem, ...]:
        if not self.argv:
            self.problems.append(
                Problem(
                    "no-command",
                    "the image has neither ENTRYPOINT nor CMD",
                    ("`docker run` on it fails with 'no command specified'",),
                    'add an exec-form command to the final stage, e.g. CMD ["/app"]',
                )
            )
        elif self.facts.filesystem is not None:
            self._command()
        return tuple(self.problems)

    # ------------------------------------------------------------------------------- the command
    def _command(self) -> None:
        argv = self.argv
        shell = len(argv) >= 3 and posixpath.basename(argv[0]) in _SHELLS and argv[1] == "-c"
        found = self._lookup(argv[0], path_search="/" not in argv[0])
        if shell and found.entry is None:
            self._no_shell(found)
            return
        self.program = found.real if found.entry is not None else None
        self._program(found, _Role("program", argv=self.command), 0, record=True)
        if shell:
            self._shell_command(argv[0], argv[2])

    def _no_shell(self, found: _Found) -> None:
        """``sh -c`` with no shell; then what the exec-form rewrite would run."""
        script = self.argv[2]
        form = exec_form(script)
        rewritten = form.argv if form.argv is not None and form.argv[:2] != ("/bin/sh", "-c") else None
        if found.how == "on PATH":
            evidence = [f"looked on PATH {self.path_shown}"]
        else:
            evidence = [*found.trace(), f"{found.path}: not in the image"]
        if rewritten:
            evidence.append(f"in exec form it would run {json.dumps(list(rewritten))} directly")
            hint = f"use exec form, which needs no shell: {self.keyword} {form.rewrite}"
        else:
            hint = (
                "the command needs a shell (pipes, variables, globs): move that logic into the program and use"
                " exec form, or use a final base that has /bin/sh (busybox, distroless :debug, debian-slim)"
            )
        where = f"no {found.written}" + (" on PATH" if found.how == "on PATH" else "")
        self.problems.append(
            Problem(
                "no-shell",
                f"the command is shell form ({found.written} -c {_quote(script)}) and the image has {where}",
                tuple(evidence),
                hint,
            )
        )
        if rewritten:
            name = rewritten[0]
            target = self._lookup(name, path_search="/" not in name)
            self._program(target, _Role("exec-form", argv=rewritten), 0, record=False)

    def _shell_command(self, shell: str, script: str) -> None:
        """Follow the program a simple ``sh -c`` command line runs (no pipes, variables or globs)."""
        if _SHELL_SYNTAX.search(script):
            return
        try:
            words = shlex.split(script)
        except ValueError:
            return
        while words and (words[0] == "exec" or re.fullmatch(r"[A-Za-z_]\w*=.*", words[0])):
            words = words[1:]
        if not words or words[0] in _SHELL_BUILTINS:
            return
        found = self._lookup(words[0], path_search="/" not in words[0])
        role = _Role("shell-command", argv=tuple(words), parent=shell, shebang=script)
        self._program(found, role, 0, record=False)

    # ------------------------------------------------------------------------------------ lookup
    def _lookup(self, name: str, *, path_search: bool) -> _Found:
        """Where ``name`` leads, as runc, env and shells look it up: a path (relative ones from
        WORKDIR) or, for a bare name, the first executable file in a PATH directory."""
        if not path_search:
            path = normalise(posixpath.join(self.workdir, name))
            how = f"relative to WORKDIR {self.workdir}" if not name.startswith("/") else ""
            return _Found(name, path, self.fs.resolve(path), how, (path,))
        looked: list[str] = []
        skipped: list[str] = []
        first_file: tuple[str, FileEntry] | None = None
        for directory in self.path_dirs:
            path = normalise(posixpath.join(self.workdir, directory, name))
            if path in looked:
                continue
            looked.append(path)
            entry = self.fs.resolve(path)
            if entry is None:
                continue
            if entry.executable:
                return _Found(name, path, entry, "on PATH", tuple(looked), tuple(skipped))
            skipped.append(f"{path}: {_what(entry)}")
            if first_file is None and entry.kind != "dir":
                first_file = (path, entry)
        if first_file is not None:  # runc passes over it; say why it is not the program
            return _Found(name, first_file[0], first_file[1], "on PATH", tuple(looked), tuple(skipped))
        return _Found(name, looked[-1] if looked else name, None, "on PATH", tuple(looked), tuple(skipped))

    def _is_file(self, entry: FileEntry | None) -> bool:
        return entry is not None and entry.kind in ("file", "hardlink")

    def _content(self, entry: FileEntry) -> FileEntry:
        """The entry carrying a hard link's ELF/#! facts (the link's target, when the link has none)."""
        if entry.kind == "hardlink" and entry.elf is None and entry.shebang is None:
            target = self.fs.get(entry.link)
            if target is not None:
                return target
        return entry

    # ------------------------------------------------------------------------------- one program
    def _program(self, found: _Found, role: _Role, depth: int, *, record: bool) -> None:
        entry = found.entry
        if entry is None:
            self._not_found(found, role)
            return
        trace = (*role.trace, *found.trace())
        if entry.kind == "dir":
            self._directory(found, role, trace)
            return
        if depth == 0:
            self.start = found.label
        if not entry.executable:
            regular = entry.kind in ("file", "hardlink")
            self.problems.append(
                Problem(
                    "not-executable",
                    f"{found.label} is not executable ({_what(entry)})"
                    if regular
                    else f"{found.label} is {_what(entry)}",
                    (
                        *trace,
                        f"{found.real}: {_what(entry)}",
                        *(["runc passes over files on PATH that are not executable"] if found.how == "on PATH" else []),
                    ),
                    f"make it executable where it is built: RUN chmod +x {found.real} in that stage, or"
                    f" COPY --chmod=755 <source> {found.real}",
                )
            )
            if not regular:
                return
        content = self._content(entry)
        if content.shebang is not None:
            self._script(found, content.shebang, role, trace, depth, record=record)
        elif content.elf is not None:
            self._elf(found, content.elf, role, trace, record=record)
        elif record:
            self.summary.append(f"{found.label} is an executable file (its type was not read)")

    def _not_found(self, found: _Found, role: _Role) -> None:
        name = found.written
        elsewhere, similar = self._elsewhere(name, exclude=found.path)
        evidence = list(role.trace)
        if found.how == "on PATH":
            evidence.append(f"looked on PATH {self.path_shown}")
            evidence += _skipped(found)
            missing = "is not on PATH"
        else:
            evidence.append(f"looked for {found.path}" + (f" ({name} {found.how})" if found.how else ""))
            link = self.fs.get(found.path)
            if link is not None and link.kind == "symlink":
                evidence.append(f"{found.path} is a symlink to {link.link}, which is not in the image")
            missing = "is not in the image" + (f" ({found.how}: {found.path})" if found.how else "")
        if elsewhere:
            evidence.append(f"same name elsewhere in the image: {', '.join(elsewhere)}")
        elif similar:
            evidence.append(f"similar names in the image: {', '.join(similar)}")
        best = elsewhere[0] if elsewhere else None
        shown = _quote(name) if any(c.isspace() for c in name) else name
        if role.kind == "interpreter":
            message = f"the #! interpreter {shown} of {role.parent} {missing}"
            evidence.append(f'the engine reports this as "no such file or directory" for {role.parent} itself')
            hint = (
                f"install {name} in the final image (or use a base that has it), or change the #! line of"
                f" {role.parent} to " + (f"#!{best}" if best else "an interpreter the image has")
            )
        elif role.kind == "env":
            message = f"{shown}, which {_shebang(role.shebang)} in {role.parent} runs, {missing}"
            if " " in name:
                evidence.append(f"Linux passes {_quote(name)} to env as one word, and env runs it as one name")
                head, _, rest = name.partition(" ")
                target = self._lookup(head, path_search=True)
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
                f" {self.keyword} {form.rewrite}" if form.rewrite else ""
            )
        else:
            if role.kind == "program":
                message = f"the program {shown} {missing}"
            elif role.kind == "exec-form":
                message = f"{shown}, which the command would run in exec form, {missing}"
            else:
                message = f"{shown}, which {role.parent} -c runs, {missing}"
            hint = self._program_hint(found, best, role.argv, shell=role.kind != "program")
        code = "interpreter-missing" if role.kind in ("interpreter", "env") else "not-found"
        self.problems.append(Problem(code, message, tuple(evidence), hint))

    def _program_hint(self, found: _Found, best: str | None, argv: Sequence[str], *, shell: bool) -> str:
        form = "in exec form, " if shell else ""
        if found.how == "on PATH":
            if best:
                return (
                    f"use its absolute path {form}{self._rewrite(best, argv)}, or put its directory on PATH"
                    f" (ENV PATH={posixpath.dirname(best)}:$PATH)"
                )
            return f"install {found.written} in the final image, or name a program the image has in {self.keyword}"
        if best and found.how:
            return (
                f"use the absolute path the file has, {form}{self._rewrite(best, argv)} (a relative program is"
                f" looked up from WORKDIR {self.workdir}), or COPY it to {found.path}"
            )
        if best:
            return f"point {self.keyword} at the file, {form}{self._rewrite(best, argv)}, or COPY it to {found.path}"
        return (
            f"COPY the program to {found.path} (COPY --from=<build stage> /absolute/path/in/that/stage"
            f" {found.path}), or fix the path in {self.keyword}"
        )

    def _rewrite(self, program: str, argv: Sequence[str]) -> str:
        shown = json.dumps([program, *argv[1:]])
        return f"args={shown}" if self.keyword == "args" else f"{self.keyword} {shown}"

    def _directory(self, found: _Found, role: _Role, trace: tuple[str, ...]) -> None:
        inside = sorted(
            e.path
            for e in self.fs
            if posixpath.dirname(e.path) == found.real and (r := self.fs.resolve(e.path)) is not None and r.executable
        )
        evidence = [*trace, f"{found.real}: a directory"]
        if inside:
            evidence.append(f"executables in it: {', '.join(inside[:3])}" + (", ..." if len(inside) > 3 else ""))
        if role.argv:
            hint = (
                f"point {self.keyword} at the program inside it: {self._rewrite(inside[0], role.argv)}"
                if inside
                else f"point {self.keyword} at the program file, not a directory"
            )
        else:
            hint = f"name the program file, not the directory {found.real}"
        self.problems.append(
            Problem("is-directory", f"{found.label} is a directory, not a program", tuple(evidence), hint)
        )

    # ----------------------------------------------------------------------------------- scripts
    def _script(
        self, found: _Found, shebang: str, role: _Role, trace: tuple[str, ...], depth: int, *, record: bool
    ) -> None:
        script = found.real
        trace = (*trace, f"{script}: script, {_shebang(shebang.rstrip(chr(13)))}")
        parsed = re.match(r"[ \t]*([^ \t]*)[ \t]*(.*)", shebang, re.S)
        interp, arg = (parsed.group(1), parsed.group(2).rstrip(" \t")) if parsed else ("", "")
        if shebang.rstrip(" \t").endswith("\r"):
            self.problems.append(
                Problem(
                    "shebang-crlf",
                    f"the #! line of {script} ends in a carriage return (Windows line endings), so "
                    + (
                        f"{interp} gets the argument {_quote(arg)}" if arg else f"the kernel looks for {_quote(interp)}"
                    ),
                    (*trace, f"#! line as stored: {_quote('#!' + shebang)}"),
                    f"convert {script} to LF line endings (dos2unix, or `*.sh text eol=lf` in .gitattributes)",
                )
            )
            interp, arg = interp.rstrip("\r"), arg.rstrip("\r").rstrip(" \t")
            shebang = shebang.rstrip(" \t\r")
        if not interp:
            return
        if depth + 1 > MAX_INTERPRETERS:
            self.problems.append(
                Problem(
                    "interpreter-loop",
                    f"the #! interpreters starting at {self.start} nest more than {MAX_INTERPRETERS} deep",
                    (*trace, 'the engine reports this as "too many levels of symbolic links"'),
                    "point the #! line at a real program (an ELF binary), not another script",
                )
            )
            return
        child = _Role("interpreter", parent=script, shebang=shebang, trace=trace)
        interpreter = self._lookup(interp, path_search=False)
        if record:
            self.summary.append(f"{found.label} is a {_shebang(shebang)} script")
        self._program(interpreter, child, depth + 1, record=record and posixpath.basename(interp) != "env")
        if posixpath.basename(interp) == "env" and arg:
            name = _env_program(arg)
            if name is not None:
                target = self._lookup(name, path_search="/" not in name)
                env_role = _Role("env", parent=script, shebang=shebang, trace=trace)
                self._program(target, env_role, depth + 1, record=record)

    # -------------------------------------------------------------------------------------- ELF
    def _elf(self, found: _Found, elf: ElfInfo, role: _Role, trace: tuple[str, ...], *, record: bool) -> None:
        path = found.real
        trace = (*trace, f"{path}: {_describe(elf)}")
        machine = _arch(elf.machine)
        if self.arch and machine not in _RUNS_ON.get(self.arch, {self.arch}):
            self.problems.append(
                Problem(
                    "wrong-arch",
                    f"{found.label} is built for {machine}, but {self.arch_source} {self.arch}",
                    (*trace, 'the engine reports this as "exec format error"'),
                    f"build the program for {self.arch}: cross-compile in the build stage for $TARGETARCH"
                    f" (GOARCH, rustc --target, a cross gcc), or build the image with --platform linux/{self.arch}"
                    " so that its stages build for that architecture",
                )
            )
        if elf.kind in ("rel", "core"):
            self.problems.append(
                Problem(
                    "not-a-program",
                    f"{found.label} is an ELF {_KINDS[elf.kind]}, not a program",
                    tuple(trace),
                    "ship the linked executable (gcc -o program ...), not an object file",
                )
            )
            return
        if record:
            self.static = elf.interp is None
            self.loader = elf.interp
        if elf.interp is None:
            if record:
                self.summary.append(f"{found.label} is a static {machine} ELF {_kind(elf)}")
            return
        loader = self.fs.resolve(normalise(posixpath.join(self.workdir, elf.interp)))
        if not self._is_file(loader):
            self._loader_missing(found, elf, role, trace)
        libraries = self._libraries(path, elf, trace)
        if record:
            count = f"{libraries} librar{'y' if libraries == 1 else 'ies'} found"
            self.summary.append(f"{found.label} is a dynamic {machine} ELF {_kind(elf)} (loader {elf.interp}; {count})")

    def _loader_missing(self, found: _Found, elf: ElfInfo, role: _Role, trace: tuple[str, ...]) -> None:
        interp = elf.interp or ""
        evidence = list(trace)
        link = self.fs.get(interp)
        if link is not None and link.kind == "symlink":
            evidence.append(f"loader {interp}: a symlink to {link.link}, which is not in the image")
        else:
            evidence.append(f"loader {interp}: not in the image")
        others = sorted(
            e.path
            for e in self.fs
            if _LOADER_NAME.match(posixpath.basename(e.path)) and e.path != interp and e.kind != "dir"
        )
        if others:
            evidence.append(f"the image has other loaders: {', '.join(others[:3])}")
        reported = role.parent if role.kind in ("interpreter", "env") else found.written
        evidence.append(
            f'the engine reports this as "no such file or directory" for {reported}, although {found.real} exists'
        )
        musl = _is_musl(interp)
        other_musl = any(_is_musl(o) for o in others)
        same = [o for o in others if posixpath.basename(o) == posixpath.basename(interp)]
        if same:
            hint = (
                f"the loader is at {same[0]}, not {interp}: put it at {interp} too"
                f" (COPY --from=<stage> {interp} {interp}), or link statically (gcc -static, or CGO_ENABLED=0 for Go)"
            )
        elif others and musl != other_musl:
            built, image = ("musl", "glibc") if musl else ("glibc", "musl")
            hint = (
                f"{found.real} was built against {built} and the image has {image}: build it in a stage with the"
                f" same libc as the final base, or link statically (gcc -static, or CGO_ENABLED=0 for Go)"
            )
        elif musl:
            hint = (
                "link statically (gcc -static, or CGO_ENABLED=0 for Go) or use a final base with musl that"
                f" provides {interp} (alpine)"
            )
        else:
            hint = (
                "link statically (gcc -static, or CGO_ENABLED=0 for Go) or use a final base with libc that"
                f" provides {interp} (gcr.io/distroless/base-debian12, debian:12-slim)"
            )
        self.problems.append(
            Problem(
                "loader-missing",
                f"{found.label} is dynamically linked, and its ELF loader {interp} is not in the image",
                tuple(evidence),
                hint,
            )
        )

    # -------------------------------------------------------------------------------- libraries
    def _libraries(self, program: str, elf: ElfInfo, trace: tuple[str, ...]) -> int:
        """Find every DT_NEEDED library, transitively; report the missing ones. Returns how many were found."""
        interp = elf.interp or ""
        musl = _is_musl(interp)
        loaded = {posixpath.basename(interp)} | ({"libc.so"} if musl else set())
        cached = musl or self.fs.resolve("/etc/ld.so.cache") is not None
        conf = [] if musl else _ld_so_conf(self.fs)
        queue: list[tuple[str, ElfInfo, tuple[str, ...]]] = [(program, elf, trace)]
        done: set[str] = set()
        found_count = 0
        while queue:
            owner, info, owner_trace = queue.pop(0)
            if owner in done:
                continue
            done.add(owner)
            dirs = self._library_dirs(owner, info.runpath, elf, conf if cached else [])
            missing: list[tuple[str, list[str]]] = []
            for name in info.needed:
                if name in loaded:
                    continue
                hit, notes = self._find_library(name, dirs, elf)
                if hit is None and not cached and conf:
                    hit, _ = self._find_library(name, [(d, "ld.so.conf") for d in conf], elf)
                    if hit is not None:
                        self.problems.append(self._not_cached(owner, name, hit[0], owner_trace))
                if hit is None:
                    missing.append((name, notes))
                    continue
                lib_path, lib = hit
                loaded.add(name)
                found_count += 1
                content = self._content(lib)
                if content.elf is not None and content.elf.needed:
                    lib_trace = (*owner_trace, f"{lib_path}: {_describe(content.elf)}")
                    queue.append((lib_path, content.elf, lib_trace))
            if missing:
                self.problems.append(self._missing_libraries(owner, missing, dirs, owner_trace))
        return found_count

    def _library_dirs(
        self, owner: str, runpath: Sequence[str], program: ElfInfo, conf: Sequence[str]
    ) -> list[tuple[str, str]]:
        """(directory, where it comes from) in the loader's search order, duplicates dropped:
        LD_LIBRARY_PATH, the object's RUNPATH ($ORIGIN expanded), then for glibc the directories
        of /etc/ld.so.conf (through /etc/ld.so.cache) and the default ones, for musl its path file
        or the default ones."""
        dirs: list[tuple[str, str]] = []
        library_path = self.env.get("LD_LIBRARY_PATH")
        if library_path:
            dirs += [(d or ".", "LD_LIBRARY_PATH") for d in library_path.split(":")]
        for entry in runpath:
            for expanded in _expand_origin(entry, posixpath.dirname(owner)):
                dirs.append((expanded, f"RUNPATH {entry}" if expanded != entry else "RUNPATH"))
        interp = program.interp or ""
        if _is_musl(interp):
            path_file = f"/etc/ld-musl-{_musl_arch(posixpath.basename(interp))}.path"
            text = self.fs.contents.get(path_file)
            if text is not None:
                dirs += [(d, path_file) for d in re.split(r"[:\n]", text.decode(errors="replace")) if d.strip()]
            else:
                dirs += [(d, "default") for d in ("/lib", "/usr/local/lib", "/usr/lib")]
        else:
            dirs += [(d, "/etc/ld.so.conf") for d in conf]
            machine = _arch(program.machine)
            defaults = [f"{top}/{triplet}" for triplet in _MULTIARCH.get(machine, ()) for top in ("/lib", "/usr/lib")]
            defaults += ["/lib64", "/usr/lib64"] if program.bits == 64 else ["/lib32", "/usr/lib32"]
            dirs += [(d, "default") for d in [*defaults, "/lib", "/usr/lib"]]
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for directory, source in dirs:
            path = normalise(posixpath.join(self.workdir, directory.strip()))
            if path not in seen:
                seen.add(path)
                out.append((path, source))
        return out

    def _find_library(
        self, name: str, dirs: Sequence[tuple[str, str]], program: ElfInfo
    ) -> tuple[tuple[str, FileEntry] | None, list[str]]:
        """The first ``name`` in ``dirs`` that is a file of the program's class and machine (the
        loader passes over the others), and notes on those passed over."""
        notes: list[str] = []
        paths = (
            [normalise(posixpath.join(self.workdir, name))] if "/" in name else
            [normalise(posixpath.join(d, name)) for d, _ in dirs]
        )  # fmt: skip
        for path in paths:
            entry = self.fs.resolve(path)
            if entry is None or entry.kind not in ("file", "hardlink"):
                continue
            info = self._content(entry).elf
            if info is not None and (_arch(info.machine) != _arch(program.machine) or info.bits != program.bits):
                notes.append(f"passed over {path}: {info.bits}-bit {_arch(info.machine)}")
                continue
            return (path, entry), notes
        return None, notes

    def _missing_libraries(
        self, owner: str, missing: list[tuple[str, list[str]]], dirs: list[tuple[str, str]], trace: tuple[str, ...]
    ) -> Problem:
        names = [name for name, _ in missing]
        evidence = [*trace, f"looked in {_dirs(dirs)}"]
        places: dict[str, list[str]] = {}
        for name, notes in missing:
            evidence += notes
            searched = {directory for directory, _ in dirs}
            elsewhere, _ = self._elsewhere(name, exclude="", executable_only=False)
            elsewhere = [p for p in elsewhere if posixpath.dirname(p) not in searched]
            if elsewhere:
                evidence.append(f"{name} is elsewhere in the image: {', '.join(elsewhere)}")
                places[name] = elsewhere
        shown = _join(names)
        verb = "is" if len(names) == 1 else "are"
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

    def _not_cached(self, owner: str, name: str, path: str, trace: tuple[str, ...]) -> Problem:
        directory = posixpath.dirname(path)
        return Problem(
            "library-not-cached",
            f"{name}, needed by {owner}, is in {directory}, which /etc/ld.so.conf lists, but the image has no"
            " /etc/ld.so.cache, so the loader does not look there",
            (*trace, f"{path}: found through /etc/ld.so.conf", "/etc/ld.so.cache: not in the image"),
            f"run ldconfig in the final stage after adding the library, or set ENV LD_LIBRARY_PATH={directory}",
        )

    # ---------------------------------------------------------------------------------- helpers
    def _elsewhere(self, name: str, *, exclude: str, executable_only: bool = True) -> tuple[list[str], list[str]]:
        """Paths in the image with the same basename (executables first), else similar executable names."""
        base = posixpath.basename(name.rstrip("/"))
        same: list[tuple[bool, int, str]] = []
        executables: dict[str, list[str]] = {}
        for entry in self.fs:
            if entry.kind == "dir" or entry.path == exclude:
                continue
            entry_base = posixpath.basename(entry.path)
            if entry_base == base:
                reached = self.fs.resolve(entry.path)
                runnable = reached is not None and reached.executable
                same.append((not runnable, entry.path.count("/"), entry.path))
            elif entry.executable and executable_only:
                executables.setdefault(entry_base, []).append(entry.path)
        if same:
            return [path for _, _, path in sorted(same)[:3]], []
        close = difflib.get_close_matches(base, list(executables), n=3, cutoff=0.6) if base else []
        return [], [path for b in close for path in sorted(executables[b])][:3]


# ---------------------------------------------------------------------------------- module helpers
def _arch(name: str) -> str:
    lowered = name.lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def _kind(elf: ElfInfo) -> str:
    return _KINDS.get(elf.kind, "executable")


def _describe(elf: ElfInfo) -> str:
    """``ELF 64-bit amd64 executable, dynamically linked (loader ...), needs libc.so.6``."""
    text = f"ELF {elf.bits}-bit {_arch(elf.machine)} {_kind(elf) if elf.kind != 'dyn' else 'PIE executable'}"
    if elf.kind == "dyn" and elf.interp is None:
        text = f"ELF {elf.bits}-bit {_arch(elf.machine)} shared object or static-pie executable"
    if elf.interp is None:
        text += ", statically linked"
    else:
        text += f", dynamically linked (loader {elf.interp})"
    if elf.needed:
        text += f", needs {', '.join(elf.needed)}"
    if elf.runpath:
        text += f", RUNPATH {':'.join(elf.runpath)}"
    return text


def _what(entry: FileEntry) -> str:
    if entry.kind == "dir":
        return "a directory"
    if entry.kind not in ("file", "hardlink"):
        return "not a regular file"
    return f"mode {entry.mode & 0o7777:04o}, no execute bit" if not entry.executable else f"mode {entry.mode:04o}"


def _skipped(found: _Found) -> list[str]:
    return [f"passed over on PATH: {', '.join(found.skipped)}"] if found.skipped else []


def _shebang(line: str) -> str:
    return "#!" + line.strip(" \t")


def _quote(text: str) -> str:
    return json.dumps(text)


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _dirs(dirs: Sequence[tuple[str, str]]) -> str:
    """``RUNPATH $ORIGIN/../lib /opt/lib; default /lib, /usr/lib``: directories grouped by source."""
    groups: list[tuple[str, list[str]]] = []
    for directory, source in dirs:
        if groups and groups[-1][0] == source:
            groups[-1][1].append(directory)
        else:
            groups.append((source, [directory]))
    return "; ".join(f"{source} {', '.join(paths)}" for source, paths in groups)


def _is_musl(interp: str) -> bool:
    return posixpath.basename(interp).startswith("ld-musl-")


def _musl_arch(loader: str) -> str:
    """``ld-musl-x86_64.so.1`` -> ``x86_64``."""
    return loader[len("ld-musl-") :].split(".so", 1)[0]


def _expand_origin(entry: str, origin: str) -> list[str]:
    """``$ORIGIN``/``${ORIGIN}`` -> the object's directory; ``$LIB`` -> lib and lib64."""
    text = re.sub(r"\$(?:ORIGIN\b|\{ORIGIN\})", lambda _: origin, entry)
    if re.search(r"\$(?:LIB\b|\{LIB\})", text):
        return [re.sub(r"\$(?:LIB\b|\{LIB\})", lib, text) for lib in ("lib", "lib64")]
    return [text]


def _ld_so_conf(fs: FileSystem) -> list[str]:
    """The directories /etc/ld.so.conf lists, its ``include`` globs followed through the captured files."""
    out: list[str] = []
    seen: set[str] = set()

    def read(path: str) -> None:
        if path in seen or path not in fs.contents:
            return
        seen.add(path)
        for raw in fs.contents[path].decode(errors="replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include") and line[7:8].isspace():
                for pattern in line[8:].split():
                    pattern = posixpath.join(posixpath.dirname(path), pattern)
                    for match in sorted(
                        p for p in fs.contents if fnmatch.fnmatchcase(p, pattern) and p.count("/") == pattern.count("/")
                    ):
                        read(match)
            elif not line.startswith("hwcap"):
                out.extend(d.split("=", 1)[0] for d in re.split(r"[\s:,]+", line) if d)

    read("/etc/ld.so.conf")
    return out


def _env_program(arg: str) -> str | None:
    """The program ``#!/usr/bin/env <arg>`` runs: ``arg`` whole (Linux passes it as one word), or,
    for ``-S``/options, the first word that is neither an option nor an assignment."""
    if not arg.startswith("-"):
        return None if "=" in arg.split()[0] else arg
    words = arg.split()
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in ("-u", "--unset", "-C", "--chdir"):
            skip_next = True
        elif word.startswith("-S") and len(word) > 2:
            return word[2:]
        elif word.startswith("-") or "=" in word:
            continue
        else:
            return word
    return None
