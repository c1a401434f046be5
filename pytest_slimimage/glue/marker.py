"""The ``slimimage`` marker: its keywords validated at collection, the image it checks chosen at
setup, its checks run after the test body."""

from __future__ import annotations

import inspect
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_slimimage.checks.evaluate import evaluate, failure_text
from pytest_slimimage.checks.registry import REGISTRY
from pytest_slimimage.checks.spec import Spec, SpecError, parse_spec
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.glue.annotate import add_properties, warn_about
from pytest_slimimage.glue.failures import MarkerCheckFailed
from pytest_slimimage.glue.fixtures import is_image
from pytest_slimimage.glue.state import session_of

if TYPE_CHECKING:  # docker-py and the engine side load when a test first needs an image
    from pytest_slimimage.engine.image import BuiltImage

MARKER = "slimimage"
SPEC_KEY = pytest.StashKey["tuple[Spec, str | None] | SlimImageError"]()
IMAGE_KEY = pytest.StashKey["BuiltImage"]()


def _marker_spec(item: pytest.Item) -> tuple[Spec, str | None]:
    where = f"@pytest.mark.slimimage on {item.nodeid}"
    merged: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(MARKER))):  # farthest first, closest wins
        if mark.args:
            raise SpecError(f"{where}: takes keywords only (e.g. max_size='1MB'), got positional {mark.args!r}")
        merged.update(mark.kwargs)
    image = merged.get("image")
    if image is not None and not isinstance(image, str):
        raise SpecError(f"{where}: image expects the name of an image fixture, got {image!r}")
    spec = parse_spec(
        merged, where=where, extra=("image",), default_run_timeout=session_of(item.config).settings.run_timeout
    )
    if not spec.checks:
        raise SpecError(f"{where}: asks for no check; give at least one of {', '.join(REGISTRY.names())}")
    return spec, image


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str, obj: object) -> None:
    """A test whose marker names its image (``image="hello"``) uses that fixture as if it asked
    for it: ``usefixtures`` is added to the function before pytest reads its fixtures, so a
    fixture with platforms (or an archive's) parametrizes the test as an argument would."""
    if not inspect.isfunction(obj):
        return
    image = None
    for mark in [*reversed(list(collector.iter_markers(MARKER))), *_own_marks(obj)]:  # closest wins
        image = mark.kwargs.get("image", image)
    if isinstance(image, str) and image:
        pytest.mark.usefixtures(image)(obj)


def _own_marks(obj: object) -> list[pytest.Mark]:
    marks = getattr(obj, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    # the decorator closest to the function is stored last
    return [m for m in reversed(marks) if isinstance(m, pytest.Mark) and m.name == MARKER][::-1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            continue
        try:
            spec, image = _marker_spec(item)
        except SlimImageError as exc:
            item.stash[SPEC_KEY] = exc
            continue
        item.stash[SPEC_KEY] = (spec, image)
        fixturenames = getattr(item, "fixturenames", None)
        if image is not None and fixturenames is not None and image not in fixturenames:
            fixturenames.append(image)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """A bad marker is an error before any fixture is set up (no build for nothing); once the
    fixtures are set up, the image the marker checks is chosen, so an ambiguous or missing image
    is a setup error too, not a failure after the test body ran.

    The innermost wrapper: the others (logging, capture) are entered before this raises, and
    every wrapper runs before the non-wrapper implementation that sets the fixtures up."""
    found = item.stash.get(SPEC_KEY, None)
    if isinstance(found, SlimImageError):
        raise found
    result = yield
    if isinstance(found, tuple) and not item.config.getoption("setupplan", False):
        item.stash[IMAGE_KEY] = _marker_image(item, found[1])
    return result


def _marker_image(item: pytest.Item, name: str | None) -> BuiltImage:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    if name is not None:
        value = funcargs.get(name)
        if not is_image(value):
            raise SlimImageError(f"@pytest.mark.slimimage on {item.nodeid}: fixture {name!r} is not an image fixture")
        return value
    images = {key: value for key, value in funcargs.items() if is_image(value)}
    if len(images) == 1:
        return next(iter(images.values()))
    if not images:
        raise SlimImageError(
            f"@pytest.mark.slimimage on {item.nodeid}: the test uses no image fixture;"
            " request one (def test_x(hello): ...) or name it with image='hello'"
        )
    raise SlimImageError(
        f"@pytest.mark.slimimage on {item.nodeid}: the test uses several image fixtures"
        f" ({', '.join(sorted(images))}); pick one with image='...'"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    for value in getattr(item, "funcargs", {}).values():
        if is_image(value):
            add_properties(item, value)
    outcome = yield
    found = item.stash.get(SPEC_KEY, None)
    image = item.stash.get(IMAGE_KEY, None)
    if isinstance(found, tuple) and image is not None:
        spec, _ = found
        results = evaluate(image, spec)
        path, lineno, _ = item.location
        warn_about(results, str(Path(str(item.config.rootpath)) / path), (lineno or 0) + 1)
        if any(not r.passed for r in results):
            raise MarkerCheckFailed(failure_text(results), tuple(results))
    return outcome
