"""What a user asks of an image: the ``slimimage`` marker's keywords, validated once.

The marker and the declarative (pyproject) form both go through :func:`parse_spec`, so a
keyword means the same everywhere and a bad value is rejected with the same words. Pure.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_slimimage.checks import CHECKS, RunExpectation
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.sizes import parse_size


class SpecError(SlimImageError):
    """A marker keyword or declarative key that is unknown or has a bad value."""


@dataclass(frozen=True)
class Spec:
    """Validated expectations; ``None`` means "not asked"."""

    max_size: int | None = None
    max_size_text: str | None = None
    final_base: tuple[str, ...] | None = None
    exec_form: bool = False
    no_compilers: tuple[str, ...] | None = None
    """The allow-list when the check is on (an empty tuple: nothing allowed)."""
    runs: RunExpectation | None = None

    @property
    def checks(self) -> tuple[str, ...]:
        """The names of the checks this spec asks for, in the canonical order."""
        asked = {
            "max_size": self.max_size is not None,
            "final_base": self.final_base is not None,
            "exec_form": self.exec_form,
            "no_compilers": self.no_compilers is not None,
            "runs": self.runs is not None,
        }
        return tuple(name for name in CHECKS if asked[name])


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_spec(
    values: Mapping[str, Any],
    *,
    where: str,
    extra: tuple[str, ...] = (),
    default_run_timeout: float = 30.0,
) -> Spec:
    """Validate ``values`` (marker kwargs or a declarative table) into a :class:`Spec`.

    ``where`` names the source in errors (``"@pytest.mark.slimimage on test_x"``); keys in
    ``extra`` are accepted and ignored here (``image`` for the marker, ``context`` for tables).
    """
    known = (*CHECKS, *extra)
    for key in values:
        if key not in known:
            raise SpecError(
                f"{where}: unknown keyword {key!r}{suggest(key, list(known))}; known keywords: {', '.join(known)}"
            )
    fields: dict[str, Any] = {}
    if "max_size" in values:
        raw = values["max_size"]
        try:
            fields["max_size"] = parse_size(raw)
        except ValueError as exc:
            raise SpecError(f"{where}: max_size: {exc}") from None
        fields["max_size_text"] = str(raw)
    if "final_base" in values:
        raw = values["final_base"]
        names = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, (list, tuple)) else None
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise SpecError(f"{where}: final_base expects an image name or a list of names, got {raw!r}")
        fields["final_base"] = names
    if "exec_form" in values:
        raw = values["exec_form"]
        if not isinstance(raw, bool):
            raise SpecError(f"{where}: exec_form expects True or False, got {raw!r}")
        fields["exec_form"] = raw
    if "no_compilers" in values:
        raw = values["no_compilers"]
        if raw is True:
            fields["no_compilers"] = ()
        elif raw is False:
            pass
        elif isinstance(raw, Mapping) and set(raw) <= {"allow"} and _strings(raw.get("allow", ())):
            fields["no_compilers"] = tuple(raw.get("allow", ()))
        elif isinstance(raw, (list, tuple)) and _strings(raw):
            fields["no_compilers"] = tuple(raw)
        else:
            raise SpecError(
                f"{where}: no_compilers expects True, False, a list of allowed names/globs, or"
                f" {{'allow': [...]}}, got {raw!r}"
            )
    if "runs" in values and values["runs"] is not False:
        try:
            fields["runs"] = RunExpectation.from_value(values["runs"], default_timeout=default_run_timeout)
        except (ValueError, TypeError, re.error) as exc:
            raise SpecError(f"{where}: runs: {exc}") from None
    return Spec(**fields)


def _strings(items: object) -> bool:
    return isinstance(items, (list, tuple)) and all(isinstance(x, str) for x in items)
