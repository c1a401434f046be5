"""pytest glue: options, the ``slimimage`` marker, the image fixtures, cleanup, failure text.

Everything here adapts; verdicts come from :mod:`pytest_slimimage.checks`.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import pytest

from pytest_slimimage.collect import DeclarationsFile, DeclaredCheckFailed, add_properties, wants, warn_about
from pytest_slimimage.errors import (
    EngineUnavailable,
    ImageBuildError,
    ImageCheckFailed,
    SlimImageError,
)
from pytest_slimimage.report import terminal_lines
from pytest_slimimage.session import SlimImageSession
from pytest_slimimage.settings import Settings, positive_seconds
from pytest_slimimage.spec import Spec, SpecError, parse_spec

if TYPE_CHECKING:  # docker-py and the engine side load when a test first needs an image
    from pytest_slimimage.image import BuiltImage, ImageBuilder


def is_image(value: object) -> TypeGuard[BuiltImage]:
    """Whether ``value`` is a :class:`BuiltImage`, without importing the engine side for it: no
    image can exist before ``pytest_slimimage.image`` is imported."""
    module = sys.modules.get("pytest_slimimage.image")
    return module is not None and isinstance(value, module.BuiltImage)


MARKER = "slimimage"
MARKER_HELP = (
    "slimimage(max_size=None, final_base=None, exec_form=False, no_compilers=False, runs=None, warn_size=None,"
    " max_growth=None, lint=False, runnable=False, max_waste=None, image=None):"
    " check the image fixture the test uses (pytest-slimimage)"
)


class MarkerCheckFailed(ImageCheckFailed):
    """Failed checks requested by a ``slimimage`` marker (shown without a traceback)."""


SESSION_KEY = pytest.StashKey[SlimImageSession]()
SPEC_KEY = pytest.StashKey["tuple[Spec, str | None] | SlimImageError"]()
IMAGE_KEY = pytest.StashKey["BuiltImage"]()


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
    group.addoption(
        "--slimimage-baseline",
        default=None,
        dest="slimimage_baseline",
        metavar="PATH",
        help="size baseline file (JSON) that max_growth compares against.",
    )
    group.addoption(
        "--slimimage-update-baseline",
        action="store_true",
        default=False,
        dest="slimimage_update_baseline",
        help="rewrite the size baseline with this run's images (max_growth checks then pass).",
    )
    group.addoption(
        "--slimimage-report",
        default=None,
        dest="slimimage_report",
        metavar="PATH",
        help="write a JSON report of every image (schema: docs/report.schema.json).",
    )
    group.addoption(
        "--slimimage-markdown",
        default=None,
        dest="slimimage_markdown",
        metavar="PATH",
        help="write a Markdown size table (e.g. $GITHUB_STEP_SUMMARY).",
    )
    group.addoption(
        "--slimimage-chart",
        default=None,
        dest="slimimage_chart",
        metavar="PATH",
        help="write an SVG chart of image sizes, budgets and baselines.",
    )
    parser.addini("slimimage_baseline", "size baseline file (JSON)", default="")
    parser.addini("slimimage_report", "JSON report path", default="")
    parser.addini("slimimage_markdown", "Markdown report path", default="")
    parser.addini("slimimage_chart", "SVG chart path", default="")
    parser.addini("slimimage_require_engine", "a missing Docker engine is an error, not a skip", default="false")
    parser.addini("slimimage_keep_images", "keep the images the session built", default="false")
    parser.addini("slimimage_run_timeout", "default container run timeout in seconds", default="")
    parser.addini("slimimage_build_timeout", "image build timeout in seconds", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    settings = Settings.from_config(config)
    rootdir = Path(str(config.rootpath))
    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    cache_dir = cache.mkdir("slimimage-layers") if cache is not None else None
    workerinput = getattr(config, "workerinput", None)  # set by xdist on its workers
    if isinstance(workerinput, dict) and isinstance(workerinput.get("slimimage"), dict):
        shared = workerinput["slimimage"]
        state = SlimImageSession(
            settings,
            rootdir,
            role="worker",
            token=str(shared["token"]),
            worker=f"{shared['token']}-{workerinput.get('workerid', 'gw')}",
            shared_dir=Path(str(shared["shared_dir"])),
            cache_dir=cache_dir,
        )
    else:
        controller = getattr(config.option, "dist", "no") != "no" and not getattr(config.option, "collectonly", False)
        token = uuid.uuid4().hex[:10]
        state = SlimImageSession(
            settings,
            rootdir,
            role="controller" if controller else "single",
            token=token,
            shared_dir=Path(tempfile.mkdtemp(prefix=f"pytest-slimimage-{token}-")),
            cache_dir=cache_dir,
        )
    config.stash[SESSION_KEY] = state


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: give every worker the run's token and the folder for shared builds."""
    state = node.config.stash[SESSION_KEY]
    node.workerinput["slimimage"] = {"token": state.token, "shared_dir": str(state.shared_dir)}


def session_of(config: pytest.Config) -> SlimImageSession:
    return config.stash[SESSION_KEY]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if wants(file_path, parent.config):
        return DeclarationsFile.from_parent(parent, path=file_path)
    return None


# ------------------------------------------------------------------------------------------ fixtures
class ExistingFactory(Protocol):
    def __call__(
        self,
        reference: str,
        *,
        dockerfile: str | os.PathLike[str] | None = None,
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> BuiltImage: ...


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
    state = session_of(config)
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
    return functools.partial(build_image, request.config)


def build_image(
    config: pytest.Config,
    context: str | os.PathLike[str],
    *,
    dockerfile: str | os.PathLike[str] = "Dockerfile",
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    name: str | None = None,
) -> BuiltImage:
    """Build (or reuse) an image for this session; no engine -> skip, or an error when required."""
    __tracebackhide__ = True
    from pytest_slimimage.image import BuildRequest

    build_request = BuildRequest.resolve(config.rootpath, context, dockerfile, target, build_args)
    builder = _builder_or_skip(config)
    return builder.build(build_request, name=name)


def existing_image(
    config: pytest.Config,
    reference: str,
    *,
    dockerfile: str | os.PathLike[str] | None = None,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    name: str | None = None,
) -> BuiltImage:
    """An image already on the engine, checked as it is (never built, pulled or removed here)."""
    __tracebackhide__ = True
    path = None
    display = None
    if dockerfile is not None:
        path = Path(dockerfile)
        path = (path if path.is_absolute() else Path(str(config.rootpath)) / path).resolve()
        if not path.is_file():
            raise SlimImageError(f"Dockerfile not found: {path} (given for the image {reference!r})")
        try:
            display = str(path.relative_to(Path(str(config.rootpath)).resolve()))
        except ValueError:
            display = str(path)
    builder = _builder_or_skip(config)
    return builder.existing(
        reference, dockerfile=path, target=target, build_args=build_args, display=display, name=name
    )


@pytest.fixture(scope="session")
def slimimage_image(request: pytest.FixtureRequest) -> ExistingFactory:
    """Check an image that is already on the engine: ``slimimage_image("myapp:1.2")``, optionally
    with the Dockerfile it was built from (relative to the rootdir) for final_base and lint."""
    return functools.partial(existing_image, request.config)


def existing_image_fixture(
    reference: str,
    *,
    dockerfile: str | os.PathLike[str] | None = None,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    scope: str = "session",
) -> Any:
    """A fixture whose value is the :class:`BuiltImage` of an image already on the engine (built
    by your own pipeline, or pulled); the variable's name is the fixture's::

        api = existing_image_fixture("registry.example.com/api:ci", dockerfile="Dockerfile")
    """
    _check_scope(scope)

    def _image(request: pytest.FixtureRequest, slimimage_image: ExistingFactory) -> BuiltImage:
        __tracebackhide__ = True
        return slimimage_image(
            reference, dockerfile=dockerfile, target=target, build_args=build_args, name=request.fixturename
        )

    return pytest.fixture(scope=scope)(_image)  # type: ignore[call-overload]


def _check_scope(scope: str) -> None:
    if scope not in ("session", "package", "module", "class", "function"):
        raise ValueError(f"scope must be session, package, module, class or function, got {scope!r}")


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
    _check_scope(scope)

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
        merged, where=where, extra=("image",), default_run_timeout=session_of(item.config).settings.run_timeout
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
        state = session_of(item.config)
        baseline = state.growth_baseline(image.name) if spec.max_growth is not None else None
        from pytest_slimimage.assertions import evaluate, failure_text

        results = evaluate(image, spec, baseline=baseline, updating_baseline=state.settings.update_baseline)
        path, lineno, _ = item.location
        warn_about(results, str(Path(str(item.config.rootpath)) / path), (lineno or 0) + 1)
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
        if isinstance(exc, (SlimImageError, MarkerCheckFailed, DeclaredCheckFailed)):
            path, lineno, _ = item.location
            report.longrepr = PlainRepr(str(exc), path, (lineno or 0) + 1, type(exc).__name__)
    if report.failed and report.when == "call":
        for key, value in getattr(item, "funcargs", {}).items():
            if is_image(value) and value.build_log:
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
    state.finish(exitstatus=int(session.exitstatus))
    workeroutput = getattr(config, "workeroutput", None)  # set by xdist on its workers
    if isinstance(workeroutput, dict):
        workeroutput["slimimage"] = state.worker_payload()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: add a finished worker's figures and image records to the session's."""
    state = node.config.stash.get(SESSION_KEY, None)
    data = getattr(node, "workeroutput", {}).get("slimimage")
    if state is not None and isinstance(data, dict):
        state.merge_worker(data)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None or state.role == "worker":
        return
    records = state.all_records()
    verbosity = config.get_verbosity()
    if records and verbosity >= -1:
        terminalreporter.section("slimimage", sep="-", bold=True)
        for line in terminal_lines(records, verbose=verbosity >= 0):
            terminalreporter.write_line(line)
    for line in state.summary.lines(keep_images=state.settings.keep_images):
        terminalreporter.write_line(line)


__all__ = [
    "BuildFactory",
    "ExistingFactory",
    "MarkerCheckFailed",
    "build_image",
    "existing_image",
    "existing_image_fixture",
    "image_fixture",
    "session_of",
    "slimimage_build",
    "slimimage_image",
]
