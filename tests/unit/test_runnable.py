"""Why an image would not start, read off hand-built facts (no engine): the ``runnable`` check,
:func:`diagnose` and :func:`render` (the evidence a failed ``runs`` check carries)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from pytest_slimimage.analysis.runnable import DEFAULT_PATH, Problem, diagnose, render
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.runnable import check_runnable
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem, ImageConfig, ImageFacts

GLIBC_LOADER = "/lib64/ld-linux-x86-64.so.2"
DEBIAN_LOADER = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"


def elf(
    machine: str = "amd64",
    *,
    interp: str | None = None,
    needed: tuple[str, ...] = (),
    runpath: tuple[str, ...] = (),
    kind: str = "exec",
    bits: int = 64,
) -> ElfInfo:
    return ElfInfo(machine, bits, kind, interp=interp, needed=needed, runpath=runpath)


DYNAMIC = elf(kind="dyn", interp=GLIBC_LOADER, needed=("libc.so.6",))
STATIC = elf()


def f(path: str, info: ElfInfo | None = None, *, mode: int = 0o755, shebang: str | None = None) -> FileEntry:
    return FileEntry(path, "file", 1000, mode, elf=info, shebang=shebang)


def d(path: str) -> FileEntry:
    return FileEntry(path, "dir", 0, 0o755)


def ln(path: str, target: str) -> FileEntry:
    return FileEntry(path, "symlink", 0, 0o777, target)


def tree(*entries: FileEntry, contents: Mapping[str, bytes] | None = None) -> FileSystem:
    return FileSystem(entries={e.path: e for e in entries}, contents=dict(contents or {}))


def image(
    fs: FileSystem | None,
    *,
    cmd: tuple[str, ...] | None = ("/hello",),
    entrypoint: tuple[str, ...] | None = None,
    workdir: str = "",
    env: Mapping[str, str] | None = None,
    architecture: str = "amd64",
) -> ImageFacts:
    config = ImageConfig(
        cmd=cmd, entrypoint=entrypoint, workdir=workdir, env=dict(env or {}), architecture=architecture
    )
    return ImageFacts(name="hello", id="sha256:" + "1" * 64, size=0, config=config, filesystem=fs)


def lines(result: CheckResult) -> list[str]:
    return result.message().splitlines()


def codes(facts: ImageFacts, *, engine_arch: str | None = None, args: tuple[str, ...] | None = None) -> list[str]:
    return [p.code for p in diagnose(facts, engine_arch=engine_arch, args=args)]


def debian(*extra: FileEntry, contents: Mapping[str, bytes] | None = None) -> FileSystem:
    """A debian-like tree: /lib64's loader is a link into the multiarch directory, libc beside it."""
    return tree(
        d("/lib"),
        d("/lib/x86_64-linux-gnu"),
        d("/lib64"),
        f(DEBIAN_LOADER, elf(kind="dyn")),
        ln(GLIBC_LOADER, DEBIAN_LOADER),
        f("/lib/x86_64-linux-gnu/libc.so.6", elf(kind="dyn", interp=GLIBC_LOADER, needed=("ld-linux-x86-64.so.2",))),
        f("/bin/sh", elf(kind="dyn", interp=GLIBC_LOADER, needed=("libc.so.6",))),
        *extra,
        contents=contents,
    )


# -------------------------------------------------------------------------------- the ELF loader
def test_dynamic_binary_in_scratch_names_the_missing_loader() -> None:
    result = check_runnable(image(tree(f("/hello", DYNAMIC))))
    assert not result.passed
    assert (result.check, result.image) == ("runnable", "hello")
    assert lines(result) == [
        "hello: runnable: /hello is dynamically linked, and its ELF loader /lib64/ld-linux-x86-64.so.2 is not in"
        " the image",
        '  command: ["/hello"]',
        "  /hello: ELF 64-bit amd64 PIE executable, dynamically linked (loader /lib64/ld-linux-x86-64.so.2),"
        " needs libc.so.6",
        "  loader /lib64/ld-linux-x86-64.so.2: not in the image",
        '  the engine reports this as "no such file or directory" for /hello, although /hello exists',
        "  then: libc.so.6, needed by /hello, is not in the image",
        "    looked in default /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
        "  hint: link statically (gcc -static, or CGO_ENABLED=0 for Go) or use a final base with libc that provides"
        " /lib64/ld-linux-x86-64.so.2 (gcr.io/distroless/base-debian12, debian:12-slim)",
    ]
    assert dict(result.details) == {
        "argv": ["/hello"],
        "program": "/hello",
        "static": False,
        "loader": GLIBC_LOADER,
        "problems": [
            {
                "code": "loader-missing",
                "message": "/hello is dynamically linked, and its ELF loader /lib64/ld-linux-x86-64.so.2 is not in"
                " the image",
            },
            {"code": "library-missing", "message": "libc.so.6, needed by /hello, is not in the image"},
        ],
    }


def test_explain_run_failure_for_the_article_image() -> None:
    """``exec ./hello: no such file or directory`` on scratch: the lines name the missing loader."""
    facts = image(tree(f("/hello", DYNAMIC)), cmd=("./hello",))
    assert render(diagnose(facts)) == [
        "diagnosis: ./hello (/hello) is dynamically linked, and its ELF loader /lib64/ld-linux-x86-64.so.2 is not"
        " in the image",
        "  ./hello -> /hello (relative to WORKDIR /)",
        "  /hello: ELF 64-bit amd64 PIE executable, dynamically linked (loader /lib64/ld-linux-x86-64.so.2),"
        " needs libc.so.6",
        "  loader /lib64/ld-linux-x86-64.so.2: not in the image",
        '  the engine reports this as "no such file or directory" for ./hello, although /hello exists',
        "then: libc.so.6, needed by /hello, is not in the image",
        "  looked in default /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
    ]


def test_the_same_binary_in_a_debian_like_tree_is_runnable() -> None:
    result = check_runnable(image(debian(f("/hello", DYNAMIC))))
    assert result.passed
    assert result.message() == (
        "hello: runnable: /hello is a dynamic amd64 ELF executable (loader /lib64/ld-linux-x86-64.so.2; 1 library"
        " found)"
    )
    assert result.details["static"] is False
    assert render(diagnose(image(debian(f("/hello", DYNAMIC))))) == []


def test_static_binary_in_scratch_passes() -> None:
    result = check_runnable(image(tree(f("/hello", STATIC))))
    assert result.passed
    assert result.headline == "hello: runnable: /hello is a static amd64 ELF executable"
    assert (result.details["static"], result.details["loader"]) == (True, None)
    static_pie = elf(kind="dyn")
    assert check_runnable(image(tree(f("/hello", static_pie)))).passed


def test_loader_is_a_dangling_symlink() -> None:
    fs = tree(f("/hello", DYNAMIC), ln(GLIBC_LOADER, DEBIAN_LOADER))
    assert "loader /lib64/ld-linux-x86-64.so.2: a symlink to /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2, which is" \
        " not in the image" in check_runnable(image(fs)).evidence  # fmt: skip


def test_loader_elsewhere_in_the_image() -> None:
    fs = tree(f("/hello", DYNAMIC), f(DEBIAN_LOADER), f("/lib/x86_64-linux-gnu/libc.so.6"))
    result = check_runnable(image(fs))
    assert result.headline.endswith("its ELF loader /lib64/ld-linux-x86-64.so.2 is not in the image")
    assert "the image has other loaders: /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" in result.evidence
    assert result.hint == (
        "the loader is at /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2, not /lib64/ld-linux-x86-64.so.2: put it at"
        " /lib64/ld-linux-x86-64.so.2 too (COPY --from=<stage> /lib64/ld-linux-x86-64.so.2"
        " /lib64/ld-linux-x86-64.so.2), or link statically (gcc -static, or CGO_ENABLED=0 for Go)"
    )
    assert codes(image(fs)) == ["loader-missing"]  # libc is found in the multiarch directory


def test_glibc_binary_on_a_musl_base() -> None:
    fs = tree(f(MUSL_LOADER, elf(kind="dyn")), ln("/lib/libc.musl-x86_64.so.1", MUSL_LOADER), f("/hello", DYNAMIC))
    result = check_runnable(image(fs))
    assert "the image has other loaders: /lib/ld-musl-x86_64.so.1" in result.evidence
    assert result.hint.startswith("/hello was built against glibc and the image has musl: build it in a stage")


def test_musl_binary_on_alpine_passes_and_on_scratch_names_the_musl_loader() -> None:
    binary = elf(kind="dyn", interp=MUSL_LOADER, needed=("libc.musl-x86_64.so.1", "libz.so.1"))
    alpine = tree(
        f(MUSL_LOADER, elf(kind="dyn")),
        ln("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
        f("/usr/lib/libz.so.1.3", elf(kind="dyn", needed=("libc.musl-x86_64.so.1",))),
        ln("/usr/lib/libz.so.1", "libz.so.1.3"),
        f("/hello", binary),
    )
    result = check_runnable(image(alpine))
    assert result.headline == (
        "hello: runnable: /hello is a dynamic amd64 ELF executable (loader /lib/ld-musl-x86_64.so.1; 2 libraries found)"
    )
    scratch = check_runnable(image(tree(f("/hello", binary))))
    assert scratch.hint == (
        "link statically (gcc -static, or CGO_ENABLED=0 for Go) or use a final base with musl that provides"
        " /lib/ld-musl-x86_64.so.1 (alpine)"
    )
    assert scratch.evidence[-1] == "  looked in default /lib, /usr/local/lib, /usr/lib"


def test_musl_path_file_replaces_the_default_directories() -> None:
    binary = elf(kind="dyn", interp=MUSL_LOADER, needed=("libfoo.so",))
    fs = tree(f(MUSL_LOADER), f("/opt/foo/libfoo.so"), f("/hello", binary))
    path_file = {"/etc/ld-musl-x86_64.path": b"/opt/foo\n/lib\n"}
    assert check_runnable(image(tree(*fs, contents=path_file))).passed
    assert codes(image(fs)) == ["library-missing"]


# ----------------------------------------------------------------------------------- libraries
def test_a_missing_needed_library() -> None:
    binary = elf(kind="dyn", interp=GLIBC_LOADER, needed=("libssl.so.3", "libc.so.6", "libcrypto.so.3"))
    result = check_runnable(image(debian(f("/hello", binary))))
    assert lines(result) == [
        "hello: runnable: libssl.so.3 and libcrypto.so.3, needed by /hello, are not in the image",
        '  command: ["/hello"]',
        "  /hello: ELF 64-bit amd64 PIE executable, dynamically linked (loader /lib64/ld-linux-x86-64.so.2),"
        " needs libssl.so.3, libc.so.6, libcrypto.so.3",
        "  looked in default /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
        "  hint: copy libssl.so.3 and libcrypto.so.3 (and what they need) into the image from the build stage, use a"
        " final base that ships them, or link statically",
    ]
    assert [p.code for p in diagnose(image(debian(f("/hello", binary))))] == ["library-missing"]


def test_a_library_found_only_through_runpath_origin() -> None:
    binary = elf(kind="dyn", interp=GLIBC_LOADER, needed=("libc.so.6", "libapp.so.1"), runpath=("$ORIGIN/../lib",))
    fs = debian(d("/opt/app/bin"), f("/opt/app/bin/server", binary), f("/opt/app/lib/libapp.so.1", mode=0o644))
    result = check_runnable(image(fs, cmd=("/opt/app/bin/server",)))
    assert result.passed, result.message()
    assert result.headline.endswith("(loader /lib64/ld-linux-x86-64.so.2; 2 libraries found)")
    moved = debian(f("/opt/app/bin/server", binary), f("/opt/app/lib64/libapp.so.1", mode=0o644))
    missing = check_runnable(image(moved, cmd=("/opt/app/bin/server",)))
    assert missing.headline == (
        "hello: runnable: libapp.so.1, needed by /opt/app/bin/server, is not on the library search path"
    )
    assert missing.evidence[2:] == (
        "looked in RUNPATH $ORIGIN/../lib /opt/app/lib; default /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu,"
        " /lib64, /usr/lib64, /lib, /usr/lib",
        "libapp.so.1 is elsewhere in the image: /opt/app/lib64/libapp.so.1",
    )
    assert missing.hint == (
        "put /opt/app/lib64 on the library search path: ENV LD_LIBRARY_PATH=/opt/app/lib64, or link with"
        " -Wl,-rpath,/opt/app/lib64 (or -Wl,-rpath,'$ORIGIN/...'), or copy the library into /usr/lib"
    )


def test_a_library_found_through_ld_so_conf_d() -> None:
    binary = elf(kind="dyn", interp=GLIBC_LOADER, needed=("libc.so.6", "libpq.so.5"))
    conf = {
        "/etc/ld.so.conf": b"# libc default configuration\ninclude /etc/ld.so.conf.d/*.conf\n",
        "/etc/ld.so.conf.d/x86_64-linux-gnu.conf": b"/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n",
        "/etc/ld.so.conf.d/pgsql.conf": b"/usr/pgsql-16/lib\n",
    }
    entries = (
        f("/hello", binary),
        f("/usr/pgsql-16/lib/libpq.so.5.16"),
        ln("/usr/pgsql-16/lib/libpq.so.5", "libpq.so.5.16"),
    )
    cached = debian(*entries, f("/etc/ld.so.cache", mode=0o644), contents=conf)
    assert check_runnable(image(cached)).passed
    no_conf = debian(*entries, f("/etc/ld.so.cache", mode=0o644))
    assert codes(image(no_conf)) == ["library-missing"]
    no_cache = check_runnable(image(debian(*entries, contents=conf)))
    assert no_cache.headline == (
        "hello: runnable: libpq.so.5, needed by /hello, is in /usr/pgsql-16/lib, which /etc/ld.so.conf lists,"
        " but the image has no /etc/ld.so.cache, so the loader does not look there"
    )
    assert no_cache.evidence[2:] == (
        "/usr/pgsql-16/lib/libpq.so.5: found through /etc/ld.so.conf",
        "/etc/ld.so.cache: not in the image",
    )
    assert no_cache.hint == (
        "run ldconfig in the final stage after adding the library, or set ENV LD_LIBRARY_PATH=/usr/pgsql-16/lib"
    )


def test_ld_library_path_from_the_config() -> None:
    binary = elf(kind="dyn", interp=GLIBC_LOADER, needed=("libc.so.6", "libx.so"))
    fs = debian(f("/hello", binary), f("/app/lib/libx.so"))
    assert codes(image(fs)) == ["library-missing"]
    assert check_runnable(image(fs, env={"LD_LIBRARY_PATH": "/app/lib"})).passed


def test_transitive_libraries_and_wrong_class_libraries_are_passed_over() -> None:
    binary = elf(kind="dyn", interp=GLIBC_LOADER, needed=("libc.so.6", "libfoo.so.1"))
    libfoo = elf(kind="dyn", needed=("libbar.so.2", "libc.so.6"))
    fs = debian(
        f("/hello", binary),
        f("/usr/lib/x86_64-linux-gnu/libfoo.so.1", libfoo, mode=0o644),
        f("/usr/lib/libbar.so.2", elf("386", kind="dyn", bits=32), mode=0o644),
    )
    result = check_runnable(image(fs))
    assert result.headline == (
        "hello: runnable: libbar.so.2, needed by /usr/lib/x86_64-linux-gnu/libfoo.so.1, is not in the image"
    )
    assert result.evidence[1:] == (
        "/hello: ELF 64-bit amd64 PIE executable, dynamically linked (loader /lib64/ld-linux-x86-64.so.2),"
        " needs libc.so.6, libfoo.so.1",
        "/usr/lib/x86_64-linux-gnu/libfoo.so.1: ELF 64-bit amd64 shared object or static-pie executable,"
        " statically linked, needs libbar.so.2, libc.so.6",
        "looked in default /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
        "passed over /usr/lib/libbar.so.2: 32-bit 386",
    )


# ------------------------------------------------------------------------------ finding the program
def test_relative_program_with_workdir_suggests_where_the_file_is() -> None:
    """``COPY --from=build /hello /`` + ``WORKDIR /app`` + ``CMD ["./hello"]``."""
    result = check_runnable(image(tree(f("/hello", STATIC)), cmd=("./hello",), workdir="/app"))
    assert lines(result) == [
        "hello: runnable: the program ./hello is not in the image (relative to WORKDIR /app: /app/hello)",
        '  command: ["./hello"]',
        "  looked for /app/hello (./hello relative to WORKDIR /app)",
        "  same name elsewhere in the image: /hello",
        '  hint: use the absolute path the file has, CMD ["/hello"] (a relative program is looked up from WORKDIR'
        " /app), or COPY it to /app/hello",
    ]
    assert result.details["program"] is None


def test_relative_program_copied_into_the_workdir_passes() -> None:
    """The article's ``COPY --from=build hello .`` with ``CMD ["./hello"]``."""
    fs = tree(d("/app"), f("/app/hello", STATIC))
    result = check_runnable(image(fs, cmd=("./hello",), workdir="/app"))
    assert result.headline == "hello: runnable: ./hello (/app/hello) is a static amd64 ELF executable"


def test_absolute_program_missing_without_close_matches() -> None:
    result = check_runnable(image(tree(f("/server", STATIC)), entrypoint=("/app/hello",), cmd=("--port", "80")))
    assert lines(result) == [
        "hello: runnable: the program /app/hello is not in the image",
        '  command: ["/app/hello", "--port", "80"]',
        "  looked for /app/hello",
        "  hint: COPY the program to /app/hello (COPY --from=<build stage> /absolute/path/in/that/stage /app/hello),"
        " or fix the path in ENTRYPOINT",
    ]


def test_missing_program_with_a_similar_name_and_a_dangling_link() -> None:
    fs = tree(f("/usr/local/bin/helloworld", STATIC), ln("/hello", "/build/out/hello"))
    result = check_runnable(image(fs))
    assert result.evidence[1:] == (
        "looked for /hello",
        "/hello is a symlink to /build/out/hello, which is not in the image",
        "similar names in the image: /usr/local/bin/helloworld",
    )


def test_bare_name_found_on_path_through_a_symlink() -> None:
    fs = tree(d("/usr/bin"), ln("/usr/bin/hello", "/opt/hello/bin/hello"), f("/opt/hello/bin/hello", STATIC))
    result = check_runnable(image(fs, cmd=("hello", "--version")))
    assert result.headline == "hello: runnable: hello (/opt/hello/bin/hello) is a static amd64 ELF executable"
    assert result.details["program"] == "/opt/hello/bin/hello"


def test_bare_name_not_on_path() -> None:
    fs = tree(f("/app/hello", STATIC))
    result = check_runnable(image(fs, cmd=("hello",)))
    assert lines(result) == [
        "hello: runnable: the program hello is not on PATH",
        '  command: ["hello"]',
        f"  looked on PATH {DEFAULT_PATH} (the engine's default)",
        "  same name elsewhere in the image: /app/hello",
        '  hint: use its absolute path CMD ["/app/hello"], or put its directory on PATH (ENV PATH=/app:$PATH)',
    ]
    assert check_runnable(image(fs, cmd=("hello",), env={"PATH": "/app:/bin"})).passed
    assert "looked on PATH /bin" in check_runnable(image(fs, cmd=("hello",), env={"PATH": "/bin"})).evidence


def test_a_non_executable_file_on_path_is_passed_over() -> None:
    fs = tree(f("/usr/local/bin/hello", mode=0o644), f("/usr/bin/hello", STATIC))
    assert check_runnable(image(fs, cmd=("hello",))).headline == (
        "hello: runnable: hello (/usr/bin/hello) is a static amd64 ELF executable"
    )
    only = tree(f("/usr/local/bin/hello", STATIC, mode=0o644))
    result = check_runnable(image(only, cmd=("hello",)))
    assert (
        result.headline == "hello: runnable: hello (/usr/local/bin/hello) is not executable (mode 0644, no execute bit)"
    )
    assert "runc passes over files on PATH that are not executable" in result.evidence


def test_no_execute_permission() -> None:
    result = check_runnable(image(tree(f("/hello", STATIC, mode=0o644))))
    assert lines(result) == [
        "hello: runnable: /hello is not executable (mode 0644, no execute bit)",
        '  command: ["/hello"]',
        "  /hello: mode 0644, no execute bit",
        "  hint: make it executable where it is built: RUN chmod +x /hello in that stage, or COPY --chmod=755"
        " <source> /hello",
    ]


def test_a_directory_instead_of_the_program() -> None:
    fs = tree(d("/app"), f("/app/server", STATIC), f("/app/config.toml", mode=0o644))
    result = check_runnable(image(fs, cmd=("/app",)))
    assert lines(result) == [
        "hello: runnable: /app is a directory, not a program",
        '  command: ["/app"]',
        "  /app: a directory",
        "  executables in it: /app/server",
        '  hint: point CMD at the program inside it: CMD ["/app/server"]',
    ]
    assert codes(image(tree(d("/app")), cmd=("/app",))) == ["is-directory"]


def test_hard_linked_program_uses_the_target_facts() -> None:
    fs = tree(f("/usr/bin/hello", DYNAMIC), FileEntry("/hello", "hardlink", 0, 0o755, "/usr/bin/hello"))
    assert codes(image(fs)) == ["loader-missing", "library-missing"]


def test_program_type_unknown_is_not_a_problem() -> None:
    assert check_runnable(image(tree(f("/hello")))).headline == (
        "hello: runnable: /hello is an executable file (its type was not read)"
    )


def test_an_object_file_is_not_a_program() -> None:
    result = check_runnable(image(tree(f("/hello", elf(kind="rel")))))
    assert result.headline == "hello: runnable: /hello is an ELF relocatable object, not a program"
    assert result.hint == "ship the linked executable (gcc -o program ...), not an object file"


# ------------------------------------------------------------------------------------ shell form
def test_shell_form_in_scratch() -> None:
    fs = tree(f("/hello", STATIC))
    result = check_runnable(image(fs, cmd=("/bin/sh", "-c", "./hello --port 80")))
    assert lines(result) == [
        'hello: runnable: the command is shell form (/bin/sh -c "./hello --port 80") and the image has no /bin/sh',
        '  command: ["/bin/sh", "-c", "./hello --port 80"]',
        "  /bin/sh: not in the image",
        '  in exec form it would run ["./hello", "--port", "80"] directly',
        '  hint: use exec form, which needs no shell: CMD ["./hello", "--port", "80"]',
    ]


def test_shell_form_in_scratch_then_the_program_of_the_exec_form() -> None:
    fs = tree(f("/app/hello", STATIC))
    result = check_runnable(image(fs, cmd=("/bin/sh", "-c", "./hello")))
    assert [p.code for p in diagnose(image(fs, cmd=("/bin/sh", "-c", "./hello")))] == ["no-shell", "not-found"]
    assert result.evidence[3:] == (
        "then: ./hello, which the command would run in exec form, is not in the image (relative to WORKDIR /: /hello)",
        "  looked for /hello (./hello relative to WORKDIR /)",
        "  same name elsewhere in the image: /app/hello",
    )
    assert result.hint == 'use exec form, which needs no shell: CMD ["./hello"]'


def test_shell_form_needing_a_shell() -> None:
    result = check_runnable(image(tree(), cmd=("/bin/sh", "-c", "./hello | tee /log")))
    assert result.hint.startswith("the command needs a shell (pipes, variables, globs)")
    assert codes(image(tree(), cmd=("/bin/sh", "-c", "./hello | tee /log"))) == ["no-shell"]


def test_shell_present_runs_the_command_line() -> None:
    busybox = tree(f("/bin/busybox", STATIC), ln("/bin/sh", "busybox"), d("/app"), f("/app/hello", STATIC))
    ok = check_runnable(image(busybox, cmd=("/bin/sh", "-c", "exec ./hello"), workdir="/app"))
    assert ok.headline == "hello: runnable: /bin/sh (/bin/busybox) is a static amd64 ELF executable"
    missing = check_runnable(image(busybox, cmd=("/bin/sh", "-c", "hello --x")))
    assert missing.headline == "hello: runnable: hello, which /bin/sh -c runs, is not on PATH"
    assert missing.hint == (
        'use its absolute path in exec form, CMD ["/app/hello", "--x"], or put its directory on PATH'
        " (ENV PATH=/app:$PATH)"
    )


def test_single_quoted_json_runs_a_bracketed_word() -> None:
    busybox = tree(f("/bin/busybox", STATIC), ln("/bin/sh", "busybox"), f("/hello", STATIC))
    result = check_runnable(image(busybox, cmd=("/bin/sh", "-c", "['./hello']")))
    assert result.headline == (
        "hello: runnable: [./hello], which /bin/sh -c runs, is not in the image (relative to WORKDIR /: /[./hello])"
    )
    assert result.hint == (
        'the command is not valid JSON, so /bin/sh runs it as a command line: use exec form CMD ["./hello"]'
    )


# ------------------------------------------------------------------------------------------ scripts
def test_shebang_interpreter_missing() -> None:
    fs = tree(f("/app/run.sh", shebang="/bin/bash -e"), f("/usr/local/bin/bash", STATIC))
    assert codes(image(fs, cmd=("/app/run.sh",))) == ["interpreter-missing"]
    result = check_runnable(image(fs, cmd=("/app/run.sh",)))
    assert lines(result) == [
        "hello: runnable: the #! interpreter /bin/bash of /app/run.sh is not in the image",
        '  command: ["/app/run.sh"]',
        "  /app/run.sh: script, #!/bin/bash -e",
        "  looked for /bin/bash",
        "  same name elsewhere in the image: /usr/local/bin/bash",
        '  the engine reports this as "no such file or directory" for /app/run.sh itself',
        "  hint: install /bin/bash in the final image (or use a base that has it), or change the #! line of"
        " /app/run.sh to #!/usr/local/bin/bash",
    ]


def test_shebang_env_without_the_program_on_path() -> None:
    fs = tree(f("/app/run.py", shebang="/usr/bin/env python3"), f("/usr/bin/env", STATIC))
    result = check_runnable(image(fs, cmd=("/app/run.py",)))
    assert lines(result) == [
        "hello: runnable: python3, which #!/usr/bin/env python3 in /app/run.py runs, is not on PATH",
        '  command: ["/app/run.py"]',
        "  /app/run.py: script, #!/usr/bin/env python3",
        f"  looked on PATH {DEFAULT_PATH} (the engine's default)",
        "  hint: install python3 in the final image (or use a base that has it)",
    ]
    no_env = tree(f("/app/run.py", shebang="/usr/bin/env python3"))
    assert codes(image(no_env, cmd=("/app/run.py",))) == ["interpreter-missing", "interpreter-missing"]


def test_shebang_env_finds_the_program_and_checks_it() -> None:
    python = elf(kind="dyn", interp=GLIBC_LOADER, needed=("libc.so.6", "libpython3.11.so.1.0"))
    fs = debian(
        f("/app/run.py", shebang="/usr/bin/env python3"),
        f("/usr/bin/env", STATIC),
        f("/usr/bin/python3.11", python),
        ln("/usr/bin/python3", "python3.11"),
    )
    result = check_runnable(image(fs, cmd=("/app/run.py",)))
    assert result.headline == (
        "hello: runnable: libpython3.11.so.1.0, needed by /usr/bin/python3.11, is not in the image"
    )
    assert result.evidence[1:4] == (
        "/app/run.py: script, #!/usr/bin/env python3",
        "python3 -> /usr/bin/python3 (on PATH) -> /usr/bin/python3.11",
        "/usr/bin/python3.11: ELF 64-bit amd64 PIE executable, dynamically linked"
        " (loader /lib64/ld-linux-x86-64.so.2), needs libc.so.6, libpython3.11.so.1.0",
    )
    fixed = debian(*fs, f("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"))
    assert check_runnable(image(fixed, cmd=("/app/run.py",))).headline == (
        "hello: runnable: /app/run.py is a #!/usr/bin/env python3 script; python3 (/usr/bin/python3.11) is a dynamic"
        " amd64 ELF executable (loader /lib64/ld-linux-x86-64.so.2; 2 libraries found)"
    )


def test_shebang_env_with_arguments_in_one_word() -> None:
    fs = tree(f("/run.py", shebang="/usr/bin/env python3 -u"), f("/usr/bin/env", STATIC), f("/usr/bin/python3", STATIC))
    result = check_runnable(image(fs, cmd=("/run.py",)))
    assert (
        result.headline
        == 'hello: runnable: "python3 -u", which #!/usr/bin/env python3 -u in /run.py runs, is not on PATH'
    )
    assert 'Linux passes "python3 -u" to env as one word, and env runs it as one name' in result.evidence
    assert result.hint == "use #!/usr/bin/env -S python3 -u (GNU env splits it), or #!/usr/bin/python3 -u"
    split = tree(*fs, f("/run.py", shebang="/usr/bin/env -S python3 -u"))
    assert check_runnable(image(split, cmd=("/run.py",))).passed


def test_shebang_with_windows_line_ending() -> None:
    fs = tree(f("/run.sh", shebang="/bin/sh\r"), f("/bin/sh", STATIC))
    result = check_runnable(image(fs, cmd=("/run.sh",)))
    assert lines(result) == [
        "hello: runnable: the #! line of /run.sh ends in a carriage return (Windows line endings), so the kernel"
        ' looks for "/bin/sh\\r"',
        '  command: ["/run.sh"]',
        "  /run.sh: script, #!/bin/sh",
        '  #! line as stored: "#!/bin/sh\\r"',
        "  hint: convert /run.sh to LF line endings (dos2unix, or `*.sh text eol=lf` in .gitattributes)",
    ]


def test_scripts_nested_too_deep() -> None:
    fs = tree(*(f(f"/s{n}", shebang=f"/s{n + 1}") for n in range(6)))
    (problem,) = diagnose(image(fs, cmd=("/s0",)))
    assert problem.code == "interpreter-loop"
    assert problem.message == "the #! interpreters starting at /s0 nest more than 4 deep"
    assert problem.evidence[-2:] == (
        "/s4: script, #!/s5",
        'the engine reports this as "too many levels of symbolic links"',
    )


def test_a_device_is_not_a_program() -> None:
    fs = tree(f("/run.sh", shebang="/bin/sh"), FileEntry("/bin/sh", "other", 0, 0o755))
    result = check_runnable(image(fs, cmd=("/run.sh",)))
    assert result.headline == "hello: runnable: /bin/sh is not a regular file"
    assert codes(image(fs, cmd=("/run.sh",))) == ["not-executable"]


# ------------------------------------------------------------------------------------ architecture
def test_arm64_binary_on_an_amd64_engine_without_emulation() -> None:
    facts = replace(image(tree(f("/hello", elf("arm64"))), architecture="arm64"), engine_emulates={})
    result = check_runnable(facts, engine_arch="amd64")
    assert lines(result) == [
        "hello: runnable: /hello is built for arm64, but the engine runs amd64 and emulates no arm64:"
        " an arm64 program cannot start on an amd64 engine without emulation",
        '  command: ["/hello"]',
        "  /hello: ELF 64-bit arm64 executable, statically linked",
        "  binfmt_misc: no enabled handler (with the F flag) runs arm64 programs",
        '  the engine reports this as "exec format error"',
        "  hint: to run linux/arm64 images on this amd64 engine, set up QEMU user-mode emulation on its machine"
        " (Debian: qemu-user-static with binfmt_misc mounted, as scripts/emulation.sh does; elsewhere: docker run"
        " --privileged tonistiigi/binfmt --install arm64), or check this platform on an arm64 engine; or build the"
        " program for amd64: cross-compile in the build stage for $TARGETARCH (GOARCH, rustc --target, a cross gcc),"
        " or build the image with --platform linux/amd64 so that its stages build for that architecture",
    ]
    assert check_runnable(facts).passed  # the image says arm64, and without an engine that is what counts
    assert check_runnable(facts, engine_arch="aarch64").passed


def test_arm64_binary_on_an_amd64_engine_that_emulates_it() -> None:
    how = "QEMU (binfmt_misc qemu-aarch64: /usr/bin/qemu-aarch64-static)"
    facts = replace(image(tree(f("/hello", elf("arm64"))), architecture="arm64"), engine_emulates={"arm64": how})
    result = check_runnable(facts, engine_arch="amd64")
    assert result.passed, lines(result)
    assert f"the amd64 engine runs arm64 programs under {how}" in result.headline
    # 386 on amd64 runs natively (compat mode), whatever the engine emulates
    assert check_runnable(replace(facts, engine_emulates={}), engine_arch="arm64").passed


def test_arm64_binary_on_a_remote_amd64_engine() -> None:
    facts = image(tree(f("/hello", elf("arm64"))), architecture="arm64")  # engine_emulates None: cannot be told
    result = check_runnable(facts, engine_arch="amd64")
    assert not result.passed
    assert result.headline == (
        "hello: runnable: /hello is built for arm64, but the engine runs amd64 and whether it emulates arm64 cannot"
        " be told from here (it is not on this machine): an arm64 program cannot start on an amd64 engine without"
        " emulation"
    )
    assert "  binfmt_misc: not readable (the engine runs on another machine)" in lines(result)


def test_binary_not_matching_the_image_config_architecture() -> None:
    result = check_runnable(image(tree(f("/hello", elf("arm64"))), architecture="amd64"))
    assert result.headline == "hello: runnable: /hello is built for arm64, but the image config says amd64"


def test_386_binary_runs_on_amd64_and_unknown_architecture_is_not_checked() -> None:
    assert check_runnable(image(tree(f("/hello", elf("386", bits=32)))), engine_arch="amd64").passed
    assert check_runnable(image(tree(f("/hello", elf("arm64"))), architecture="")).passed


def test_wrong_arch_comes_before_the_loader() -> None:
    binary = elf("arm64", kind="dyn", interp="/lib/ld-linux-aarch64.so.1", needed=("libc.so.6",))
    problems = diagnose(image(tree(f("/hello", binary))), engine_arch="amd64")
    assert [p.code for p in problems] == ["wrong-arch", "loader-missing", "library-missing"]
    assert problems[2].evidence[-1] == (
        "looked in default /lib/aarch64-linux-gnu, /usr/lib/aarch64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib"
    )


# ---------------------------------------------------------------------------- command and args
def test_no_command() -> None:
    result = check_runnable(image(tree(), cmd=None))
    assert lines(result) == [
        "hello: runnable: the image has neither ENTRYPOINT nor CMD",
        "  `docker run` on it fails with 'no command specified'",
        '  hint: add an exec-form command to the final stage, e.g. CMD ["/app"]',
    ]
    assert diagnose(image(None, cmd=None)) == (
        Problem(
            "no-command",
            "the image has neither ENTRYPOINT nor CMD",
            ("`docker run` on it fails with 'no command specified'",),
            'add an exec-form command to the final stage, e.g. CMD ["/app"]',
        ),
    )


def test_args_replace_cmd_and_keep_the_entrypoint() -> None:
    fs = tree(f("/hello", STATIC), f("/bin/true", STATIC))
    facts = image(fs, cmd=("/missing",))
    assert codes(facts) == ["not-found"]
    assert codes(facts, args=("/bin/true",)) == []
    assert codes(facts, args=()) == ["not-found"]  # empty args keep CMD, as the engine does
    missing = diagnose(facts, args=("/nope", "-v"))
    assert missing[0].hint == (
        "COPY the program to /nope (COPY --from=<build stage> /absolute/path/in/that/stage /nope), or fix the path"
        " in args"
    )
    with_entrypoint = image(fs, entrypoint=("/hello",), cmd=("--x",))
    assert codes(with_entrypoint, args=("/missing",)) == []  # args go to the entrypoint
    moved = image(tree(f("/app/hello", STATIC)), cmd=None)
    assert diagnose(moved, args=("hello", "-v"))[0].hint == (
        'use its absolute path args=["/app/hello", "-v"], or put its directory on PATH (ENV PATH=/app:$PATH)'
    )


def test_without_a_filesystem() -> None:
    with pytest.raises(ValueError, match=r"^runnable needs the filesystem of hello, which was not indexed$"):
        check_runnable(image(None))
    assert diagnose(image(None)) == ()
    assert render(diagnose(image(None))) == []
    assert render(diagnose(image(None, cmd=None))) == [
        "diagnosis: the image has neither ENTRYPOINT nor CMD",
        "  `docker run` on it fails with 'no command specified'",
    ]


def test_render_drops_repeated_evidence() -> None:
    problems = (Problem("a", "first", ("x", "y")), Problem("b", "second", ("y", "z")))
    assert render(problems) == ["diagnosis: first", "  x", "  y", "then: second", "  z"]
    assert render(problems, lead=False, seen=("x",)) == ["y", "then: second", "  z"]


def test_every_failure_has_exactly_one_hint_line() -> None:
    fs = tree(f("/hello", DYNAMIC), f("/app/run.sh", shebang="/bin/bash"))
    for cmd in (("/hello",), ("/app/run.sh",), ("nope",), ("/bin/sh", "-c", "x")):
        result = check_runnable(image(fs, cmd=cmd))
        assert not result.passed
        assert sum(1 for line in lines(result) if line.lstrip().startswith("hint:")) == 1
        assert result.hint
