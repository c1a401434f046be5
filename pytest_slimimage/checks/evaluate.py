"""Running checks on an image: gather the facts the checks need (the Dockerfile, the layers, a
container run, the baseline), call each registered check's pure function, and turn "cannot apply"
into one :class:`SlimImageError`. The marker, the declarative items and every ``assert_*``
helper come through here, so a check gives the same text whichever way it was asked for.

Pure of pytest and docker: the image is anything that satisfies :class:`ImageSource`
(:class:`~pytest_slimimage.engine.image.BuiltImage` does).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Protocol

from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.check import (
    BASELINE,
    DOCKERFILE,
    FILESYSTEM,
    PULL_SIZES,
    REBUILD,
    RUN,
    SERVICE,
    Check,
    ParseContext,
    PerPlatform,
)
from pytest_slimimage.checks.registry import REGISTRY, call
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.spec import Spec, SpecError
from pytest_slimimage.errors import ImageCheckFailed, SlimImageError, SlimImageWarning
from pytest_slimimage.facts import ImageFacts, RunResult, ServicePlan, ServiceResult


class ImageSource(Protocol):
    """What the checks need of an image: its facts, a way to run it, and someone to tell."""

    @property
    def name(self) -> str: ...

    @property
    def default_timeout(self) -> float: ...

    def facts(self, *, filesystem: bool = False, pull: bool = False, rebuild: bool = False) -> ImageFacts:
        """``filesystem``: with the layers indexed; ``pull``: with each layer's compressed size;
        ``rebuild``: with the image built again without cache, and both builds' files."""
        ...

    def run(
        self, args: Sequence[str] | None = None, timeout: float | None = None, *, memory: str | None = None
    ) -> RunResult: ...

    def serve(self, plan: ServicePlan) -> ServiceResult:
        """Run the image as shipped until ``plan`` is met (ready) or cannot be, then remove it."""
        ...

    def observe(self, result: CheckResult) -> CheckResult: ...

    def growth_baseline(self) -> tuple[BaselineEntry | None, bool]:
        """The image's size baseline entry and whether the session rewrites the baseline."""
        ...


class RunPlan(Protocol):
    """The expectation of a check that needs a run: what to run it with."""

    @property
    def args(self) -> Sequence[str] | None: ...

    @property
    def timeout(self) -> float: ...

    @property
    def memory(self) -> str | None: ...


def evaluate(image: ImageSource, spec: Spec) -> list[CheckResult]:
    """Every check ``spec`` asks for, on ``image``, in the canonical order; failures are results,
    not exceptions. A check that cannot apply (``final_base`` on an image without a Dockerfile)
    is a :class:`SlimImageError`.

    When the checks both run the container and read the layers, the runs start first and the
    layers are indexed while they run (one engine round trip hidden behind the other).
    """
    asked = _for_platform(image, list(spec.items()))
    _applicable(image, asked)
    needs = spec.needs
    runs: dict[int, Future[RunResult]] = {}
    services: dict[int, Future[ServiceResult]] = {}
    containers = RUN in needs or SERVICE in needs
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slimimage-run") if containers else None
    try:
        if pool is not None:
            for number, (check, expectation) in enumerate(asked):
                if RUN in check.needs:
                    plan: RunPlan = expectation
                    runs[number] = pool.submit(image.run, plan.args, plan.timeout, memory=plan.memory)
                elif SERVICE in check.needs:
                    services[number] = pool.submit(image.serve, expectation)
        facts = _facts(image, needs)
        if BASELINE in needs:
            facts = _with_baseline(image, facts)
        results = []
        for number, (check, expectation) in enumerate(asked):
            run = runs[number].result() if number in runs else None
            service = services[number].result() if number in services else None
            results.append(_check(image, check, expectation, facts, run, service))
    except BaseException as exc:
        if pool is not None and not isinstance(exc, Exception):  # an interrupt: do not wait for the containers
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    for result in results:
        image.observe(result)
    return results


def _applicable(image: ImageSource, asked: Sequence[tuple[Check[Any], Any]]) -> None:
    """The one place "cannot apply" is decided, before anything is read or run."""
    if any(DOCKERFILE in check.needs for check, _ in asked) and image.facts().dockerfile is None:
        names = [check.name for check, _ in asked if DOCKERFILE in check.needs]
        raise SlimImageError(
            f"{image.name}: {' and '.join(names)} {'needs' if len(names) == 1 else 'need'} the image's Dockerfile;"
            f" {image.name} was not built from one (for an existing image, pass the dockerfile= it was built from)"
        )
    health = [check.name for check, plan in asked if SERVICE in check.needs and getattr(plan, "healthy", False)]
    if health:
        healthcheck = image.facts().config.healthcheck
        if healthcheck is None or healthcheck.disabled:
            has = "none" if healthcheck is None else "its HEALTHCHECK disabled (HEALTHCHECK NONE)"
            raise SlimImageError(
                f"{image.name}: {' and '.join(health)} needs a HEALTHCHECK; {image.name} has {has}"
                " (add HEALTHCHECK CMD [...] to the final stage: a command that exits 0 once the service is ready)"
            )


def _for_platform(image: ImageSource, asked: Sequence[tuple[Check[Any], Any]]) -> list[tuple[Check[Any], Any]]:
    """Each expectation given per platform (``max_size={"linux/arm64": "22MB", ...}``) replaced by
    the image's platform's; a platform it does not name is a :class:`SlimImageError`."""
    if not any(isinstance(expectation, PerPlatform) for _, expectation in asked):
        return list(asked)
    platform = image.facts().config.platform
    resolved = []
    for check, expectation in asked:
        if isinstance(expectation, PerPlatform):
            picked = expectation.pick(platform) if platform else None
            if picked is None:
                given = ", ".join(expectation.values)
                raise SlimImageError(
                    f"{image.name}: {check.name} is given for {given}, not for {platform or 'an unknown platform'}"
                    f" (the image's platform); add {platform or 'its platform'!r}: ... to the {check.name} dict"
                )
            expectation = picked
        resolved.append((check, expectation))
    return resolved


def _check(
    image: ImageSource,
    check: Check[Any],
    expectation: object,
    facts: ImageFacts,
    run: RunResult | None,
    service: ServiceResult | None = None,
) -> CheckResult:
    if run is not None:
        facts = replace(facts, run=run)
    if service is not None:
        facts = replace(facts, service=service)
    try:
        result = call(check, facts, expectation)
        if not result.passed and FILESYSTEM in check.explain_with and facts.filesystem is None:
            fuller = image.facts(filesystem=True)
            result = call(check, replace(facts, filesystem=fuller.filesystem, waste=fuller.waste), expectation)
    except ValueError as exc:
        raise SlimImageError(f"{image.name}: {exc}") from None
    return result


def check_once(image: ImageSource, check: str | Check[Any], value: object) -> tuple[CheckResult, ImageFacts]:
    """One check with a raw ``value`` (validated like a marker keyword): its result, unraised,
    and the facts it read (``facts.run`` for a run)."""
    found = REGISTRY.get(check) if isinstance(check, str) else check
    try:
        expectation = found.expectation(value, ParseContext(run_timeout=image.default_timeout))
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{found.helper_name}: {exc}") from None
    if expectation is None:
        raise SpecError(f"{found.helper_name}: {value!r} asks for no check")
    return _one(image, found, expectation)


def _facts(image: ImageSource, needs: frozenset[str]) -> ImageFacts:
    """The facts ``needs`` call for (a source is asked only for what a check needs: its ``pull``
    and ``rebuild`` are costly)."""
    if PULL_SIZES in needs or REBUILD in needs:
        return image.facts(filesystem=FILESYSTEM in needs, pull=PULL_SIZES in needs, rebuild=REBUILD in needs)
    return image.facts(filesystem=FILESYSTEM in needs)


def _with_baseline(image: ImageSource, facts: ImageFacts) -> ImageFacts:
    entry, updating = image.growth_baseline()
    return replace(facts, baseline=entry, baseline_updating=updating)


def _one(image: ImageSource, check: Check[Any], expectation: object) -> tuple[CheckResult, ImageFacts]:
    ((check, expectation),) = _for_platform(image, [(check, expectation)])
    _applicable(image, [(check, expectation)])
    facts = _facts(image, check.needs)
    if BASELINE in check.needs:
        facts = _with_baseline(image, facts)
    run = None
    if RUN in check.needs:
        plan: RunPlan = expectation  # type: ignore[assignment]
        run = image.run(plan.args, plan.timeout, memory=plan.memory)
    service = image.serve(expectation) if SERVICE in check.needs else None  # type: ignore[arg-type]
    result = _check(image, check, expectation, facts, run, service)
    image.observe(result)
    return result, replace(facts, run=run, service=service)


def assert_check(image: ImageSource, check: str | Check[Any], value: object = True) -> CheckResult:
    """Run the registered check ``check`` with ``value`` (as the marker keyword would take it) and
    raise :class:`ImageCheckFailed` with its text when it fails; return the result otherwise::

        assert_check(image, "max_layers", 3)
    """
    __tracebackhide__ = True
    result, _ = check_once(image, check, value)
    return raise_if_failed(result)


def assert_expectation(image: ImageSource, check: Check[Any], expectation: object) -> tuple[CheckResult, ImageFacts]:
    """``check`` with an already validated ``expectation``; raises when it fails."""
    __tracebackhide__ = True
    result, facts = _one(image, check, expectation)
    raise_if_failed(result)
    return result, facts


def raise_if_failed(result: CheckResult) -> CheckResult:
    """Raise :class:`ImageCheckFailed` with the result's text when it failed; a soft budget's
    warning (``warn_size``) is a :class:`SlimImageWarning` instead."""
    __tracebackhide__ = True
    if not result.passed:
        raise ImageCheckFailed(result.message(), (result,))
    if "warning" in result.details:
        warnings.warn(str(result.details["warning"]), SlimImageWarning, stacklevel=3)
    return result


def failure_text(results: Sequence[CheckResult]) -> str:
    """All failed checks' messages, one block each, under a count."""
    failed = [r for r in results if not r.passed]
    if len(failed) == 1:
        return failed[0].message()
    names = ", ".join(r.check for r in failed)
    head = f"{failed[0].image}: {len(failed)} of {len(results)} checks failed ({names})"
    return "\n\n".join([head, *(r.message() for r in failed)])
