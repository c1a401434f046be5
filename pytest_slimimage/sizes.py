"""Sizes as people write them: ``"16kB"``, ``"74 MB"``, ``"1.5 GiB"``, ``1_000_000``.

Decimal units (kB, MB, GB, TB) are powers of 1000, as ``docker images`` prints them;
binary units (KiB, MiB, GiB, TiB) are powers of 1024. Units are case-insensitive, so
``"1mb"`` is one megabyte (decimal), never a mebibyte. Hand-written because no small,
well-kept library parses exactly ``docker images``' units with binary ones beside them
(``humanfriendly`` is unmaintained, ``pint`` is far heavier than one regex).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_SIZE = re.compile(r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-zA-Z]*)\s*$")


def parse_size(value: int | str) -> int:
    """Return ``value`` in bytes. Raises ``ValueError`` naming the value when it is not a size."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r} (expected bytes as an int, or a string like '16kB' or '1.5 MiB')")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"not a size: {value!r} (a size cannot be negative)")
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a size: {value!r} (expected bytes as an int, or a string like '16kB' or '1.5 MiB')")
    match = _SIZE.match(value)
    unit = match.group("unit").lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"not a size: {value!r} (units: B, kB, MB, GB, TB (powers of 1000, as `docker images` shows)"
            " or KiB, MiB, GiB, TiB (powers of 1024))"
        )
    return round(float(match.group("num")) * _UNITS[unit])


def format_size(num_bytes: int | float) -> str:
    """Format bytes as ``docker images`` does: decimal units, three significant digits (``74.2MB``)."""
    value = float(num_bytes)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 1000:
        return f"{sign}{int(value)}B"
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.5 or unit == "TB":
            text = f"{value:.3g}"
            if "e" in text:  # 3 significant digits of e.g. 999.7 -> round up into the next unit
                text = f"{value:.0f}"
            return f"{sign}{text}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_delta(num_bytes: int) -> str:
    """A signed size: ``+1.2MB``, ``-300kB``, ``+0B``."""
    return ("+" if num_bytes >= 0 else "") + format_size(num_bytes)


@dataclass(frozen=True)
class Allowance:
    """A size, or a percentage of some whole: ``max_growth`` (of the baseline size) and
    ``max_waste`` (of the layers' bytes) are both written ``"2MB"`` or ``"5%"``."""

    text: str
    size: int | None = None
    percent: float | None = None

    def allowance(self, whole: int) -> int:
        """The allowance in bytes, for a percentage of ``whole``."""
        if self.percent is not None:
            return int(whole * self.percent / 100)
        return int(self.size or 0)

    def describe(self, whole: int) -> str:
        """``20MB``, or ``10% (5.2MB)`` for a percentage."""
        if self.percent is not None:
            return f"{self.percent:g}% ({format_size(self.allowance(whole))})"
        return format_size(self.size or 0)

    def __str__(self) -> str:
        return self.text


_PERCENT = re.compile(r"^\s*(-?\s*(?:\d+(?:\.\d*)?|\.\d+))\s*%\s*$")


def parse_allowance(value: object) -> Allowance:
    """``"5%"`` (any sign: callers bound it), ``"2MB"``, ``"512 KiB"`` or bytes; else ``ValueError``."""
    if isinstance(value, Allowance):
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match:
            return Allowance(value.strip(), percent=float(match.group(1).replace(" ", "")))
    size = parse_size(value)  # type: ignore[arg-type]
    return Allowance(value.strip() if isinstance(value, str) else format_size(size), size=size)
