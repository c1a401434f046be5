"""What a user asks of an image: the ``slimimage`` marker's keywords, validated once.

The marker and the declarative (pyproject) form both go through :func:`parse_spec`, so a
keyword means the same everywhere and a bad value is rejected with the same words. Pure.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from pytest_slimimage.baseline import Growth, parse_growth
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
    warn_size: int | None = None
    """A soft budget: over it, a warning, never a failure."""
    max_growth: Growth | None = None
    """Allowed growth over the size baseline."""
    lint: tuple[str, ...] | None = None
    """Lint rule ids to ignore when the lint check is on."""
    runnable: bool = False
    max_waste: int | str | None = None
    """Bytes, or a percentage string like ``"10%"``."""

    @property
    def checks(self) -> tuple[str, ...]:
        """The names of the checks this spec asks for, in the canonical order."""
        asked = {
            "max_size": self.max_size is not None,
            "warn_size": self.warn_size is not None,
            "max_growth": self.max_growth is not None,
            "final_base": self.final_base is not None,
            "exec_form": self.exec_form,
            "no_compilers": self.no_compilers is not None,
            "lint": self.lint is not None,
            "runnable": self.runnable,
            "max_waste": self.max_waste is not None,
            "runs": self.runs is not None,
        }
        return tuple(name for name in CHECKS if asked[name])

    def only(self, check: str) -> Spec:
        """This spec asking for ``check`` alone (one declarative item per check)."""
        if check not in self.checks:
            raise ValueError(f"the spec does not ask for {check!r}")
        keep = {check, "max_size_text"} if check == "max_size" else {check}
        empty = Spec()
        return replace(empty, **{f.name: getattr(self, f.name) for f in fields(self) if f.name in keep})

    @property
    def needs_filesystem(self) -> bool:
        """Whether a check reads the image's layers (no_compilers, runnable, max_waste)."""
        return self.no_compilers is not None or self.runnable or self.max_waste is not None


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
    if "warn_size" in values:
        try:
            fields["warn_size"] = parse_size(values["warn_size"])
        except ValueError as exc:
            raise SpecError(f"{where}: warn_size: {exc}") from None
    if "max_growth" in values:
        try:
            fields["max_growth"] = parse_growth(values["max_growth"])
        except ValueError as exc:
            raise SpecError(f"{where}: max_growth: {exc}") from None
    for flag in ("runnable",):
        if flag in values:
            if not isinstance(values[flag], bool):
                raise SpecError(f"{where}: {flag} expects True or False, got {values[flag]!r}")
            fields[flag] = values[flag]
    if "lint" in values:
        fields["lint"] = _lint_ignore(values["lint"], where)
    if "max_waste" in values:
        fields["max_waste"] = _waste_limit(values["max_waste"], where)
    return Spec(**fields)


def _lint_ignore(raw: object, where: str) -> tuple[str, ...] | None:
    """``True``, ``False``, a list of rule ids to ignore, or ``{"ignore": [...]}``."""
    from pytest_slimimage.lint import RULES

    if raw is True:
        return ()
    if raw is False:
        return None
    given = raw.get("ignore", ()) if isinstance(raw, Mapping) and set(raw) <= {"ignore"} else raw
    if not isinstance(given, (list, tuple)) or not all(isinstance(rule, str) for rule in given):
        raise SpecError(
            f"{where}: lint expects True, False, a list of rule ids to ignore, or {{'ignore': [...]}}, got {raw!r}"
        )
    ignore = tuple(rule.strip().upper() for rule in given)  # as check_lint reads them
    unknown = [rule for rule in ignore if rule not in RULES]
    if unknown:
        raise SpecError(
            f"{where}: lint: unknown rule id {unknown[0]!r}{suggest(unknown[0], list(RULES))};"
            f" rules: {', '.join(RULES)}"
        )
    return ignore


def _waste_limit(raw: object, where: str) -> int | str:
    from pytest_slimimage.waste import parse_waste_limit

    try:
        parse_waste_limit(raw)
    except ValueError as exc:
        raise SpecError(f"{where}: max_waste: {exc}") from None
    return raw  # type: ignore[return-value]


def _strings(items: object) -> bool:
    return isinstance(items, (list, tuple)) and all(isinstance(x, str) for x in items)
