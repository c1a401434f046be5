"""The value of a check that finds things in the filesystem and lets some be kept on purpose:
``True`` (nothing allowed), ``False`` (not asked), a list of glob patterns, or ``{"allow": [...]}``.

Pure: no pytest, no docker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pytest_slimimage.checks.check import ParseContext, strings

__all__ = ["allow_parser"]


def allow_parser(check: str, what: str = "names/globs") -> Callable[[object, ParseContext], tuple[str, ...] | None]:
    """The value of a check that finds files: ``True`` (nothing allowed), ``False`` (not asked), a
    list of allowed ``what``, or ``{"allow": [...]}``."""

    def parse(value: object, context: ParseContext) -> tuple[str, ...] | None:
        if value is True:
            return ()
        if value is False:
            return None
        if isinstance(value, Mapping) and set(value) <= {"allow"} and strings(value.get("allow", ())):
            return tuple(value.get("allow", ()))
        if strings(value):
            return tuple(value)  # type: ignore[arg-type]
        raise ValueError(f"{check} expects True, False, a list of allowed {what}, or {{'allow': [...]}}, got {value!r}")

    return parse
