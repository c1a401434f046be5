"""Finding compilers by file name, by what a file is (its ELF markers), by package records, and the allow-list."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_slimimage.analysis.toolchains import (
    APK_INSTALLED,
    COMPILER_FILE,
    DPKG_STATUS,
    Finding,
    find_toolchains,
    is_package_database,
)
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem


def exe(path: str) -> FileEntry:
    return FileEntry(path, "file", 1000, 0o755)


def data(path: str) -> FileEntry:
    return FileEntry(path, "file", 1000, 0o644)


def fs_of(*entries: FileEntry, contents: dict[str, bytes] | None = None) -> FileSystem:
    return FileSystem(entries={e.path: e for e in entries}, contents=contents or {})


def files_found(fs: FileSystem, allow: tuple[str, ...] = ()) -> list[str]:
    return [f.where for f in find_toolchains(fs, allow) if f.kind == "file"]


def packages_found(fs: FileSystem, allow: tuple[str, ...] = ()) -> list[str]:
    return [f.name for f in find_toolchains(fs, allow) if f.kind == "package"]


COMPILERS = [
    "gcc", "g++", "cc", "c++", "cpp", "x86_64-linux-gnu-gcc-12", "x86_64-linux-gnu-g++-12", "aarch64-linux-musl-gcc",
    "x86_64-alpine-linux-musl-gcc", "arm-linux-gnueabihf-gcc", "gcc-12", "gcc-12.2", "clang", "clang-16", "clang++",
    "tcc", "go", "rustc", "cargo", "javac", "cc1", "cc1plus", "collect2", "lto1", "ld", "ld.bfd", "ld.gold", "lld",
    "as", "x86_64-linux-gnu-as", "x86_64-linux-gnu-ld", "gfortran", "zig",
]  # fmt: skip
NOT_COMPILERS = [
    "gccmakedep",  # a makedepend wrapper (xutils-dev), no compiler: the names must match whole
    "docker", "good", "ascii", "cargo-config.txt", "gofmt", "ldd", "ld.so", "ld-linux-x86-64.so.2", "ld-2.31.so",
    "c++filt", "ccache-wrapper", "gcc-ar-wrapper", "base64", "cat", "gcc.sh", "gcc-config.txt", "lass", "cargo-fmt",
    "libgcc_s.so.1", "run-as", "go-wrapper.sh",
]  # fmt: skip


@pytest.mark.parametrize("name", COMPILERS)
def test_compiler_names_are_found(name: str) -> None:
    assert COMPILER_FILE.match(name)
    assert files_found(fs_of(exe(f"/usr/bin/{name}"))) == [f"/usr/bin/{name}"]


@pytest.mark.parametrize("name", NOT_COMPILERS)
def test_unrelated_names_are_not_found(name: str) -> None:
    assert files_found(fs_of(exe(f"/usr/bin/{name}"))) == []


def test_non_executable_compiler_names_are_not_found() -> None:
    fs = fs_of(data("/usr/share/bash-completion/completions/gcc"), data("/usr/lib/go"), data("/etc/cc"))
    assert files_found(fs) == []


def test_directories_named_like_compilers_are_not_found() -> None:
    fs = fs_of(FileEntry("/usr/local/go", "dir", 0, 0o755), FileEntry("/usr/lib/gcc", "dir", 0, 0o755))
    assert files_found(fs) == []


def test_symlink_to_an_executable_counts() -> None:
    fs = fs_of(exe("/usr/bin/gcc-12"), FileEntry("/usr/bin/cc", "symlink", link="gcc-12"),
               FileEntry("/usr/bin/c99", "symlink", link="/usr/bin/gcc-12"))  # fmt: skip
    assert files_found(fs) == ["/usr/bin/cc", "/usr/bin/gcc-12"]


def test_symlink_through_alternatives_and_merged_usr() -> None:
    fs = fs_of(
        exe("/usr/bin/x86_64-linux-gnu-gcc-12"),
        FileEntry("/etc/alternatives/cc", "symlink", link="/usr/bin/x86_64-linux-gnu-gcc-12"),
        FileEntry("/usr/bin/cc", "symlink", link="/etc/alternatives/cc"),
        FileEntry("/bin", "symlink", link="usr/bin"),
    )
    # every name a program reaches the compiler by is evidence, the alternatives link included
    assert files_found(fs) == ["/etc/alternatives/cc", "/usr/bin/cc", "/usr/bin/x86_64-linux-gnu-gcc-12"]


def test_symlinks_to_directories_data_or_nothing_do_not_count() -> None:
    fs = fs_of(
        FileEntry("/usr/share/doc/gcc-12", "dir", 0, 0o755),
        FileEntry("/usr/share/doc/gcc", "symlink", link="gcc-12"),
        data("/usr/share/gcc-data"),
        FileEntry("/usr/bin/cc", "symlink", link="/usr/share/gcc-data"),
        FileEntry("/usr/bin/ld", "symlink", link="/nowhere/ld"),
    )
    assert files_found(fs) == []


def test_hardlinks_count() -> None:
    fs = fs_of(FileEntry("/usr/bin/tcc", "hardlink", 0, 0o755, "/usr/bin/other"))
    assert files_found(fs) == ["/usr/bin/tcc"]


def test_findings_sorted_files_then_packages_by_path() -> None:
    status = b"Package: gcc\nStatus: install ok installed\n"
    fs = fs_of(exe("/usr/bin/ld"), exe("/usr/bin/as"), exe("/opt/go/bin/go"), contents={DPKG_STATUS: status})
    found = find_toolchains(fs)
    assert found == (
        Finding("go", "/opt/go/bin/go", "file"),
        Finding("as", "/usr/bin/as", "file"),
        Finding("ld", "/usr/bin/ld", "file"),
        Finding("gcc", DPKG_STATUS, "package"),
    )
    assert [str(f) for f in found] == [
        "/opt/go/bin/go",
        "/usr/bin/as",
        "/usr/bin/ld",
        "package gcc (installed, per /var/lib/dpkg/status)",
    ]


# ---------------------------------------------------------------------------------------- packages
DPKG = b"""\
Package: libc6
Status: install ok installed
Version: 2.36-9
Description: GNU C Library
 Package: gcc
 (a continuation line that merely mentions a Package: field)

Package: gcc-12
Status: install ok installed
Architecture: amd64

Package: gcc-12-base
Status: install ok installed

Package: libgcc-s1
Status: install ok installed

Package: libstdc++6
Status: install ok installed

Package: cpp-12
Status: deinstall ok config-files

Package: binutils
Status: purge ok not-installed

Package: g++-12
Status: install ok half-installed

Package: gcc-12-x86-64-linux-gnu
Status: install ok installed

Package: binutils-x86-64-linux-gnu
Status: hold ok installed
"""


def test_dpkg_status_installed_stanzas_only() -> None:
    fs = fs_of(contents={DPKG_STATUS: DPKG})
    assert packages_found(fs) == ["binutils-x86-64-linux-gnu", "gcc-12", "gcc-12-x86-64-linux-gnu"]


def test_distroless_status_d() -> None:
    contents = {
        "/var/lib/dpkg/status.d/libc6": b"Package: libc6\nVersion: 2.36\n",
        "/var/lib/dpkg/status.d/gcc": b"Package: gcc\nVersion: 4:12.2.0\n",  # distroless records carry no Status
        "/var/lib/dpkg/status.d/tzdata": b"Package: tzdata\n",
    }
    found = [f for f in find_toolchains(fs_of(contents=contents)) if f.kind == "package"]
    assert found == [Finding("gcc", "/var/lib/dpkg/status.d/gcc", "package")]


def test_apk_installed() -> None:
    db = b"C:Q1abc\nP:musl\nV:1.2.5\n\nC:Q1def\nP:build-base\nV:0.5\n\nP:gcc\nV:13.2\n\nP:libgcc\nV:13.2\n\nP:go\n"
    assert packages_found(fs_of(contents={APK_INSTALLED: db})) == ["build-base", "gcc", "go"]


def test_other_captured_files_are_not_package_databases() -> None:
    fs = fs_of(contents={"/etc/notes": b"Package: gcc\nStatus: install ok installed\n", "/tmp/x": b"P:gcc\n"})
    assert packages_found(fs) == []


@pytest.mark.parametrize(
    "package",
    ["gcc", "gcc-12", "g++", "g++-12", "cpp", "cpp-12", "clang", "clang-16", "tcc", "binutils", "build-essential",
     "build-base", "golang", "golang-go", "golang-1.22-go", "go", "rustc", "cargo", "rust", "openjdk-17-jdk",
     "openjdk-17-jdk-headless", "openjdk17-jdk", "default-jdk", "zig", "gfortran", "llvm-16", "lld",
     "gcc-12-x86-64-linux-gnu", "binutils-aarch64-linux-gnu", "gcc-arm-linux-gnueabihf"],
)  # fmt: skip
def test_toolchain_packages(package: str) -> None:
    fs = fs_of(contents={DPKG_STATUS: f"Package: {package}\nStatus: install ok installed\n".encode()})
    assert packages_found(fs) == [package]


@pytest.mark.parametrize(
    "package",
    ["libgcc-s1", "gcc-12-base", "libstdc++6", "libgcc1", "binutils-common", "libbinutils", "libc6", "openjdk-17-jre",
     "openjdk-17-jre-headless", "golang-1.22-doc", "gcc-doc", "libclang1-16", "llvm-16-runtime", "cargo-doc",
     "rust-doc", "zlib1g", "gccgo-12-doc"],
)  # fmt: skip
def test_runtime_packages_are_not_toolchains(package: str) -> None:
    fs = fs_of(contents={DPKG_STATUS: f"Package: {package}\nStatus: install ok installed\n".encode()})
    assert packages_found(fs) == []


def test_is_package_database() -> None:
    assert is_package_database("/var/lib/dpkg/status")
    assert is_package_database("/var/lib/dpkg/status.d/libc6")
    assert is_package_database("/lib/apk/db/installed")
    assert not is_package_database("/var/lib/dpkg/status-old")
    assert not is_package_database("/var/lib/dpkg/available")
    assert not is_package_database("/etc/os-release")


# ------------------------------------------------------------------------------------------- allow
TOOLBOX = fs_of(
    exe("/usr/bin/gcc-12"),
    exe("/usr/bin/x86_64-linux-gnu-ld"),
    exe("/usr/bin/as"),
    exe("/usr/local/go/bin/go"),
    contents={DPKG_STATUS: b"Package: binutils\nStatus: install ok installed\n\nPackage: gcc-12\n"},
)


def test_allow_by_tool_name() -> None:
    assert files_found(TOOLBOX, ("as",)) == ["/usr/bin/gcc-12", "/usr/bin/x86_64-linux-gnu-ld", "/usr/local/go/bin/go"]


def test_allow_by_name_glob() -> None:
    assert files_found(TOOLBOX, ("*-ld", "gcc*")) == ["/usr/bin/as", "/usr/local/go/bin/go"]


def test_allow_by_path_glob() -> None:
    assert files_found(TOOLBOX, ("/usr/local/go/*",)) == [
        "/usr/bin/as",
        "/usr/bin/gcc-12",
        "/usr/bin/x86_64-linux-gnu-ld",
    ]
    assert files_found(TOOLBOX, ("/usr/bin/*",)) == ["/usr/local/go/bin/go"]


def test_allow_by_package_name() -> None:
    assert packages_found(TOOLBOX) == ["binutils", "gcc-12"]
    assert packages_found(TOOLBOX, ("binutils",)) == ["gcc-12"]
    assert packages_found(TOOLBOX, ("gcc-*",)) == ["binutils"]


def test_allow_is_case_sensitive_and_whole_name() -> None:
    assert files_found(TOOLBOX, ("AS", "a")) == files_found(TOOLBOX)


def test_allow_accepts_any_iterable() -> None:
    assert files_found(fs_of(exe("/usr/bin/as")), ()) == ["/usr/bin/as"]
    assert find_toolchains(fs_of(exe("/usr/bin/as")), iter(["as"])) == ()


# ------------------------------------------------------------------------------ by what a file is
DRIVER = ElfInfo("amd64", 64, "exec", "/lib64/ld-linux-x86-64.so.2", ("libc.so.6",), markers=("gcc-driver",))
ORDINARY = ElfInfo("amd64", 64, "dyn", "/lib64/ld-linux-x86-64.so.2", ("libc.so.6",))


def elf_exe(path: str, elf: ElfInfo, kind: str = "file", link: str = "") -> FileEntry:
    return FileEntry(path, kind, 1000, 0o755, link, elf=elf)


def test_a_compiler_under_an_unrelated_name_is_found_by_content() -> None:
    fs = fs_of(elf_exe("/usr/local/bin/notacompiler", DRIVER))
    assert find_toolchains(fs) == (Finding("gcc-driver", "/usr/local/bin/notacompiler", "file", by="content"),)
    assert [str(f) for f in find_toolchains(fs)] == ["/usr/local/bin/notacompiler (gcc-driver by content)"]


def test_ordinary_programs_are_not_flagged() -> None:
    fs = fs_of(*(elf_exe(f"/usr/bin/{name}", ORDINARY) for name in ("ls", "dpkg", "python3.11", "busybox")))
    assert find_toolchains(fs) == ()


def test_a_compiler_name_and_a_marker_make_one_finding() -> None:
    fs = fs_of(elf_exe("/usr/bin/x86_64-linux-gnu-gcc-12", DRIVER))
    assert find_toolchains(fs) == (Finding("x86_64-linux-gnu-gcc-12", "/usr/bin/x86_64-linux-gnu-gcc-12", "file"),)


def test_content_findings_need_an_executable_file() -> None:
    fs = fs_of(
        FileEntry("/usr/share/blob", "file", 1000, 0o644, elf=DRIVER),  # not executable: not a program
        FileEntry("/usr/local/bin/alias", "symlink", link="/opt/tools/prog"),  # the file itself is reported
        elf_exe("/opt/tools/prog", DRIVER),
    )
    assert files_found(fs) == ["/opt/tools/prog"]


def test_a_hard_link_with_the_markers_is_found_too() -> None:
    fs = fs_of(elf_exe("/opt/a", DRIVER), elf_exe("/opt/b", DRIVER, "hardlink", "/opt/a"))
    assert files_found(fs) == ["/opt/a", "/opt/b"]


@pytest.mark.parametrize("allow", ["notacompiler", "not*", "gcc-driver", "gcc-*", "/usr/local/bin/*"])
def test_allow_applies_to_content_findings(allow: str) -> None:
    fs = fs_of(elf_exe("/usr/local/bin/notacompiler", DRIVER))
    assert find_toolchains(fs, (allow,)) == ()


def test_allowing_a_marker_allows_the_named_file_that_has_it() -> None:
    fs = fs_of(elf_exe("/usr/bin/gcc-12", DRIVER), exe("/usr/bin/ld"))
    assert files_found(fs, ("gcc-driver",)) == ["/usr/bin/ld"]


@pytest.mark.parametrize("marker", ["gcc-component", "clang", "tcc", "go-compiler", "go-command", "rustc"])
def test_every_marker_is_a_toolchain(marker: str) -> None:
    fs = fs_of(elf_exe("/app/bin/x", dataclasses.replace(ORDINARY, markers=(marker,))))
    assert find_toolchains(fs) == (Finding(marker, "/app/bin/x", "file", by="content"),)
