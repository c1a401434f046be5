"""Find compilers and toolchains in an image's filesystem: by file name, by what an executable
is (the toolchain markers the layer index found in its bytes, whatever it is named), and by
package records.

Pure: reads a :class:`FileSystem` (paths, modes, ELF facts and the captured package databases).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_slimimage.analysis.markers import TOOLCHAIN_MARKERS
from pytest_slimimage.facts import FileSystem

# A GNU target triplet prefix: x86_64-linux-gnu-, aarch64-linux-musl-, x86_64-pc-linux-gnu-, arm-linux-gnueabihf-
_TRIPLET = r"(?:[a-z0-9_]+-(?:[a-z0-9_]+-)?[a-z0-9_]+-[a-z0-9_]+-)?"
_VERSION = r"(?:-?\d+(?:\.\d+)*)?"
_DRIVERS = "|".join(
    re.escape(name)
    for name in (
        "gcc", "g++", "c++", "cc", "cpp", "clang", "clang++", "clang-cl", "tcc", "gfortran", "gccgo",
        "rustc", "cargo", "javac", "go", "zig", "ld", "ld.bfd", "ld.gold", "ld.lld", "lld", "as",
    )
)  # fmt: skip
_COMPILER_PROPER = r"cc1|cc1plus|cc1obj|f951|collect2|lto1"
COMPILER_FILE = re.compile(rf"^{_TRIPLET}(?:{_DRIVERS}){_VERSION}$|^(?:{_COMPILER_PROPER})$")
"""Basenames of compiler drivers, compilers proper, assemblers and linkers, versioned and
triplet-prefixed ones included (``x86_64-linux-gnu-gcc-12``, ``clang-16``, ``cc1plus``)."""

# Debian spells a package's target triplet with hyphens: gcc-12-x86-64-linux-gnu, binutils-arm-linux-gnueabihf
_DEB_TRIPLET = r"(?:-[a-z0-9_]+(?:-[a-z0-9_]+)?-linux-[a-z0-9_]+)?"
_PKG = re.compile(
    r"^(?:"
    rf"(?:gcc|g\+\+|cpp|gfortran|gccgo|clang|tcc|lld|llvm)(?:-\d+(?:\.\d+)*)?{_DEB_TRIPLET}"
    rf"|binutils{_DEB_TRIPLET}"
    r"|build-essential|build-base"
    r"|golang(?:-\d+(?:\.\d+)*)?(?:-go)?|go"
    r"|rustc|cargo|rust"
    r"|openjdk-?\d+-jdk(?:-headless)?|default-jdk(?:-headless)?|openjdk\d+-jdk"
    r"|zig"
    r")$"
)
"""Package names that install a compiler or toolchain (Debian and Alpine spellings).
Runtime-only packages (``libgcc-s1``, ``gcc-12-base``, ``libstdc++6``) do not match."""

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_STATUS_DIR = "/var/lib/dpkg/status.d/"
APK_INSTALLED = "/lib/apk/db/installed"


def is_package_database(path: str, size: int = 0) -> bool:
    """The package databases :func:`find_toolchains` reads (the layer index keeps their contents)."""
    return path in (DPKG_STATUS, APK_INSTALLED) or path.startswith(DPKG_STATUS_DIR)


@dataclass(frozen=True)
class Finding:
    """One piece of evidence of a toolchain: a file, or a package record."""

    name: str
    """The tool or package: ``gcc``, ``x86_64-linux-gnu-gcc-12``, ``package gcc-12``; for a file
    found by content, its marker (``gcc-driver``)."""
    where: str
    """The path of the file, or the database holding the record."""
    kind: str
    """``file`` or ``package``."""
    by: str = "name"
    """How a file was found: ``name`` (its name is a compiler's) or ``content`` (its bytes are)."""

    def __str__(self) -> str:
        if self.kind == "package":
            return f"package {self.name} (installed, per {self.where})"
        if self.by == "content":
            return f"{self.where} ({self.name} by content)"
        return self.where


def _allowed(name: str, where: str, allow: Iterable[str], *names: str) -> bool:
    return any(fnmatch.fnmatchcase(n, pat) for pat in allow for n in (name, where, *names))


def find_toolchains(fs: FileSystem, allow: Iterable[str] = ()) -> tuple[Finding, ...]:
    """Every compiler or toolchain file and package record in ``fs``, sorted.

    A file counts when its name is a compiler's (``gcc-12``, ``cc1``, ``ld``; symlinks to an
    executable included) or, whatever its name, when the layer index found a toolchain marker
    in its bytes (a GCC driver copied to ``/usr/local/bin/notacompiler``). ``allow`` holds glob
    patterns matched against a tool's name, a marker, a package's name, or a path (``"as"``,
    ``"gcc-driver"``, ``"/usr/bin/ld*"``, ``"binutils"``)."""
    allow = tuple(allow)
    found: list[Finding] = []
    for entry in fs:
        if entry.kind not in ("file", "hardlink", "symlink"):
            continue
        target = fs.resolve(entry.path) if entry.kind == "symlink" else entry
        if target is None or not target.executable:  # a link to a directory, a dangling link, a data file
            continue
        base = entry.path.rsplit("/", 1)[-1]
        markers = (
            tuple(m for m in entry.elf.markers if m in TOOLCHAIN_MARKERS)
            if entry.elf is not None and entry.kind != "symlink"
            else ()
        )
        if COMPILER_FILE.match(base):
            if not _allowed(base, entry.path, allow, *markers):
                found.append(Finding(base, entry.path, "file"))
        elif markers and not _allowed(base, entry.path, allow, *markers):
            found.append(Finding(markers[0], entry.path, "file", by="content"))
    for path, data in fs.contents.items():
        for package in installed_packages(path, data):
            if _PKG.match(package) and not _allowed(package, path, allow):
                found.append(Finding(package, path, "package"))
    return tuple(sorted(set(found), key=lambda f: (f.kind, f.where, f.name)))


def installed_packages(path: str, data: bytes) -> list[str]:
    """The packages a database kept by the layer index (dpkg's status, apk's installed) lists as
    installed; nothing for any other file."""
    text = data.decode("utf-8", "replace")
    if path == APK_INSTALLED:
        return [line[2:].strip() for line in text.splitlines() if line.startswith("P:")]
    if path == DPKG_STATUS or path.startswith(DPKG_STATUS_DIR):
        out = []
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line[:1] not in (" ", "\t") and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            status = fields.get("status", "install ok installed")
            if "package" in fields and status.endswith(" installed"):
                out.append(fields["package"])
        return out
    return []
