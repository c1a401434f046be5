"""Benchmark project: pytest-slimimage's marker on images that are already built (by tag).

The driver (``benchmarks/bench.py``) copies this folder to a scratch directory and runs pytest
there, as a user would. ``SLIMBENCH_IMAGES`` names a JSON file: a list of images, each with
``name``, ``tag``, ``dockerfile`` (absolute path) and ``checks`` (the marker's keywords).

The images are wrapped with the plugin's public ``slimimage_image`` factory (what
``existing_image_fixture`` uses): checked as they are, never built, pulled or removed by the
plugin. The marker, ``evaluate``, the layer cache and the cleanup are the plugin's own path.

With ``SLIMBENCH_TIMINGS`` set, the wall time of the engine's layer indexing and container
runs, and of the merge and waste computations, are recorded (by wrapping those functions for
this process only) and written there as JSON when the session ends.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import pytest_slimimage.engine.image as slim_image
from pytest_slimimage import BuiltImage
from pytest_slimimage.engine.layerread import LayerReader
from pytest_slimimage.engine.runner import ContainerRunner
from pytest_slimimage.glue.fixtures import ExistingFactory

F = TypeVar("F", bound=Callable[..., Any])

_IMAGES_PATH = os.environ.get("SLIMBENCH_IMAGES")
_IMAGES: list[dict[str, Any]] = json.loads(Path(_IMAGES_PATH).read_text(encoding="utf-8")) if _IMAGES_PATH else []
"""Empty outside the benchmark: the test is then skipped (an empty parameter set)."""
_TIMINGS_PATH = os.environ.get("SLIMBENCH_TIMINGS")
_timings: list[dict[str, Any]] = []
_lock = threading.Lock()


def _timed(kind: str, func: F, describe: Callable[..., str]) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            with _lock:
                _timings.append({"kind": kind, "what": describe(*args, **kwargs), "seconds": elapsed})

    return wrapper  # type: ignore[return-value]


if _TIMINGS_PATH:
    LayerReader.index_layers = _timed("index_layers", LayerReader.index_layers, lambda _self, image, **_: str(image))  # type: ignore[method-assign]
    ContainerRunner.run = _timed("run", ContainerRunner.run, lambda _self, image, **_: str(image))  # type: ignore[method-assign]
    # image.py's own references (it imported them by name): patched there, for this process only
    slim_image.merge_layers = _timed("merge_layers", slim_image.merge_layers, lambda *_a, **_k: "")  # type: ignore[attr-defined]
    slim_image.compute_waste = _timed("compute_waste", slim_image.compute_waste, lambda *_a, **_k: "")  # type: ignore[attr-defined]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_image" in metafunc.fixturenames:
        metafunc.parametrize(
            "bench_image",
            [pytest.param(e, id=e["name"], marks=pytest.mark.slimimage(**e["checks"])) for e in _IMAGES],
            indirect=True,
            scope="session",
        )


@pytest.fixture(scope="session")
def bench_image(request: pytest.FixtureRequest, slimimage_image: ExistingFactory) -> BuiltImage:
    """An image built before the session, as the plugin's ``BuiltImage``."""
    entry: dict[str, Any] = request.param
    return slimimage_image(entry["tag"], dockerfile=entry["dockerfile"], name=entry["name"])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        with _lock:
            _timings.append({"kind": "test", "what": item.nodeid, "seconds": time.perf_counter() - started})


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _TIMINGS_PATH:
        with _lock:
            Path(_TIMINGS_PATH).write_text(json.dumps(_timings), encoding="utf-8")
