"""The ``assert_*`` helpers: get facts from a :class:`BuiltImage`, call the one ``check_*`` for
the property, raise :class:`ImageCheckFailed` with its text. :func:`evaluate` does the same
for a whole :class:`Spec` (the marker and the declarative form)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pytest_slimimage.checks import (
    CheckResult,
    RunExpectation,
    check_exec_form,
    check_final_base,
    check_max_size,
    check_no_compilers,
    check_runs,
)
from pytest_slimimage.errors import ImageCheckFailed
from pytest_slimimage.facts import RunResult
from pytest_slimimage.image import BuiltImage
from pytest_slimimage.spec import Spec


def _raise_if_failed(result: CheckResult) -> CheckResult:
    __tracebackhide__ = True
    if not result.passed:
        raise ImageCheckFailed(result.message(), (result,))
    return result


def assert_max_size(image: BuiltImage, limit: int | str) -> CheckResult:
    """Fail when ``image.size`` exceeds ``limit`` (bytes, or ``"16kB"``, ``"74MB"``, ``"1.5GiB"``)."""
    __tracebackhide__ = True
    return _raise_if_failed(check_max_size(image.facts(), limit))


def assert_final_base(image: BuiltImage, expected: str | Sequence[str]) -> CheckResult:
    """Fail unless the final stage's external base is ``expected`` (or one of several)."""
    __tracebackhide__ = True
    return _raise_if_failed(check_final_base(image.facts(), expected))


def assert_exec_form(image: BuiltImage) -> CheckResult:
    """Fail when CMD/ENTRYPOINT is shell form (Dockerfile or built config), or the image has neither."""
    __tracebackhide__ = True
    return _raise_if_failed(check_exec_form(image.facts()))


def assert_no_compilers(image: BuiltImage, allow: Sequence[str] = ()) -> CheckResult:
    """Fail when the image's filesystem holds a compiler, assembler, linker or toolchain package."""
    __tracebackhide__ = True
    return _raise_if_failed(check_no_compilers(image.facts(filesystem=True), allow))


def assert_runs(
    image: BuiltImage,
    stdout: str | re.Pattern[str] | None = None,
    *,
    args: Sequence[str] | None = None,
    exit_code: int | None = 0,
    stderr: str | re.Pattern[str] | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Run the image as shipped and fail unless it exits with ``exit_code`` and prints ``stdout``.

    A str must equal the output (trailing newlines ignored); a compiled regex is searched.
    ``timeout`` defaults to the session's (``--slimimage-run-timeout``, 30 s unless set).
    Returns the :class:`RunResult`.
    """
    __tracebackhide__ = True
    expectation = RunExpectation(
        stdout=stdout, stderr=stderr, exit_code=exit_code, args=tuple(args) if args is not None else None,
        timeout=image.default_timeout if timeout is None else timeout,
    )  # fmt: skip
    result = image.run(expectation.args, timeout=expectation.timeout)
    _raise_if_failed(check_runs(image.facts(), expectation, result))
    return result


def evaluate(image: BuiltImage, spec: Spec) -> list[CheckResult]:
    """Every check ``spec`` asks for, on ``image``, in the canonical order; nothing raised."""
    facts = image.facts(filesystem=spec.no_compilers is not None)
    results: list[CheckResult] = []
    if spec.max_size is not None:
        results.append(check_max_size(facts, spec.max_size))
    if spec.final_base is not None:
        results.append(check_final_base(facts, spec.final_base))
    if spec.exec_form:
        results.append(check_exec_form(facts))
    if spec.no_compilers is not None:
        results.append(check_no_compilers(facts, spec.no_compilers))
    if spec.runs is not None:
        run = image.run(spec.runs.args, timeout=spec.runs.timeout)
        results.append(check_runs(facts, spec.runs, run))
    return results


def failure_text(results: Sequence[CheckResult]) -> str:
    """All failed checks' messages, one block each, under a count."""
    failed = [r for r in results if not r.passed]
    if len(failed) == 1:
        return failed[0].message()
    names = ", ".join(r.check for r in failed)
    head = f"{failed[0].image}: {len(failed)} of {len(results)} checks failed ({names})"
    return "\n\n".join([head, *(r.message() for r in failed)])
