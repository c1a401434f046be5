"""Settings, resolved once per session: command-line option > ini/pyproject > default."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_slimimage.facts import RunLimits


def _bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise pytest.UsageError(f"{name}: expected true or false, got {value!r}")


def positive_seconds(value: str) -> float:
    """argparse type for timeouts: a positive number of seconds."""
    import argparse
    import math

    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds):  # float() accepts "nan" and "inf"; neither is a timeout
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}")
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Settings:
    require_engine: bool = False
    """A missing engine is an error rather than a skip (CI)."""
    keep_images: bool = False
    run_timeout: float = 30.0
    build_timeout: float | None = None
    run_limits: RunLimits = field(default_factory=RunLimits)
    baseline: Path | None = None
    """The size baseline file (absolute), when one is configured."""
    update_baseline: bool = False
    report: Path | None = None
    """Where to write the JSON report."""
    markdown: Path | None = None
    chart: Path | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        def pick(option: str, ini: str) -> object:
            value = config.getoption(option)
            return value if value is not None else config.getini(ini)

        def seconds(option: str, ini: str, default: float | None) -> float | None:
            value = pick(option, ini)
            if value in (None, ""):
                return default
            if isinstance(value, float):
                return value
            try:
                return positive_seconds(str(value))
            except Exception as exc:
                raise pytest.UsageError(f"{ini}: {exc}") from None

        def path(option: str, ini: str) -> Path | None:
            value = pick(option, ini)
            if value in (None, ""):
                return None
            where = Path(str(value)).expanduser()
            return where if where.is_absolute() else Path(str(config.rootpath)) / where

        update = _bool(config.getoption("slimimage_update_baseline") or False, "--slimimage-update-baseline")
        baseline = path("slimimage_baseline", "slimimage_baseline")
        if update and baseline is None:
            raise pytest.UsageError(
                "--slimimage-update-baseline needs a baseline file: --slimimage-baseline PATH or the ini key"
                " slimimage_baseline"
            )
        return cls(
            baseline=baseline,
            update_baseline=update,
            report=path("slimimage_report", "slimimage_report"),
            markdown=path("slimimage_markdown", "slimimage_markdown"),
            chart=path("slimimage_chart", "slimimage_chart"),
            require_engine=_bool(
                pick("slimimage_require_engine", "slimimage_require_engine"), "slimimage_require_engine"
            ),
            keep_images=_bool(pick("slimimage_keep_images", "slimimage_keep_images"), "slimimage_keep_images"),
            run_timeout=seconds("slimimage_run_timeout", "slimimage_run_timeout", 30.0) or 30.0,
            build_timeout=seconds("slimimage_build_timeout", "slimimage_build_timeout", None),
        )
