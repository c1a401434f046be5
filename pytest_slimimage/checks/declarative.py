"""The declarative form: images and their checks in ``pyproject.toml`` or ``slimimage.toml``.

::

    [tool.slimimage]
    max_growth = "5%"                 # default for every image below

    [tool.slimimage.images.hello]
    context = "example_project"
    dockerfile = "Dockerfile.static"
    max_size = "1MB"
    final_base = "scratch"
    exec_form = true
    no_compilers = true
    runs = { stdout = "hello world" }

A standalone ``slimimage.toml`` takes the same tables, with or without the ``tool.slimimage``
prefix (``[images.hello]``). The check keys are the marker's and go through the same
:func:`parse_spec`. Pure: reads TOML, returns declarations or raises :class:`SpecError`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_slimimage.buildinputs import parse_builder, parse_platform, parse_platforms, parse_secrets
from pytest_slimimage.checks.check import suggest
from pytest_slimimage.checks.spec import Spec, SpecError, parse_spec
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILD_KEYS = (
    "context",
    "image",
    "archive",
    "dockerfile",
    "target",
    "build_args",
    "builder",
    "secrets",
    "platform",
    "platforms",
    "no_cache",
)
BUILDKIT_KEYS = ("builder", "secrets", "platform", "platforms", "no_cache")
"""Inputs of a build: not for an existing ``image``."""
ARCHIVE_KEYS = ("archive", "dockerfile", "platform")
"""What an ``archive`` table may say besides its checks: the Dockerfile it was built from, the platform to check."""
GLOBAL_KEYS = ("images", "max_growth")
FILENAMES = ("pyproject.toml", "slimimage.toml")


@dataclass(frozen=True)
class ImageDecl:
    """One ``[tool.slimimage.images.<name>]`` table."""

    name: str
    context: str | None
    spec: Spec
    dockerfile: str = "Dockerfile"
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    line: int = 1
    """The 1-based line of the image's table header in its file (for failure locations)."""
    image: str | None = None
    """An image already on the engine, checked as it is instead of built from ``context``."""
    dockerfile_given: bool = field(default=False, compare=False)
    """Whether the table named a Dockerfile (for an existing image it is optional)."""
    builder: str | None = None
    """``auto``, ``buildkit`` or ``legacy``; None: the session's ``slimimage_builder``."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """``RUN --mount=type=secret`` sources: id -> file, relative to the rootdir."""
    platform: str | None = None
    platforms: tuple[str, ...] = ()
    """Build one image per platform (BuildKit), each checked and named ``<name>[linux/arm64]``."""
    no_cache: bool = False
    archive: str | None = None
    """A ``docker save`` tarball or an OCI image layout (relative to the rootdir), checked without an
    engine; ``platform`` picks one image of a multi-platform index (None: each is checked)."""


@dataclass(frozen=True)
class Declarations:
    path: Path
    images: tuple[ImageDecl, ...]


def _table(data: Mapping[str, Any], path: Path) -> tuple[Mapping[str, Any], str] | None:
    """The slimimage table of ``data`` and the dotted name its images sit under, or None."""
    tool = data.get("tool")
    if isinstance(tool, Mapping) and "slimimage" in tool:
        table, prefix = tool["slimimage"], "tool.slimimage"
    elif path.name == "slimimage.toml":
        table, prefix = data, ""
    else:
        return None
    if not isinstance(table, Mapping):
        raise SpecError(f"{path}: [tool.slimimage] must be a table")
    return table, prefix


def load_declarations(path: Path, *, default_run_timeout: float = DEFAULT_RUN_TIMEOUT) -> Declarations | None:
    """The images declared in ``path``; None when it has no slimimage table.

    Raises :class:`SpecError` naming the file, the image and the key for anything unknown or
    malformed, and for TOML syntax errors (with the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    found = _table(data, path)
    if found is None:
        return None
    table, top = found
    where_global = f"{path} [{top}]" if top else f"{path}"
    for key in table:
        if key not in GLOBAL_KEYS:
            raise SpecError(
                f"{where_global}: unknown key {key!r}{suggest(key, list(GLOBAL_KEYS))};"
                f" known keys: {', '.join(GLOBAL_KEYS)}"
            )
    images = table.get("images", {})
    if not isinstance(images, Mapping):
        raise SpecError(f"{where_global}: images must be a table of tables ([tool.slimimage.images.<name>])")
    defaults = {k: table[k] for k in GLOBAL_KEYS if k != "images" and k in table}
    if defaults:  # a bad default is reported once, where it is written, not under every image
        parse_spec(defaults, where=where_global, default_run_timeout=default_run_timeout)
    prefix = f"{top}.images" if top else "images"
    out = []
    for name, raw in images.items():
        where = f"{path} [{prefix}.{name}]"
        if not isinstance(raw, Mapping):
            raise SpecError(f"{where}: must be a table of keys")
        values = {**defaults, **raw}
        spec = parse_spec(
            {k: v for k, v in values.items() if k not in BUILD_KEYS},
            where=where,
            default_run_timeout=default_run_timeout,
            extra=BUILD_KEYS,
        )
        context = raw.get("context")
        image = raw.get("image")
        archive = _archive(raw, where)
        if image is not None and (not isinstance(image, str) or not image):
            raise SpecError(f"{where}: image expects the reference of an image on the engine, got {image!r}")
        if image is not None and context is not None:
            raise SpecError(f"{where}: give either context (build it) or image (check one already built), not both")
        if image is None and archive is None and (not isinstance(context, str) or not context):
            raise SpecError(
                f"{where}: context is required (the build context folder, relative to the rootdir),"
                " or image for an image already built"
            )
        dockerfile = raw.get("dockerfile", "Dockerfile")
        if not isinstance(dockerfile, str) or not dockerfile:
            raise SpecError(f"{where}: dockerfile expects a path, got {dockerfile!r}")
        target = raw.get("target")
        if target is not None and not isinstance(target, str):
            raise SpecError(f"{where}: target expects a stage name, got {target!r}")
        build_args = raw.get("build_args", {})
        if not isinstance(build_args, Mapping) or not all(
            isinstance(v, (str, int, float)) for v in build_args.values()
        ):
            raise SpecError(f"{where}: build_args expects a table of strings, got {build_args!r}")
        builder, secrets, platform, no_cache = _build_inputs(raw, where)
        platforms = _platforms(raw, where)
        if image is not None and any(key in raw for key in BUILDKIT_KEYS):
            given = ", ".join(key for key in BUILDKIT_KEYS if key in raw)
            raise SpecError(f"{where}: {given} apply to a build (context), not to an existing image")
        if not spec.checks:
            raise SpecError(
                f"{where}: declares no check (give max_size, final_base, exec_form, no_compilers, runs, ...)"
            )
        out.append(
            ImageDecl(
                name=str(name),
                context=context,
                spec=spec,
                dockerfile=dockerfile,
                target=target,
                build_args={str(k): str(v) for k, v in build_args.items()},
                line=_header_line(text, prefix, str(name)),
                image=image,
                dockerfile_given="dockerfile" in raw,
                builder=builder,
                secrets=secrets,
                platform=platform,
                platforms=platforms,
                no_cache=no_cache,
                archive=archive,
            )
        )
    return Declarations(path, tuple(out))


def _archive(raw: Mapping[str, Any], where: str) -> str | None:
    """The table's ``archive`` path, checked: the table's only image source, with nothing but the
    Dockerfile and the platform besides (an archive is checked as it is, never built)."""
    archive = raw.get("archive")
    if archive is None:
        return None
    if not isinstance(archive, str) or not archive:
        raise SpecError(
            f"{where}: archive expects the path of a docker save tarball or an OCI image layout"
            f" (relative to the rootdir), got {archive!r}"
        )
    others = [key for key in ("context", "image") if raw.get(key) is not None]
    if others:
        raise SpecError(
            f"{where}: give one of context (build it), image (check one already built) or archive (check one"
            f" saved to a file), not archive and {others[0]}"
        )
    extra = [key for key in BUILD_KEYS if key in raw and key not in ARCHIVE_KEYS]
    if extra:
        raise SpecError(
            f"{where}: {', '.join(extra)} {'applies' if len(extra) == 1 else 'apply'} to a build, not to an"
            " archive (checked as it was saved; give dockerfile and platform only)"
        )
    return archive


def _build_inputs(raw: Mapping[str, Any], where: str) -> tuple[str | None, dict[str, str], str | None, bool]:
    """The table's ``builder``, ``secrets``, ``platform`` and ``no_cache``, checked."""
    try:
        builder = None if raw.get("builder") is None else parse_builder(raw["builder"])
    except ValueError as exc:
        raise SpecError(f"{where}: builder: {exc}") from None
    try:
        secrets = parse_secrets(raw.get("secrets", {}))
    except ValueError as exc:
        raise SpecError(f'{where}: secrets: {exc} (a table: secrets = {{ token = "path/to/file" }})') from None
    try:
        platform = None if raw.get("platform") is None else parse_platform(raw["platform"])
    except ValueError as exc:
        raise SpecError(f"{where}: platform: {exc}") from None
    no_cache = raw.get("no_cache", False)
    if not isinstance(no_cache, bool):
        raise SpecError(f"{where}: no_cache expects true or false, got {no_cache!r}")
    return builder, secrets, platform, no_cache


def _platforms(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The table's ``platforms`` (one build each), checked; not with ``platform`` (one build)."""
    if raw.get("platforms") is None:
        return ()
    if raw.get("platform") is not None:
        raise SpecError(f"{where}: give platform (one build) or platforms (one build each), not both")
    try:
        return parse_platforms(raw["platforms"])
    except ValueError as exc:
        raise SpecError(f"{where}: platforms: {exc}") from None


def _header_line(text: str, prefix: str, name: str) -> int:
    """The line of ``[<prefix>.<name>]`` (name bare or quoted, spaces and a trailing comment
    allowed), else of the first table under ``prefix``'s parent, else 1."""
    parts = [re.escape(part) for part in prefix.split(".")]
    quoted = "|".join((re.escape(name), re.escape(f'"{name}"'), re.escape(f"'{name}'")))
    dot = r"\s*\.\s*"
    header = re.compile(rf"^\s*\[\s*{dot.join(parts)}{dot}(?:{quoted})\s*\]\s*(?:#.*)?$")
    parent = re.compile(rf"^\s*\[\s*{dot.join(parts[:-1] or parts)}\s*[\].]")
    fallback = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if header.match(line):
            return number
        if fallback == 1 and parent.match(line):
            fallback = number
    return fallback
