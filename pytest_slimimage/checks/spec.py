"""What a user asks of an image: the ``slimimage`` marker's keywords (or a declarative table's
keys), validated once by the registered checks.

The marker and the declarative form both go through :func:`parse_spec`, so a keyword means the
same everywhere and a bad value is rejected with the same words. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pytest_slimimage.checks.check import FILESYSTEM, Check, ParseContext, suggest
from pytest_slimimage.checks.registry import REGISTRY
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT


class SpecError(SlimImageError):
    """A marker keyword or declarative key that is unknown or has a bad value."""


class Spec:
    """Validated expectations, by check name, in the registry's order.

    ``Spec(max_size=1_000_000, exec_form=True)``; ``spec.max_size`` is the expectation of a check
    it asks for, ``None`` for a registered check it does not ask for.
    """

    __slots__ = ("_asks",)

    def __init__(self, **asks: Any) -> None:
        order = {name: number for number, name in enumerate(REGISTRY.names())}
        unknown = [name for name in asks if name not in order]
        if unknown:
            raise SpecError(f"no check named {unknown[0]!r}{suggest(unknown[0], order)}")
        kept = {name: value for name, value in asks.items() if value is not None}
        self._asks: tuple[tuple[str, Any], ...] = tuple(sorted(kept.items(), key=lambda item: order[item[0]]))

    @property
    def checks(self) -> tuple[str, ...]:
        """The names of the checks this spec asks for, in the canonical order."""
        return tuple(name for name, _ in self._asks)

    def items(self) -> Iterator[tuple[Check[Any], Any]]:
        """Each check asked for, with its expectation."""
        for name, expectation in self._asks:
            yield REGISTRY.get(name), expectation

    def only(self, check: str) -> Spec:
        """This spec asking for ``check`` alone (one declarative item per check)."""
        if check not in self.checks:
            raise ValueError(f"the spec does not ask for {check!r}")
        return Spec(**{check: dict(self._asks)[check]})

    @property
    def needs(self) -> frozenset[str]:
        """What the checks asked for read: the Dockerfile, the filesystem, a run, the baseline."""
        return frozenset().union(*(check.needs for check, _ in self.items()))

    @property
    def needs_filesystem(self) -> bool:
        """Whether a check reads the image's layers (no_compilers, runnable, max_waste, ...)."""
        return FILESYSTEM in self.needs

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in REGISTRY:
            raise AttributeError(name)
        return dict(self._asks).get(name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spec) and self._asks == other._asks

    def __hash__(self) -> int:
        return hash(tuple((name, repr(value)) for name, value in self._asks))

    def __repr__(self) -> str:
        return f"Spec({', '.join(f'{name}={value!r}' for name, value in self._asks)})"


def parse_spec(
    values: Mapping[str, Any],
    *,
    where: str,
    extra: tuple[str, ...] = (),
    default_run_timeout: float = DEFAULT_RUN_TIMEOUT,
) -> Spec:
    """Validate ``values`` (marker kwargs or a declarative table) into a :class:`Spec`.

    ``where`` names the source in errors (``"@pytest.mark.slimimage on test_x"``); keys in
    ``extra`` are accepted and ignored here (``image`` for the marker, ``context`` for tables).
    """
    known = (*REGISTRY.names(), *extra)
    for key in values:
        if key not in known:
            raise SpecError(
                f"{where}: unknown keyword {key!r}{suggest(key, known)}; known keywords: {', '.join(known)}"
            )
    context = ParseContext(run_timeout=default_run_timeout)
    asks: dict[str, Any] = {}
    for check in REGISTRY:
        if check.name not in values:
            continue
        try:
            asks[check.name] = check.expectation(values[check.name], context)
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{where}: {_reason(check.name, exc)}") from None
    return Spec(**asks)


def _reason(name: str, exc: Exception) -> str:
    """The validation error's text, led by the check's name: ``max_size: not a size: ...``,
    ``exec_form expects True or False, ...``."""
    text = str(exc)
    if text.startswith(f"{name} "):
        return text
    if text.startswith("expects "):
        return f"{name} {text}"
    return f"{name}: {text}"
