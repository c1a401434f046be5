"""What the engine would exec, looked up on hand-built files (no engine), as data: the command,
WORKDIR and PATH lookups, shell form, ``#!`` chains. No message text here
(tests/unit/test_runnable.py pins the words)."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_slimimage.analysis.runnable.commands import (
    DEFAULT_PATH,
    Command,
    Directory,
    Missing,
    Program,
    Role,
    env_program,
    lookup,
    parse_shebang,
    simple_command,
    walk,
)
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem, ImageConfig, ImageFacts

STATIC = ElfInfo("amd64", 64, "exec")
LOADER = "/lib64/ld-linux-x86-64.so.2"


def f(path: str, info: ElfInfo | None = None, *, mode: int = 0o755, shebang: str | None = None) -> FileEntry:
    return FileEntry(path, "file", 1000, mode, elf=info, shebang=shebang)


def tree(*entries: FileEntry) -> FileSystem:
    return FileSystem(entries={e.path: e for e in entries})


def image(
    fs: FileSystem | None,
    *,
    cmd: tuple[str, ...] | None = ("/hello",),
    entrypoint: tuple[str, ...] | None = None,
    workdir: str = "",
    env: Mapping[str, str] | None = None,
) -> ImageFacts:
    config = ImageConfig(cmd=cmd, entrypoint=entrypoint, workdir=workdir, env=dict(env or {}), architecture="amd64")
    return ImageFacts(name="hello", id="sha256:1", size=0, config=config, filesystem=fs)


def test_args_replace_cmd_and_go_to_the_entrypoint() -> None:
    facts = image(None, entrypoint=("/app", "-v"), cmd=("--x",))
    assert Command.of(facts).argv == ("/app", "-v", "--x")
    with_args = Command.of(facts, args=("--y",))
    assert (with_args.argv, with_args.keyword, with_args.command) == (
        ("/app", "-v", "--y"),
        "ENTRYPOINT",
        ("/app", "-v"),
    )
    plain = image(None, cmd=("/hello",))
    assert (Command.of(plain, args=("/bin/true",)).keyword, Command.of(plain, args=()).keyword) == ("args", "CMD")
    assert Command.of(plain, args=()).argv == ("/hello",)  # empty args keep CMD
    assert (Command.of(plain).path, Command.of(plain).path_default) == (DEFAULT_PATH, True)
    assert Command.of(plain, engine_arch="aarch64").arch == "arm64"


def test_path_lookup_passes_over_directories_and_files_that_are_not_executable() -> None:
    fs = tree(
        FileEntry("/usr/local/bin/hello", "dir", 0, 0o755),
        f("/usr/bin/hello", mode=0o644),
        FileEntry("/bin/hello", "symlink", 0, 0o777, "/opt/hello"),
        f("/opt/hello", STATIC),
    )
    command = Command.of(image(fs, env={"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/bin"}))
    found = lookup(fs, command, "hello", path_search=True)
    assert (found.path, found.real, found.via) == ("/bin/hello", "/opt/hello", "PATH")
    assert found.looked == ("/usr/local/bin/hello", "/usr/bin/hello", "/bin/hello")
    assert [path for path, _ in found.skipped] == ["/usr/local/bin/hello", "/usr/bin/hello"]
    only_mode = lookup(tree(f("/usr/bin/hello", mode=0o644)), command, "hello", path_search=True)
    assert (only_mode.path, only_mode.entry is not None) == ("/usr/bin/hello", True)  # why it is not the program


def test_a_relative_program_is_looked_up_from_workdir() -> None:
    fs = tree(f("/app/hello", STATIC))
    found = lookup(fs, Command.of(image(fs, workdir="/app")), "./hello", path_search=False)
    assert (found.path, found.via, found.entry) == ("/app/hello", "workdir", fs.get("/app/hello"))
    absolute = lookup(fs, Command.of(image(fs, workdir="/app")), "/hello", path_search=False)
    assert (absolute.path, absolute.via, absolute.entry) == ("/hello", "", None)


def test_shell_form_without_a_shell_follows_the_exec_form_rewrite() -> None:
    walked = walk(image(tree(f("/hello", STATIC)), cmd=("/bin/sh", "-c", "./hello --port 80")))
    assert walked.command.shell
    assert walked.no_shell is not None and walked.no_shell.path == "/bin/sh"
    assert walked.exec_argv == ("./hello", "--port", "80")
    (step,) = walked.steps
    assert isinstance(step, Program) and step.role == Role("exec-form", argv=("./hello", "--port", "80"))
    assert walked.program is None
    needs_shell = walk(image(tree(), cmd=("/bin/sh", "-c", "./hello | tee /log")))
    assert (needs_shell.exec_argv, needs_shell.steps) == (None, ())


def test_a_simple_shell_command_line_is_followed_to_its_program() -> None:
    assert simple_command("exec A=1 ./hello --x") == ("./hello", "--x")
    assert [simple_command(s) for s in ("./a | b", "echo $X", "cd /", "'open", "")] == [None] * 5
    fs = tree(f("/bin/sh", STATIC), f("/app/hello", STATIC))
    walked = walk(image(fs, cmd=("/bin/sh", "-c", "hello")))
    program, command_line = walked.steps
    assert isinstance(program, Program) and program.recorded
    assert isinstance(command_line, Missing) and command_line.role.kind == "shell-command"
    assert command_line.same_name == ("/app/hello",)


def test_a_script_chain_through_env_to_an_elf_program() -> None:
    python = ElfInfo("amd64", 64, "dyn", interp=LOADER, needed=("libc.so.6",))
    fs = tree(
        f("/app/run.py", shebang="/usr/bin/env python3"),
        f("/usr/bin/env", STATIC),
        f("/usr/bin/python3", python),
        f(LOADER),
    )
    walked = walk(image(fs, cmd=("/app/run.py",)))
    (script,) = walked.steps
    assert isinstance(script, Program) and script.script is not None
    assert (script.script.interpreter, script.script.argument) == ("/usr/bin/env", "python3")
    env, target = script.interpreter, script.env_target
    assert isinstance(env, Program) and not env.recorded and env.elf == STATIC
    assert isinstance(target, Program) and target.recorded and target.depth == 1
    assert target.libraries is not None and target.libraries.loader.present
    assert (walked.program, walked.static, walked.loader) == ("/app/run.py", False, LOADER)


def test_scripts_nested_too_deep_stop_at_the_kernel_limit() -> None:
    fs = tree(*(f(f"/s{n}", shebang=f"/s{n + 1}") for n in range(6)))
    step = walk(image(fs, cmd=("/s0",))).steps[0]
    depth = 0
    while isinstance(step, Program) and step.interpreter is not None:
        step, depth = step.interpreter, depth + 1
    assert isinstance(step, Program) and step.too_deep and depth == 4


def test_a_directory_lists_its_executables() -> None:
    fs = tree(FileEntry("/app", "dir", 0, 0o755), f("/app/b", STATIC), f("/app/a", STATIC), f("/app/c", mode=0o644))
    (step,) = walk(image(fs, cmd=("/app",))).steps
    assert isinstance(step, Directory) and step.executables == ("/app/a", "/app/b")


def test_shebang_lines_and_env_arguments() -> None:
    crlf = parse_shebang("/bin/sh -e\r")
    assert (crlf.interpreter, crlf.argument, crlf.crlf, crlf.read_as, crlf.cleaned) == (
        "/bin/sh",
        "-e",
        True,
        ("/bin/sh", "-e\r"),
        "/bin/sh -e",
    )
    assert parse_shebang(" /usr/bin/env  python3 -u ").argument == "python3 -u"
    assert env_program("python3 -u") == "python3 -u"  # one word, as Linux passes it
    assert [env_program(a) for a in ("-S python3 -u", "-u X -C /tmp node", "-Spython3", "A=1 x", "-i")] == [
        "python3",
        "node",
        "python3",
        None,
        None,
    ]


def test_nothing_is_followed_without_a_command_or_a_filesystem() -> None:
    assert walk(image(None)).steps == ()
    assert walk(image(tree(), cmd=None)).steps == ()
