"""The ``assert_<name>`` helpers, made from the registry: one per registered check, each raising
:class:`~pytest_slimimage.errors.ImageCheckFailed` with the text the marker shows.

``assert_max_size(image, "1MB")``, ``assert_no_compilers(image, allow=["ld"])``,
``assert_exec_form(image)``; a user's check gets ``assert_<name>`` too. :func:`assert_runs` is
written out: it takes the run's arguments and returns the :class:`RunResult`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

from pytest_slimimage.checks.check import REQUIRED, Check
from pytest_slimimage.checks.evaluate import ImageSource, assert_check, assert_expectation
from pytest_slimimage.checks.registry import REGISTRY
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.runs import RUNS, RunExpectation
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import RunResult

Helper = Callable[..., CheckResult]


def make_helper(check: Check[Any]) -> Helper:
    """``assert_<name>(image, value)`` for ``check``; the value may be given by its keyword
    (``check.helper_param``) and defaults to ``check.helper_default`` when it has one."""
    param = check.helper_param
    image_parameter = inspect.Parameter("image", inspect.Parameter.POSITIONAL_OR_KEYWORD)

    def helper(image: ImageSource, *args: Any, **kwargs: Any) -> CheckResult:
        __tracebackhide__ = True
        return assert_check(image, check, _bind(check, args, kwargs))

    if check.helper_value is not None:
        parameters = [image_parameter, *inspect.signature(check.helper_value).parameters.values()]
    else:
        default = inspect.Parameter.empty if check.helper_default is REQUIRED else check.helper_default
        value = inspect.Parameter(param, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
        parameters = [image_parameter, value]
    helper.__signature__ = inspect.Signature(parameters, return_annotation=CheckResult)  # type: ignore[attr-defined]
    helper.__name__ = helper.__qualname__ = check.helper_name
    helper.__doc__ = f"Fail unless {check.name} passes: {check.passes or check.name}."
    return helper


def _bind(check: Check[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    name = check.helper_name
    if check.helper_value is not None:  # several arguments, folded into the keyword's value
        try:
            inspect.signature(check.helper_value).bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{name}(): {exc}") from None
        return check.helper_value(*args, **kwargs)
    unexpected = sorted(set(kwargs) - {check.helper_param})
    if unexpected or len(args) > 1 or (args and kwargs):
        raise TypeError(f"{name}(image, {check.helper_param}) got unexpected arguments {args!r} {kwargs!r}")
    if args:
        return args[0]
    if kwargs:
        return kwargs[check.helper_param]
    if check.helper_default is REQUIRED:
        raise TypeError(f"{name}() missing its {check.helper_param!r} argument")
    return check.helper_default


def helper(name: str) -> Helper | None:
    """The helper called ``name`` (``assert_max_size``), or None."""
    check = REGISTRY.by_helper(name)
    return make_helper(check) if check is not None else None


def assert_runs(
    image: ImageSource,
    stdout: str | re.Pattern[str] | None = None,
    *,
    args: Sequence[str] | None = None,
    exit_code: int | None = 0,
    stderr: str | re.Pattern[str] | None = None,
    timeout: float | None = None,
    memory: str | None = None,
) -> RunResult:
    """Run the image as shipped and fail unless it exits with ``exit_code`` and prints ``stdout``.

    A str must equal the output (trailing newlines ignored); a compiled regex is searched.
    ``timeout`` defaults to the session's (``--slimimage-run-timeout``); ``memory`` (``"1g"``)
    replaces the sandbox's memory limit (256 MB) for this run. Returns the :class:`RunResult`.
    """
    __tracebackhide__ = True
    expectation = RunExpectation(
        stdout=stdout, stderr=stderr, exit_code=exit_code, args=tuple(args) if args is not None else None,
        timeout=image.default_timeout if timeout is None else timeout, memory=memory,
    )  # fmt: skip
    _, facts = assert_expectation(image, RUNS, expectation)
    if facts.run is None:  # pragma: no cover - a check that needs a run always has one
        raise SlimImageError(f"{image.name}: runs made no run")
    return facts.run
