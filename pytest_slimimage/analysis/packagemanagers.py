"""Find package managers in an image's filesystem (``no_package_manager``): the operating system's
(apt, dpkg, apk, rpm, yum, dnf, microdnf, zypper, pacman, ...) and, told apart, language installers
(pip, npm, gem, ...), by file name (links to an executable included: busybox's ``dpkg`` applet),
by the module a language runs them from (``python -m pip``), and by package records.

Pure: reads a :class:`~pytest_slimimage.facts.FileSystem` (paths, modes, links and the package
databases the layer index keeps).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_slimimage.analysis.toolchains import installed_packages
from pytest_slimimage.facts import FileSystem

__all__ = ["LANGUAGE", "OS", "PackageManager", "find_package_managers"]

OS = "os"
LANGUAGE = "language"

OS_MANAGER = re.compile(
    r"^(?:apt|apt-get|aptitude|dpkg|apk(?:\.static)?|rpm|yum|dnf(?:-\d)?|microdnf|tdnf|zypper|pacman|opkg)$"
)
"""Basenames of operating-system package managers."""
LANGUAGE_INSTALLER = re.compile(r"^(?:pip(?:\d+(?:\.\d+)*)?|npm|pnpm|yarn|gem)$")
"""Basenames of language package installers (``pip``, ``pip3``, ``pip3.11``, ``npm``, ``gem``, ...)."""
_MODULE = re.compile(
    r"^/(?:usr/(?:local/)?)?lib(?:64)?/python[\d.]+/(?:site|dist)-packages/pip/__init__\.py$"
    r"|^.*/node_modules/npm/package\.json$"
)
"""A language installer's own module: ``python -m pip`` works without a ``pip`` script."""
OS_PACKAGES = frozenset({"apt", "aptitude", "dpkg", "apk-tools", "rpm", "yum", "dnf", "microdnf", "tdnf", "zypper",
                         "pacman", "opkg"})  # fmt: skip
LANGUAGE_PACKAGES = frozenset({"python3-pip", "python-pip", "py3-pip", "npm", "nodejs-npm", "yarn", "rubygems"})


@dataclass(frozen=True)
class PackageManager:
    """One piece of evidence of a package manager: a program, a module or a package record."""

    name: str
    """``apt-get``, ``pip3.11``, ``pip`` (a module), ``apt`` (a package)."""
    where: str
    """The path of the program or module, or the database holding the record."""
    family: str
    """:data:`OS` or :data:`LANGUAGE`."""
    kind: str = "file"
    """``file`` (a program), ``module`` or ``package``."""
    link: str = ""
    """For a link, the program it reaches (``/bin/busybox``)."""
    layer: int = -1
    """The filesystem layer that wrote the path (-1 for a package record)."""

    def __str__(self) -> str:
        if self.kind == "package":
            return f"package {self.name} (installed, per {self.where})"
        if self.kind == "module":
            runs = "python -m pip" if self.name == "pip" else self.name
            return f"{self.where} ({runs}: the installer's module)"
        return f"{self.where} -> {self.link}" if self.link else self.where


def _family(base: str) -> str | None:
    if OS_MANAGER.match(base):
        return OS
    if LANGUAGE_INSTALLER.match(base):
        return LANGUAGE
    return None


def find_package_managers(fs: FileSystem, allow: Iterable[str] = ()) -> tuple[PackageManager, ...]:
    """Every package manager program, installer module and package record in ``fs``, OS ones
    first, then by path. ``allow`` holds glob patterns matched against a name, a path, or a link's
    target (``"pip*"``, ``"/usr/bin/apt*"``, ``"language"`` for every language installer)."""
    allow = tuple(allow)
    found: list[PackageManager] = []
    for entry in fs:
        if entry.kind in ("file", "hardlink", "symlink"):
            base = posixpath.basename(entry.path)
            family = _family(base)
            if family is not None:
                target = fs.resolve(entry.path) if entry.kind == "symlink" else entry
                if target is not None and target.executable:
                    link = target.path if entry.kind == "symlink" and target.path != entry.path else ""
                    found.append(PackageManager(base, entry.path, family, "file", link, entry.layer))
            elif entry.kind == "file" and _MODULE.match(entry.path):
                name = "pip" if "/pip/" in entry.path else "npm"
                found.append(PackageManager(name, entry.path, LANGUAGE, "module", "", entry.layer))
    for path, data in fs.contents.items():
        for package in installed_packages(path, data):
            if package in OS_PACKAGES:
                found.append(PackageManager(package, path, OS, "package"))
            elif package in LANGUAGE_PACKAGES:
                found.append(PackageManager(package, path, LANGUAGE, "package"))
    kept = [f for f in found if not _allowed(f, allow)]
    order = {"file": 0, "module": 1, "package": 2}
    return tuple(sorted(set(kept), key=lambda f: (f.family != OS, order[f.kind], f.where, f.name)))


def _allowed(found: PackageManager, allow: tuple[str, ...]) -> bool:
    names = (found.name, found.where, found.family, found.link)
    return any(fnmatch.fnmatchcase(n, pattern) for pattern in allow for n in names if n)
