"""Which foreign architectures a Linux kernel runs through user-mode emulation: its binfmt_misc
handlers (``/proc/sys/fs/binfmt_misc/<name>``), read as data.

A handler matches an executable by a magic and mask at an offset of its first bytes; for an
ELF program that is the header's class, byte order, type and ``e_machine``, which this module
builds for each architecture and matches against each enabled handler. A handler without the
``F`` (fix-binary) flag opens its interpreter by path when a program starts: inside a
container (a ``scratch`` image) that path does not exist, so it does not count. Pure: the
reading of ``/proc`` is :mod:`pytest_slimimage.engine.emulation`'s.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ELF_MACHINES", "BinfmtHandler", "elf_header", "emulated", "parse_handler"]

ELF_MACHINES: Mapping[str, tuple[int, int, str]] = {
    # engine architecture -> (ELF class: 1 = 32-bit, 2 = 64-bit; e_machine; byte order)
    "amd64": (2, 62, "<"),
    "arm64": (2, 183, "<"),
    "386": (1, 3, "<"),
    "arm": (1, 40, "<"),
    "ppc64le": (2, 21, "<"),
    "s390x": (2, 22, ">"),
    "riscv64": (2, 243, "<"),
    "mips64le": (2, 8, "<"),
}
"""The ELF header fields of an executable for each architecture the engine names."""


def elf_header(arch: str) -> bytes:
    """The first 20 bytes of a static executable for ``arch`` (``e_ident``, ``e_type``, ``e_machine``)."""
    elf_class, machine, order = ELF_MACHINES[arch]
    ident = b"\x7fELF" + bytes([elf_class, 1 if order == "<" else 2, 1]) + bytes(9)
    return ident + struct.pack(f"{order}HH", 2, machine)


@dataclass(frozen=True)
class BinfmtHandler:
    """One binfmt_misc handler, as its ``/proc/sys/fs/binfmt_misc/<name>`` file says."""

    name: str
    enabled: bool
    interpreter: str = ""
    flags: str = ""
    offset: int = 0
    magic: bytes = b""
    mask: bytes = b""

    @property
    def fix_binary(self) -> bool:
        """``F``: the interpreter was opened when the handler was registered, so it works in a
        container whose file system does not have it."""
        return "F" in self.flags

    def matches(self, header: bytes) -> bool:
        """Whether an executable starting with ``header`` is run through this handler."""
        if not self.magic:
            return False
        window = header[self.offset : self.offset + len(self.magic)]
        if len(window) < len(self.magic):
            return False
        mask = self.mask or b"\xff" * len(self.magic)
        return all((b & m) == (g & m) for b, m, g in zip(window, mask, self.magic, strict=True))

    def describe(self) -> str:
        """``QEMU (binfmt_misc qemu-aarch64: /usr/bin/qemu-aarch64-static)``."""
        kind = "QEMU" if "qemu" in f"{self.name} {self.interpreter}".lower() else "an emulator"
        return f"{kind} (binfmt_misc {self.name}: {self.interpreter or 'no interpreter'})"


def parse_handler(name: str, text: str) -> BinfmtHandler:
    """A handler from its file's text: ``enabled``, ``interpreter PATH``, ``flags: PF``,
    ``offset N``, ``magic HEX``, ``mask HEX`` (a handler by extension has no magic)."""
    fields: dict[str, str] = {}
    enabled = False
    for line in text.splitlines():
        line = line.strip()
        if line in ("enabled", "disabled"):
            enabled = line == "enabled"
            continue
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    try:
        magic = bytes.fromhex(fields.get("magic", ""))
        mask = bytes.fromhex(fields.get("mask", ""))
        offset = int(fields.get("offset", "0") or 0)
    except ValueError:
        magic, mask, offset = b"", b"", 0
    return BinfmtHandler(
        name=name,
        enabled=enabled,
        interpreter=fields.get("interpreter", ""),
        flags=fields.get("flags", ""),
        offset=offset,
        magic=magic,
        mask=mask,
    )


def emulated(handlers: Mapping[str, str], native: str | None) -> dict[str, str]:
    """The architectures (other than ``native``) an enabled fix-binary handler runs, each with
    how (:meth:`BinfmtHandler.describe`); ``handlers``: each handler file's name and text."""
    parsed = [parse_handler(name, text) for name, text in sorted(handlers.items())]
    usable = [h for h in parsed if h.enabled and h.fix_binary]
    found: dict[str, str] = {}
    for arch in ELF_MACHINES:
        if arch == native:
            continue
        header = elf_header(arch)
        for handler in usable:
            if handler.matches(header):
                found[arch] = handler.describe()
                break
    return found
