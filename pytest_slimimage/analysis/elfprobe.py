"""What an executable file is, read from its bytes: ELF facts (with pyelftools), a script's
``#!`` line, and toolchain identity markers, in one sequential pass with bounded memory.

The layer index calls :func:`probe_executable` on every regular file with an execute bit, on a
stream it may not seek (a layer tar inside the engine's export) or on a file it may (the
engine's storage); both give the same answer for the same bytes. Pure: imports neither pytest
nor docker.

Memory: at most :data:`HEAD_CAP` bytes of a file's start (ELF and program headers, the
interpreter path, ``.dynsym``/``.dynstr`` -- the strings ``DT_NEEDED`` names), one
:data:`CHUNK` of the rest, and up to :data:`DYNAMIC_CAP` bytes of its dynamic segment are
held, whatever the file's size. Markers are searched chunk by chunk, each chunk prefixed with
the previous one's last ``len(longest needle) - 1`` bytes so a needle that straddles a
boundary is found.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from elftools.elf.elffile import ELFFile

from pytest_slimimage.analysis.markers import MARKERS as MARKERS  # re-exported: the probe searches these
from pytest_slimimage.facts import ElfInfo

HEAD_CAP = 4 * 1024 * 1024
"""Bytes of a file's start kept in memory for pyelftools. GNU ld, lld, gold and Go put the ELF
and program headers, ``.interp``, ``.dynsym`` and ``.dynstr`` first; the largest such
read-only head in the gcc image's executables is cc1's, 2.2 MiB. One head is held at a time."""
CHUNK = 1024 * 1024
"""Bytes read (and scanned for markers) at a time after the head."""
DYNAMIC_CAP = 64 * 1024
"""Bytes of the dynamic segment kept (``cc1``'s is 592 bytes; 64 KiB is 4096 64-bit tags)."""
SCAN_CAP = 256 * 1024 * 1024
"""Bytes of one file scanned for markers, at most: the read-only data of the largest compilers
(a static clang's ``.rodata`` is ~40 MiB) is well within; a bigger file is scanned this far."""
SHEBANG_CAP = 256
"""What the kernel reads of a ``#!`` line (``BINPRM_BUF_SIZE``)."""
MAX_TAGS = 4096


_SUBSUMES = {"gcc-driver": "gcc-component"}
"""A file with the first marker is reported with it alone."""
_NEEDLES = tuple(dict.fromkeys(n for m in MARKERS for n in m.needles))
_OVERLAP = max(len(n) for n in _NEEDLES) - 1

_MACHINES = {
    "EM_X86_64": "amd64",
    "EM_386": "386",
    "EM_AARCH64": "arm64",
    "EM_ARM": "arm",
    "EM_LOONGARCH": "loong64",
    "EM_SPARCV9": "sparc64",
    "EM_SPARC": "sparc",
    "EM_IA_64": "ia64",
}
_KINDS = {"ET_EXEC": "exec", "ET_DYN": "dyn", "ET_REL": "rel", "ET_CORE": "core"}


def machine_name(e_machine: object, bits: int, little_endian: bool) -> str:
    """The engine's (Go's GOARCH) name for an ELF machine: ``EM_PPC64`` little-endian is ``ppc64le``."""
    name = str(e_machine)
    if name in _MACHINES:
        return _MACHINES[name]
    if name == "EM_PPC64":
        return "ppc64le" if little_endian else "ppc64"
    if name == "EM_PPC":
        return "ppc"
    if name == "EM_S390":
        return "s390x" if bits == 64 else "s390"
    if name == "EM_RISCV":
        return f"riscv{bits}"
    if name == "EM_MIPS":
        return ("mips64" if bits == 64 else "mips") + ("le" if little_endian else "")
    if isinstance(e_machine, int):
        return f"elf-machine-{e_machine}"
    return name.removeprefix("EM_").lower()


# ------------------------------------------------------------------------------------------ public
def probe_elf(data: bytes) -> ElfInfo | None:
    """ELF facts of a whole file held in memory; None when ``data`` is not ELF or its header is
    unreadable, partial facts (no ``needed``, say) when the rest is truncated or corrupt."""
    elf, _ = probe_executable(io.BytesIO(data), len(data), seekable=True)
    return elf


def probe_shebang(head: bytes) -> str | None:
    """The ``#!`` line of a script without ``#!``, stripped (from its first 256 bytes)."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:SHEBANG_CAP].split(b"\n", 1)[0]
    return line.decode("utf-8", "replace").strip()


def find_markers(data: bytes) -> tuple[str, ...]:
    """The markers whose needles all occur in ``data`` (one buffer; no ELF layout applied)."""
    return _markers({n for n in _NEEDLES if n in data})


def probe_executable(
    stream: IO[bytes], size: int, *, seekable: bool = False, chunk_size: int = CHUNK
) -> tuple[ElfInfo | None, str | None]:
    """(ELF facts, shebang) of a file of ``size`` bytes read from ``stream``'s position.

    Reads sequentially; with ``seekable`` it seeks over what it does not need (the executable
    code, debug sections), without, it reads through it, stopping once nothing more is needed
    (a tar stream skips the rest itself). Errors reading ``stream`` propagate; bad content does
    not raise.
    """
    reader = _Reader(stream, size, seekable)
    head = reader.read_to(min(size, SHEBANG_CAP))
    if head.startswith(b"#!"):
        return None, probe_shebang(head)
    if not head.startswith(b"\x7fELF"):
        return None, None
    head += reader.read_to(min(size, HEAD_CAP))
    view: _Sparse | _Whole = _Whole(head) if len(head) == size else _Sparse(size, head)
    elf = _open(view)
    if elf is None:
        return None, None
    layout = _layout(elf)
    if layout is None or view.misses:  # unreadable, or past the head: what the file needs cannot be told
        return None, None
    scan = _scan_ranges(layout.loads, size)
    keep = [r for r in (layout.dynamic, layout.interp) if r is not None and r[1] > len(head)]
    scanner = _Scanner()
    for start, end in scan:
        if start < len(head):
            scanner.feed(start, head[start : min(end, len(head))])
    for offset, data in reader.pieces(_merge(scan + keep), chunk_size):
        for start, end in scan:
            lo, hi = max(start, offset), min(end, offset + len(data))
            if lo < hi:
                scanner.feed(lo, data[lo - offset : hi - offset])
        for start, end in keep:
            lo, hi = max(start, offset), min(end, offset + len(data))
            if lo < hi and isinstance(view, _Sparse):
                view.add(lo, data[lo - offset : hi - offset])
    return _facts(elf, layout.segments, view, scanner.markers()), None


# ---------------------------------------------------------------------------------------- reading
class _Reader:
    """Sequential reads of one file's bytes, seeking or reading through the gaps."""

    def __init__(self, stream: IO[bytes], size: int, seekable: bool) -> None:
        self._stream = stream
        self._size = size
        self._seekable = seekable
        self.pos = 0

    def read_to(self, end: int) -> bytes:
        parts = []
        while self.pos < end:
            data = self._stream.read(end - self.pos)
            if not data:
                self._size = self.pos  # shorter than announced: stop there
                break
            parts.append(data)
            self.pos += len(data)
        return b"".join(parts)

    def pieces(self, ranges: list[tuple[int, int]], chunk_size: int) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) of every chunk overlapping ``ranges`` (sorted, disjoint)."""
        for start, end in ranges:
            end = min(end, self._size)
            if end <= self.pos:
                continue
            if start > self.pos:
                if self._seekable:
                    self._stream.seek(start - self.pos, os.SEEK_CUR)
                    self.pos = start
                else:
                    while self.pos < start:
                        skipped = len(self._stream.read(min(chunk_size, start - self.pos)))
                        if not skipped:
                            return
                        self.pos += skipped
            while self.pos < end:
                offset = self.pos
                data = self.read_to(min(end, offset + chunk_size))
                if not data:
                    return
                yield offset, data


class _Whole(io.BytesIO):
    """A file held whole (the usual case: smaller than the head): nothing is missing."""

    misses = 0


class _Sparse:
    """A file of ``size`` bytes of which only some ranges are known (``head`` first); the rest
    reads as zeros and counts in ``misses`` (so a value read from a gap can be told from a real
    one). Only what pyelftools calls: ``read``, ``seek``, ``tell``."""

    def __init__(self, size: int, head: bytes) -> None:
        self._size = size
        self._pieces: list[tuple[int, bytes]] = [(0, head)]
        self._pos = 0
        self.misses = 0

    def add(self, offset: int, data: bytes) -> None:
        if self._pieces and self._pieces[-1][0] + len(self._pieces[-1][1]) == offset:
            last_offset, last = self._pieces.pop()
            self._pieces.append((last_offset, last + data))
        else:
            self._pieces.append((offset, data))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = self._pos if whence == os.SEEK_CUR else self._size if whence == os.SEEK_END else 0
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        start = self._pos
        end = self._size if n < 0 else min(self._size, start + n)
        if end <= start:
            return b""
        self._pos = end
        for offset, data in self._pieces:  # the usual read lies inside one piece (the head)
            if offset <= start and end <= offset + len(data):
                return data[start - offset : end - offset]
        out = bytearray(end - start)
        covered = 0
        for offset, data in self._pieces:
            lo, hi = max(start, offset), min(end, offset + len(data))
            if lo < hi:
                out[lo - start : hi - start] = data[lo - offset : hi - offset]
                covered += hi - lo
        if covered < end - start:
            self.misses += 1
        return bytes(out)


class _Scanner:
    """Finds the needles in pieces fed in file order, across piece boundaries."""

    def __init__(self) -> None:
        self._found: set[bytes] = set()
        self._carry = b""
        self._end = -1
        self._scanned = 0

    def feed(self, offset: int, data: bytes) -> None:
        if self._scanned >= SCAN_CAP or len(self._found) == len(_NEEDLES):
            return
        data = data[: SCAN_CAP - self._scanned]
        self._scanned += len(data)
        buffer = self._carry + data if offset == self._end else data
        for needle in _NEEDLES:
            if needle not in self._found and needle in buffer:
                self._found.add(needle)
        self._carry = buffer[-_OVERLAP:]
        self._end = offset + len(data)

    def markers(self) -> tuple[str, ...]:
        return _markers(self._found)


def _markers(found: set[bytes]) -> tuple[str, ...]:
    names = [m.name for m in MARKERS if all(n in found for n in m.needles)]
    return tuple(n for n in names if not any(_SUBSUMES.get(other) == n for other in names))


# -------------------------------------------------------------------------------------------- ELF
class _NoSections(ELFFile):
    """pyelftools' ELFFile without the section header table: the probe needs the program
    headers only (sections sit at the file's end, past a stream, and a dynamic segment then
    finds its strings through ``DT_STRTAB``, as the loader does)."""

    def num_sections(self) -> int:
        return 0


def _open(view: _Sparse | _Whole) -> Any:
    try:
        return _NoSections(cast("IO[bytes]", view))
    except Exception:  # pyelftools raises ELFError, construct errors, ValueError... on bad bytes
        return None


Range = tuple[int, int]


@dataclass
class _Layout:
    segments: list[Any]
    loads: list[tuple[int, int, int]]
    """PT_LOAD (offset, end, flags)."""
    dynamic: Range | None
    interp: Range | None


def _layout(elf: Any) -> _Layout | None:
    """The program headers, None when they cannot be read."""
    layout = _Layout([], [], None, None)
    try:
        for number in range(min(elf.num_segments(), 256)):
            segment = elf.get_segment(number)
            layout.segments.append(segment)
            header = segment.header
            start, length = int(header["p_offset"]), int(header["p_filesz"])
            if header["p_type"] == "PT_LOAD":
                layout.loads.append((start, start + length, int(header["p_flags"])))
            elif header["p_type"] == "PT_DYNAMIC":
                layout.dynamic = (start, start + min(length, DYNAMIC_CAP))
            elif header["p_type"] == "PT_INTERP":
                layout.interp = (start, start + min(length, 4096))
    except Exception:  # pyelftools raises ELFError, construct errors, ValueError... on bad bytes
        return None
    return layout


def _scan_ranges(loads: list[tuple[int, int, int]], size: int) -> list[Range]:
    """Where markers are looked for: the loaded data that is not code when the file has a
    separate read-only data segment (GNU ld's -z separate-code, lld, mold and Go all keep
    ``.rodata`` out of the executable segment); otherwise every loaded byte; the whole file
    when the program headers are unknown."""
    pf_x, pf_w = 1, 2
    if not loads:
        return [(0, size)]
    rodata = any(not flags & (pf_x | pf_w) for _, _, flags in loads)
    chosen = [(s, min(e, size)) for s, e, flags in loads if not (rodata and flags & pf_x) and s < size]
    return _merge(chosen)


def _merge(ranges: list[Range]) -> list[Range]:
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _facts(elf: Any, segments: list[Any], view: _Sparse | _Whole, markers: tuple[str, ...]) -> ElfInfo | None:
    try:
        bits = int(elf.elfclass)
        machine = machine_name(elf["e_machine"], bits, bool(elf.little_endian))
        e_type = str(elf["e_type"])
    except Exception:  # an unreadable header field
        return None
    interp: str | None = None
    needed: list[str] = []
    runpath: list[str] = []
    rpath: list[str] = []
    for segment in segments:
        try:
            before = view.misses
            if segment["p_type"] == "PT_INTERP":
                name = segment.get_interp_name()
                if view.misses == before and name:
                    interp = name
            elif segment["p_type"] == "PT_DYNAMIC":
                tags = segment.iter_tags()
                for _ in range(MAX_TAGS):
                    before = view.misses  # pyelftools reads a tag's string as it yields the tag
                    tag = next(tags, None)
                    if tag is None:
                        break
                    if view.misses != before:  # the string lies where the probe never read
                        continue
                    kind = tag.entry.d_tag
                    if kind == "DT_NEEDED" and tag.needed:
                        needed.append(tag.needed)
                    elif kind == "DT_RUNPATH":
                        runpath += [p for p in tag.runpath.split(":") if p]
                    elif kind == "DT_RPATH":
                        rpath += [p for p in tag.rpath.split(":") if p]
        except Exception:  # a truncated or corrupt segment, a name not UTF-8: keep what was read
            continue
    return ElfInfo(
        machine=machine,
        bits=bits,
        kind=_KINDS.get(e_type, e_type.removeprefix("ET_").lower()),
        interp=interp,
        needed=tuple(needed),
        runpath=tuple(runpath or rpath),
        markers=markers,
    )
