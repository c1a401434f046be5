"""The declarative form as pytest items: ``pyproject.toml`` / ``slimimage.toml`` tables become
one collector per image and one item per check (``pyproject.toml::hello::max_size``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_slimimage.checks.declarative import FILENAMES, ImageDecl, load_declarations
from pytest_slimimage.checks.evaluate import evaluate, failure_text
from pytest_slimimage.errors import ImageCheckFailed, SlimImageError
from pytest_slimimage.glue.annotate import add_properties, warn_about
from pytest_slimimage.glue.archives import archive_images
from pytest_slimimage.glue.failures import DeclaredCheckFailed, PlainRepr
from pytest_slimimage.glue.fixtures import build_image, existing_image
from pytest_slimimage.glue.state import session_of

if TYPE_CHECKING:
    from pytest_slimimage.engine.image import BuiltImage


def wants(file_path: Path, config: pytest.Config) -> bool:
    """Whether ``file_path`` is a declarative file of this run: by name, at the rootdir or given
    explicitly, and holding a slimimage table (checked cheaply before any parsing)."""
    if file_path.name not in FILENAMES:
        return False
    explicit = any(Path(str(arg).split("::")[0]).resolve() == file_path.resolve() for arg in config.args)
    if file_path.parent.resolve() != Path(str(config.rootpath)).resolve() and not explicit:
        return False
    try:
        text = file_path.read_text(encoding="utf-8")
    except OSError:
        return False
    # slimimage.toml is ours by name (its tables may drop the prefix: [images.hello]);
    # a pyproject.toml only when it mentions the table
    return file_path.name == "slimimage.toml" or "tool.slimimage" in text


class DeclarationsFile(pytest.File):
    """A pyproject.toml or slimimage.toml with ``[tool.slimimage.images.*]`` tables."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        timeout = session_of(self.config).settings.run_timeout
        declarations = load_declarations(self.path, default_run_timeout=timeout)
        if declarations is None:
            return
        for decl in declarations.images:
            yield DeclaredImage.from_parent(self, name=decl.name, decl=decl)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SlimImageError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class DeclaredImage(pytest.Collector):
    """One declared image; its children are its checks."""

    def __init__(self, *, decl: ImageDecl, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decl = decl

    def collect(self) -> Iterator[pytest.Item]:
        for check in self.decl.spec.checks:
            yield DeclaredCheck.from_parent(self, name=check, decl=self.decl, check=check)


class DeclaredCheck(pytest.Item):
    """One check on one declared image; the image is built once per session for all of them."""

    def __init__(self, *, decl: ImageDecl, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decl = decl
        self.check = check

    def runtest(self) -> None:
        images: Sequence[BuiltImage]
        try:
            if self.decl.archive is not None:  # each platform of an OCI index, or the one asked for
                images = archive_images(
                    self.config,
                    self.decl.archive,
                    dockerfile=self.decl.dockerfile if self.decl.dockerfile_given else None,
                    platform=self.decl.platform,
                    name=self.decl.name,
                )
            elif self.decl.image is not None:
                image = existing_image(
                    self.config,
                    self.decl.image,
                    dockerfile=self.decl.dockerfile if self.decl.dockerfile_given else None,
                    target=self.decl.target,
                    build_args=self.decl.build_args,
                    name=self.decl.name,
                )
                images = [image]
            else:  # one build, or one per platform of ``platforms`` (each named name[platform])
                images = [
                    build_image(
                        self.config,
                        self.decl.context or ".",
                        dockerfile=self.decl.dockerfile,
                        target=self.decl.target,
                        build_args=self.decl.build_args,
                        name=f"{self.decl.name}[{platform}]" if self.decl.platforms else self.decl.name,
                        builder=self.decl.builder or ("buildkit" if self.decl.platforms else None),
                        secrets=self.decl.secrets,
                        platform=platform,
                        no_cache=self.decl.no_cache,
                    )
                    for platform in (self.decl.platforms or (self.decl.platform,))
                ]
        except pytest.skip.Exception as exc:
            # no engine: report the skip at the image's table, not inside the plugin (pytest does
            # the same for a skip raised by a fixture)
            exc._use_item_location = True
            raise
        spec = self.decl.spec.only(self.check)
        results = []
        for each in images:
            add_properties(self, each)
            results += evaluate(each, spec)
        warn_about(results, str(self.path), self.decl.line)
        if any(not r.passed for r in results):
            raise DeclaredCheckFailed(failure_text(results), tuple(results))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The check's own text, without rendering a traceback into the plugin first (the
        makereport hook would replace it anyway; rendering one costs ~0.2 s a failure)."""
        if isinstance(excinfo.value, (SlimImageError, ImageCheckFailed)):
            path, lineno, _ = self.location
            return PlainRepr(str(excinfo.value), path, (lineno or 0) + 1, type(excinfo.value).__name__)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.decl.line - 1, f"{self.decl.name}::{self.check}"
