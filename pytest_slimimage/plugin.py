"""pytest glue: options, the ``slimimage`` marker, the image fixtures, cleanup, failure text.

Everything here adapts; verdicts come from :mod:`pytest_slimimage.checks`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_slimimage.assertions import evaluate, failure_text
from pytest_slimimage.checks import CheckResult
from pytest_slimimage.engine import Engine
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError, ImageCheckFailed, SlimImageError
from pytest_slimimage.image import BuildRequest, BuiltImage, ImageBuilder
from pytest_slimimage.settings import Settings, positive_seconds
from pytest_slimimage.spec import Spec, SpecError, parse_spec

MARKER = "slimimage"
MARKER_HELP = (
    "slimimage(max_size=None, final_base=None, exec_form=False, no_compilers=False, runs=None, image=None):"
    " check the image fixture the test uses (pytest-slimimage)"
)


class MarkerCheckFailed(ImageCheckFailed):
    """Failed checks requested by a ``slimimage`` marker (shown without a traceback)."""


@dataclass
class SlimImageSession:
    """Per-session state: settings, the engine connection (made on first need), the builder."""

    settings: Settings
    rootdir: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    results: list[CheckResult] = field(default_factory=list)
    _engine: Engine | EngineUnavailable | None = None
    _builder: ImageBuilder | None = None
    removed: tuple[int, int] | None = None
    """(containers, image tags) removed at session end."""

    def builder(self) -> ImageBuilder:
        """The session's builder; raises :class:`EngineUnavailable` (once tried, remembered)."""
        if self._engine is None:
            try:
                self._engine = Engine.connect()
            except EngineUnavailable as exc:
                self._engine = exc
        if isinstance(self._engine, EngineUnavailable):
            raise self._engine
        if self._builder is None:
            self._builder = ImageBuilder(
                self._engine,
                session=self.token,
                run_limits=self.settings.run_limits,
                default_timeout=self.settings.run_timeout,
                build_timeout=self.settings.build_timeout,
            )
        return self._builder

    def cleanup(self) -> tuple[int, int] | None:
        if self._builder is None:
            return None
        try:
            return self._builder.cleanup(keep=self.settings.keep_images)
        finally:
            self._builder.engine.close()


SESSION_KEY = pytest.StashKey[SlimImageSession]()
SPEC_KEY = pytest.StashKey["tuple[Spec, str | None] | SlimImageError"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("slimimage", "container image checks (pytest-slimimage)")
    group.addoption(
        "--slimimage-require-engine",
        action="store_true",
        default=None,
        dest="slimimage_require_engine",
        help="treat a missing Docker engine as an error instead of skipping image tests (use in CI).",
    )
    group.addoption(
        "--slimimage-keep-images",
        action="store_true",
        default=None,
        dest="slimimage_keep_images",
        help="keep the images the session built (tagged pytest-slimimage/<name>:<session>-<key>).",
    )
    group.addoption(
        "--slimimage-run-timeout",
        type=positive_seconds,
        default=None,
        dest="slimimage_run_timeout",
        metavar="SECONDS",
        help="default time a container run may take before it is killed (default: 30).",
    )
    group.addoption(
        "--slimimage-build-timeout",
        type=positive_seconds,
        default=None,
        dest="slimimage_build_timeout",
        metavar="SECONDS",
        help="time an image build may take (default: no limit).",
    )
    parser.addini("slimimage_require_engine", "a missing Docker engine is an error, not a skip", default="false")
    parser.addini("slimimage_keep_images", "keep the images the session built", default="false")
    parser.addini("slimimage_run_timeout", "default container run timeout in seconds", default="")
    parser.addini("slimimage_build_timeout", "image build timeout in seconds", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[SESSION_KEY] = SlimImageSession(Settings.from_config(config), Path(str(config.rootpath)))


def _session(config: pytest.Config) -> SlimImageSession:
    return config.stash[SESSION_KEY]


# ------------------------------------------------------------------------------------------ fixtures
class BuildFactory(Protocol):
    def __call__(
        self,
        context: str | os.PathLike[str],
        *,
        dockerfile: str | os.PathLike[str] = "Dockerfile",
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> BuiltImage: ...


def _builder_or_skip(config: pytest.Config) -> ImageBuilder:
    __tracebackhide__ = True
    state = _session(config)
    try:
        return state.builder()
    except EngineUnavailable as exc:
        if state.settings.require_engine:
            raise EngineUnavailable(f"{exc} (required by slimimage_require_engine)") from None
        pytest.skip(f"slimimage: {exc} (--slimimage-require-engine makes this an error)")


@pytest.fixture(scope="session")
def slimimage_build(request: pytest.FixtureRequest) -> BuildFactory:
    """Build an image (once per session per Dockerfile, context, target and build args).

    ``slimimage_build("example_project", dockerfile="Dockerfile.static")`` returns a
    :class:`BuiltImage`; relative paths resolve against pytest's rootdir.
    """
    config = request.config

    def build(
        context: str | os.PathLike[str],
        *,
        dockerfile: str | os.PathLike[str] = "Dockerfile",
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> BuiltImage:
        __tracebackhide__ = True
        build_request = BuildRequest.resolve(config.rootpath, context, dockerfile, target, build_args)
        builder = _builder_or_skip(config)
        return builder.build(build_request, name=name)

    return build


def image_fixture(
    context: str | os.PathLike[str],
    *,
    dockerfile: str | os.PathLike[str] = "Dockerfile",
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    scope: str = "session",
) -> Any:
    """A fixture whose value is the :class:`BuiltImage` of a Dockerfile; assign it at module or
    conftest level, and the variable's name is the fixture's (and the image's name in reports)::

        hello = image_fixture("example_project", dockerfile="Dockerfile.static")
    """
    if scope not in ("session", "package", "module", "class", "function"):
        raise ValueError(f"image_fixture: scope must be session, package, module, class or function, got {scope!r}")

    def _image(request: pytest.FixtureRequest, slimimage_build: BuildFactory) -> BuiltImage:
        __tracebackhide__ = True
        return slimimage_build(
            context, dockerfile=dockerfile, target=target, build_args=build_args, name=request.fixturename
        )

    return pytest.fixture(scope=scope)(_image)  # type: ignore[call-overload]


# -------------------------------------------------------------------------------------------- marker
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
        merged, where=where, extra=("image",), default_run_timeout=_session(item.config).settings.run_timeout
    )
    if not spec.checks:
        raise SpecError(
            f"{where}: asks for no check; give at least one of max_size, final_base, exec_form, no_compilers, runs"
        )
    return spec, image


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    found = item.stash.get(SPEC_KEY, None)
    if isinstance(found, SlimImageError):
        raise found


def _marker_image(item: pytest.Item, name: str | None) -> BuiltImage:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    if name is not None:
        value = funcargs.get(name)
        if not isinstance(value, BuiltImage):
            raise SlimImageError(f"@pytest.mark.slimimage on {item.nodeid}: fixture {name!r} is not an image fixture")
        return value
    images = {key: value for key, value in funcargs.items() if isinstance(value, BuiltImage)}
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
    outcome = yield
    found = item.stash.get(SPEC_KEY, None)
    if isinstance(found, tuple):
        spec, name = found
        image = _marker_image(item, name)
        results = evaluate(image, spec)
        _session(item.config).results.extend(results)
        if any(not r.passed for r in results):
            raise MarkerCheckFailed(failure_text(results), tuple(results))
    return outcome


# ----------------------------------------------------------------------------------------- reporting
@dataclass(frozen=True)
class _Crash:
    path: str
    lineno: int
    message: str


class PlainRepr:
    """A failure shown as its message alone (no traceback into the plugin), like pytest's own
    usage errors; ``reprcrash`` keeps the short test summary informative."""

    def __init__(self, text: str, path: str, lineno: int, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.reprcrash = _Crash(path, lineno, f"{kind}: {text.splitlines()[0] if text else ''}")

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(f"E   {line}", red=True, bold=True)
        tw.line("")
        tw.line(f"{self.reprcrash.path}:{self.reprcrash.lineno}: {self.kind}")

    def __str__(self) -> str:
        return f"{self.text}\n\n{self.reprcrash.path}:{self.reprcrash.lineno}: {self.kind}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    excinfo = call.excinfo
    if excinfo is not None:
        exc = excinfo.value
        if isinstance(exc, ImageBuildError) and exc.log:
            report.sections.append(("slimimage build log", exc.log))
        if isinstance(exc, (SlimImageError, MarkerCheckFailed)):
            path, lineno, _ = item.location
            report.longrepr = PlainRepr(str(exc), path, (lineno or 0) + 1, type(exc).__name__)
    if report.failed and report.when == "call":
        for key, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, BuiltImage) and value.build_log:
                tail = "".join(value.build_log.splitlines(keepends=True)[-60:])
                report.sections.append((f"slimimage build log: {key} ({value.tag})", tail))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    state.removed = state.cleanup()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None or state._builder is None:
        return
    builder = state._builder
    failed = sum(1 for r in state.results if not r.passed)
    line = f"slimimage: {builder.builds} image build(s), {len(state.results)} marker check(s) ({failed} failed)"
    if state.removed is not None:
        containers, images = state.removed
        line += f"; removed {images} image tag(s) and {containers} leftover container(s)"
        if state.settings.keep_images:
            line += f"; kept images tagged pytest-slimimage/*:{state.token}-*"
    terminalreporter.write_line(line)


__all__ = ["BuildFactory", "MarkerCheckFailed", "image_fixture", "slimimage_build"]
