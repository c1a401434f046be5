"""What the engine would exec, read off the image: the command (ENTRYPOINT + CMD, args replacing
CMD), the file each program name leads to (from WORKDIR, or the first executable on PATH, symlinks
followed), shell form (``sh -c``), and the chain of ``#!`` interpreters down to each ELF program,
with what its loader would find (:func:`.libraries.search_libraries`).

Pure data, no message text (:mod:`.problems` words it): reads :class:`ImageFacts`, follows paths
with :meth:`FileSystem.resolve` only.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

from pytest_slimimage.analysis.runnable.files import arch, content, elsewhere, is_regular
from pytest_slimimage.analysis.runnable.libraries import LibrarySearch, search_libraries
from pytest_slimimage.dockerfile.model import exec_form
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem, ImageFacts, normalise

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH the engine gives a container whose image config sets none."""
MAX_INTERPRETERS = 4
"""How deep the kernel follows ``#!`` interpreters that are scripts themselves (BINPRM_MAX_RECURSION)."""

_RUNS_ON = {"amd64": {"amd64", "386"}}
"""Engine architectures that also run another ELF machine natively (the kernel's compat mode)."""
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~{}\n\\]")
_SHELL_BUILTINS = frozenset(
    {":", ".", "[", "cd", "echo", "eval", "export", "printf", "set", "source", "test", "trap", "true", "false", "wait"}
)


@dataclass(frozen=True)
class Command:
    """What the container would be started with, and where its programs are looked up."""

    argv: tuple[str, ...]
    """ENTRYPOINT + CMD, or ENTRYPOINT + the args that replace CMD."""
    keyword: str
    """``ENTRYPOINT``, ``CMD`` or ``args``: what names the program, and what a fix rewrites."""
    command: tuple[str, ...]
    """What ``keyword`` holds."""
    workdir: str
    path: str
    """The PATH bare names are looked up on."""
    path_default: bool
    """The config sets no PATH, so ``path`` is the engine's default."""
    library_path: str | None
    """The config's LD_LIBRARY_PATH."""
    arch: str
    """The architecture the programs must match ('' when unknown: not checked)."""
    arch_from_engine: bool
    """``arch`` is the engine's (else the image config's)."""
    emulates: Mapping[str, str] | None = None
    """The foreign architectures the engine emulates, each with how; None: cannot be told
    (only with the engine's architecture: an image's config says nothing of emulation)."""

    @classmethod
    def of(cls, facts: ImageFacts, *, engine_arch: str | None = None, args: Sequence[str] | None = None) -> Command:
        config = facts.config
        env = dict(config.env)
        replaced = tuple(args) if args else None  # empty args keep CMD, as the engine does
        if config.entrypoint:
            keyword, command = "ENTRYPOINT", tuple(config.entrypoint)
        elif replaced:
            keyword, command = "args", replaced
        else:
            keyword, command = "CMD", tuple(config.cmd or ())
        machine = engine_arch or config.architecture
        return cls(
            argv=(config.entrypoint or ()) + (replaced or config.cmd or ()),
            keyword=keyword,
            command=command,
            workdir=normalise(config.workdir or "/"),
            path=env.get("PATH", DEFAULT_PATH),
            path_default="PATH" not in env,
            library_path=env.get("LD_LIBRARY_PATH"),
            arch=arch(machine) if machine else "",
            arch_from_engine=bool(engine_arch),
            emulates=facts.engine_emulates if engine_arch else {},
        )

    @property
    def path_dirs(self) -> list[str]:
        return [d or "." for d in self.path.split(":")] if self.path else []

    @property
    def shell(self) -> bool:
        """Shell form: ``sh -c <command line>`` (any common shell)."""
        argv = self.argv
        return len(argv) >= 3 and posixpath.basename(argv[0]) in _SHELLS and argv[1] == "-c"

    def runs(self, elf: ElfInfo) -> bool:
        """Whether the kernel runs ``elf``'s machine here (always, when the architecture is unknown)."""
        return not self.arch or arch(elf.machine) in _RUNS_ON.get(self.arch, {self.arch})

    def emulator(self, elf: ElfInfo) -> str:
        """How the engine runs ``elf``'s foreign machine (``QEMU (binfmt_misc ...)``); "" when it does not."""
        return (self.emulates or {}).get(arch(elf.machine), "")


@dataclass(frozen=True)
class Found:
    """Where a program name led: the path looked up and the entry it resolves to."""

    written: str
    path: str
    """The absolute path tried (the first executable on PATH, else the last candidate)."""
    entry: FileEntry | None
    """What ``path`` resolves to, symlinks followed (None: nothing)."""
    via: str = ""
    """``workdir`` (a relative path, from WORKDIR), ``PATH`` (a bare name, on PATH) or '' (an absolute path)."""
    looked: tuple[str, ...] = ()
    """Every path tried, in order."""
    skipped: tuple[tuple[str, FileEntry], ...] = ()
    """PATH candidates runc passes over (directories, files that are not executable)."""

    @property
    def real(self) -> str:
        return self.entry.path if self.entry is not None else self.path


@dataclass(frozen=True)
class Role:
    """Who runs the program: the engine, the kernel for a script, env, or a shell."""

    kind: str
    """``program`` (what the engine runs), ``exec-form`` (what it would run without the missing
    shell), ``shell-command`` (what ``sh -c`` runs), ``interpreter`` (a ``#!`` line's) or ``env``."""
    argv: tuple[str, ...] = ()
    """For the first three: the command, whose first word a fix rewrites."""
    parent: str = ""
    """The script (or shell) that names this program."""
    shebang: str = ""
    """The ``#!`` line (without ``#!``), or the ``sh -c`` command line."""


@dataclass(frozen=True)
class Script:
    """A ``#!`` line, as the kernel splits it: the interpreter and one argument."""

    line: str
    """As stored, without ``#!``."""
    interpreter: str
    argument: str
    crlf: bool
    """The line ends in a carriage return: the kernel reads ``read_as``, not what was meant."""
    read_as: tuple[str, str]
    """(interpreter, argument) with the carriage return, as the kernel reads them."""

    @property
    def cleaned(self) -> str:
        """The line without the carriage return."""
        return self.line.rstrip(" \t\r") if self.crlf else self.line


@dataclass(frozen=True)
class Missing:
    """A program name that leads to nothing."""

    found: Found
    role: Role
    same_name: tuple[str, ...] = ()
    """Paths in the image with the program's name (runnable ones first)."""
    similar: tuple[str, ...] = ()
    """Without ``same_name``: executables with a similar name."""
    link: str = ""
    """For a path (not a PATH lookup) that is a symlink to nothing: its target as stored."""
    first_word: Found | None = None
    """For ``env`` given a name with spaces (which it runs as one name): where its first word leads on PATH."""


@dataclass(frozen=True)
class Directory:
    """A program name that leads to a directory."""

    found: Found
    role: Role
    executables: tuple[str, ...] = ()
    """The executables in it."""


@dataclass(frozen=True)
class Program:
    """A program name that leads to a file: what the kernel finds in it, and what that runs in turn."""

    found: Found
    role: Role
    entry: FileEntry
    """``found.entry``: not a directory, maybe not executable or not a regular file."""
    depth: int
    """How many ``#!`` interpreters led here (0: the chain's first program)."""
    recorded: bool
    """The engine runs it for the command itself (not a ``sh -c`` command line's program, not a rewrite's)."""
    script: Script | None = None
    too_deep: bool = False
    """The script's interpreter would nest more than :data:`MAX_INTERPRETERS` deep: not followed."""
    interpreter: Step | None = None
    """What the ``#!`` line names."""
    env_target: Step | None = None
    """For ``#!/usr/bin/env NAME``: where NAME leads."""
    elf: ElfInfo | None = None
    """For an ELF file (not a script): its facts (a hard link's target's)."""
    libraries: LibrarySearch | None = None
    """For a dynamically linked ELF program: what its loader would find."""

    @property
    def regular(self) -> bool:
        return is_regular(self.entry)

    def chain(self) -> Iterator[Program]:
        """This program, then those its ``#!`` line runs, depth first."""
        yield self
        for step in (self.interpreter, self.env_target):
            if isinstance(step, Program):
                yield from step.chain()


Step: TypeAlias = Missing | Directory | Program


@dataclass(frozen=True)
class Walk:
    """The command followed through the image."""

    command: Command
    steps: tuple[Step, ...] = ()
    """The program the engine runs, then the program of a simple ``sh -c`` command line; or, when
    ``no_shell``, the program of the exec-form rewrite. Empty without a command or a filesystem."""
    no_shell: Found | None = None
    """Shell form whose shell leads to nothing: where the shell was looked for."""
    exec_argv: tuple[str, ...] | None = None
    """With ``no_shell``: the exec-form rewrite of the command line, when it has one."""

    @property
    def program(self) -> str | None:
        """The file the engine would run (None: not found, or no shell for shell form)."""
        if self.no_shell is not None or not self.steps or self.steps[0].found.entry is None:
            return None
        return self.steps[0].found.real

    @property
    def static(self) -> bool | None:
        elf = self._final_elf()
        return None if elf is None else elf.interp is None

    @property
    def loader(self) -> str | None:
        elf = self._final_elf()
        return None if elf is None else elf.interp

    def _final_elf(self) -> ElfInfo | None:
        """The ELF program the command ends in (the last one, through ``#!`` lines and env)."""
        last = None
        if self.no_shell is None and self.steps and isinstance(self.steps[0], Program):
            for program in self.steps[0].chain():
                if program.recorded and program.elf is not None and program.elf.kind not in ("rel", "core"):
                    last = program.elf
        return last


def walk(facts: ImageFacts, *, engine_arch: str | None = None, args: Sequence[str] | None = None) -> Walk:
    """Follow the command ``facts``' image starts with (``args``, when given and not empty, replace
    CMD) to the files it runs. Without an indexed filesystem, or a command, nothing is followed."""
    command = Command.of(facts, engine_arch=engine_arch, args=args)
    if not command.argv or facts.filesystem is None:
        return Walk(command)
    return _Walker(facts.filesystem, command).walk()


def lookup(fs: FileSystem, command: Command, name: str, *, path_search: bool) -> Found:
    """Where ``name`` leads, as runc, env and shells look it up: a path (relative ones from
    WORKDIR) or, for a bare name (``path_search``), the first executable file in a PATH directory."""
    workdir = command.workdir
    if not path_search:
        path = normalise(posixpath.join(workdir, name))
        return Found(name, path, fs.resolve(path), "" if name.startswith("/") else "workdir", (path,))
    looked: list[str] = []
    skipped: list[tuple[str, FileEntry]] = []
    first_file: tuple[str, FileEntry] | None = None
    for directory in command.path_dirs:
        path = normalise(posixpath.join(workdir, directory, name))
        if path in looked:
            continue
        looked.append(path)
        entry = fs.resolve(path)
        if entry is None:
            continue
        if entry.executable:
            return Found(name, path, entry, "PATH", tuple(looked), tuple(skipped))
        skipped.append((path, entry))
        if first_file is None and entry.kind != "dir":
            first_file = (path, entry)
    if first_file is not None:  # runc passes over it; say why it is not the program
        return Found(name, first_file[0], first_file[1], "PATH", tuple(looked), tuple(skipped))
    return Found(name, looked[-1] if looked else name, None, "PATH", tuple(looked), tuple(skipped))


def parse_shebang(line: str) -> Script:
    """Split a ``#!`` line (without ``#!``) as the kernel does: the interpreter, then the rest as one argument."""
    parsed = re.match(r"[ \t]*([^ \t]*)[ \t]*(.*)", line, re.S)
    interp, arg = (parsed.group(1), parsed.group(2).rstrip(" \t")) if parsed else ("", "")
    if not line.rstrip(" \t").endswith("\r"):
        return Script(line, interp, arg, False, (interp, arg))
    return Script(line, interp.rstrip("\r"), arg.rstrip("\r").rstrip(" \t"), True, (interp, arg))


def env_program(arg: str) -> str | None:
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


def simple_command(script: str) -> tuple[str, ...] | None:
    """The words of a ``sh -c`` command line that just runs a program (no pipes, variables or
    globs), ``exec`` and leading assignments dropped; None for anything else, or a builtin."""
    if _SHELL_SYNTAX.search(script):
        return None
    try:
        words = shlex.split(script)
    except ValueError:
        return None
    while words and (words[0] == "exec" or re.fullmatch(r"[A-Za-z_]\w*=.*", words[0])):
        words = words[1:]
    if not words or words[0] in _SHELL_BUILTINS:
        return None
    return tuple(words)


class _Walker:
    """One walk from the command through ``#!`` interpreters to the ELF programs."""

    def __init__(self, fs: FileSystem, command: Command) -> None:
        self.fs = fs
        self.command = command

    def lookup(self, name: str, *, path_search: bool | None = None) -> Found:
        """``name`` looked up; by default on PATH when it has no slash."""
        search = "/" not in name if path_search is None else path_search
        return lookup(self.fs, self.command, name, path_search=search)

    def walk(self) -> Walk:
        command = self.command
        argv = command.argv
        found = self.lookup(argv[0])
        if command.shell and found.entry is None:
            form = exec_form(argv[2])
            rewritten = form.argv if form.argv is not None and form.argv[:2] != ("/bin/sh", "-c") else None
            if not rewritten:
                return Walk(command, no_shell=found)
            target = self.step(self.lookup(rewritten[0]), Role("exec-form", argv=rewritten), 0, recorded=False)
            return Walk(command, (target,), no_shell=found, exec_argv=rewritten)
        steps = [self.step(found, Role("program", argv=command.command), 0, recorded=True)]
        words = simple_command(argv[2]) if command.shell else None
        if words:
            role = Role("shell-command", argv=words, parent=argv[0], shebang=argv[2])
            steps.append(self.step(self.lookup(words[0]), role, 0, recorded=False))
        return Walk(command, tuple(steps))

    def step(self, found: Found, role: Role, depth: int, *, recorded: bool) -> Step:
        entry = found.entry
        if entry is None:
            return self.missing(found, role)
        if entry.kind == "dir":
            executables = sorted(
                e.path
                for e in self.fs
                if posixpath.dirname(e.path) == found.real
                and (reached := self.fs.resolve(e.path)) is not None
                and reached.executable
            )
            return Directory(found, role, tuple(executables))
        program = Program(found, role, entry, depth, recorded)
        if not program.regular:
            return program
        facts = content(self.fs, entry)
        if facts.shebang is not None:
            return self.script(program, parse_shebang(facts.shebang))
        if facts.elf is not None:
            return replace(program, elf=facts.elf, libraries=self.libraries(found, facts.elf))
        return program

    def missing(self, found: Found, role: Role) -> Missing:
        same_name, similar = elsewhere(self.fs, found.written, exclude=found.path)
        link = self.fs.get(found.path) if found.via != "PATH" else None
        first_word = None
        if role.kind == "env" and " " in found.written:
            first_word = self.lookup(found.written.partition(" ")[0], path_search=True)
        return Missing(
            found,
            role,
            tuple(same_name),
            tuple(similar),
            link.link if link is not None and link.kind == "symlink" else "",
            first_word,
        )

    def script(self, program: Program, script: Script) -> Program:
        if not script.interpreter:
            return replace(program, script=script)
        if program.depth + 1 > MAX_INTERPRETERS:
            return replace(program, script=script, too_deep=True)
        parent = program.found.real
        env = posixpath.basename(script.interpreter) == "env"
        interpreter = self.step(
            self.lookup(script.interpreter, path_search=False),
            Role("interpreter", parent=parent, shebang=script.cleaned),
            program.depth + 1,
            recorded=program.recorded and not env,
        )
        name = env_program(script.argument) if env and script.argument else None
        target = None
        if name is not None:
            role = Role("env", parent=parent, shebang=script.cleaned)
            target = self.step(self.lookup(name), role, program.depth + 1, recorded=program.recorded)
        return replace(program, script=script, interpreter=interpreter, env_target=target)

    def libraries(self, found: Found, elf: ElfInfo) -> LibrarySearch | None:
        if elf.kind in ("rel", "core") or elf.interp is None:
            return None
        command = self.command
        return search_libraries(self.fs, found.real, elf, library_path=command.library_path, workdir=command.workdir)
