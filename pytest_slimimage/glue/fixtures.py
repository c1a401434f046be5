"""The image fixtures: ``image_fixture``, ``existing_image_fixture`` and the session factories
``slimimage_build`` and ``slimimage_image``."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import pytest

from pytest_slimimage.buildinputs import parse_builder, parse_platform, parse_platforms, parse_secrets
from pytest_slimimage.errors import (
    EngineUnavailable,
    SlimImageError,
)

if TYPE_CHECKING:  # docker-py and the engine side load when a test first needs an image
    from pytest_slimimage.engine.builds import ImageBuilder
    from pytest_slimimage.engine.image import BuiltImage
from pytest_slimimage.glue.progress import shown_build
from pytest_slimimage.glue.state import session_of


def is_image(value: object) -> TypeGuard[BuiltImage]:
    """Whether ``value`` is a :class:`BuiltImage`, without importing the engine side for it: no
    image can exist before ``pytest_slimimage.engine.image`` is imported."""
    module = sys.modules.get("pytest_slimimage.engine.image")
    return module is not None and isinstance(value, module.BuiltImage)


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
        builder: str | None = None,
        secrets: Mapping[str, str | os.PathLike[str]] | None = None,
        platform: str | None = None,
        no_cache: bool = False,
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
    """Build an image (once per session per Dockerfile, context, target, build args, builder,
    secrets, platform and no_cache).

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
    builder: str | None = None,
    secrets: Mapping[str, str | os.PathLike[str]] | None = None,
    platform: str | None = None,
    no_cache: bool = False,
) -> BuiltImage:
    """Build (or reuse) an image for this session; no engine -> skip, or an error when required.

    ``builder`` (``auto``, ``buildkit``, ``legacy``; None: the session's ``--slimimage-builder``),
    ``secrets`` (id -> file, relative to the rootdir; for ``RUN --mount=type=secret``),
    ``platform`` (``linux/amd64``) and ``no_cache`` are BuildKit's inputs, and part of the key.
    """
    __tracebackhide__ = True
    from pytest_slimimage.engine.builds import BuildRequest

    requested, platform = _build_inputs(builder, secrets, platform)
    build_request = BuildRequest.resolve(
        config.rootpath, context, dockerfile, target, build_args, secrets=secrets, platform=platform, no_cache=no_cache
    )
    image_builder = _builder_or_skip(config)
    choice = session_of(config).resolve_builder(requested)
    build_request = dataclasses.replace(build_request, builder=choice.name, builder_note=choice.note)
    return shown_build(config, lambda: image_builder.build(build_request, name=name))


def _build_inputs(
    builder: str | None, secrets: Mapping[str, str | os.PathLike[str]] | None, platform: str | None
) -> tuple[str | None, str | None]:
    """The builder kind and platform, checked (ValueError naming the argument); secrets' shape checked."""
    try:
        requested = None if builder is None else parse_builder(builder)
    except ValueError as exc:
        raise ValueError(f"builder: {exc}") from None
    try:
        platform = None if platform is None else parse_platform(platform)
    except ValueError as exc:
        raise ValueError(f"platform: {exc}") from None
    if secrets is not None:
        try:
            parse_secrets(secrets)
        except ValueError as exc:
            raise ValueError(f"secrets: {exc}") from None
    return requested, platform


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
    builder: str | None = None,
    secrets: Mapping[str, str | os.PathLike[str]] | None = None,
    platform: str | None = None,
    no_cache: bool = False,
    platforms: Sequence[str] | None = None,
) -> Any:
    """A fixture whose value is the :class:`BuiltImage` of a Dockerfile; assign it at module or
    conftest level, and the variable's name is the fixture's (and the image's name in reports)::

        hello = image_fixture("example_project", dockerfile="Dockerfile.static")

    ``builder`` (``auto``, ``buildkit``, ``legacy``; default: ``--slimimage-builder``),
    ``secrets={"id": "path"}`` (for ``RUN --mount=type=secret,id=id``; paths relative to the
    rootdir), ``platform="linux/amd64"`` and ``no_cache=True`` go to the build.

    ``platforms=["linux/amd64", "linux/arm64"]`` builds the image once per platform with BuildKit
    and runs each test that uses the fixture once per platform (``test_x[linux/arm64]``, the
    image named ``hello[linux/arm64]``)::

        hello = image_fixture(".", dockerfile="Dockerfile.cross", platforms=["linux/amd64", "linux/arm64"])
    """
    _check_scope(scope)
    _build_inputs(builder, secrets, platform)  # a bad value fails where the fixture is made
    each: tuple[str, ...] = ()
    if platforms is not None:
        if platform is not None:
            raise ValueError("give platform= (one build) or platforms= (one build each), not both")
        try:
            each = parse_platforms(platforms)
        except ValueError as exc:
            raise ValueError(f"platforms: {exc}") from None
        builder = builder or "buildkit"  # the legacy builder builds for the engine's platform only

    def _image(request: pytest.FixtureRequest, slimimage_build: BuildFactory) -> BuiltImage:
        __tracebackhide__ = True
        chosen: str | None = getattr(request, "param", None) if each else platform
        return slimimage_build(
            context,
            dockerfile=dockerfile,
            target=target,
            build_args=build_args,
            name=f"{request.fixturename}[{chosen}]" if each else request.fixturename,
            builder=builder,
            secrets=secrets,
            platform=chosen,
            no_cache=no_cache,
        )

    if each:
        return pytest.fixture(scope=scope, params=list(each), ids=list(each))(_image)  # type: ignore[call-overload]
    return pytest.fixture(scope=scope)(_image)  # type: ignore[call-overload]
