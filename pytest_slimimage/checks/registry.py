"""The registry of checks: the built-in ones, in their canonical order, and the ones users register
(from a ``conftest.py`` or another plugin) with :func:`register_check`.

Everything that names checks reads it: the marker's keywords and did-you-mean, the declarative
keys, the ``assert_<name>`` helpers, the marker's help text, the report and the README's table.
Adding a built-in check is one module defining its :class:`Check` plus one line in ``BUILTINS``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from pytest_slimimage.checks.check import NEEDS, REQUIRED, Check, ParseContext, parse_as_is, record_nothing, suggest
from pytest_slimimage.checks.exec_form import EXEC_FORM
from pytest_slimimage.checks.final_base import FINAL_BASE
from pytest_slimimage.checks.growth import MAX_GROWTH
from pytest_slimimage.checks.healthy import HEALTHY
from pytest_slimimage.checks.lint import LINT
from pytest_slimimage.checks.no_compilers import NO_COMPILERS
from pytest_slimimage.checks.no_package_manager import NO_PACKAGE_MANAGER
from pytest_slimimage.checks.no_secrets import NO_SECRETS
from pytest_slimimage.checks.no_setuid import NO_SETUID
from pytest_slimimage.checks.no_shell import NO_SHELL
from pytest_slimimage.checks.non_root import NON_ROOT
from pytest_slimimage.checks.pull_size import MAX_PULL_SIZE
from pytest_slimimage.checks.reproducible import REPRODUCIBLE
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.runnable import RUNNABLE
from pytest_slimimage.checks.runs import RUNS
from pytest_slimimage.checks.serves import SERVES
from pytest_slimimage.checks.size import MAX_SIZE, WARN_SIZE
from pytest_slimimage.checks.waste import MAX_WASTE
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import ImageFacts

BUILTINS: tuple[Check[Any], ...] = (
    MAX_SIZE,
    WARN_SIZE,
    MAX_GROWTH,
    FINAL_BASE,
    EXEC_FORM,
    NO_COMPILERS,
    NO_SHELL,
    NO_PACKAGE_MANAGER,
    NON_ROOT,
    NO_SETUID,
    NO_SECRETS,
    LINT,
    RUNNABLE,
    MAX_WASTE,
    MAX_PULL_SIZE,
    REPRODUCIBLE,
    RUNS,
    SERVES,
    HEALTHY,
)
"""The built-in checks, in the order a test's checks run and are reported."""

RESERVED = frozenset({"image", "context", "dockerfile", "target", "build_args"})
"""Keywords the marker and the declarative tables use for other things than checks."""

_F = TypeVar("_F", bound=Callable[..., CheckResult])


class RegistryError(SlimImageError):
    """A check that cannot be registered (a clash with a built-in or another plugin's check)."""


class Registry:
    """The checks by name: built-ins first, then users' checks in registration order."""

    def __init__(self, builtins: Iterable[Check[Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, Check[Any]] = {}
        self._sessions: list[int] = []
        for check in builtins:
            self._checks[check.name] = check

    def register(self, check: Check[Any]) -> Check[Any]:
        """Add ``check``. A name taken by a built-in, a reserved keyword or a helper name, or by a
        user's check from another function, is a :class:`RegistryError`; registering the same
        function again (a conftest imported twice) replaces it."""
        name = check.name
        if not name.isidentifier() or name.startswith("_"):
            raise RegistryError(f"register_check: {name!r} is not a usable keyword (a Python identifier, no leading _)")
        if name in RESERVED:
            raise RegistryError(f"register_check: {name!r} is a reserved keyword of the marker and the tables")
        unknown = sorted(set(check.needs) - set(NEEDS))
        if unknown:
            raise RegistryError(
                f"register_check({name!r}): unknown need(s) {', '.join(map(repr, unknown))}; known: {', '.join(NEEDS)}"
            )
        with self._lock:
            existing = self._checks.get(name)
            if existing is not None:
                if existing.builtin:
                    raise RegistryError(
                        f"register_check: {name!r} is a built-in check of pytest-slimimage; choose another name"
                    )
                if _origin(existing) != _origin(check):
                    raise RegistryError(
                        f"register_check: {name!r} is already registered by {_origin(existing)};"
                        f" {_origin(check)} cannot take it too"
                    )
            taken = {c.helper_name: c.name for c in self._checks.values() if c.name != name}
            if check.helper_name in taken:
                raise RegistryError(
                    f"register_check: {name!r} would have the helper {check.helper_name},"
                    f" which is check {taken[check.helper_name]!r}'s"
                )
            self._checks[name] = check
        return check

    def begin_session(self) -> None:
        """A pytest session starts: the checks registered from now on are its own."""
        with self._lock:
            self._sessions.append(len(self._checks))

    def end_session(self) -> None:
        """The session that began last ends: forget the checks registered since it began (its
        conftests'), keep the built-ins and an enclosing session's (pytester runs nest them)."""
        with self._lock:
            keep = self._sessions.pop() if self._sessions else len(BUILTINS)
            self._checks = dict(list(self._checks.items())[:keep])

    def get(self, name: str) -> Check[Any]:
        """The check called ``name``; :class:`KeyError` with a did-you-mean otherwise."""
        try:
            return self._checks[name]
        except KeyError:
            raise KeyError(f"no check named {name!r}{suggest(name, self.names())}") from None

    def by_helper(self, helper: str) -> Check[Any] | None:
        return next((c for c in self._checks.values() if c.helper_name == helper), None)

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    def __iter__(self) -> Iterator[Check[Any]]:
        return iter(list(self._checks.values()))

    def names(self) -> tuple[str, ...]:
        return tuple(self._checks)


def _origin(check: Check[Any]) -> str:
    function = check.function
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


REGISTRY = Registry(BUILTINS)
"""The process's registry (users' checks are forgotten when their pytest session ends)."""


def register_check(
    name: str,
    *,
    parse: Callable[[Any], Any] | None = None,
    needs: Iterable[str] = (),
    explain_with: Iterable[str] = (),
    value: str = "any value",
    passes: str = "",
    helper_param: str | None = None,
    helper_default: object = REQUIRED,
    record: Callable[[CheckResult], Mapping[str, Any]] = record_nothing,
) -> Callable[[_F], _F]:
    """Register ``check_function(facts, expectation) -> CheckResult`` as the check ``name``::

        @register_check("max_layers", parse=int, value="a number of layers")
        def max_layers(facts: ImageFacts, limit: int) -> CheckResult: ...

    after which ``@pytest.mark.slimimage(max_layers=3)``, ``max_layers = 3`` in a
    ``[tool.slimimage.images.NAME]`` table and ``assert_check(image, "max_layers", 3)`` run it.

    ``parse`` validates a marker or table value (raise ``ValueError`` with the reason; ``None``
    and ``False`` always mean "not asked"); by default the value is passed as it is. ``needs``
    says what the facts must hold: ``"filesystem"`` (the layers, for ``facts.filesystem``),
    ``"dockerfile"``, ``"run"``, ``"baseline"``, ``"pull_sizes"`` (``facts.pull``) or ``"rebuild"``
    (``facts.rebuild``, ``facts.file_states``). The helper ``assert_<name>(image, value)`` takes
    the value by the function's second parameter's name (``assert_max_layers(image, limit=3)``).
    Returns the function unchanged.
    """

    def decorate(function: _F) -> _F:
        def validate(raw: object, context: ParseContext) -> object:
            if raw is None or raw is False:
                return None
            return parse(raw) if parse is not None else parse_as_is(raw, context)

        REGISTRY.register(
            Check(
                name=name,
                function=function,
                parse=validate,
                needs=frozenset(needs),
                explain_with=frozenset(explain_with),
                value=value,
                passes=passes or (function.__doc__ or "").strip().split("\n")[0],
                helper_param=helper_param or _value_parameter(function),
                helper_default=helper_default,
                record=record,
            )
        )
        return function

    return decorate


def _value_parameter(function: Callable[..., Any]) -> str:
    """The name of the check function's second parameter (``limit`` in ``f(facts, limit)``): the
    keyword its ``assert_<name>`` helper takes the value by."""
    try:
        parameters = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return "value"
    return parameters[1] if len(parameters) > 1 else "value"


def checks_table() -> str:
    """The README's check table (Markdown), from the registry's built-in checks."""
    rows = ["| keyword | value | passes when | helper |", "|---|---|---|---|"]
    for c in REGISTRY:
        if c.builtin:
            rows.append(f"| `{c.name}` | {c.value} | {c.passes} | `{helper_call(c)}` |")
    return "\n".join(rows)


def helper_call(check: Check[Any]) -> str:
    """How the docs show a check's helper: ``assert_max_size(image, limit)``."""
    if check.helper_signature:
        return check.helper_signature
    if check.helper_value is not None:
        parameters = inspect.signature(check.helper_value).parameters.values()
        bare = inspect.Signature([p.replace(annotation=inspect.Parameter.empty) for p in parameters])
        return f"{check.helper_name}(image, {str(bare)[1:-1]})"
    default = "" if check.helper_default is REQUIRED else f"={check.helper_default!r}"
    return f"{check.helper_name}(image, {check.helper_param}{default})"


def marker_help() -> str:
    """The ``slimimage`` marker's line in ``pytest --markers``."""
    keywords = ", ".join(f"{c.name}=..." for c in REGISTRY)
    return f"slimimage({keywords}, image=None): check the image fixture the test uses (pytest-slimimage)"


def call(check: Check[Any], facts: ImageFacts, expectation: object) -> CheckResult:
    """Run ``check`` on ``facts`` (kept here so every caller gets the same result type check)."""
    result = check.function(facts, expectation)
    if not isinstance(result, CheckResult):
        raise SlimImageError(
            f"check {check.name!r} ({_origin(check)}) returned {type(result).__name__}, not a CheckResult"
        )
    return result


CHECKS: tuple[str, ...] = tuple(check.name for check in BUILTINS)
"""The built-in checks' names, which are also marker keywords and declarative keys."""
