"""Settings, resolved once per session: command-line option > ini/pyproject > default.

Which settings there are, their defaults and how their values parse is the option table's
(:data:`pytest_slimimage.glue.options.OPTIONS`); this module resolves them into a frozen object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_slimimage.facts import RunLimits
from pytest_slimimage.glue.options import OPTION, OPTIONS, Option, default_of


@dataclass(frozen=True)
class Settings:
    """The session's settings. A field's default is its row's in the option table (an immutable value,
    read once when the class is made)."""

    require_engine: bool = field(default=default_of("require_engine"))
    """A missing engine is an error rather than a skip (CI)."""
    keep_images: bool = field(default=default_of("keep_images"))
    run_timeout: float = field(default=default_of("run_timeout"))
    build_timeout: float | None = field(default=default_of("build_timeout"))
    builder: str = field(default=default_of("builder"))
    """The builder kind images get unless they name one: ``auto``, ``buildkit`` or ``legacy``."""
    buildx_builder: str | None = field(default=default_of("buildx_builder"))
    """The buildx builder BuildKit builds go to (``--builder NAME``)."""
    run_limits: RunLimits = field(default_factory=RunLimits)
    baseline: Path | None = field(default=default_of("baseline"))
    """The size baseline file (absolute), when one is configured."""
    update_baseline: bool = field(default=default_of("update_baseline"))
    report: Path | None = field(default=default_of("report"))
    """Where to write the JSON report."""
    markdown: Path | None = field(default=default_of("markdown"))
    chart: Path | None = field(default=default_of("chart"))

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Every row of the option table, resolved; a bad value is a UsageError naming where it came from."""
        values = {row.name: _resolve(row, config) for row in OPTIONS}
        if values["update_baseline"] and values["baseline"] is None:
            update, baseline = OPTION["update_baseline"], OPTION["baseline"]
            raise pytest.UsageError(
                f"{update.flag} needs a baseline file: {baseline.flag} {baseline.metavar} or the ini key {baseline.ini}"
            )
        return cls(**values)


def _resolve(row: Option, config: pytest.Config) -> Any:
    """The command line's value, else the ini file's, else the row's default."""
    value: object = config.getoption(row.dest)
    source = row.flag
    if value is None and row.ini is not None:
        value = config.getini(row.ini)
        source = row.ini
    if value is None or value == "":
        return row.default
    try:
        parsed = row.parse(value)
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None
    if isinstance(parsed, Path) and not parsed.is_absolute():
        return Path(str(config.rootpath)) / parsed
    return parsed
