"""What a check is: one :class:`Check` object per property, carrying everything the plugin derives
from it (the marker keyword, its validation, the ``assert_<name>`` helper, the declarative key,
the help text and the README row) and the pure ``check_<name>(facts, expectation)`` function.

Pure: no pytest, no docker. Built-in checks define theirs in their own module; a user's check is
made by :func:`pytest_slimimage.register_check`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from pytest_slimimage.buildinputs import parse_platform
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT, ImageFacts

E = TypeVar("E")

DOCKERFILE: Final = "dockerfile"
"""The check reads the image's Dockerfile (``facts.dockerfile``): an image without one cannot be checked."""
FILESYSTEM: Final = "filesystem"
"""The check reads the image's layers (``facts.filesystem``, ``facts.waste``)."""
RUN: Final = "run"
"""The check reads a container run (``facts.run``); its expectation has ``args`` and ``timeout``."""
BASELINE: Final = "baseline"
"""The check reads the session's size baseline (``facts.baseline``)."""
PULL_SIZES: Final = "pull_sizes"
"""The check reads each layer's compressed size (``facts.pull``): computed once per layer, when asked."""
REBUILD: Final = "rebuild"
"""The check reads a second build of the image without cache (``facts.rebuild``) and the files of
both (``facts.file_states``): a build, when asked."""
SERVICE: Final = "service"
"""The check reads a service run (``facts.service``): the image run as shipped until it is ready;
its expectation is a :class:`~pytest_slimimage.facts.ServicePlan`."""
NEEDS: Final = (DOCKERFILE, FILESYSTEM, RUN, BASELINE, PULL_SIZES, REBUILD, SERVICE)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()
"""``helper_default`` of a check whose helper needs its value (``assert_max_size(image, limit)``)."""


@dataclass(frozen=True)
class ParseContext:
    """What validating a value may depend on besides the value: the session's defaults."""

    run_timeout: float = DEFAULT_RUN_TIMEOUT


def parse_as_is(value: object, context: ParseContext) -> object:
    """The default validation of a user's check: ``None`` and ``False`` turn it off, anything else
    is handed to the check function unchanged."""
    return None if value is None or value is False else value


def parse_flag(value: object, context: ParseContext) -> bool | None:
    """``True`` asks for the check, ``False`` does not; anything else is an error."""
    if not isinstance(value, bool):
        raise ValueError(f"expects True or False, got {value!r}")
    return True if value else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def strings(items: object) -> bool:
    """Whether ``items`` is a list or tuple of str."""
    return isinstance(items, (list, tuple)) and all(isinstance(x, str) for x in items)


def record_nothing(result: CheckResult) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class PerPlatform(Generic[E]):
    """A check's expectation given per platform; :meth:`pick` finds an image's."""

    values: Mapping[str, E]

    @classmethod
    def parse(cls, value: Mapping[Any, object], parse: Callable[[object], E | None]) -> PerPlatform[E]:
        values: dict[str, E] = {}
        for key, each in value.items():
            try:
                platform = parse_platform(key)
            except ValueError as exc:
                raise ValueError(f"a value per platform is keyed by platform: {exc}") from None
            try:
                parsed = parse(each)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{platform}: {exc}") from None
            if parsed is None:
                raise ValueError(f"{platform}: {each!r} asks for no check (leave the platform out instead)")
            values[platform] = parsed
        return cls(values)

    def pick(self, platform: str) -> E | None:
        """The value for ``platform`` (``linux/arm64/v8`` falls back to ``linux/arm64``); None: none given."""
        if platform in self.values:
            return self.values[platform]
        return self.values.get("/".join(platform.split("/")[:2]))

    def __repr__(self) -> str:
        return f"PerPlatform({dict(self.values)!r})"


@dataclass(frozen=True, eq=False)
class Check(Generic[E]):
    """One property of an image, checked the same way by the marker, its helper and a table."""

    name: str
    """The marker keyword and declarative key (``max_size``)."""
    function: Callable[[ImageFacts, E], CheckResult]
    """The pure ``check_<name>(facts, expectation) -> CheckResult``."""
    parse: Callable[[object, ParseContext], E | None] = parse_as_is  # type: ignore[assignment]
    """A marker or table value -> the expectation handed to ``function``; ``None`` means "not asked"
    (``exec_form=False``). Raises ``ValueError`` with the reason for a bad value."""
    needs: frozenset[str] = frozenset()
    """What the facts must hold before ``function`` runs (:data:`NEEDS`)."""
    explain_with: frozenset[str] = frozenset()
    """Read only when the check fails, and the check run again with it: more evidence (the wasted
    bytes of a size failure, the static diagnosis of a failed run)."""
    value: str = "any value"
    """What the keyword takes, for the help text and the README."""
    passes: str = ""
    """When the check passes, for the help text and the README."""
    helper: str = ""
    """The ``assert_*`` helper's name (default ``assert_<name>``)."""
    helper_param: str = "value"
    """The helper's keyword for the value (``assert_no_compilers(image, allow=[...])``)."""
    helper_default: object = REQUIRED
    """The value the helper uses when none is given (``assert_exec_form(image)``: ``True``)."""
    helper_signature: str = ""
    """How the README shows the helper's call, when it is not ``assert_<name>(image, <param>)``."""
    helper_value: Callable[..., object] | None = None
    """A helper that takes several arguments (``assert_serves(image, 8080, http="/")``): called with
    them, it returns the value the marker keyword would take; its signature is the helper's (after
    ``image``). None: the helper takes the one value (``helper_param``)."""
    record: Callable[[CheckResult], Mapping[str, Any]] = record_nothing
    """Report fields a result sets on its image's row (``max_size``: the budget column)."""
    per_platform: bool = False
    """The value may be given per platform (``max_size={"linux/amd64": "20MB", "linux/arm64": "22MB"}``):
    each image is held to its own platform's value (:class:`PerPlatform`)."""
    builtin: bool = field(default=False)

    @property
    def helper_name(self) -> str:
        return self.helper or f"assert_{self.name}"

    def expectation(self, value: object, context: ParseContext | None = None) -> E | PerPlatform[E] | None:
        """``value`` validated; ``ValueError`` says what is wrong with it. A check that takes a
        value per platform gets a :class:`PerPlatform` for a dict keyed by platforms."""
        context = context or ParseContext()
        if self.per_platform and isinstance(value, Mapping) and value and all("/" in str(k) for k in value):
            return PerPlatform.parse(value, lambda each: self.parse(each, context))
        return self.parse(value, context)

    def __call__(self, facts: ImageFacts, expectation: E) -> CheckResult:
        return self.function(facts, expectation)

    def __repr__(self) -> str:
        return f"<Check {self.name}{' (built-in)' if self.builtin else ''}>"
