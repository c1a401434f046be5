"""The ELF loader's library search, read off the image as glibc's ld.so and musl's loader do it.

For a dynamically linked program: whether its loader (PT_INTERP) is in the image, and, for the
program and every library it pulls in, breadth first, each DT_NEEDED name found where, or not
found and which directories were searched, in the loader's order: LD_LIBRARY_PATH, the object's
DT_RUNPATH (``$ORIGIN`` expanded), then for glibc the directories of /etc/ld.so.conf (only
through /etc/ld.so.cache) and the default ones (multiarch first), for musl its path file or its
default ones.

Pure data, no message text (:mod:`.problems` words it): reads a :class:`FileSystem`, follows
paths with :meth:`FileSystem.resolve` only.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_slimimage.analysis.runnable.files import arch, content, elsewhere, is_musl, is_regular
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem, normalise

MULTIARCH = {
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
"""Debian's multiarch triplets, whose /lib and /usr/lib directories glibc searches first."""
LOADER_NAME = re.compile(r"^ld-(?:linux|musl)[\w.-]*\.so(?:\.\d+)*$")
"""The basename of an ELF loader: ``ld-linux-x86-64.so.2``, ``ld-musl-aarch64.so.1``."""
MUSL_DEFAULT = ("/lib", "/usr/local/lib", "/usr/lib")
"""What musl's loader searches when the image has no ``/etc/ld-musl-<arch>.path``."""
LD_SO_CONF = "/etc/ld.so.conf"
LD_SO_CACHE = "/etc/ld.so.cache"


@dataclass(frozen=True)
class Loader:
    """The program's ELF loader (PT_INTERP), and whether the kernel finds it."""

    path: str
    """PT_INTERP as the program names it."""
    entry: FileEntry | None
    """What the path resolves to, symlinks followed (None: nothing)."""
    link: str = ""
    """When the loader is missing and ``path`` is a symlink: its target as stored."""
    others: tuple[str, ...] = ()
    """When the loader is missing: the paths of the ELF loaders the image has instead."""

    @property
    def present(self) -> bool:
        return is_regular(self.entry)

    @property
    def musl(self) -> bool:
        return is_musl(self.path)


@dataclass(frozen=True)
class SearchDir:
    """One directory the loader searches, and why it searches it."""

    path: str
    """Absolute and normalised (relative ones are taken from WORKDIR)."""
    source: str
    """``LD_LIBRARY_PATH``, ``RUNPATH``, ``/etc/ld.so.conf`` (glibc), ``/etc/ld-musl-<arch>.path``
    (musl) or ``default``."""
    written: str = ""
    """For ``RUNPATH``: the entry as written, when expanding ``$ORIGIN``/``$LIB`` changed it."""


@dataclass(frozen=True)
class PassedOver:
    """A file with the library's name that the loader passes over: another ELF class or machine."""

    path: str
    elf: ElfInfo


@dataclass(frozen=True)
class Library:
    """One DT_NEEDED name, and where the loader finds it."""

    name: str
    path: str | None = None
    """Where the loader finds it (None: nowhere it searches)."""
    elf: ElfInfo | None = None
    """The found file's ELF facts (a hard link's target's), when it was read."""
    passed_over: tuple[PassedOver, ...] = ()
    """Files with the name in the searched directories, before ``path``, that do not match the program."""
    uncached: bool = False
    """Found only in a directory /etc/ld.so.conf lists, which glibc searches through /etc/ld.so.cache,
    and the image has no cache: ``path`` is where the loader would find it after ``ldconfig``."""
    elsewhere: tuple[str, ...] = ()
    """When not found: paths in the image with the same name, outside the searched directories."""

    @property
    def found(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class ObjectSearch:
    """The DT_NEEDED names of one object (the program or a library it loads), searched for."""

    owner: str
    """The object's path."""
    elf: ElfInfo
    via: tuple[tuple[str, ElfInfo], ...]
    """The libraries that brought the object in, from the program's down to the object itself
    (empty for the program)."""
    dirs: tuple[SearchDir, ...]
    """Where the loader looks for the object's libraries, in order, each directory once."""
    libraries: tuple[Library, ...]
    """The object's DT_NEEDED names in order, except those already loaded (by name)."""

    @property
    def missing(self) -> tuple[Library, ...]:
        return tuple(lib for lib in self.libraries if not lib.found)


@dataclass(frozen=True)
class LibrarySearch:
    """What the loader of one dynamically linked program would do."""

    loader: Loader
    cached: bool
    """Whether glibc reads /etc/ld.so.conf's directories (the image has /etc/ld.so.cache); always True for musl."""
    objects: tuple[ObjectSearch, ...]
    """The program first, then each library that needs others, in the order the loader loads them."""

    @property
    def found(self) -> int:
        """How many libraries were found (the uncached ones included)."""
        return sum(1 for obj in self.objects for lib in obj.libraries if lib.found)

    @property
    def missing(self) -> tuple[Library, ...]:
        return tuple(lib for obj in self.objects for lib in obj.missing)


def search_libraries(
    fs: FileSystem, program: str, elf: ElfInfo, *, library_path: str | None = None, workdir: str = "/"
) -> LibrarySearch:
    """The loader of ``program`` (at that path, with those ELF facts) and every DT_NEEDED library,
    transitively. ``library_path`` is the config's LD_LIBRARY_PATH; ``workdir`` is where relative
    paths start."""
    interp = elf.interp or ""
    musl = is_musl(interp)
    loaded = {posixpath.basename(interp)} | ({"libc.so"} if musl else set())
    cached = musl or fs.resolve(LD_SO_CACHE) is not None
    conf = [] if musl else ld_so_conf(fs)
    conf_dirs = tuple(SearchDir(d, LD_SO_CONF) for d in conf)
    queue: list[tuple[str, ElfInfo, tuple[tuple[str, ElfInfo], ...]]] = [(program, elf, ())]
    done: set[str] = set()
    objects: list[ObjectSearch] = []
    while queue:
        owner, info, via = queue.pop(0)
        if owner in done:
            continue
        done.add(owner)
        dirs = library_dirs(
            fs, owner, info.runpath, elf, conf=conf if cached else (), library_path=library_path, workdir=workdir
        )
        libraries: list[Library] = []
        for name in info.needed:
            if name in loaded:
                continue
            hit, passed = _find(fs, name, dirs, elf, workdir)
            uncached = False
            if hit is None and not cached and conf_dirs:
                hit, _ = _find(fs, name, conf_dirs, elf, workdir)
                uncached = hit is not None
            if hit is None:
                libraries.append(Library(name, passed_over=passed, elsewhere=_elsewhere(fs, name, dirs)))
                continue
            path, entry = hit
            loaded.add(name)
            lib_elf = content(fs, entry).elf
            libraries.append(Library(name, path, lib_elf, passed, uncached))
            if lib_elf is not None and lib_elf.needed:
                queue.append((path, lib_elf, (*via, (path, lib_elf))))
        objects.append(ObjectSearch(owner, info, via, dirs, tuple(libraries)))
    return LibrarySearch(find_loader(fs, interp, workdir=workdir), cached, tuple(objects))


def find_loader(fs: FileSystem, interp: str, *, workdir: str = "/") -> Loader:
    """Whether the kernel finds the loader ``interp`` names; when it does not, the loaders the image has."""
    entry = fs.resolve(normalise(posixpath.join(workdir, interp)))
    if is_regular(entry):
        return Loader(interp, entry)
    link = fs.get(interp)
    others = sorted(
        e.path for e in fs if LOADER_NAME.match(posixpath.basename(e.path)) and e.path != interp and e.kind != "dir"
    )
    return Loader(interp, entry, link.link if link is not None and link.kind == "symlink" else "", tuple(others))


def library_dirs(
    fs: FileSystem,
    owner: str,
    runpath: Sequence[str],
    program: ElfInfo,
    *,
    conf: Sequence[str] = (),
    library_path: str | None = None,
    workdir: str = "/",
) -> tuple[SearchDir, ...]:
    """The directories searched for the libraries of ``owner`` (with that RUNPATH), in the loader's
    order, each once: LD_LIBRARY_PATH, RUNPATH (``$ORIGIN`` is ``owner``'s directory), then for glibc
    ``conf`` (/etc/ld.so.conf's, when cached) and the default ones for the program's machine and
    class; for musl (``program``'s loader), its path file in ``fs`` or its default ones."""
    dirs: list[SearchDir] = []
    if library_path:
        dirs += [SearchDir(d or ".", "LD_LIBRARY_PATH") for d in library_path.split(":")]
    for entry in runpath:
        for expanded in expand_origin(entry, posixpath.dirname(owner)):
            dirs.append(SearchDir(expanded, "RUNPATH", entry if expanded != entry else ""))
    interp = program.interp or ""
    if is_musl(interp):
        path_file = f"/etc/ld-musl-{_musl_arch(posixpath.basename(interp))}.path"
        text = fs.contents.get(path_file)
        if text is not None:
            dirs += [SearchDir(d, path_file) for d in re.split(r"[:\n]", text.decode(errors="replace")) if d.strip()]
        else:
            dirs += [SearchDir(d, "default") for d in MUSL_DEFAULT]
    else:
        dirs += [SearchDir(d, LD_SO_CONF) for d in conf]
        machine = arch(program.machine)
        defaults = [f"{top}/{triplet}" for triplet in MULTIARCH.get(machine, ()) for top in ("/lib", "/usr/lib")]
        defaults += ["/lib64", "/usr/lib64"] if program.bits == 64 else ["/lib32", "/usr/lib32"]
        dirs += [SearchDir(d, "default") for d in [*defaults, "/lib", "/usr/lib"]]
    out: list[SearchDir] = []
    seen: set[str] = set()
    for directory in dirs:
        path = normalise(posixpath.join(workdir, directory.path.strip()))
        if path not in seen:
            seen.add(path)
            out.append(SearchDir(path, directory.source, directory.written))
    return tuple(out)


def ld_so_conf(fs: FileSystem) -> list[str]:
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

    read(LD_SO_CONF)
    return out


def expand_origin(entry: str, origin: str) -> list[str]:
    """``$ORIGIN``/``${ORIGIN}`` -> the object's directory; ``$LIB`` -> lib and lib64."""
    text = re.sub(r"\$(?:ORIGIN\b|\{ORIGIN\})", lambda _: origin, entry)
    if re.search(r"\$(?:LIB\b|\{LIB\})", text):
        return [re.sub(r"\$(?:LIB\b|\{LIB\})", lib, text) for lib in ("lib", "lib64")]
    return [text]


def _find(
    fs: FileSystem, name: str, dirs: Sequence[SearchDir], program: ElfInfo, workdir: str
) -> tuple[tuple[str, FileEntry] | None, tuple[PassedOver, ...]]:
    """The first ``name`` in ``dirs`` that is a file of the program's class and machine (the
    loader passes over the others), and those passed over."""
    passed: list[PassedOver] = []
    paths = (
        [normalise(posixpath.join(workdir, name))] if "/" in name else
        [normalise(posixpath.join(d.path, name)) for d in dirs]
    )  # fmt: skip
    for path in paths:
        entry = fs.resolve(path)
        if entry is None or not is_regular(entry):
            continue
        info = content(fs, entry).elf
        if info is not None and (arch(info.machine) != arch(program.machine) or info.bits != program.bits):
            passed.append(PassedOver(path, info))
            continue
        return (path, entry), tuple(passed)
    return None, tuple(passed)


def _elsewhere(fs: FileSystem, name: str, dirs: Sequence[SearchDir]) -> tuple[str, ...]:
    """Files named ``name`` outside the searched directories."""
    searched = {d.path for d in dirs}
    same, _ = elsewhere(fs, name, exclude="", executable_only=False)
    return tuple(p for p in same if posixpath.dirname(p) not in searched)


def _musl_arch(loader: str) -> str:
    """``ld-musl-x86_64.so.1`` -> ``x86_64``."""
    return loader[len("ld-musl-") :].split(".so", 1)[0]
