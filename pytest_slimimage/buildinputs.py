"""What a build may be asked for besides its Dockerfile and context, validated once for every
place that takes it (fixture arguments, declarative keys, command-line options): which builder,
the target platform, the secrets. Pure: imports neither pytest nor docker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["BUILDER_KINDS", "parse_builder", "parse_platform", "parse_platforms", "parse_secrets"]

BUILDER_KINDS = ("auto", "buildkit", "legacy")
"""``auto``: BuildKit wherever a docker client here can run it, else the legacy builder;
``buildkit``: BuildKit or an error saying why not; ``legacy``: the engine's legacy builder."""

_PLATFORM = re.compile(r"[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_]+)?")
_SECRET_ID = re.compile(r"[A-Za-z0-9_.-]+")


def parse_builder(value: object) -> str:
    """A builder kind (``auto``, ``buildkit``, ``legacy``; case and spaces ignored); ValueError otherwise."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text not in BUILDER_KINDS:
        raise ValueError(f"expected {', '.join(BUILDER_KINDS[:-1])} or {BUILDER_KINDS[-1]}, got {value!r}")
    return text


def parse_platform(value: object) -> str:
    """A target platform, ``os/arch[/variant]`` (``linux/amd64``, ``linux/arm/v7``), lowercased."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _PLATFORM.fullmatch(text):
        raise ValueError(f"expected a platform os/arch[/variant] such as linux/amd64, got {value!r}")
    return text


def parse_platforms(value: object) -> tuple[str, ...]:
    """Target platforms to build one image each for (``["linux/amd64", "linux/arm64"]``): a
    non-empty list of distinct platforms, in the order given."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f'expected a list of platforms such as ["linux/amd64", "linux/arm64"], got {value!r}')
    platforms: list[str] = []
    for each in value:
        platform = parse_platform(each)
        if platform in platforms:
            raise ValueError(f"{platform} is listed twice")
        platforms.append(platform)
    return tuple(platforms)


def parse_secrets(value: object) -> dict[str, str]:
    """``{"id": "path"}``: ids as ``RUN --mount=type=secret,id=ID`` names them, paths as given
    (the caller anchors them); ValueError naming the bad entry otherwise."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of secret id to file path, got {value!r}")
    out: dict[str, str] = {}
    for key, path in value.items():
        if not isinstance(key, str) or not _SECRET_ID.fullmatch(key):
            raise ValueError(f"a secret id is letters, digits, '.', '_' or '-', got {key!r}")
        if not isinstance(path, str) and not hasattr(path, "__fspath__"):
            raise ValueError(f"secret {key!r}: expected a file path, got {path!r}")
        text = str(path)
        if not text:
            raise ValueError(f"secret {key!r}: expected a file path, got an empty one")
        out[key] = text
    return out
