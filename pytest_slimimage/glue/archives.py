"""The archive fixtures -- images built elsewhere, checked from a ``docker save`` tarball or an OCI
image layout without an engine: ``archive_fixture``, the session factory ``slimimage_archive``, the
declarative ``archive`` key's way to its images (:func:`archive_images`), and the parametrization
that checks each platform of a multi-platform OCI index (:func:`pytest_generate_tests`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.glue.fixtures import _check_scope
from pytest_slimimage.glue.state import session_of

if TYPE_CHECKING:  # the engine side loads when a test first needs an image
    from pytest_slimimage.engine.archive import ArchiveImage, ArchiveImages

_MARK = "_slimimage_archive"
"""The attribute an archive fixture's function carries: what it checks (:class:`_Wanted`)."""


@dataclass(frozen=True)
class _Wanted:
    path: str | os.PathLike[str]
    platform: str | None


@dataclass(frozen=True)
class _Platform:
    """The parameter of an archive fixture parametrized over the platforms of its index."""

    platform: str

    def __str__(self) -> str:
        return self.platform


def archives_of(config: pytest.Config) -> ArchiveImages:
    """The session's opened archives (made on first need; what they loaded for runs is removed
    when the session ends, and a failure to is in its summary)."""
    return session_of(config).archives()


def _anchor(config: pytest.Config, path: str | os.PathLike[str]) -> tuple[Path, str]:
    """``path`` resolved against the rootdir, and as messages show it (relative when inside)."""
    root = Path(str(config.rootpath)).resolve()
    given = Path(path)
    full = given if given.is_absolute() else root / given
    try:
        return full, str(full.resolve().relative_to(root))
    except ValueError:
        return full, str(full)


def archive_images(
    config: pytest.Config,
    path: str | os.PathLike[str],
    *,
    dockerfile: str | os.PathLike[str] | None = None,
    platform: str | None = None,
    name: str | None = None,
) -> list[ArchiveImage]:
    """The images of the archive at ``path`` (relative to the rootdir): one per platform of an OCI
    index, named ``name[linux/arm64]``, or the one ``platform`` picks, named ``name``. No engine
    is needed; ``dockerfile`` (relative to the rootdir) is the one the image was built from."""
    __tracebackhide__ = True
    if platform is not None and (not isinstance(platform, str) or not platform.strip()):
        raise SlimImageError(f"platform expects a platform such as linux/arm64, got {platform!r}")
    target, shown = _anchor(config, path)
    dockerfile_path = dockerfile_shown = None
    if dockerfile is not None:
        dockerfile_path, dockerfile_shown = _anchor(config, dockerfile)
        if not dockerfile_path.is_file():
            raise SlimImageError(f"Dockerfile not found: {dockerfile_path} (given for the archive {shown})")
    return archives_of(config).open(
        target,
        display=shown,
        name=name or _default_name(target),
        platform=platform,
        dockerfile=dockerfile_path,
        dockerfile_display=dockerfile_shown,
    )


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".tar", ".oci"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def archive_image(
    config: pytest.Config,
    path: str | os.PathLike[str],
    *,
    dockerfile: str | os.PathLike[str] | None = None,
    platform: str | None = None,
    name: str | None = None,
) -> ArchiveImage:
    """The one image of the archive at ``path``, or the one ``platform`` picks; an archive of
    several platforms without ``platform`` is an error listing them."""
    __tracebackhide__ = True
    images = archive_images(config, path, dockerfile=dockerfile, platform=platform, name=name)
    if len(images) > 1:
        _, shown = _anchor(config, path)
        raise SlimImageError(
            f"{shown} holds {len(images)} platforms ({', '.join(i.platform for i in images)}): pass platform= to"
            " check one (archive_fixture and the declarative archive key check each platform)"
        )
    return images[0]


class ArchiveFactory:
    """The ``slimimage_archive`` fixture's value: ``slimimage_archive("dist/app.tar")`` is the
    archive's image; ``.each(path)`` is one image per platform of an OCI index; ``.platforms(path)``
    the platforms it holds."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def __call__(
        self,
        path: str | os.PathLike[str],
        *,
        dockerfile: str | os.PathLike[str] | None = None,
        platform: str | None = None,
        name: str | None = None,
    ) -> ArchiveImage:
        __tracebackhide__ = True
        return archive_image(self._config, path, dockerfile=dockerfile, platform=platform, name=name)

    def each(
        self,
        path: str | os.PathLike[str],
        *,
        dockerfile: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> list[ArchiveImage]:
        __tracebackhide__ = True
        return archive_images(self._config, path, dockerfile=dockerfile, name=name)

    def platforms(self, path: str | os.PathLike[str]) -> tuple[str, ...]:
        __tracebackhide__ = True
        target, shown = _anchor(self._config, path)
        return archives_of(self._config).platforms(target, display=shown)


@pytest.fixture(scope="session")
def slimimage_archive(request: pytest.FixtureRequest) -> ArchiveFactory:
    """Check an image built elsewhere from its archive, with no engine:
    ``slimimage_archive("dist/app.tar", dockerfile="Dockerfile")`` (a ``docker save`` tarball, or an
    OCI image layout as a directory or a tar; paths relative to the rootdir) returns an
    :class:`ArchiveImage`; ``platform="linux/arm64"`` picks one image of a multi-platform index."""
    return ArchiveFactory(request.config)


def archive_fixture(
    path: str | os.PathLike[str],
    *,
    dockerfile: str | os.PathLike[str] | None = None,
    platform: str | None = None,
    scope: str = "session",
) -> Any:
    """A fixture whose value is the image in an archive -- a ``docker save`` tarball, or an OCI
    image layout as a directory or a tar (``buildx --output type=oci``, buildah, kaniko, skopeo) --
    checked without an engine; the variable's name is the fixture's and the image's::

        app = archive_fixture("dist/app.tar", dockerfile="Dockerfile")

    An OCI index of several platforms makes each test that uses the fixture run once per platform
    (``test_app[linux/arm64]``, the image named ``app[linux/arm64]``), unless ``platform=`` picks one.
    Paths are relative to the rootdir; ``dockerfile`` is for the checks that read one (final_base, lint).
    """
    _check_scope(scope)
    if platform is not None and (not isinstance(platform, str) or not platform.strip()):
        raise ValueError(f"platform expects a platform such as linux/arm64, got {platform!r}")

    def _image(request: pytest.FixtureRequest, slimimage_archive: ArchiveFactory) -> ArchiveImage:
        __tracebackhide__ = True
        param = getattr(request, "param", None)
        if isinstance(param, _Platform):
            label = f"{request.fixturename}[{param.platform}]"
            return slimimage_archive(path, dockerfile=dockerfile, platform=param.platform, name=label)
        return slimimage_archive(path, dockerfile=dockerfile, platform=platform, name=request.fixturename)

    setattr(_image, _MARK, _Wanted(path, platform))
    return pytest.fixture(scope=scope)(_image)  # type: ignore[call-overload]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test once per platform of each multi-platform archive its archive fixtures read
    (those without ``platform=``). An archive that cannot be read is left alone here: its
    fixture raises the error, naming the path, when the test sets it up."""
    # pytest's own fixture parametrization reads the same map (the closest definition is last)
    definitions: dict[str, Sequence[Any]] = getattr(metafunc, "_arg2fixturedefs", None) or {}
    explicit = {n for mark in metafunc.definition.iter_markers("parametrize") for n in _argnames(mark)}
    for name in metafunc.fixturenames:
        found = definitions.get(name)
        if not found or name in explicit:
            continue
        wanted = getattr(getattr(found[-1], "func", None), _MARK, None)
        if not isinstance(wanted, _Wanted) or wanted.platform is not None:
            continue
        try:
            target, shown = _anchor(metafunc.config, wanted.path)
            platforms = archives_of(metafunc.config).platforms(target, display=shown)
        except SlimImageError:
            continue
        if len(platforms) > 1:
            metafunc.parametrize(name, [_Platform(p) for p in platforms], indirect=True, ids=list(platforms))


def _argnames(mark: pytest.Mark) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
    if isinstance(names, str):
        return [n.strip() for n in names.split(",") if n.strip()]
    return [str(n) for n in names]
