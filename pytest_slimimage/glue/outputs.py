"""The files a session writes at its end: the size baseline (``--slimimage-update-baseline``) and
the reports (JSON, Markdown, SVG). Each file's failure is reported on its own, so a bad baseline
does not cost the reports."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_slimimage.baseline import Baseline, BaselineEntry, BaselineLayer, load_baseline, write_baseline
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.glue.settings import Settings
from pytest_slimimage.report import ImageRecord, json_report, markdown_report, svg_chart

__all__ = ["write_outputs"]


def write_outputs(
    settings: Settings, records: Sequence[ImageRecord], meta: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """Write the baseline (when updating) and the report files the settings ask for; returns what
    was written and what failed, one line each."""
    written: list[str] = []
    errors: list[str] = []
    if settings.update_baseline and settings.baseline is not None and records:
        try:
            written.append(_update_baseline(settings.baseline, records))
        except (OSError, SlimImageError) as exc:
            errors.append(f"writing the size baseline: {exc}")
    outputs: list[tuple[Path | None, Callable[[], str]]] = [
        (settings.report, lambda: json_report(records, meta=dict(meta))),
        (settings.markdown, lambda: markdown_report(records)),
        (settings.chart, lambda: svg_chart(records)),
    ]
    for target, render in outputs:
        if target is None:
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # GitHub's step summary is shared by every step of a job: add to it, never replace it
            append = str(target) == os.environ.get("GITHUB_STEP_SUMMARY") and target.exists()
            with target.open("a" if append else "w", encoding="utf-8") as out:
                out.write(("\n" if append else "") + render())
            written.append(str(target))
        except OSError as exc:
            errors.append(f"writing reports: {exc}")
    return written, errors


def _update_baseline(path: Path, records: Sequence[ImageRecord]) -> str:
    try:
        old = load_baseline(path)
    except SlimImageError:  # malformed: this run's entries replace it
        old = Baseline()
    entries = {
        r.name: BaselineEntry(
            r.size,
            r.final_base,
            tuple(BaselineLayer(str(la["instruction"]), int(la["size"])) for la in r.layers),
        )
        for r in records
    }
    write_baseline(path, old.updated(entries))
    return f"{path} (size baseline, {len(entries)} image(s))"
