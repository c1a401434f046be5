"""What the layer index looks for in an executable's bytes to tell what program it is, whatever
its name: compilers (``no_compilers``), shells and multi-call binaries (``no_shell``).

Pure data (no pyelftools): :mod:`.elfprobe` searches files for these needles; the finders read the
names it records in :attr:`~pytest_slimimage.facts.ElfInfo.markers`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MARKERS", "MULTICALL_MARKERS", "SHELL_MARKERS", "TOOLCHAIN_MARKERS", "Marker"]


@dataclass(frozen=True)
class Marker:
    """An identity of a program: the file holds every one of ``needles``."""

    name: str
    needles: tuple[bytes, ...]
    what: str
    family: str = "toolchain"
    """``toolchain`` (``no_compilers``), ``shell`` or ``multicall`` (``no_shell``)."""


MARKERS: tuple[Marker, ...] = (
    Marker(
        "gcc-driver",
        (b"COLLECT_GCC_OPTIONS", b"Using built-in specs."),
        "the GCC driver (gcc, g++, cpp, cc): it sets COLLECT_GCC_OPTIONS and prints 'Using built-in specs.'",
    ),
    Marker(
        "gcc-component",
        (b"COLLECT_GCC_OPTIONS",),
        "a GCC program the driver runs (cc1, cc1plus, collect2, lto1, lto-wrapper)",
    ),
    Marker("clang", (b"CCC_OVERRIDE_OPTIONS",), "the clang driver (reads CCC_OVERRIDE_OPTIONS)"),
    Marker("tcc", (b"__TINYC__", b"libtcc1.a"), "the Tiny C Compiler (defines __TINYC__, links libtcc1.a)"),
    Marker("go-compiler", (b"cmd/compile/internal/gc.",), "Go's compiler (cmd/compile)"),
    Marker("go-command", (b"cmd/go/internal/work",), "the go command, which builds Go programs"),
    Marker("rustc", (b"rustc_driver",), "rustc (or a tool built on rustc_driver: rustdoc, clippy-driver)"),
    Marker(
        "shell",
        (b"OPTIND", b"PS4"),
        "a POSIX shell (sets OPTIND for getopts and PS4 for tracing)",
        family="shell",
    ),
    Marker("busybox", (b"BusyBox v",), "BusyBox, one binary whose applets may include a shell", family="multicall"),
)
"""Verified against the real files: gcc:latest's x86_64-linux-gnu-gcc-12, -cpp-12, cc1, collect2,
lto1 and lto-wrapper; Debian bookworm's clang-14, tcc, rustc and golang-1.19-go; none of the
toolchain needles occurs in ls, dpkg, bash, perl, python, busybox or libc. The shell's two needles
are in bash, dash, busybox's ash, mksh (glibc, musl, klibc, dietlibc builds), ksh93 and zsh, and in
none of the other 3,400 ELF files of a Debian 12 machine with gcc, perl, python, postgres and
gdb (``OPTIND`` alone already told them apart; ``PS4`` makes a chance hit rarer). ``BusyBox v`` is
busybox's version banner (a shell only when it also has the shell's needles: ash compiled in)."""

TOOLCHAIN_MARKERS = frozenset(m.name for m in MARKERS if m.family == "toolchain")
SHELL_MARKERS = frozenset(m.name for m in MARKERS if m.family == "shell")
MULTICALL_MARKERS = frozenset(m.name for m in MARKERS if m.family == "multicall")
