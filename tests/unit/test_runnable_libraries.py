"""The ELF loader's library search on hand-built files (no engine), as data: which loader, each
needed library found where or not, and the directories searched in order. No message text here
(tests/unit/test_runnable.py pins the words)."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_slimimage.analysis.runnable.libraries import (
    Library,
    LibrarySearch,
    PassedOver,
    SearchDir,
    expand_origin,
    find_loader,
    ld_so_conf,
    library_dirs,
    search_libraries,
)
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem

GLIBC_LOADER = "/lib64/ld-linux-x86-64.so.2"
DEBIAN_LOADER = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"
DEFAULT_AMD64 = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


def elf(
    machine: str = "amd64",
    *,
    interp: str | None = GLIBC_LOADER,
    needed: tuple[str, ...] = (),
    runpath: tuple[str, ...] = (),
    bits: int = 64,
) -> ElfInfo:
    return ElfInfo(machine, bits, "dyn", interp=interp, needed=needed, runpath=runpath)


LIB = elf(interp=None)
"""A shared library of the program's class and machine, needing nothing."""


def f(path: str, info: ElfInfo | None = None) -> FileEntry:
    return FileEntry(path, "file", 1000, 0o644, elf=info)


def ln(path: str, target: str) -> FileEntry:
    return FileEntry(path, "symlink", 0, 0o777, target)


def tree(*entries: FileEntry, contents: Mapping[str, bytes] | None = None) -> FileSystem:
    return FileSystem(entries={e.path: e for e in entries}, contents=dict(contents or {}))


def where(search: LibrarySearch) -> dict[str, str | None]:
    """Each needed name (of every object) -> the path it was found at (None: not found)."""
    return {lib.name: lib.path for obj in search.objects for lib in obj.libraries}


def paths(dirs: tuple[SearchDir, ...]) -> list[str]:
    return [d.path for d in dirs]


# ---------------------------------------------------------------------------------- the loader
def test_the_loader_through_a_symlink_is_present() -> None:
    fs = tree(f(DEBIAN_LOADER, LIB), ln(GLIBC_LOADER, DEBIAN_LOADER))
    loader = find_loader(fs, GLIBC_LOADER)
    assert loader.present
    assert loader.entry is not None and loader.entry.path == DEBIAN_LOADER
    assert (loader.link, loader.others, loader.musl) == ("", (), False)


def test_a_missing_loader_with_its_dangling_link_and_the_loaders_the_image_has() -> None:
    fs = tree(ln(GLIBC_LOADER, DEBIAN_LOADER), f(MUSL_LOADER), f("/opt/ld-linux-x86-64.so.2"))
    search = search_libraries(fs, "/hello", elf())
    assert not search.loader.present
    assert search.loader.link == DEBIAN_LOADER
    assert search.loader.others == (MUSL_LOADER, "/opt/ld-linux-x86-64.so.2")
    assert find_loader(tree(f(GLIBC_LOADER)), GLIBC_LOADER).others == ()


# ------------------------------------------------------------------------------- the search order
def test_glibc_default_directories_multiarch_first() -> None:
    assert paths(library_dirs(tree(), "/hello", (), elf())) == list(DEFAULT_AMD64)
    assert paths(library_dirs(tree(), "/hello", (), elf("aarch64", interp="/lib/ld-linux-aarch64.so.1"))) == [
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ]
    thirty_two = elf("386", interp="/lib/ld-linux.so.2", bits=32)
    assert paths(library_dirs(tree(), "/hello", (), thirty_two)) == [
        "/lib/i386-linux-gnu",
        "/usr/lib/i386-linux-gnu",
        "/lib32",
        "/usr/lib32",
        "/lib",
        "/usr/lib",
    ]


def test_ld_library_path_then_runpath_then_ld_so_conf_then_the_defaults() -> None:
    dirs = library_dirs(
        tree(),
        "/opt/app/bin/server",
        ("/opt/app/lib", "/usr/lib"),
        elf(),
        conf=("/usr/pgsql/lib",),
        library_path="/env/lib::rel",
        workdir="/srv",
    )
    assert [(d.path, d.source) for d in dirs] == [
        ("/env/lib", "LD_LIBRARY_PATH"),
        ("/srv", "LD_LIBRARY_PATH"),  # an empty entry is the working directory
        ("/srv/rel", "LD_LIBRARY_PATH"),
        ("/opt/app/lib", "RUNPATH"),
        ("/usr/lib", "RUNPATH"),  # listed once, where it first comes
        ("/usr/pgsql/lib", "/etc/ld.so.conf"),
        *((d, "default") for d in DEFAULT_AMD64 if d != "/usr/lib"),
    ]


def test_a_runpath_library_is_found_before_the_same_name_in_a_default_directory() -> None:
    binary = elf(needed=("libapp.so.1",), runpath=("/opt/app/lib",))
    fs = tree(f(GLIBC_LOADER), f("/usr/lib/libapp.so.1", LIB), f("/opt/app/lib/libapp.so.1", LIB))
    search = search_libraries(fs, "/opt/app/bin/server", binary)
    assert where(search) == {"libapp.so.1": "/opt/app/lib/libapp.so.1"}
    assert search.found == 1
    assert search.missing == ()


def test_origin_is_the_directory_of_the_object_and_lib_is_lib_and_lib64() -> None:
    assert expand_origin("$ORIGIN/../lib", "/opt/app/bin") == ["/opt/app/bin/../lib"]
    assert expand_origin("${ORIGIN}/plugins", "/opt/app/bin") == ["/opt/app/bin/plugins"]
    assert expand_origin("/opt/$LIB", "/x") == ["/opt/lib", "/opt/lib64"]
    assert expand_origin("$ORIGINAL/lib", "/x") == ["$ORIGINAL/lib"]
    binary = elf(needed=("libapp.so.1",), runpath=("$ORIGIN/../lib", "/fixed"))
    fs = tree(f(GLIBC_LOADER), f("/opt/app/lib/libapp.so.1", LIB))
    search = search_libraries(fs, "/opt/app/bin/server", binary)
    assert search.objects[0].dirs[:2] == (
        SearchDir("/opt/app/lib", "RUNPATH", "$ORIGIN/../lib"),
        SearchDir("/fixed", "RUNPATH"),
    )
    assert where(search) == {"libapp.so.1": "/opt/app/lib/libapp.so.1"}


# ------------------------------------------------------------------------------- /etc/ld.so.conf
CONF = {
    "/etc/ld.so.conf": b"# libc default configuration\ninclude /etc/ld.so.conf.d/*.conf\n/opt/first\n",
    "/etc/ld.so.conf.d/b-pgsql.conf": b"/usr/pgsql-16/lib\n",
    "/etc/ld.so.conf.d/a-multiarch.conf": b"/usr/local/lib/x86_64-linux-gnu  # comment\nhwcap 0 nosegneg\n",
    "/etc/ld.so.conf.d/notes.txt": b"/not/included\n",
}


def test_ld_so_conf_follows_its_includes_in_name_order() -> None:
    fs = tree(contents=CONF)
    assert ld_so_conf(fs) == ["/usr/local/lib/x86_64-linux-gnu", "/usr/pgsql-16/lib", "/opt/first"]
    relative = {"/etc/ld.so.conf": b"include ld.so.conf.d/*.conf\n", "/etc/ld.so.conf.d/x.conf": b"/x:/y,/z\n"}
    assert ld_so_conf(tree(contents=relative)) == ["/x", "/y", "/z"]
    looping = {"/etc/ld.so.conf": b"include /etc/ld.so.conf\n/once\n"}
    assert ld_so_conf(tree(contents=looping)) == ["/once"]
    assert ld_so_conf(tree()) == []


def test_ld_so_conf_directories_are_searched_through_the_cache() -> None:
    binary = elf(needed=("libpq.so.5",))
    entries = (f(GLIBC_LOADER), f("/usr/pgsql-16/lib/libpq.so.5", LIB))
    cached = search_libraries(tree(*entries, f("/etc/ld.so.cache"), contents=CONF), "/hello", binary)
    assert cached.cached
    assert paths(cached.objects[0].dirs)[:3] == ["/usr/local/lib/x86_64-linux-gnu", "/usr/pgsql-16/lib", "/opt/first"]
    assert cached.objects[0].libraries == (Library("libpq.so.5", "/usr/pgsql-16/lib/libpq.so.5", LIB),)


def test_without_the_cache_a_library_only_ld_so_conf_lists_is_uncached() -> None:
    binary = elf(needed=("libpq.so.5",))
    fs = tree(f(GLIBC_LOADER), f("/usr/pgsql-16/lib/libpq.so.5", LIB), contents=CONF)
    search = search_libraries(fs, "/hello", binary)
    assert not search.cached
    assert paths(search.objects[0].dirs) == list(DEFAULT_AMD64)  # the listed directories are not searched
    (library,) = search.objects[0].libraries
    assert (library.path, library.uncached) == ("/usr/pgsql-16/lib/libpq.so.5", True)
    assert search.missing == ()


# -------------------------------------------------------------------------------------------- musl
def test_musl_searches_its_default_directories_and_has_libc_built_in() -> None:
    binary = elf(interp=MUSL_LOADER, needed=("libc.so", "libc.musl-x86_64.so.1", "libz.so.1"))
    fs = tree(
        f(MUSL_LOADER, LIB),
        ln("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
        f("/usr/local/lib/libz.so.1", elf(interp=None, needed=("libc.musl-x86_64.so.1",))),
    )
    search = search_libraries(fs, "/hello", binary)
    assert search.loader.musl and search.cached
    assert search.objects[0].dirs == tuple(SearchDir(d, "default") for d in ("/lib", "/usr/local/lib", "/usr/lib"))
    assert where(search) == {  # libc.so is the loader itself: not looked for
        "libc.musl-x86_64.so.1": "/lib/libc.musl-x86_64.so.1",
        "libz.so.1": "/usr/local/lib/libz.so.1",
    }
    assert [obj.owner for obj in search.objects] == ["/hello", "/usr/local/lib/libz.so.1"]
    assert search.objects[1].libraries == ()  # libc.musl-x86_64.so.1 is loaded already


def test_the_musl_path_file_replaces_the_default_directories() -> None:
    binary = elf(interp=MUSL_LOADER, needed=("libfoo.so",))
    path_file = {"/etc/ld-musl-x86_64.path": b"/opt/foo\n/lib:/usr/lib\n", "/etc/ld.so.conf": b"/ignored\n"}
    fs = tree(f(MUSL_LOADER), f("/opt/foo/libfoo.so", LIB), contents=path_file)
    search = search_libraries(fs, "/hello", binary)
    assert search.objects[0].dirs == tuple(
        SearchDir(d, "/etc/ld-musl-x86_64.path") for d in ("/opt/foo", "/lib", "/usr/lib")
    )
    assert where(search) == {"libfoo.so": "/opt/foo/libfoo.so"}
    without = search_libraries(tree(f(MUSL_LOADER), f("/opt/foo/libfoo.so", LIB)), "/hello", binary)
    assert where(without) == {"libfoo.so": None}


# ------------------------------------------------------------------------------ found, or not
def test_a_missing_library_with_the_directories_searched_and_where_it_is_instead() -> None:
    binary = elf(needed=("libc.so.6", "libssl.so.3"), runpath=("/opt/app/lib",))
    fs = tree(
        f(GLIBC_LOADER),
        f("/lib/x86_64-linux-gnu/libc.so.6", LIB),
        f("/srv/vendor/libssl.so.3", LIB),
        f("/usr/lib64/other.so", LIB),
    )
    search = search_libraries(fs, "/opt/app/bin/server", binary)
    (program,) = search.objects
    assert program.owner == "/opt/app/bin/server"
    assert paths(program.dirs) == ["/opt/app/lib", *DEFAULT_AMD64]
    assert program.missing == (Library("libssl.so.3", elsewhere=("/srv/vendor/libssl.so.3",)),)
    assert search.missing == program.missing
    assert search.found == 1


def test_a_library_of_another_machine_or_class_is_passed_over() -> None:
    arm = elf("arm64", interp=None)
    thirty_two = elf("386", interp=None, bits=32)
    binary = elf(needed=("libfoo.so.1",))
    fs = tree(
        f(GLIBC_LOADER),
        f("/lib/x86_64-linux-gnu/libfoo.so.1", arm),
        f("/lib64/libfoo.so.1", thirty_two),
        f("/usr/lib/libfoo.so.1", elf("x86_64", interp=None)),  # x86_64 is amd64
    )
    (library,) = search_libraries(fs, "/hello", binary).objects[0].libraries
    assert library.path == "/usr/lib/libfoo.so.1"
    assert library.passed_over == (
        PassedOver("/lib/x86_64-linux-gnu/libfoo.so.1", arm),
        PassedOver("/lib64/libfoo.so.1", thirty_two),
    )
    only_wrong = tree(f(GLIBC_LOADER), f("/lib64/libfoo.so.1", thirty_two))
    (missing,) = search_libraries(only_wrong, "/hello", binary).missing
    assert missing.path is None
    assert missing.passed_over == (PassedOver("/lib64/libfoo.so.1", thirty_two),)
    assert missing.elsewhere == ()  # /lib64 was searched


def test_libraries_are_followed_breadth_first_and_each_name_is_loaded_once() -> None:
    binary = elf(needed=("libc.so.6", "liba.so", "libb.so"))
    libc = elf(interp=None, needed=("ld-linux-x86-64.so.2",))
    liba = elf(interp=None, needed=("libc.so.6", "libdeep.so"))
    libb = elf(interp=None, needed=("libdeep.so", "libgone.so"))
    fs = tree(
        f(GLIBC_LOADER),
        f("/lib/x86_64-linux-gnu/libc.so.6", libc),
        f("/usr/lib/liba.so", liba),
        f("/usr/lib/libb.so", libb),
        f("/usr/lib/libdeep.so", elf(interp=None, needed=("libc.so.6",))),
    )
    search = search_libraries(fs, "/hello", binary)
    assert [(obj.owner, [lib.name for lib in obj.libraries]) for obj in search.objects] == [
        ("/hello", ["libc.so.6", "liba.so", "libb.so"]),
        ("/lib/x86_64-linux-gnu/libc.so.6", []),  # the loader is loaded already
        ("/usr/lib/liba.so", ["libdeep.so"]),  # libc.so.6 is loaded already
        ("/usr/lib/libb.so", ["libgone.so"]),  # so is libdeep.so, by liba.so
        ("/usr/lib/libdeep.so", []),
    ]
    assert search.objects[4].via == (("/usr/lib/liba.so", liba), ("/usr/lib/libdeep.so", search.objects[4].elf))
    assert search.found == 4
    assert [(lib.name, lib.path) for lib in search.missing] == [("libgone.so", None)]


def test_a_name_with_a_slash_is_a_path_from_the_working_directory() -> None:
    binary = elf(needed=("lib/libx.so", "/abs/liby.so"))
    fs = tree(f(GLIBC_LOADER), f("/srv/lib/libx.so", LIB), f("/usr/lib/liby.so", LIB))
    search = search_libraries(fs, "/hello", binary, workdir="/srv")
    assert where(search) == {"lib/libx.so": "/srv/lib/libx.so", "/abs/liby.so": None}


def test_a_hard_link_is_read_through_its_target() -> None:
    needs = elf(interp=None, needed=("libinner.so",))
    fs = tree(
        f(GLIBC_LOADER),
        f("/usr/lib/libouter.so.1", needs),
        FileEntry("/usr/lib/libouter.so", "hardlink", 0, 0o644, "/usr/lib/libouter.so.1"),
    )
    search = search_libraries(fs, "/hello", elf(needed=("libouter.so",)))
    assert search.objects[0].libraries == (Library("libouter.so", "/usr/lib/libouter.so", needs),)
    assert [lib.name for lib in search.missing] == ["libinner.so"]
