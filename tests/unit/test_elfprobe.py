"""Probing executables: real ELF programs built by the host's compiler, scripts, corrupt files,
toolchain markers (also across chunk boundaries), streamed and seekable reads alike."""

from __future__ import annotations

import io
import os
import platform
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from pytest_slimimage.analysis import elfprobe
from pytest_slimimage.analysis.elfprobe import (
    MARKERS,
    find_markers,
    machine_name,
    probe_elf,
    probe_executable,
    probe_shebang,
)
from pytest_slimimage.facts import ElfInfo

from .archives import compile_c

HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
             "riscv64": "riscv64", "i686": "386"}.get(platform.machine(), platform.machine())  # fmt: skip


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    where = tmp_path_factory.mktemp("elf")
    return {
        "dynamic": compile_c(where, "dynamic", "-Wl,-rpath,/opt/app/lib:/opt/more", "-Wl,--enable-new-dtags"),
        "rpath": compile_c(where, "rpath", "-Wl,-rpath,/opt/old", "-Wl,--disable-new-dtags"),
        "static": compile_c(where, "static", "-static"),
    }


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(target), self._step, len(self._data))
        target[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def probe_all_ways(data: bytes, **kwargs: int) -> ElfInfo | None:
    """The facts of ``data``, the same whether it is seekable, streamed, or streamed in trickles."""
    seek = probe_executable(io.BytesIO(data), len(data), seekable=True, **kwargs)
    stream = probe_executable(io.BytesIO(data), len(data), seekable=False, **kwargs)
    trickle = probe_executable(Trickle(data, 1000), len(data), seekable=False, **kwargs)  # type: ignore[arg-type]
    assert seek == stream == trickle
    assert seek[1] is None
    return seek[0]


# --------------------------------------------------------------------------------------------- ELF
def test_dynamic_program(programs: dict[str, bytes]) -> None:
    info = probe_all_ways(programs["dynamic"])
    assert info is not None
    assert (info.machine, info.bits) == (HOST_ARCH, 64)
    assert info.kind == "dyn"  # a PIE
    assert info.interp is not None and "/ld-" in info.interp
    assert "libc.so.6" in info.needed
    assert info.runpath == ("/opt/app/lib", "/opt/more")
    assert info.markers == ()
    assert not info.static
    assert probe_elf(programs["dynamic"]) == info


def test_rpath_counts_as_runpath_when_there_is_no_runpath(programs: dict[str, bytes]) -> None:
    info = probe_elf(programs["rpath"])
    assert info is not None and info.runpath == ("/opt/old",)


def test_static_program(programs: dict[str, bytes]) -> None:
    info = probe_all_ways(programs["static"])
    assert info is not None
    assert (info.machine, info.kind, info.interp, info.needed) == (HOST_ARCH, "exec", None, ())
    assert info.static


def test_facts_match_readelf(programs: dict[str, bytes], tmp_path: Path) -> None:
    """Cross-check with binutils (on the host with gcc) where it is installed."""
    readelf = shutil.which("readelf")
    if readelf is None:  # pragma: no cover - binutils comes with gcc
        pytest.skip("readelf not installed")
    path = tmp_path / "prog"
    path.write_bytes(programs["dynamic"])
    dynamic = subprocess.run([readelf, "-dW", str(path)], capture_output=True, text=True, check=True).stdout
    needed = tuple(line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line)
    info = probe_elf(programs["dynamic"])
    assert info is not None and info.needed == needed


def test_program_headers_beyond_the_head_give_no_facts_rather_than_wrong_ones(
    programs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unread program headers would read as "no interpreter, no libraries" -- a static program.
    The probe says nothing instead."""
    data = programs["dynamic"]
    monkeypatch.setattr(elfprobe, "HEAD_CAP", 128)  # the ELF header and a little more
    assert probe_executable(io.BytesIO(data), len(data), seekable=False) == (None, None)


def test_dynamic_strings_beyond_the_head_are_left_out_not_guessed(
    programs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dynamic segment is caught as it streams past, but its strings (``.dynstr``, near the
    start) were not kept: the needed libraries are left out, never made of the zeros standing
    in for unread bytes."""
    data = programs["dynamic"]
    elf = ELFFile(io.BytesIO(data))
    phdrs_end = elf["e_phoff"] + elf["e_phnum"] * elf["e_phentsize"]
    interp = next(elf.iter_segments(type="PT_INTERP"))
    dynstr = elf.get_section_by_name(".dynstr")
    assert dynstr is not None
    assert phdrs_end <= interp["p_offset"] + interp["p_filesz"] < dynstr["sh_offset"]
    full = probe_elf(data)
    monkeypatch.setattr(elfprobe, "HEAD_CAP", interp["p_offset"] + interp["p_filesz"])
    info = probe_executable(io.BytesIO(data), len(data), seekable=False)[0]
    assert info is not None and full is not None and full.needed
    assert (info.machine, info.kind, info.interp) == (full.machine, full.kind, full.interp)
    assert info.needed == () and info.runpath == ()


def test_head_cap_large_enough_for_the_dynamic_strings(
    programs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file bigger than the head: the dynamic segment is caught as it streams past."""
    data = programs["dynamic"] + b"\0" * 300_000  # trailing bytes (as a debug section would be)
    full = probe_elf(programs["dynamic"])
    assert full is not None and full.needed and full.interp
    dynamic = next(ELFFile(io.BytesIO(data)).iter_segments(type="PT_DYNAMIC"))
    head = 8 * 1024
    assert dynamic["p_offset"] > head, "the dynamic segment lies past the head"
    monkeypatch.setattr(elfprobe, "HEAD_CAP", head)
    assert probe_all_ways(data, chunk_size=4096) == full


@pytest.mark.parametrize("cut", [4, 16, 52, 64, 100, 500, 2000, 0.5, 0.9])
def test_truncated_elf_never_raises(programs: dict[str, bytes], cut: float) -> None:
    data = programs["dynamic"]
    part = data[: int(len(data) * cut) if isinstance(cut, float) else cut]
    info = probe_elf(part)
    assert info is None or info.machine == HOST_ARCH
    # a stream shorter than the size its tar header announced
    shorter = probe_executable(io.BytesIO(part), len(data), seekable=False)[0]
    assert shorter is None or shorter.machine == HOST_ARCH


def test_corrupt_elf_never_raises(programs: dict[str, bytes]) -> None:
    rng = random.Random(1234)
    original = programs["dynamic"]
    for _ in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 40)):
            at = rng.randrange(4, 2048)  # the headers, program headers, interp, dynamic strings
            data[at] = rng.randrange(256)
        info = probe_elf(bytes(data))
        assert info is None or isinstance(info, ElfInfo)
    noise = probe_elf(b"\x7fELF" + bytes(rng.randrange(256) for _ in range(5000)))
    assert noise is None or isinstance(noise, ElfInfo)


def test_not_elf() -> None:
    assert probe_elf(b"") is None
    assert probe_elf(b"MZ\x90\x00") is None
    assert probe_executable(io.BytesIO(b"plain data"), 10) == (None, None)


@pytest.mark.parametrize(
    ("e_machine", "bits", "little", "name"),
    [("EM_X86_64", 64, True, "amd64"), ("EM_386", 32, True, "386"), ("EM_AARCH64", 64, True, "arm64"),
     ("EM_ARM", 32, True, "arm"), ("EM_PPC64", 64, True, "ppc64le"), ("EM_PPC64", 64, False, "ppc64"),
     ("EM_S390", 64, False, "s390x"), ("EM_RISCV", 64, True, "riscv64"), ("EM_MIPS", 32, False, "mips"),
     ("EM_MIPS", 32, True, "mipsle"), ("EM_MIPS", 64, True, "mips64le"), ("EM_LOONGARCH", 64, True, "loong64"),
     ("EM_68K", 32, False, "68k"), (4242, 32, True, "elf-machine-4242")],
)  # fmt: skip
def test_machine_names(e_machine: object, bits: int, little: bool, name: str) -> None:
    assert machine_name(e_machine, bits, little) == name


# ----------------------------------------------------------------------------------------- scripts
@pytest.mark.parametrize(
    ("data", "shebang"),
    [(b"#!/bin/sh -e\necho hi\n", "/bin/sh -e"), (b"#! /usr/bin/env python3\r\n", "/usr/bin/env python3"),
     (b"#!/bin/bash", "/bin/bash"), (b"#!" + b"x" * 1000 + b"\n", "x" * 254), (b"#!\n", "")],
)  # fmt: skip
def test_shebang(data: bytes, shebang: str) -> None:
    assert probe_executable(io.BytesIO(data), len(data)) == (None, shebang)
    assert probe_shebang(data) == shebang


def test_shebang_reads_no_more_than_the_kernel_does() -> None:
    stream = io.BytesIO(b"#!/bin/sh\n" + b"x" * 10_000_000)
    probe_executable(stream, 10_000_010)
    assert stream.tell() <= elfprobe.SHEBANG_CAP


# ----------------------------------------------------------------------------------------- markers
def host_tool(*args: str) -> Path:
    """A file of the host's own gcc toolchain (the compiler that built the test programs)."""
    compiler = shutil.which("gcc")
    if compiler is None:  # pragma: no cover
        pytest.skip("needs the host's gcc")
    if args:
        found = subprocess.run([compiler, *args], capture_output=True, text=True, check=True).stdout.strip()
        return Path(found).resolve()
    return Path(compiler).resolve()


def probe_file(path: Path) -> ElfInfo | None:
    with path.open("rb") as fh:
        return probe_executable(fh, path.stat().st_size, seekable=True)[0]


def test_the_hosts_gcc_driver_and_compiler_proper_are_recognised() -> None:
    driver = probe_file(host_tool())
    assert driver is not None and driver.markers == ("gcc-driver",)
    for prog in ("cc1", "collect2"):
        info = probe_file(host_tool(f"-print-prog-name={prog}"))
        assert info is not None and info.markers == ("gcc-component",), prog


@pytest.mark.parametrize(
    "path", ["/bin/ls", "/usr/bin/dpkg", "/usr/bin/perl", "python", "/usr/bin/less", "/usr/bin/env", "/usr/bin/gdb"]
)
def test_ordinary_programs_have_no_marker(path: str) -> None:
    file = Path(os.path.realpath(sys.executable)) if path == "python" else Path(path)
    if not file.exists():  # pragma: no cover - Debian has all of these
        pytest.skip(f"{file} not on this host")
    info = probe_file(file)
    assert info is not None and info.markers == ()


@pytest.mark.parametrize(
    ("path", "markers"), [("/bin/bash", ("shell",)), ("/bin/dash", ("shell",)), ("/bin/busybox", ("shell", "busybox"))]
)
def test_the_hosts_shells_are_recognised_by_content(path: str, markers: tuple[str, ...]) -> None:
    """The shell marker is in the bytes of the shells themselves (whatever they are named)."""
    if not Path(path).exists():  # pragma: no cover - Debian has bash and dash; busybox-static for the base image
        pytest.skip(f"{path} not on this host")
    info = probe_file(Path(path))
    assert info is not None and info.markers == markers


def test_markers_by_bytes() -> None:
    assert find_markers(b"..COLLECT_GCC_OPTIONS..Using built-in specs...") == ("gcc-driver",)
    assert find_markers(b"..COLLECT_GCC_OPTIONS..") == ("gcc-component",)
    assert find_markers(b"x CCC_OVERRIDE_OPTIONS x") == ("clang",)
    assert find_markers(b"__TINYC__ ... libtcc1.a") == ("tcc",)
    assert find_markers(b"__TINYC__") == ()  # every needle of a marker is needed
    assert find_markers(b"cmd/compile/internal/gc.Main") == ("go-compiler",)
    assert find_markers(b"cmd/go/internal/work.Builder") == ("go-command",)
    assert find_markers(b"librustc_driver-4c3beb7552356b6f.so") == ("rustc",)
    assert find_markers(b"gcc clang rustc go tcc") == ()
    assert find_markers(b"..OPTIND..PS1..PS2..PS4..IFS..") == ("shell",)
    assert find_markers(b"..OPTIND..") == ()  # getopt's optind in libc is lowercase; both needles are needed
    assert find_markers(b"BusyBox v1.35.0 multi-call binary ..OPTIND..PS4") == ("shell", "busybox")
    assert find_markers(b"BusyBox v1.35.0 multi-call binary") == ("busybox",)  # a busybox without ash
    assert [m.name for m in MARKERS] == ["gcc-driver", "gcc-component", "clang", "tcc", "go-compiler",
                                         "go-command", "rustc", "shell", "busybox"]  # fmt: skip


def rodata(data: bytes) -> tuple[int, int]:
    """The file range of the program's read-only data segment (readable, neither writable nor executable)."""
    elf = ELFFile(io.BytesIO(data))
    ranges = [(s["p_offset"], s["p_offset"] + s["p_filesz"]) for s in elf.iter_segments(type="PT_LOAD")
              if not s["p_flags"] & 3]  # fmt: skip
    return max(ranges, key=lambda r: r[1] - r[0])


def test_markers_straddling_chunk_boundaries_are_found(
    programs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    chunk = 4096
    data = bytearray(programs["static"])
    start, end = rodata(bytes(data))
    boundaries = [b for b in range(chunk, end, chunk) if b - 30 > start and b + 30 < end]
    assert len(boundaries) >= 2, "the static program's read-only data spans chunks"
    for boundary, needle in zip(boundaries, (b"COLLECT_GCC_OPTIONS", b"Using built-in specs."), strict=False):
        at = boundary - len(needle) // 2
        data[at : at + len(needle)] = needle
        assert needle not in data[boundary - chunk : boundary] and needle not in data[boundary : boundary + chunk]
    monkeypatch.setattr(elfprobe, "HEAD_CAP", chunk)  # the rest is read chunk by chunk
    info = probe_all_ways(bytes(data), chunk_size=chunk)
    assert info is not None and info.markers == ("gcc-driver",)


def test_markers_in_code_are_not_looked_for_when_there_is_read_only_data(programs: dict[str, bytes]) -> None:
    """Strings live in read-only data; the executable segment (most of a compiler's bytes) is
    skipped when the program has a separate read-only segment."""
    data = bytearray(programs["static"])
    elf = ELFFile(io.BytesIO(bytes(data)))
    text = next(s for s in elf.iter_segments(type="PT_LOAD") if s["p_flags"] & 1)
    at = text["p_offset"] + text["p_filesz"] // 2
    data[at : at + 19] = b"COLLECT_GCC_OPTIONS"
    info = probe_elf(bytes(data))
    assert info is not None and info.markers == ()
    assert find_markers(bytes(data)) == ("gcc-component",)


def test_scan_cap(programs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytearray(programs["static"])
    _, end = rodata(bytes(data))
    data[end - 40 : end - 21] = b"COLLECT_GCC_OPTIONS"
    found = probe_elf(bytes(data))
    assert found is not None and found.markers == ("gcc-component",)
    monkeypatch.setattr(elfprobe, "SCAN_CAP", 1024)
    capped = probe_elf(bytes(data))
    assert capped is not None and capped.markers == ()
