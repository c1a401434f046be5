"""How failures show: the plugin's errors and check failures as their own text (no traceback into
the plugin), build logs as report sections, and the same text across xdist."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_slimimage.analysis.secrets import mask_text
from pytest_slimimage.errors import ImageBuildError, ImageCheckFailed, SlimImageError
from pytest_slimimage.glue.fixtures import is_image


class PlainFailure(ImageCheckFailed):
    """Failed checks the plugin itself ran (for a marker or a table): shown as their text alone,
    without a traceback into the plugin."""


class MarkerCheckFailed(PlainFailure):
    """Failed checks requested by a ``slimimage`` marker."""


class DeclaredCheckFailed(PlainFailure):
    """A failed check declared in pyproject.toml / slimimage.toml."""


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
            report.sections.append(("slimimage build log", mask_text(exc.log)))
        if isinstance(exc, (SlimImageError, PlainFailure)):
            path, lineno, _ = item.location
            text = mask_text(str(exc)) if isinstance(exc, ImageBuildError) else str(exc)  # a log quotes RUN lines
            report.longrepr = PlainRepr(text, path, (lineno or 0) + 1, type(exc).__name__)
    if report.failed and report.when == "call":
        for key, value in getattr(item, "funcargs", {}).items():
            if is_image(value) and value.build_log:
                tail = "".join(value.build_log.splitlines(keepends=True)[-60:])
                report.sections.append((f"slimimage build log: {key} ({value.tag})", mask_text(tail)))
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
