"""The ``assert_*`` helpers: get facts from a :class:`BuiltImage`, call the one ``check_*`` for
the property, raise :class:`ImageCheckFailed` with its text. :func:`evaluate` does the same
for a whole :class:`Spec` (the marker and the declarative form)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks import (
    CheckResult,
    RunExpectation,
    check_exec_form,
    check_final_base,
    check_max_growth,
    check_max_size,
    check_no_compilers,
    check_runs,
    check_warn_size,
    is_json_pitfall,
)
from pytest_slimimage.errors import ImageCheckFailed, SlimImageError
from pytest_slimimage.facts import ImageFacts, RunResult
from pytest_slimimage.image import BuiltImage
from pytest_slimimage.lint import check_lint
from pytest_slimimage.runnable import check_runnable, diagnose, render
from pytest_slimimage.spec import Spec
from pytest_slimimage.waste import check_max_waste


def _raise_if_failed(image: BuiltImage, result: CheckResult) -> CheckResult:
    __tracebackhide__ = True
    image.observe(result)
    if not result.passed:
        raise ImageCheckFailed(result.message(), (result,))
    return result


def assert_max_size(image: BuiltImage, limit: int | str) -> CheckResult:
    """Fail when ``image.size`` exceeds ``limit`` (bytes, or ``"16kB"``, ``"74MB"``, ``"1.5GiB"``)."""
    __tracebackhide__ = True
    return _raise_if_failed(image, _size(image, image.facts(), limit))


def assert_final_base(image: BuiltImage, expected: str | Sequence[str]) -> CheckResult:
    """Fail unless the final stage's external base is ``expected`` (or one of several)."""
    __tracebackhide__ = True
    return _raise_if_failed(image, check_final_base(image.facts(), expected))


def assert_exec_form(image: BuiltImage) -> CheckResult:
    """Fail when CMD/ENTRYPOINT is shell form (Dockerfile or built config), or the image has neither."""
    __tracebackhide__ = True
    return _raise_if_failed(image, check_exec_form(image.facts()))


def assert_no_compilers(image: BuiltImage, allow: Sequence[str] = ()) -> CheckResult:
    """Fail when the image's filesystem holds a compiler, assembler, linker or toolchain package."""
    __tracebackhide__ = True
    return _raise_if_failed(image, check_no_compilers(image.facts(filesystem=True), allow))


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
    _raise_if_failed(image, _diagnosed(image, check_runs(image.facts(), expectation, result), expectation.args))
    return result


def _size(image: BuiltImage, facts: ImageFacts, limit: int | str) -> CheckResult:
    """The size check; a failure reads the layers (if no other check did) so that it always names
    the wasted bytes, whatever ran before it."""
    result = check_max_size(facts, limit)
    if not result.passed and facts.waste is None:
        result = check_max_size(image.facts(filesystem=True), limit)
    return result


def _diagnosed(image: BuiltImage, result: CheckResult, args: Sequence[str] | None) -> CheckResult:
    """A failed run, explained: the static diagnosis of why the program cannot start (missing
    loader, library, interpreter, ...) appended to the evidence, its fix as the hint."""
    if result.passed:
        return result
    problems = diagnose(image.facts(filesystem=True), engine_arch=image.engine_arch, args=args)
    if not problems:
        return result
    # The non-JSON CMD is the cause of everything the diagnosis finds after it: keep its hint.
    hint = result.hint if is_json_pitfall(result.details.get("argv") or ()) else problems[0].hint or result.hint
    return replace(result, evidence=result.evidence + tuple(render(problems)), hint=hint)


def assert_runnable(image: BuiltImage) -> CheckResult:
    """Fail when the image's entrypoint could not start, found without running anything: a
    missing program, ELF loader, library or #! interpreter, no execute bit, the wrong architecture."""
    __tracebackhide__ = True
    return _raise_if_failed(image, check_runnable(image.facts(filesystem=True), engine_arch=image.engine_arch))


def assert_no_lint(image: BuiltImage, ignore: Sequence[str] = ()) -> CheckResult:
    """Fail on the Dockerfile lints (SI001 relative COPY --from source, SI002 shell-form CMD or
    ENTRYPOINT, SI003 single-quoted JSON, SI004 untagged or latest final base) not in ``ignore``."""
    __tracebackhide__ = True
    return _raise_if_failed(image, check_lint(image.facts(), ignore))


def assert_max_waste(image: BuiltImage, limit: int | str) -> CheckResult:
    """Fail when more than ``limit`` (bytes, ``"10MB"`` or ``"5%"`` of the layers' bytes) is
    written by one layer and overwritten or deleted by a later one."""
    __tracebackhide__ = True
    return _raise_if_failed(image, check_max_waste(image.facts(filesystem=True), limit))


def evaluate(
    image: BuiltImage,
    spec: Spec,
    *,
    baseline: BaselineEntry | None = None,
    updating_baseline: bool = False,
) -> list[CheckResult]:
    """Every check ``spec`` asks for, on ``image``, in the canonical order; nothing raised.

    When the spec both runs the container and reads the layers, the run starts first and the
    layers are indexed while it runs (one engine round trip hidden behind the other).
    """
    run_future: Future[RunResult] | None = None
    pool: ThreadPoolExecutor | None = None
    if spec.runs is not None and spec.needs_filesystem:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slimimage-run")
        run_future = pool.submit(image.run, spec.runs.args, spec.runs.timeout)
    try:
        return _evaluate(image, spec, baseline, updating_baseline, run_future)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _evaluate(
    image: BuiltImage,
    spec: Spec,
    baseline: BaselineEntry | None,
    updating_baseline: bool,
    run_future: Future[RunResult] | None,
) -> list[CheckResult]:
    try:
        facts = image.facts(filesystem=spec.needs_filesystem)
        results: list[CheckResult] = []
        if spec.max_size is not None:
            results.append(_size(image, facts, spec.max_size))
        if spec.warn_size is not None:
            results.append(check_warn_size(facts, spec.warn_size))
        if spec.max_growth is not None:
            results.append(check_max_growth(facts, spec.max_growth, baseline, updating=updating_baseline))
        if spec.final_base is not None:
            results.append(check_final_base(facts, spec.final_base))
        if spec.exec_form:
            results.append(check_exec_form(facts))
        if spec.no_compilers is not None:
            results.append(check_no_compilers(facts, spec.no_compilers))
        if spec.lint is not None:
            results.append(check_lint(facts, spec.lint))
        if spec.runnable:
            results.append(check_runnable(facts, engine_arch=image.engine_arch))
        if spec.max_waste is not None:
            results.append(check_max_waste(facts, spec.max_waste))
        if spec.runs is not None:
            run = run_future.result() if run_future is not None else image.run(spec.runs.args, spec.runs.timeout)
            results.append(_diagnosed(image, check_runs(facts, spec.runs, run), spec.runs.args))
    except ValueError as exc:  # a check that cannot apply: final_base or lint on an image with no Dockerfile
        raise SlimImageError(f"{image.name}: {exc}") from None
    for result in results:
        image.observe(result)
    return results


def failure_text(results: Sequence[CheckResult]) -> str:
    """All failed checks' messages, one block each, under a count."""
    failed = [r for r in results if not r.passed]
    if len(failed) == 1:
        return failed[0].message()
    names = ", ".join(r.check for r in failed)
    head = f"{failed[0].image}: {len(failed)} of {len(results)} checks failed ({names})"
    return "\n\n".join([head, *(r.message() for r in failed)])
