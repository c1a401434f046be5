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
from pytest_slimimage.engine import LABEL_SESSION, Engine
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
class Summary:
    """What the session did with the engine, for the terminal summary. JSON-safe (:meth:`to_json`),
    so xdist workers send theirs to the controller through ``config.workeroutput``, which merges them."""

    builds: int = 0
    checks: int = 0
    failed: int = 0
    removed_images: int = 0
    removed_containers: int = 0
    kept: list[str] = field(default_factory=list)
    """The exact tags left behind by ``--slimimage-keep-images``."""
    errors: list[str] = field(default_factory=list)
    """Cleanup failures."""
    used: bool = False
    """An engine was connected: there is something to report."""

    def merge(self, data: Mapping[str, Any]) -> None:
        self.used = self.used or bool(data.get("used"))
        for name in ("builds", "checks", "failed", "removed_images", "removed_containers"):
            setattr(self, name, getattr(self, name) + int(data.get(name) or 0))
        self.kept += [str(tag) for tag in data.get("kept") or ()]
        self.errors += [str(error) for error in data.get("errors") or ()]

    def to_json(self) -> dict[str, Any]:
        return {
            "builds": self.builds,
            "checks": self.checks,
            "failed": self.failed,
            "removed_images": self.removed_images,
            "removed_containers": self.removed_containers,
            "kept": list(self.kept),
            "errors": list(self.errors),
            "used": self.used,
        }

    def lines(self, *, keep_images: bool) -> list[str]:
        if not self.used:
            return []
        line = f"slimimage: {self.builds} image build(s), {self.checks} marker check(s) ({self.failed} failed)"
        if keep_images:
            line += (
                f"; kept {len(self.kept)} image tag(s) (--slimimage-keep-images),"
                f" removed {self.removed_containers} leftover container(s)"
            )
        else:
            line += f"; removed {self.removed_images} image tag(s) and {self.removed_containers} leftover container(s)"
        return [
            line,
            *(f"slimimage: kept {tag}" for tag in sorted(self.kept)),
            *(f"slimimage: cleanup failed: {error}" for error in self.errors),
        ]


@dataclass
class SlimImageSession:
    """Per-session state: settings, the engine connection (made on first need), the builder."""

    settings: Settings
    rootdir: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    results: list[CheckResult] = field(default_factory=list)
    _engine: Engine | EngineUnavailable | None = None
    _builder: ImageBuilder | None = None
    summary: Summary = field(default_factory=Summary)
    """This process's figures once the session ends, plus (on an xdist controller) its workers'."""

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

    def finish(self) -> Summary:
        """Remove what the session made (unless kept), close the engine; this process's figures."""
        own = Summary()
        if self._builder is None:
            return own
        builder = self._builder
        own.used = True
        own.builds = builder.builds
        own.checks = len(self.results)
        own.failed = sum(1 for r in self.results if not r.passed)
        try:
            if self.settings.keep_images:
                own.kept = list(builder.engine.images_with_label(self.token))
            own.removed_containers, own.removed_images = builder.cleanup(keep=self.settings.keep_images)
        except Exception as exc:  # a dead engine must not turn the session's end into an INTERNALERROR
            own.errors.append(f"{type(exc).__name__}: {exc} (images are labelled {LABEL_SESSION}={self.token})")
        finally:
            builder.engine.close()
        return own


SESSION_KEY = pytest.StashKey[SlimImageSession]()
SPEC_KEY = pytest.StashKey["tuple[Spec, str | None] | SlimImageError"]()
IMAGE_KEY = pytest.StashKey[BuiltImage]()


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
    image = item.stash.get(IMAGE_KEY, None)
    if isinstance(found, tuple) and image is not None:
        spec, _ = found
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

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "path": self.reprcrash.path, "lineno": self.reprcrash.lineno, "kind": self.kind}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlainRepr:
        return cls(str(data["text"]), str(data["path"]), int(data["lineno"]), str(data["kind"]))


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


_REPR_KEY = "slimimage_longrepr"


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(report: pytest.TestReport | pytest.CollectReport) -> Generator[None, Any, Any]:
    """Send a :class:`PlainRepr` across xdist as its parts, so the controller prints the same text."""
    data = yield
    if isinstance(data, dict) and isinstance(report.longrepr, PlainRepr):
        data[_REPR_KEY] = report.longrepr.to_json()
    return data


@pytest.hookimpl(wrapper=True)
def pytest_report_from_serializable(data: dict[str, Any]) -> Generator[None, Any, Any]:
    report = yield
    parts = data.get(_REPR_KEY)
    if report is not None and isinstance(parts, dict):
        report.longrepr = PlainRepr.from_json(parts)
        report.__dict__.pop(_REPR_KEY, None)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    own = state.finish()
    state.summary.merge(own.to_json())
    workeroutput = getattr(config, "workeroutput", None)  # set by xdist on its workers
    if isinstance(workeroutput, dict):
        workeroutput["slimimage"] = own.to_json()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: add a finished worker's figures to the session's summary."""
    state = node.config.stash.get(SESSION_KEY, None)
    data = getattr(node, "workeroutput", {}).get("slimimage")
    if state is not None and isinstance(data, dict):
        state.summary.merge(data)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    for line in state.summary.lines(keep_images=state.settings.keep_images):
        terminalreporter.write_line(line)


__all__ = ["BuildFactory", "MarkerCheckFailed", "image_fixture", "slimimage_build"]
